// SPDX-License-Identifier: GPL-2.0

//! Peers (upstream `peer.c`).
//!
//! A [`Peer`] is shared through an `RcuArc`: the allowed-IPs trie, the
//! public-key and index tables, keypairs, packets in flight, armed timers
//! and queued work all hold it. [`Peers`] is the device's configuration
//! view of them, under the device's config mutex: by public key and in
//! creation order (the dump cursor).
//!
//! Removing a peer (upstream `peer_make_dead` and `peer_remove_after_dead`)
//! unlinks it from every lookup, marks it dead, waits for a grace period
//! (after which nothing can arm, queue or key it any more), then clears its
//! keys and stops its timers and work. Packets still in flight keep it
//! until they are done.

use core::ops::ControlFlow;
use crate::allowedips::{AllowedIps, Owner, PeerIps};
use crate::device::Tunnel;
use crate::kapi::crypto::{Secret, KEY_LEN};
use crate::kapi::llist::ListLink;
use crate::kapi::netdev::IfName;
use crate::kapi::queue::OrderedQueue;
use crate::kapi::rcu::{self, RcuArc};
use crate::kapi::skb::SkbQueue;
use crate::kapi::sync::{new_spinlock_bh, SpinLockBh};
use crate::kapi::time;
use crate::kapi::udp::{self, DstCache};
use crate::kapi::work::Work;
use crate::messages::{MAX_QUEUED_PACKETS, REKEY_TIMEOUT};
use crate::noise::{self, DeviceNoise, Keypair, NoisePeer, PeerNoise};
use crate::send::{FastLane, HandshakeSendWork, TxWork};
use crate::timers::{ClearKeysWork, Timers};
use crate::wg_debug;
use kernel::{
    prelude::*,
    rbtree::{RBTree, RBTreeNode},
    sync::atomic::{Atomic, Relaxed},
};

/// Upstream's `MAX_PEERS_PER_DEVICE`.
pub(crate) const MAX_PEERS_PER_DEVICE: usize = 1 << 20;

/// Source of `Peer::internal_id`, shared by all devices as upstream.
static PEER_COUNTER: Atomic<u64> = Atomic::new(0);

const SOCKADDR_IN_LEN: usize = 16;
const SOCKADDR_IN6_LEN: usize = 28;
pub(crate) const AF_INET: u16 = 2;
pub(crate) const AF_INET6: u16 = 10;

/// A peer's endpoint as netlink sees it: the `sockaddr_in` or
/// `sockaddr_in6` as configured (echoed back byte for byte), or as learned
/// from the peer's packets.
#[derive(Clone, Copy)]
pub(crate) enum Sockaddr {
    V4([u8; SOCKADDR_IN_LEN]),
    V6([u8; SOCKADDR_IN6_LEN]),
}

impl Sockaddr {
    /// The longest, `sockaddr_in6`.
    pub(crate) const MAX_LEN: usize = SOCKADDR_IN6_LEN;

