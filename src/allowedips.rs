// SPDX-License-Identifier: GPL-2.0

//! The allowed-IPs table (upstream `allowedips.c`): which peer a packet to
//! or from an address belongs to, by longest-prefix match.
//!
//! One compressed binary (PATRICIA) trie per address family, as upstream.
//! Each node is a prefix; it carries a peer when the prefix is an allowed IP
//! and none when it only joins two subtrees that differ at bit `cidr`. The
//! children of a node have longer prefixes that extend it; which child
//! depends on the bit right after the node's prefix.
//!
//! Concurrency: lookups run lock-free under RCU ([`LookupTable::lookup`]),
//! from any context, on the [`LookupTable`] shared with the data plane.
//! Updates go through the [`AllowedIps`] that owns it, with `&mut`: its owner
//! serialises them (upstream's `device_update_lock`). Nodes and peers are
//! [`RcuArc`]s linked by [`RcuPtr`] slots: an update publishes fully built
//! nodes, and what it unlinks is freed a grace period after the last
//! reference goes, so readers always see a consistent trie.
//!
//! Every update allocates what it needs before it touches the trie, so it
//! either happens whole or fails with `ENOMEM` and changes nothing.
//!
//! Per-peer bookkeeping (upstream's `peer->allowedips_list`) lives in the
//! writer side: a map from each peer's [`Owner::owner_id`] to its prefixes
//! in insertion order, so that [`AllowedIps::remove_by_peer`] and
//! [`AllowedIps::peer_allowedips`] cost what the peer has, not what the
//! table has. Owner ids also order the map, so that a walk over peers in
//! that order finds each one's prefixes a step at a time ([`PeerWalk`]),
//! not by a search from the top.
//!
//! Dumps: a netlink dump lists a peer's allowed IPs with
//! [`PeerIps::from`]`(cursor)`, starting at [`Cursor::START`]; each item
//! comes with its own cursor, which the dump
//! keeps when the message is full and resumes from in the next one, under
//! the same lock as the updates. A cursor is a position in the peer's
//! insertion order, not a pointer, so it stays valid whatever happens in
//! between; to tell whether something did, the dump records
//! [`AllowedIps::seq`] at its first item and compares on resuming (as
//! upstream does with `allowedips.seq`).

use crate::kapi::rcu::{self, Guard, RcuArc, RcuPtr};
use kernel::{
    prelude::*,
    rbtree::{self, CursorMut, RBTree, RBTreeNodeReservation},
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
};

pub(crate) use crate::kapi::skb::IpAddr;

/// An allowed IP: an address with its host bits cleared, and a prefix
/// length (at most 32 or 128).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AllowedIp {
    V4([u8; 4], u8),
    V6([u8; 16], u8),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    V4,
    V6,
}

impl Family {
    /// Address length in bits.
    const fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// Addresses are keys left-aligned in a `u128`: bit 0 of the address (the
/// most significant bit of its first byte) is bit 127 of the key, whatever
/// the family, so that one set of bit operations serves both tries.
fn key_of(addr: IpAddr) -> (Family, u128) {
    match addr {
        IpAddr::V4(ip) => (Family::V4, u128::from(u32::from_be_bytes(ip)) << 96),
        IpAddr::V6(ip) => (Family::V6, u128::from_be_bytes(ip)),
    }
}

impl AllowedIp {
    fn new(family: Family, key: u128, cidr: u8) -> Self {
        match family {
            // Truncation keeps the 32 address bits, now the low ones.
            Family::V4 => AllowedIp::V4(((key >> 96) as u32).to_be_bytes(), cidr),
            Family::V6 => AllowedIp::V6(key.to_be_bytes(), cidr),
        }
    }

