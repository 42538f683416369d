// SPDX-License-Identifier: GPL-2.0

//! Peers of a device (upstream `peer.c` and `peerlookup.c`).

use crate::allowedips::AllowedIps;
use crate::kapi::crypto::{Secret, KEY_LEN};
use crate::kapi::netdev::IfName;
use crate::kapi::rcu::RcuArc;
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

/// A peer's endpoint: the `sockaddr_in` or `sockaddr_in6` as configured.
#[derive(Clone, Copy)]
pub(crate) enum Endpoint {
    V4([u8; SOCKADDR_IN_LEN]),
    V6([u8; SOCKADDR_IN6_LEN]),
}

const SOCKADDR_IN_LEN: usize = 16;
const SOCKADDR_IN6_LEN: usize = 28;
pub(crate) const AF_INET: u16 = 2;
pub(crate) const AF_INET6: u16 = 10;

impl Endpoint {
    /// Parses a `struct sockaddr_in` or `sockaddr_in6`; anything else
    /// (another length or family) is not an endpoint, and upstream ignores it.
    pub(crate) fn from_sockaddr(bytes: &[u8]) -> Option<Endpoint> {
        let family = u16::from_ne_bytes(bytes.get(..2)?.try_into().ok()?);
        match (bytes.len(), family) {
            (SOCKADDR_IN_LEN, AF_INET) => bytes.try_into().ok().map(Endpoint::V4),
            (SOCKADDR_IN6_LEN, AF_INET6) => bytes.try_into().ok().map(Endpoint::V6),
            _ => None,
        }
    }

    /// Upstream's `endpoint_eq` (socket.c): the same family, port and
    /// address, and for IPv6 the same scope id. `sin_zero` and
    /// `sin6_flowinfo` do not count, so setting an endpoint that is equal in
    /// these terms keeps the bytes stored before. (Upstream also compares
    /// the cached source address, which only its data plane fills in: for
    /// an endpoint set over netlink it is zero, as ours always is.)
    pub(crate) fn same_as(&self, other: &Endpoint) -> bool {
        match (self, other) {
            // sin_port and sin_addr
            (Endpoint::V4(a), Endpoint::V4(b)) => a.get(2..8) == b.get(2..8),
            // sin6_port, then sin6_addr and sin6_scope_id
            (Endpoint::V6(a), Endpoint::V6(b)) => {
                a.get(2..4) == b.get(2..4) && a.get(8..28) == b.get(8..28)
            }
            _ => false,
        }
    }

    pub(crate) fn as_sockaddr(&self) -> &[u8] {
        match self {
            Endpoint::V4(addr) => addr,
            Endpoint::V6(addr) => addr,
        }
    }
}

/// A peer as packets will find it (through the allowed IPs): shared, and
/// freed an RCU grace period after its last reference goes.
pub(crate) struct Peer {
    pub(crate) public_key: [u8; KEY_LEN],
    /// For debug lines only (upstream's `internal_id`).
    pub(crate) internal_id: u64,
}

/// What `wg set` configures on a peer; under the device's config lock.
pub(crate) struct PeerConfig {
    pub(crate) peer: RcuArc<Peer>,
    pub(crate) preshared_key: Secret<KEY_LEN>,
    pub(crate) endpoint: Option<Endpoint>,
    pub(crate) persistent_keepalive_interval: u16,
    pub(crate) rx_bytes: u64,
    pub(crate) tx_bytes: u64,
    /// Wall time of the last handshake, as (seconds, nanoseconds).
    pub(crate) last_handshake: (i64, i64),
}

/// The peers of a device, by public key and in creation order, with their
/// allowed IPs.
pub(crate) struct Peers {
    /// Public key to position in `by_order`.
    by_key: RBTree<[u8; KEY_LEN], u64>,
    /// Creation order (never reused), for dumps that resume where they left.
    by_order: RBTree<u64, PeerConfig>,
    next_order: u64,
    len: usize,
    pub(crate) allowedips: AllowedIps<Peer>,
}

impl Peers {
    pub(crate) fn new() -> Result<Self> {
        Ok(Peers {
            by_key: RBTree::new(),
            by_order: RBTree::new(),
            next_order: 0,
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

    pub(crate) fn get_mut(&mut self, order: u64) -> Option<&mut PeerConfig> {
        self.by_order.get_mut(&order)
    }

    /// The first peer at or after position `order`, with its position.
    pub(crate) fn at_or_after(&self, order: u64) -> Option<(u64, &PeerConfig)> {
        let order = *self.by_order.cursor_lower_bound(&order)?.current().0;
        Some((order, self.by_order.get(&order)?))
    }

    /// Adds a peer; returns its position.
    pub(crate) fn create(
        &mut self,
        dev: &IfName,
        public_key: [u8; KEY_LEN],
        preshared_key: Option<Secret<KEY_LEN>>,
    ) -> Result<u64> {
        if self.len >= MAX_PEERS_PER_DEVICE {
            return Err(ENOMEM);
        }
        let order = self.next_order;
        let internal_id = PEER_COUNTER.fetch_add(1, Relaxed) + 1;
        let peer = PeerConfig {
            peer: RcuArc::new(Peer { public_key, internal_id }, GFP_KERNEL)?,
            preshared_key: preshared_key.unwrap_or_else(Secret::zeroed),
            endpoint: None,
            persistent_keepalive_interval: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            last_handshake: (0, 0),
        };
        // Allocate both index nodes before touching either tree.
        let key_node = RBTreeNode::new(public_key, order, GFP_KERNEL)?;
        let order_node = RBTreeNode::new(order, peer, GFP_KERNEL)?;
        self.by_key.insert(key_node);
        self.by_order.insert(order_node);
        self.next_order += 1;
        self.len += 1;
        wg_debug!("{}: Peer {} created\n", dev, internal_id);
        Ok(order)
    }

    /// Removes the peer at position `order`.
    pub(crate) fn remove(&mut self, dev: &IfName, order: u64) {
        if let Some(config) = self.by_order.remove(&order) {
            self.allowedips.remove_by_peer(&config.peer);
            self.by_key.remove(&config.peer.public_key);
            self.len -= 1;
            wg_debug!("{}: Peer {} destroyed\n", dev, config.peer.internal_id);
        }
    }

    pub(crate) fn remove_all(&mut self, dev: &IfName) {
        while let Some((order, _)) = self.at_or_after(0) {
            self.remove(dev, order);
        }
    }
}