    /// Parses a `struct sockaddr_in` or `sockaddr_in6`; anything else
    /// (another length or family) is not an endpoint, and upstream ignores it.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Sockaddr> {
        let family = u16::from_ne_bytes(bytes.get(..2)?.try_into().ok()?);
        match (bytes.len(), family) {
            (SOCKADDR_IN_LEN, AF_INET) => bytes.try_into().ok().map(Sockaddr::V4),
            (SOCKADDR_IN6_LEN, AF_INET6) => bytes.try_into().ok().map(Sockaddr::V6),
            _ => None,
        }
    }

    /// Upstream's `endpoint_eq` (socket.c) on the address: the same family,
    /// port and address, and for IPv6 the same scope id. `sin_zero` and
    /// `sin6_flowinfo` do not count. (Upstream also compares the source
    /// address; that lives in the route, see `PeerEndpoint`.)
    pub(crate) fn same_as(&self, other: &Sockaddr) -> bool {
        match (self, other) {
            // sin_port and sin_addr
            (Sockaddr::V4(a), Sockaddr::V4(b)) => a.get(2..8) == b.get(2..8),
            // sin6_port, then sin6_addr and sin6_scope_id
            (Sockaddr::V6(a), Sockaddr::V6(b)) => {
                a.get(2..4) == b.get(2..4) && a.get(8..28) == b.get(8..28)
            }
            _ => false,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Sockaddr::V4(addr) => addr,
            Sockaddr::V6(addr) => addr,
        }
    }

    /// The endpoint to send to, with no source address yet.
    pub(crate) fn to_endpoint(&self) -> udp::Endpoint {
        let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        let ne32 = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        match self {
            Sockaddr::V4(s) => udp::Endpoint::V4 {
                addr: [s[4], s[5], s[6], s[7]],
                port: be16(&s[2..4]),
                src: [0; 4],
                src_ifindex: 0,
            },
            Sockaddr::V6(s) => {
                let mut addr = [0; 16];
                addr.copy_from_slice(&s[8..24]);
                udp::Endpoint::V6 {
                    addr,
                    port: be16(&s[2..4]),
                    flowinfo: ne32(&s[4..8]),
                    scope_id: ne32(&s[24..28]),
                    src: [0; 16],
                }
            }
        }
    }

    /// The sockaddr of an endpoint learned from a packet (zero padding).
    pub(crate) fn from_endpoint(endpoint: &udp::Endpoint) -> Sockaddr {
        match *endpoint {
            udp::Endpoint::V4 { addr, port, .. } => {
                let mut s = [0; SOCKADDR_IN_LEN];
                s[..2].copy_from_slice(&AF_INET.to_ne_bytes());
                s[2..4].copy_from_slice(&port.to_be_bytes());
                s[4..8].copy_from_slice(&addr);
                Sockaddr::V4(s)
            }
            udp::Endpoint::V6 { addr, port, flowinfo, scope_id, .. } => {
                let mut s = [0; SOCKADDR_IN6_LEN];
                s[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
                s[2..4].copy_from_slice(&port.to_be_bytes());
                s[4..8].copy_from_slice(&flowinfo.to_ne_bytes());
                s[8..24].copy_from_slice(&addr);
                s[24..28].copy_from_slice(&scope_id.to_ne_bytes());
                Sockaddr::V6(s)
            }
        }
    }
}

/// Where a peer is, under the peer's endpoint lock.
pub(crate) struct PeerEndpoint {
    /// As netlink shows it.
    pub(crate) sockaddr: Option<Sockaddr>,
    /// As packets are sent to it (with the sticky source address).
    pub(crate) route: Option<udp::Endpoint>,
}

/// A peer of a device.
#[pin_data]
pub(crate) struct Peer {
    pub(crate) tunnel: RcuArc<Tunnel>,
    pub(crate) public_key: [u8; KEY_LEN],
    /// For debug lines (upstream's `internal_id`).
    pub(crate) internal_id: u64,
    #[pin]
    pub(crate) noise: PeerNoise<Peer>,
    /// Set when the peer is removed; read under RCU (see the module docs).
    dead: Atomic<bool>,
    /// Packets waiting for a session (at most `MAX_STAGED_PACKETS`).
    #[pin]
    pub(crate) staged: SpinLockBh<SkbQueue>,
    /// Lets small packets of quiet flows overtake the queue (`send`).
    #[pin]
    pub(crate) fast_lane: FastLane,
    /// Packets being encrypted, in the order they are to be sent.
    #[pin]
    pub(crate) tx_queue: OrderedQueue<Keypair<Peer>>,
    /// Packets being decrypted, in the order they arrived.
    #[pin]
    pub(crate) rx_queue: OrderedQueue<Keypair<Peer>>,
    #[pin]
    pub(crate) endpoint: SpinLockBh<PeerEndpoint>,
    #[pin]
    pub(crate) dst_cache: DstCache,
    /// When we last sent a handshake message (boot-time ns).
    pub(crate) last_sent_handshake: Atomic<u64>,
    /// The CPU that sends this peer's packets, in order.
    pub(crate) serial_cpu: Atomic<i32>,
    #[pin]
    pub(crate) tx_work: Work<TxWork>,
    #[pin]
    pub(crate) handshake_work: Work<HandshakeSendWork>,
    #[pin]
    pub(crate) clear_keys_work: Work<ClearKeysWork>,
    #[pin]
    pub(crate) timers: Timers,
    persistent_keepalive_interval: Atomic<u32>,
    pub(crate) rx_bytes: Atomic<u64>,
    pub(crate) tx_bytes: Atomic<u64>,
    /// Wall time of the last completed handshake, in nanoseconds since the
    /// epoch (0: none yet). One word, so that readers need no lock.
    pub(crate) last_handshake: Atomic<i64>,
    /// Queues the peer on its device's delivery context (`receive`).
    delivery_link: ListLink,
}

crate::impl_listed!(Peer, delivery_link);

impl Owner for Peer {
    fn owner_id(&self) -> u64 {
        self.internal_id
    }
}

impl NoisePeer for Peer {
    fn noise(&self) -> &PeerNoise<Self> {
        &self.noise
    }