    fn parts(&self) -> (Family, u128, u8) {
        match *self {
            AllowedIp::V4(ip, cidr) => (Family::V4, key_of(IpAddr::V4(ip)).1, cidr),
            AllowedIp::V6(ip, cidr) => (Family::V6, key_of(IpAddr::V6(ip)).1, cidr),
        }
    }
}

/// The key bits covered by a prefix of length `cidr`.
fn mask(cidr: u8) -> u128 {
    u128::MAX.checked_shl(128u32.saturating_sub(u32::from(cidr))).unwrap_or(0)
}

/// How many leading bits `a` and `b` share (0 to 128).
fn common_bits(a: u128, b: u128) -> u8 {
    // At most 128: fits.
    (a ^ b).leading_zeros() as u8
}

/// Bit `pos` of `key`, counted from the most significant (`pos` < 128).
fn bit_at(key: u128, pos: u8) -> bool {
    key.checked_shr(127u32.saturating_sub(u32::from(pos))).unwrap_or(0) & 1 == 1
}

/// Longest possible path in a trie: one node per prefix length, 0 to 128.
/// Walks stop after this many steps, whatever the trie looks like.
const MAX_DEPTH: usize = 129;

/// A trie node.
struct Node<P: Send + Sync> {
    /// The peer this prefix is allowed for, or none for a branching node.
    peer: RcuPtr<P>,
    /// Subtrees whose bit `cidr` is 0 and 1.
    bit: [RcuPtr<Node<P>>; 2],
    /// The prefix, host bits clear.
    key: u128,
    cidr: u8,
    /// Writer side only: where this prefix is in its peer's insertion order.
    stamp: Atomic<u64>,
}

impl<P: Send + Sync> Node<P> {
    fn new(key: u128, cidr: u8, peer: Option<RcuArc<P>>, stamp: u64) -> Result<RcuArc<Self>> {
        let node = Node {
            peer: RcuPtr::null(),
            bit: [RcuPtr::null(), RcuPtr::null()],
            key: key & mask(cidr),
            cidr,
            stamp: Atomic::new(stamp),
        };
        // Not published yet: the slot simply takes the reference.
        drop(node.peer.replace(peer));
        Ok(RcuArc::new(node, GFP_KERNEL)?)
    }

    /// Whether `key` is within this node's prefix.
    fn matches(&self, key: u128) -> bool {
        common_bits(self.key, key) >= self.cidr
    }

    /// The child slot on `key`'s side.
    fn child(&self, key: u128) -> &RcuPtr<Node<P>> {
        if bit_at(key, self.cidr) {
            &self.bit[1]
        } else {
            &self.bit[0]
        }
    }
}

/// Where a prefix is, or would go, in a trie.
struct Place<'a, P: Send + Sync> {
    /// The slot the walk stopped at: the node with the prefix, or where a
    /// node for it belongs (the root, or a child slot of `parent`).
    slot: &'a RcuPtr<Node<P>>,
    /// The node whose child slot `slot` is, and that node's own slot.
    parent: Option<(&'a Node<P>, &'a RcuPtr<Node<P>>)>,
    /// The node with exactly this prefix, if there is one.
    exact: Option<&'a Node<P>>,
}

/// Walks down from `root` along `key` while nodes are prefixes of
/// `key/cidr` (upstream `node_placement`).
fn place<'a, P: Send + Sync>(
    root: &'a RcuPtr<Node<P>>,
    guard: &'a Guard,
    key: u128,
    cidr: u8,
) -> Place<'a, P> {
    let mut place = Place { slot: root, parent: None, exact: None };
    for _ in 0..MAX_DEPTH {
        let Some(node) = place.slot.get(guard) else { break };
        if node.cidr > cidr || !node.matches(key) {
            break;
        }
        if node.cidr == cidr {
            place.exact = Some(node);
            break;
        }
        place.parent = Some((node, place.slot));
        place.slot = node.child(key);
    }
    place
}

/// The read side: what the data plane consults for every packet.
pub(crate) struct LookupTable<P: Send + Sync> {
    root4: RcuPtr<Node<P>>,
    root6: RcuPtr<Node<P>>,
}

impl<P: Send + Sync> LookupTable<P> {
    fn root(&self, family: Family) -> &RcuPtr<Node<P>> {
        match family {
            Family::V4 => &self.root4,
            Family::V6 => &self.root6,
        }
    }

