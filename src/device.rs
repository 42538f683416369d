// SPDX-License-Identifier: GPL-2.0

//! The WireGuard network device: link kind "wireguard" (upstream `device.c`).
//!
//! A device is two objects. [`Device`] lives in the `net_device` and holds
//! what netlink configures, under its mutex. [`Tunnel`] is the data plane,
//! shared through an `RcuArc` with the peers, the packets in flight and
//! the work they queue; it reaches the `net_device` through a
//! `DeviceLink`, so the device's memory outlives it. Deleting the device
//! removes every peer and drops the device's reference to the tunnel; the
//! tunnel goes when the last packet or work item that uses it is done.

use crate::allowedips::LookupTable;
use crate::kapi::netdev::{
    DeviceLink, Features, LinkKind, LinkOps, NetDevice, SetupDevice, Stat, NET_SKB_PAD,
};
use crate::kapi::notifier::{self, Chain, Event, EventHandler, Notifier};
use crate::kapi::queue::{PacketRing, SkbRing};
use crate::kapi::rcu::{self, RcuArc, RcuPtr};
use crate::kapi::skb::SkBuff;
use crate::kapi::sync::{Rtnl, RtnlGuard};
use crate::kapi::udp::TunnelNet;
use crate::kapi::work::{CpuWorkers, WqFlags, Workqueue};
use crate::messages::{
    noise_encrypted_len, MAX_QUEUED_INCOMING_HANDSHAKES, MAX_QUEUED_PACKETS,
    MESSAGE_DATA_HEADER_LEN, MESSAGE_MINIMUM_LENGTH, MESSAGE_PADDING_MULTIPLE,
};
use crate::noise::{DeviceNoise, Keypair, StaticIdentity};
use crate::peer::{Peer, Peers};
use crate::receive::{DecryptWorker, HandshakeWorker, RxDelivery};
use crate::send::EncryptWorker;
use crate::{receive, send, socket, wg_debug};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
};

/// Every device of the kind.
pub(crate) static LINK_KIND: LinkKind<Device> = LinkKind::new();

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const UDP_HEADER_LEN: usize = 8;
const ETH_DATA_LEN: usize = 1500;

/// What encapsulation adds to every packet, in the worst case (IPv6).
const OVERHEAD: usize = MESSAGE_MINIMUM_LENGTH + UDP_HEADER_LEN + max(IPV6_HEADER_LEN, IPV4_HEADER_LEN);

/// Room in front of a handshake message for the outer IP and UDP headers
/// (upstream `SKB_HEADER_LEN`).
pub(crate) const SKB_HEADER_LEN: usize = max(IPV4_HEADER_LEN, IPV6_HEADER_LEN) + UDP_HEADER_LEN + NET_SKB_PAD;

/// Room in front of a packet for the outer IP, UDP and data headers.
pub(crate) const DATA_PACKET_HEAD_ROOM: usize = (MESSAGE_DATA_HEADER_LEN + SKB_HEADER_LEN).next_multiple_of(4);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

const FEATURES: Features = Features::HW_CSUM
    .union(Features::RXCSUM)
    .union(Features::SG)
    .union(Features::GSO)
    .union(Features::GSO_SOFTWARE)
    .union(Features::HIGHDMA);

/// Source of `Device::instance`.
static INSTANCES: Atomic<u64> = Atomic::new(0);

/// A WireGuard interface.
#[pin_data]
pub(crate) struct Device {
    /// Unique among all devices ever created, unlike an ifindex.
    pub(crate) instance: u64,
    /// Serialises configuration changes and dumps (upstream's
    /// `device_update_lock`); taken after RTNL.
    #[pin]
    pub(crate) config: Mutex<Config>,
    /// The data plane; emptied when the device is destroyed.
    tunnel: RcuPtr<Tunnel>,
}

/// What `wg set` configures on the interface itself.
pub(crate) struct Config {
    pub(crate) identity: StaticIdentity,
    /// The configured port, or once up the bound one (random for 0).
    pub(crate) listen_port: u16,
    pub(crate) peers: Peers,
    /// Bumped on every change, so that a dump spanning one is flagged.
    pub(crate) generation: u32,
}

impl Config {
    /// (Re)binds the sockets to `port` in the creating namespace (gone:
    /// `ENONET`). The old sockets stay until the new ones are bound.
    pub(crate) fn bind(&mut self, dev: &NetDevice, net: &TunnelNet, rtnl: &Rtnl, port: u16) -> Result {
        self.listen_port = socket::bind(net, &dev.name(), rtnl, port)?;
        Ok(())
    }
}