    fn device_noise(&self) -> &DeviceNoise<Self> {
        &self.tunnel.noise
    }

    fn internal_id(&self) -> u64 {
        self.internal_id
    }

    fn dev_name(&self) -> impl kernel::fmt::Display + '_ {
        self.tunnel.netdev().name()
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }
}

impl Peer {
    fn new<'a>(
        tunnel: &'a RcuArc<Tunnel>,
        remote_static: [u8; KEY_LEN],
        preshared_key: Option<&'a Secret<KEY_LEN>>,
    ) -> impl PinInit<Self, Error> + 'a {
        let public_key = remote_static;
        try_pin_init!(Peer {
            tunnel: tunnel.clone(),
            public_key,
            internal_id: PEER_COUNTER.fetch_add(1, Relaxed) + 1,
            noise <- PeerNoise::new(remote_static, preshared_key),
            dead: Atomic::new(false),
            staged <- new_spinlock_bh!(SkbQueue::new()),
            fast_lane <- FastLane::new(),
            tx_queue <- OrderedQueue::new(MAX_QUEUED_PACKETS as i32),
            rx_queue <- OrderedQueue::new(MAX_QUEUED_PACKETS as i32),
            endpoint <- new_spinlock_bh!(PeerEndpoint { sockaddr: None, route: None }),
            dst_cache <- DstCache::new(),
            last_sent_handshake: Atomic::new(handshake_long_ago()),
            serial_cpu: Atomic::new(-1),
            tx_work <- Work::new(),
            handshake_work <- Work::new(),
            clear_keys_work <- Work::new(),
            timers <- Timers::new(),
            persistent_keepalive_interval: Atomic::new(0),
            rx_bytes: Atomic::new(0),
            tx_bytes: Atomic::new(0),
            last_handshake: Atomic::new(0),
            delivery_link: ListLink::new(),
        })
    }

    pub(crate) fn persistent_keepalive_interval(&self) -> u16 {
        self.persistent_keepalive_interval.load(Relaxed) as u16
    }

    pub(crate) fn set_persistent_keepalive_interval(&self, interval: u16) {
        self.persistent_keepalive_interval.store(u32::from(interval), Relaxed);
    }

    /// Forgets the last handshake sent, so that the next may go at once
    /// (upstream `wg_noise_reset_last_sent_handshake`).
    /// Makes the next packet start a handshake: no sending with the
    /// current keys, and no handshake rate limit (upstream
    /// `wg_noise_expire_current_peer_keypairs`).
    pub(crate) fn expire_current_keypairs(&self) {
        noise::expire_current_keypairs(self);
        self.reset_last_sent_handshake();
    }

    /// Forgets every key and handshake before the system sleeps (upstream
    /// `wg_pm_notification`).
    pub(crate) fn forget_keys(&self) {
        self.timers.stop_zeroing_keys();
        noise::handshake_clear(self);
        self.noise.keypairs.clear();
    }

    pub(crate) fn reset_last_sent_handshake(&self) {
        self.last_sent_handshake.store(handshake_long_ago(), Relaxed);
    }

    /// Drops the packets waiting for a session, counting them.
    pub(crate) fn purge_staged(&self) {
        let purged = core::mem::replace(&mut *self.staged.lock(), SkbQueue::new());
        self.tunnel.netdev().count(crate::kapi::netdev::Stat::TxDropped, purged.len() as u64);
    }

    /// The device went down (upstream `wg_stop`, per peer).
    pub(crate) fn stop(&self) {
        self.purge_staged();
        self.timers.stop();
        noise::handshake_clear(self);
        self.noise.keypairs.clear();
        self.reset_last_sent_handshake();
    }
}

/// A boot time far enough back for any handshake to be due.
fn handshake_long_ago() -> u64 {
    time::coarse_boottime_ns().wrapping_sub((REKEY_TIMEOUT + 1) * time::NSEC_PER_SEC)
}

/// The peers of a device, by public key and in creation order, with their
/// allowed IPs; under the device's config mutex.
pub(crate) struct Peers {
    /// Public key to position in `by_order`.
    by_key: RBTree<[u8; KEY_LEN], u64>,
    /// By position: the peer's `internal_id`, which grows with every peer
    /// created and is never reused, so this is creation order, for dumps
    /// that resume where they left. Allowed IPs know peers by it too.
    by_order: RBTree<u64, RcuArc<Peer>>,
    len: usize,
    pub(crate) allowedips: AllowedIps<Peer>,
}