    /// The node of the longest prefix with a peer that contains `addr`
    /// (upstream `find_node`).
    fn find<'g>(&self, guard: &'g Guard, addr: IpAddr) -> Option<&'g Node<P>> {
        let (family, key) = key_of(addr);
        let mut node = self.root(family).get(guard);
        let mut found = None;
        for _ in 0..MAX_DEPTH {
            let Some(n) = node.filter(|n| n.matches(key)) else { break };
            if !n.peer.is_null() {
                found = Some(n);
            }
            if n.cidr >= family.bits() {
                break;
            }
            node = n.child(key).get(guard);
        }
        found
    }

    /// The peer `addr` belongs to, valid for the read-side critical section.
    pub(crate) fn lookup<'g>(&self, guard: &'g Guard, addr: IpAddr) -> Option<&'g P> {
        self.find(guard, addr)?.peer.get(guard)
    }

    /// The peer `addr` belongs to, as a counted reference that outlives the
    /// lookup (upstream `wg_allowedips_lookup_dst/src`).
    pub(crate) fn lookup_peer(&self, addr: IpAddr) -> Option<RcuArc<P>> {
        let guard = rcu::read_lock();
        loop {
            let node = self.find(&guard, addr)?;
            if let Some(peer) = node.peer.get_arc(&guard) {
                return Some(peer);
            }
            if node.peer.is_null() {
                return None;
            }
            // The peer was replaced and its last reference dropped since we
            // found it: look again (upstream's `goto retry`).
        }
    }

    /// Whether both tries are empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.root4.is_null() && self.root6.is_null()
    }
}

/// A position in a peer's allowed IPs, in insertion order, from which
/// [`AllowedIps::peer_allowedips`] resumes. It names no memory: resuming
/// after any change is safe, and [`AllowedIps::seq`] tells whether there was
/// one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Cursor(u64);

impl Cursor {
    /// The first allowed IP.
    pub(crate) const START: Cursor = Cursor(0);
}

/// What the table knows a peer by.
pub(crate) trait Owner: Send + Sync {
    /// Unique among the peers of one table, and never reused while the
    /// peer has prefixes; walks by [`PeerWalk`] go in its order.
    fn owner_id(&self) -> u64;
}

/// One peer's prefixes, by insertion stamp.
struct PeerEntry {
    order: RBTree<u64, AllowedIp>,
}

/// The allowed IPs of a device: the writer side, which owns the tries and
/// the per-peer bookkeeping. Its owner serialises all calls (they take
/// `&mut self`); lookups go through [`AllowedIps::table`].
pub(crate) struct AllowedIps<P: Send + Sync> {
    table: Arc<LookupTable<P>>,
    book: Book,
}

/// Writer-side bookkeeping.
struct Book {
    /// Every peer with prefixes, by owner id.
    peers: RBTree<u64, PeerEntry>,
    /// Bumped on every update (upstream `allowedips.seq`).
    seq: u64,
    /// The next insertion stamp; stamps start at 1, after `Cursor::START`.
    next_stamp: u64,
}

/// Memory for the bookkeeping of one new prefix, allocated up front.
struct BookReservation {
    order: RBTreeNodeReservation<u64, AllowedIp>,
    /// For a peer without prefixes yet.
    peer: Option<RBTreeNodeReservation<u64, PeerEntry>>,
}

impl Book {
    fn reserve(&self, id: u64) -> Result<BookReservation> {
        let order = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let peer = match self.peers.get(&id) {
            Some(_) => None,
            None => Some(RBTreeNodeReservation::new(GFP_KERNEL)?),
        };
        Ok(BookReservation { order, peer })
    }

    fn next_stamp(&mut self) -> u64 {
        let stamp = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        stamp
    }

