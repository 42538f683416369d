// SPDX-License-Identifier: GPL-2.0

//! The WireGuard network device: link kind "wireguard" (upstream `device.c`).

use crate::kapi::netdev::{
    Features, IfName, LinkKind, LinkOps, NetDevice, SetupDevice, SkBuff, NET_SKB_PAD,
};
use crate::kapi::sync::Rtnl;
use crate::kapi::udp::TunnelNet;
use crate::messages::{
    noise_encrypted_len, MESSAGE_DATA_HEADER_LEN, MESSAGE_MINIMUM_LENGTH, MESSAGE_PADDING_MULTIPLE,
};
use crate::noise::StaticIdentity;
use crate::peer::Peers;
use crate::socket;
use crate::wg_debug;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Mutex,
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

/// Room in front of a packet for the outer IP, UDP and data headers.
const DATA_PACKET_HEAD_ROOM: usize =
    (MESSAGE_DATA_HEADER_LEN + max(IPV4_HEADER_LEN, IPV6_HEADER_LEN) + UDP_HEADER_LEN + NET_SKB_PAD)
        .next_multiple_of(4);

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
}

/// What `wg set` configures on the interface itself.
pub(crate) struct Config {
    pub(crate) identity: StaticIdentity,
    /// The configured port, or once up the bound one (random for 0).
    pub(crate) listen_port: u16,
    pub(crate) fwmark: u32,
    pub(crate) peers: Peers,
    /// Bumped on every change, so that a dump spanning one is flagged.
    pub(crate) generation: u32,
}

impl Config {
    /// (Re)binds the sockets to `port` in the creating namespace (gone:
    /// `ENONET`). The old sockets stay until the new ones are bound.
    pub(crate) fn bind(&mut self, dev: &IfName, net: &TunnelNet, rtnl: &Rtnl, port: u16) -> Result {
        self.listen_port = socket::bind(net, dev, rtnl, port)?;
        Ok(())
    }
}

impl LinkOps for Device {
    const KIND: &'static CStr = c"wireguard";

    fn kind() -> &'static LinkKind<Self> {
        &LINK_KIND
    }

    fn setup(dev: &mut SetupDevice<'_>) {
        dev.layer3_tunnel::<Self>(FEATURES);
        let max_mtu = (i32::MAX as usize / MESSAGE_PADDING_MULTIPLE) * MESSAGE_PADDING_MULTIPLE - OVERHEAD;
        dev.set_mtu((ETH_DATA_LEN - OVERHEAD) as u32, max_mtu as u32);
        dev.set_needed_room(
            DATA_PACKET_HEAD_ROOM as u16,
            noise_encrypted_len(MESSAGE_PADDING_MULTIPLE) as u16,
        );
    }

    fn new(_dev: &NetDevice) -> impl PinInit<Self, Error> {
        try_pin_init!(Device {
            instance: INSTANCES.fetch_add(1, Relaxed),
            config <- new_mutex!(Config {
                identity: StaticIdentity::new(),
                listen_port: 0,
                fwmark: 0,
                peers: Peers::new()?,
                generation: 1,
            }),
        })
    }

    fn registered(&self, dev: &NetDevice) {
        wg_debug!("{}: Interface created\n", dev.name());
    }

    fn destroyed(&self, dev: &NetDevice) {
        let name = dev.name();
        self.config.lock().peers.remove_all(&name);
        wg_debug!("{}: Interface destroyed\n", name);
    }

    fn open(&self, dev: &NetDevice, net: &TunnelNet, rtnl: &Rtnl) -> Result {
        dev.configure_tunnel_inet(rtnl);
        let mut config = self.config.lock();
        let port = config.listen_port;
        config.bind(&dev.name(), net, rtnl, port)
    }

    fn stop(&self, _dev: &NetDevice, net: &TunnelNet, rtnl: &Rtnl) {
        socket::close(net, rtnl);
    }

    fn xmit(&self, dev: &NetDevice, skb: SkBuff) {
        // Nothing sends yet: the data plane is not built.
        dev.count_tx_error();
        drop(skb);
    }

    fn creating_net_exit(&self, dev: &NetDevice, _rtnl: &Rtnl) {
        wg_debug!("{}: Creating namespace exiting\n", dev.name());
    }
}