impl Peers {
    pub(crate) fn new() -> Result<Self> {
        Ok(Peers {
            by_key: RBTree::new(),
            by_order: RBTree::new(),
            len: 0,
            allowedips: AllowedIps::new()?,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The position of the peer with `public_key`.
    pub(crate) fn find(&self, public_key: &[u8; KEY_LEN]) -> Option<u64> {
        self.by_key.get(public_key).copied()
    }

    pub(crate) fn get(&self, order: u64) -> Option<&RcuArc<Peer>> {
        self.by_order.get(&order)
    }

    /// The position of the oldest peer.
    fn first(&self) -> Option<u64> {
        self.by_order.iter().next().map(|(&order, _)| order)
    }

    /// Calls `f` with each peer at or after position `order`, in order, its
    /// position and its allowed IPs, until `f` breaks. Two tree searches in
    /// all, then steps (a dump message's walk).
    pub(crate) fn walk_from(
        &mut self,
        order: u64,
        mut f: impl FnMut(u64, &RcuArc<Peer>, PeerIps<'_>) -> ControlFlow<()>,
    ) {
        let mut allowedips = self.allowedips.walk(order);
        let mut cursor = self.by_order.cursor_lower_bound_mut(&order);
        while let Some(at) = cursor {
            let (&order, peer) = at.current();
            if f(order, peer, allowedips.of(&**peer)).is_break() {
                return;
            }
            cursor = at.move_next();
        }
    }

    /// Every peer, in creation order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&RcuArc<Peer>)) {
        for (_, peer) in self.by_order.iter() {
            f(peer);
        }
    }

    /// Adds a peer of `tunnel`; returns its position.
    pub(crate) fn create(
        &mut self,
        tunnel: &RcuArc<Tunnel>,
        dev: &IfName,
        public_key: [u8; KEY_LEN],
        preshared_key: Option<&Secret<KEY_LEN>>,
    ) -> Result<u64> {
        if self.len >= MAX_PEERS_PER_DEVICE {
            return Err(ENOMEM);
        }
        // Allocate everything before touching any table.
        let peer = RcuArc::pin_init(Peer::new(tunnel, public_key, preshared_key), GFP_KERNEL)?;
        let order = peer.internal_id;
        let key_node = RBTreeNode::new(public_key, order, GFP_KERNEL)?;
        let order_node = RBTreeNode::new(order, peer.clone(), GFP_KERNEL)?;
        tunnel.noise.peers.insert(&peer)?;
        self.by_key.insert(key_node);
        self.by_order.insert(order_node);
        self.len += 1;
        wg_debug!("{}: Peer {} created\n", dev, peer.internal_id);
        Ok(order)
    }

    /// Unlinks the peer at `order` from every lookup and marks it dead; the
    /// caller waits for a grace period, then calls [`remove_after_dead`].
    fn make_dead(&mut self, order: u64) -> Option<RcuArc<Peer>> {
        let peer = self.by_order.remove(&order)?;
        self.allowedips.remove_by_peer(&peer);
        self.by_key.remove(&peer.public_key);
        peer.tunnel.noise.peers.remove(&peer);
        self.len -= 1;
        peer.dead.store(true, Relaxed);
        Some(peer)
    }

    /// Removes the peer at position `order`. May sleep.
    pub(crate) fn remove(&mut self, order: u64) {
        if let Some(peer) = self.make_dead(order) {
            rcu::synchronize_net();
            remove_after_dead(&peer);
        }
    }

    /// Removes every peer, with one grace period for all (one each,
    /// should there be no memory to list them). May sleep.
    pub(crate) fn remove_all(&mut self) {
        let Ok(mut dead) = KVec::with_capacity(self.len, GFP_KERNEL) else {
            while let Some(order) = self.first() {
                self.remove(order);
            }
            return;
        };
        while let Some(order) = self.first() {
            if let Some(peer) = self.make_dead(order) {
                // Within the capacity reserved above: cannot fail.
                let _ = dead.push_within_capacity(peer);
            }
        }
        rcu::synchronize_net();
        for peer in &dead {
            remove_after_dead(peer);
        }
    }
}

/// The second half of removing a dead peer, after a grace period: nothing
/// can key it, arm its timers or queue its work any more, so clear and
/// stop what is there. Packets in flight finish and let go of it.
fn remove_after_dead(peer: &RcuArc<Peer>) {
    wg_debug!("{}: Peer {} destroyed\n", peer.tunnel.netdev().name(), peer.internal_id);
    peer.noise.keypairs.clear();
    noise::handshake_clear(&**peer);
    peer.timers.stop();
    peer.handshake_work.cancel_sync();
    peer.clear_keys_work.cancel_sync();
    peer.purge_staged();
}