    /// Appends `ip` to the peer's insertion order.
    fn link(&mut self, id: u64, stamp: u64, ip: AllowedIp, memory: BookReservation) {
        if let Some(node) = memory.peer {
            if self.peers.get(&id).is_none() {
                drop(self.peers.insert(node.into_node(id, PeerEntry { order: RBTree::new() })));
            }
        }
        if let Some(entry) = self.peers.get_mut(&id) {
            drop(entry.order.insert(memory.order.into_node(stamp, ip)));
        }
    }

    /// Drops stamp `stamp` from the peer's insertion order, and the peer once
    /// it has none left.
    fn unlink(&mut self, id: u64, stamp: u64) {
        let Some(entry) = self.peers.get_mut(&id) else { return };
        let _ = entry.order.remove(&stamp);
        if entry.order.is_empty() {
            drop(self.peers.remove(&id));
        }
    }
}

/// Unlinks `node`, found at `place`, from the trie (upstream `remove_node`).
/// The caller has dropped it from the bookkeeping.
fn remove_node<P: Send + Sync>(guard: &Guard, node: &Node<P>, place: &Place<'_, P>) {
    drop(node.peer.replace(None));
    let (left, right) = (!node.bit[0].is_null(), !node.bit[1].is_null());
    if left && right {
        // Still needed to branch.
        return;
    }
    let child = if left {
        node.bit[0].get_arc(guard)
    } else if right {
        node.bit[1].get_arc(guard)
    } else {
        None
    };
    // Readers on `node` still follow its slots, which keep the child alive
    // until `node` is freed.
    drop(place.slot.replace(child));
    if left || right {
        return;
    }
    // A leaf is gone; a parent that only branched has one child left and is
    // replaced by it.
    let Some((parent, parent_slot)) = place.parent else { return };
    if !parent.peer.is_null() {
        return;
    }
    let sibling = if parent.bit[0].is_null() { &parent.bit[1] } else { &parent.bit[0] };
    drop(parent_slot.replace(sibling.get_arc(guard)));
}

impl<P: Owner> AllowedIps<P> {
    pub(crate) fn new() -> Result<Self> {
        let table =
            Arc::new(LookupTable { root4: RcuPtr::null(), root6: RcuPtr::null() }, GFP_KERNEL)?;
        Ok(AllowedIps { table, book: Book { peers: RBTree::new(), seq: 1, next_stamp: 1 } })
    }

    /// The read side, to share with the data plane.
    pub(crate) fn table(&self) -> &Arc<LookupTable<P>> {
        &self.table
    }

    /// Bumped on every change; a dump that sees it change was interrupted.
    pub(crate) fn seq(&self) -> u64 {
        self.book.seq
    }

    /// Allows `ip/cidr` (host bits ignored) for `peer`; a prefix that is
    /// already there moves to `peer` (and to the end of its list).
    pub(crate) fn insert_v4(&mut self, ip: [u8; 4], cidr: u8, peer: &RcuArc<P>) -> Result {
        self.insert(IpAddr::V4(ip), cidr, peer)
    }

    /// As [`AllowedIps::insert_v4`].
    pub(crate) fn insert_v6(&mut self, ip: [u8; 16], cidr: u8, peer: &RcuArc<P>) -> Result {
        self.insert(IpAddr::V6(ip), cidr, peer)
    }

    /// Removes `ip/cidr` if, and only if, it is allowed for `peer`; anything
    /// else (no such prefix, another peer's) succeeds and changes nothing
    /// (`WGALLOWEDIP_F_REMOVE_ME`).
    pub(crate) fn remove_v4(&mut self, ip: [u8; 4], cidr: u8, peer: &RcuArc<P>) -> Result {
        self.remove(IpAddr::V4(ip), cidr, peer)
    }

    /// As [`AllowedIps::remove_v4`].
    pub(crate) fn remove_v6(&mut self, ip: [u8; 16], cidr: u8, peer: &RcuArc<P>) -> Result {
        self.remove(IpAddr::V6(ip), cidr, peer)
    }