impl Device {
    /// The data plane, while the device exists.
    pub(crate) fn tunnel(&self) -> Option<RcuArc<Tunnel>> {
        self.tunnel.get_arc(&rcu::read_lock())
    }
}

/// The data plane of a device (the packet-path part of upstream's
/// `struct wg_device`).
#[pin_data]
pub(crate) struct Tunnel {
    /// The device and its sockets, kept alive while we are.
    pub(crate) link: DeviceLink,
    /// Where packets go: the read side of the device's allowed IPs.
    pub(crate) allowedips: Arc<LookupTable<Peer>>,
    /// Identity, index and public-key tables, cookie checker.
    #[pin]
    pub(crate) noise: DeviceNoise<Peer>,
    pub(crate) fwmark: Atomic<u32>,
    /// Packets to encrypt, and the per-CPU workers that do.
    #[pin]
    pub(crate) encrypt_ring: PacketRing<Keypair<Peer>>,
    pub(crate) encrypt_workers: CpuWorkers<EncryptWorker>,
    pub(crate) last_encrypt_cpu: Atomic<i32>,
    /// Packets to decrypt, and their workers.
    #[pin]
    pub(crate) decrypt_ring: PacketRing<Keypair<Peer>>,
    pub(crate) decrypt_workers: CpuWorkers<DecryptWorker>,
    pub(crate) last_decrypt_cpu: Atomic<i32>,
    /// Where decrypted packets are delivered, in order per peer.
    pub(crate) deliveries: KVec<RcuArc<RxDelivery>>,
    /// Incoming handshake messages, and their workers.
    #[pin]
    pub(crate) handshake_ring: SkbRing,
    pub(crate) handshake_workers: CpuWorkers<HandshakeWorker>,
    pub(crate) handshake_queue_len: Atomic<i32>,
    pub(crate) last_handshake_cpu: Atomic<i32>,
    /// When the handshake queue was last seen under load (boot-time ns).
    pub(crate) last_under_load: Atomic<u64>,
    /// Encryption, decryption and in-order transmission.
    pub(crate) crypt_wq: Workqueue,
    /// Incoming handshakes (per CPU) and outgoing ones (unbound).
    pub(crate) handshake_receive_wq: Workqueue,
    pub(crate) handshake_send_wq: Workqueue,
}

impl Tunnel {
    fn new(dev: &NetDevice, link: DeviceLink, allowedips: Arc<LookupTable<Peer>>) -> Result<RcuArc<Tunnel>> {
        let name = dev.name();
        let name = name.as_cstr();
        let deliveries = RxDelivery::for_device(&link)?;
        RcuArc::pin_init(
            try_pin_init!(Tunnel {
                link,
                allowedips,
                noise <- DeviceNoise::new(),
                fwmark: Atomic::new(0),
                encrypt_ring <- PacketRing::new(MAX_QUEUED_PACKETS as u32),
                encrypt_workers: CpuWorkers::new()?,
                last_encrypt_cpu: Atomic::new(-1),
                decrypt_ring <- PacketRing::new(MAX_QUEUED_PACKETS as u32),
                decrypt_workers: CpuWorkers::new()?,
                last_decrypt_cpu: Atomic::new(-1),
                deliveries,
                handshake_ring <- SkbRing::new(MAX_QUEUED_INCOMING_HANDSHAKES as u32),
                handshake_workers: CpuWorkers::new()?,
                handshake_queue_len: Atomic::new(0),
                last_handshake_cpu: Atomic::new(-1),
                last_under_load: Atomic::new(0),
                crypt_wq: Workqueue::new(c"wg-crypt", name, WqFlags::CRYPT)?,
                handshake_receive_wq: Workqueue::new(c"wg-kex", name, WqFlags::CPU_FREEZABLE)?,
                handshake_send_wq: Workqueue::new(c"wg-kex", name, WqFlags::UNBOUND_FREEZABLE)?,
            }),
            GFP_KERNEL,
        )
    }

    pub(crate) fn netdev(&self) -> &NetDevice {
        self.link.netdev()
    }

    pub(crate) fn fwmark(&self) -> u32 {
        self.fwmark.load(Relaxed)
    }
}

impl LinkOps for Device {
    const KIND: &'static CStr = c"wireguard";