    /// Allows `addr/cidr` for `peer`, as [`AllowedIps::insert_v4`] and `_v6`.
    pub(crate) fn insert(&mut self, addr: IpAddr, cidr: u8, peer: &RcuArc<P>) -> Result {
        self.book.seq = self.book.seq.wrapping_add(1);
        let (family, key) = key_of(addr);
        if cidr > family.bits() {
            return Err(EINVAL);
        }
        let key = key & mask(cidr);
        let ip = AllowedIp::new(family, key, cidr);
        let id = peer.owner_id();
        let root = self.table.root(family);

        // Allocate everything first: nothing below fails. The trie cannot
        // change meanwhile, as we are the only writer.
        let memory = self.book.reserve(id)?;
        let (exact, split) = {
            let guard = rcu::read_lock();
            let place = place(root, &guard, key, cidr);
            let split = place.slot.get(&guard).map(|down| cidr.min(common_bits(down.key, key)));
            (place.exact.is_some(), split.filter(|&common| common != cidr))
        };
        let stamp = self.book.next_stamp();
        let new = match exact {
            true => None,
            false => Some(Node::new(key, cidr, Some(peer.clone()), stamp)?),
        };
        let branch = match (new.is_some(), split) {
            (true, Some(common)) => Some(Node::new(key, common, None, 0)?),
            _ => None,
        };

        let guard = rcu::read_lock();
        let place = place(root, &guard, key, cidr);
        if let Some(node) = place.exact {
            let old_stamp = node.stamp.load(Relaxed);
            let old = node.peer.replace(Some(peer.clone()));
            node.stamp.store(stamp, Relaxed);
            // Link first: moving within one peer must not drop its entry.
            self.book.link(id, stamp, ip, memory);
            if let Some(old) = old {
                self.book.unlink(old.owner_id(), old_stamp);
            }
            return Ok(());
        }
        let new = new.ok_or(EINVAL)?;
        match place.slot.get_arc(&guard) {
            // An empty trie, or a free child slot: `new` is a leaf.
            None => drop(place.slot.replace(Some(new))),
            Some(down) => {
                let common = cidr.min(common_bits(down.key, key));
                if common == cidr {
                    // `new` is a prefix of `down`: it goes above it.
                    drop(new.child(down.key).replace(Some(down)));
                    drop(place.slot.replace(Some(new)));
                } else {
                    // They part after `common` bits: a branching node holds
                    // both.
                    let branch = branch.filter(|b| b.cidr == common).ok_or(EINVAL)?;
                    drop(branch.child(down.key).replace(Some(down)));
                    drop(branch.child(key).replace(Some(new)));
                    drop(place.slot.replace(Some(branch)));
                }
            }
        }
        self.book.link(id, stamp, ip, memory);
        Ok(())
    }

    /// Removes `addr/cidr` from `peer`, as [`AllowedIps::remove_v4`] and `_v6`.
    pub(crate) fn remove(&mut self, addr: IpAddr, cidr: u8, peer: &RcuArc<P>) -> Result {
        self.book.seq = self.book.seq.wrapping_add(1);
        let (family, key) = key_of(addr);
        if cidr > family.bits() {
            return Err(EINVAL);
        }
        let guard = rcu::read_lock();
        let place = place(self.table.root(family), &guard, key & mask(cidr), cidr);
        if let Some(node) = place.exact.filter(|node| node.peer.is(peer)) {
            self.book.unlink(peer.owner_id(), node.stamp.load(Relaxed));
            remove_node(&guard, node, &place);
        }
        Ok(())
    }

    /// Removes every prefix of `peer`, in time proportional to their number.
    pub(crate) fn remove_by_peer(&mut self, peer: &RcuArc<P>) {
        let Some(entry) = self.book.peers.remove(&peer.owner_id()) else { return };
        self.book.seq = self.book.seq.wrapping_add(1);
        for (_, ip) in entry.order.iter() {
            let (family, key, cidr) = ip.parts();
            let guard = rcu::read_lock();
            let place = place(self.table.root(family), &guard, key, cidr);
            if let Some(node) = place.exact.filter(|node| node.peer.is(peer)) {
                remove_node(&guard, node, &place);
            }
        }
    }