    fn kind() -> &'static LinkKind<Self> {
        &LINK_KIND
    }

    fn setup(dev: &mut SetupDevice<'_>) {
        dev.layer3_tunnel::<Self>(FEATURES);
        // As upstream: delivery runs in threads, scheduled like any other.
        dev.threaded_napi();
        let max_mtu = (i32::MAX as usize / MESSAGE_PADDING_MULTIPLE) * MESSAGE_PADDING_MULTIPLE - OVERHEAD;
        dev.set_mtu((ETH_DATA_LEN - OVERHEAD) as u32, max_mtu as u32);
        dev.set_needed_room(
            DATA_PACKET_HEAD_ROOM as u16,
            noise_encrypted_len(MESSAGE_PADDING_MULTIPLE) as u16,
        );
    }

    fn new(dev: &NetDevice, link: DeviceLink) -> impl PinInit<Self, Error> {
        let peers = Peers::new();
        let tunnel = peers
            .as_ref()
            .map_err(|err| *err)
            .and_then(|peers| Tunnel::new(dev, link, peers.allowedips.table().clone()));
        try_pin_init!(Device {
            instance: INSTANCES.fetch_add(1, Relaxed),
            config <- new_mutex!(Config {
                identity: StaticIdentity::new(),
                listen_port: 0,
                peers: peers?,
                generation: 1,
            }),
            tunnel: RcuPtr::new(tunnel?),
        })
    }

    fn registered(&self, dev: &NetDevice) {
        wg_debug!("{}: Interface created\n", dev.name());
    }

    fn destroyed(&self, dev: &NetDevice) {
        let name = dev.name();
        self.config.lock().peers.remove_all();
        // In-flight packets and work hold their own references.
        drop(self.tunnel.replace(None));
        wg_debug!("{}: Interface destroyed\n", name);
    }

    fn open(&self, dev: &NetDevice, net: &TunnelNet, rtnl: &Rtnl) -> Result {
        dev.configure_tunnel_inet(rtnl);
        let mut config = self.config.lock();
        let port = config.listen_port;
        config.bind(dev, net, rtnl, port)?;
        config.peers.for_each(|peer| {
            send::send_staged(peer);
            if peer.persistent_keepalive_interval() != 0 {
                send::send_keepalive(peer);
            }
        });
        Ok(())
    }

    fn stop(&self, _dev: &NetDevice, net: &TunnelNet, rtnl: &Rtnl) {
        let config = self.config.lock();
        config.peers.for_each(|peer| peer.stop());
        drop(config);
        if let Some(tunnel) = self.tunnel() {
            receive::drop_queued_handshakes(&tunnel);
        }
        socket::close(net, rtnl);
    }

    fn xmit(&self, dev: &NetDevice, skb: SkBuff) {
        let guard = rcu::read_lock();
        match self.tunnel.get(&guard) {
            Some(tunnel) => send::xmit(tunnel, skb),
            None => {
                dev.count(Stat::TxErrors, 1);
                drop(skb);
            }
        }
    }

    fn receive(&self, _dev: &NetDevice, skb: SkBuff) {
        let guard = rcu::read_lock();
        if let Some(tunnel) = self.tunnel.get(&guard) {
            receive::receive(tunnel, &self.tunnel, skb);
        }
    }

    fn creating_net_exit(&self, dev: &NetDevice, _rtnl: &Rtnl) {
        wg_debug!("{}: Creating namespace exiting\n", dev.name());
        dev.carrier_off();
        self.config.lock().peers.for_each(|peer| socket::clear_peer_endpoint_src(peer));
    }
}

/// Before the system suspends or hibernates, every session and handshake
/// is forgotten, so that no key lies in memory while it sleeps, unless it
/// sleeps as a matter of course (upstream `wg_pm_notification`).
pub(crate) struct SuspendHandler;

impl EventHandler for SuspendHandler {
    const CHAIN: Chain = Chain::Pm;

    fn notify(event: Event) {
        if notifier::autosleep() || !matches!(event, Event::SuspendPrepare | Event::HibernationPrepare) {
            return;
        }
        let rtnl = RtnlGuard::lock();
        LINK_KIND.for_each(&rtnl, |device, _| device.config.lock().peers.for_each(|peer| peer.forget_keys()));
        drop(rtnl);
        // The keys are zeroed when freed, after a grace period.
        rcu::barrier();
    }
}

/// After a VM fork (or a snapshot restore), two machines hold the same
/// sessions: each peer starts a new handshake before it sends again
/// (upstream `wg_vm_notification`).
pub(crate) struct VmForkHandler;

impl EventHandler for VmForkHandler {
    const CHAIN: Chain = Chain::VmFork;

    fn notify(_event: Event) {
        let rtnl = RtnlGuard::lock();
        LINK_KIND.for_each(&rtnl, |device, _| {
            device.config.lock().peers.for_each(|peer| peer.expire_current_keypairs())
        });
    }
}

pub(crate) static SUSPEND_NOTIFIER: Notifier<SuspendHandler> = Notifier::new();
pub(crate) static VMFORK_NOTIFIER: Notifier<VmForkHandler> = Notifier::new();