    /// `peer`'s allowed IPs in insertion order, from `from` on.
    pub(crate) fn peer_allowedips(&self, peer: &RcuArc<P>, from: Cursor) -> PeerAllowedIps<'_> {
        let order = self.book.peers.get(&peer.owner_id()).map(|entry| &entry.order);
        PeerIps { order, seq: self.book.seq }.from(from)
    }

    /// A walk over peers in ascending owner id, from `from` on, that finds
    /// their allowed IPs a step at a time (a dump's).
    pub(crate) fn walk(&mut self, from: u64) -> PeerWalk<'_> {
        PeerWalk { seq: self.book.seq, at: self.book.peers.cursor_lower_bound_mut(&from) }
    }
}

/// See [`AllowedIps::walk`].
pub(crate) struct PeerWalk<'a> {
    seq: u64,
    /// The first peer with prefixes not passed yet.
    at: Option<CursorMut<'a, u64, PeerEntry>>,
}

impl PeerWalk<'_> {
    /// The allowed IPs of `peer`, whose owner id is at least that of the
    /// peer asked for before (fewer steps than peers, in all).
    pub(crate) fn of(&mut self, peer: &impl Owner) -> PeerIps<'_> {
        let id = peer.owner_id();
        while let Some(at) = self.at.take() {
            if *at.current().0 >= id {
                self.at = Some(at);
                break;
            }
            self.at = at.move_next();
        }
        let order = match &self.at {
            Some(at) if *at.current().0 == id => Some(&at.current().1.order),
            _ => None,
        };
        PeerIps { order, seq: self.seq }
    }
}

/// One peer's allowed IPs.
pub(crate) struct PeerIps<'a> {
    order: Option<&'a RBTree<u64, AllowedIp>>,
    seq: u64,
}

impl<'a> PeerIps<'a> {
    /// The table's [`AllowedIps::seq`].
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// The prefixes in insertion order, from `from` on. Each comes with the
    /// cursor to resume at it, for a dump that runs out of room.
    pub(crate) fn from(&self, from: Cursor) -> PeerAllowedIps<'a> {
        let walk = match (self.order, from) {
            (None, _) => Walk::Done,
            (Some(order), Cursor::START) => Walk::Whole(order.iter()),
            (Some(order), Cursor(next)) => Walk::Resumed(order, next),
        };
        PeerAllowedIps { walk }
    }
}

impl<P: Send + Sync> Drop for AllowedIps<P> {
    /// Empties the tries (upstream `wg_allowedips_free`); readers still in
    /// them keep them alive until they are done.
    fn drop(&mut self) {
        drop(self.table.root4.replace(None));
        drop(self.table.root6.replace(None));
    }
}

/// Iterator over a peer's allowed IPs; see [`PeerIps::from`].
pub(crate) struct PeerAllowedIps<'a> {
    walk: Walk<'a>,
}

enum Walk<'a> {
    /// From the first: a step per prefix.
    Whole(rbtree::Iter<'a, u64, AllowedIp>),
    /// From the stamp: a search per prefix, as the tree's read-only cursor
    /// cannot move.
    Resumed(&'a RBTree<u64, AllowedIp>, u64),
    Done,
}

impl Iterator for PeerAllowedIps<'_> {
    type Item = (Cursor, AllowedIp);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (stamp, ip) = match &mut self.walk {
            Walk::Whole(iter) => iter.next().map(|(&stamp, &ip)| (stamp, ip)),
            Walk::Resumed(order, next) => order.cursor_lower_bound(next).map(|at| {
                let (&stamp, &ip) = at.current();
                (stamp, ip)
            }),
            Walk::Done => None,
        }?;
        match stamp.checked_add(1) {
            Some(after) => {
                if let Walk::Resumed(_, next) = &mut self.walk {
                    *next = after;
                }
            }
            None => self.walk = Walk::Done,
        }
        Some((Cursor(stamp), ip))
    }
}
