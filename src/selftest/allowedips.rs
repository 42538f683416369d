// SPDX-License-Identifier: GPL-2.0

//! Self-tests of the allowed-IPs table (upstream `selftest/allowedips.c`):
//! upstream's fixed cases, one by one, then a randomised comparison with a
//! naive table (a flat list searched for the longest matching prefix) over
//! thousands of inserts, removals, lookups and per-peer listings, for both
//! families; and lock-free lookups on another CPU while the trie changes.

use crate::allowedips::{AllowedIp, AllowedIps, Cursor, IpAddr, LookupTable, Owner};
use crate::kapi::{
    kthread, random,
    rcu::{self, RcuArc},
};
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// A stand-in for a peer, known by its number.
struct TestPeer {
    n: u32,
}

type Peer = RcuArc<TestPeer>;

/// Test peers made and not yet dropped: once the tables that held them are
/// gone and their memory freed, none may be left.
static LIVE_PEERS: Atomic<i64> = Atomic::new(0);

fn new_peer(n: u32) -> Result<Peer> {
    // In place, as real peers (with their locks) will be.
    let peer = RcuArc::pin_init(try_init!(TestPeer { n }), GFP_KERNEL)?;
    LIVE_PEERS.fetch_add(1, Relaxed);
    Ok(peer)
}

impl Owner for TestPeer {
    fn owner_id(&self) -> u64 {
        self.n.into()
    }
}

impl Drop for TestPeer {
    fn drop(&mut self) {
        LIVE_PEERS.fetch_sub(1, Relaxed);
    }
}

/// Waits until every `RcuArc` whose last reference is gone has been dropped
/// and freed, including what those drops released in turn (a trie frees one
/// level per grace period).
fn wait_for_frees() {
    drop(rcu::Barrier::new());
}

const fn ip4(a: u8, b: u8, c: u8, d: u8) -> [u8; 4] {
    [a, b, c, d]
}

/// An IPv6 address from its four 32-bit words, most significant first.
fn ip6(a: u32, b: u32, c: u32, d: u32) -> [u8; 16] {
    (u128::from(a) << 96 | u128::from(b) << 64 | u128::from(c) << 32 | u128::from(d)).to_be_bytes()
}

/// The two ways of looking an address up (a borrowed and a counted
/// reference) found different peers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Disagreement;

/// What a lookup found: the number of the peer, if any, or a disagreement.
type Found = core::result::Result<Option<u32>, Disagreement>;

/// The number of the peer that `addr` maps to, looked up both ways, which
/// must agree.
fn lookup(t: &AllowedIps<TestPeer>, addr: IpAddr) -> Found {
    lookup_any(t.table(), addr)
}

/// Numbered checks, as upstream's `maybe_fail()`.
struct Checks {
    i: usize,
    success: bool,
}

impl Checks {
    fn check(&mut self, ok: bool) {
        self.i += 1;
        if !ok {
            pr_info!("allowedips self-test {}: FAIL\n", self.i);
            self.success = false;
        }
    }

    /// The lookup found `want`.
    fn is(&mut self, found: Found, want: Option<u32>) {
        self.check(found == Ok(want));
    }

    /// The lookup agreed with itself and found anything but `unwanted`.
    fn is_not(&mut self, found: Found, unwanted: Option<u32>) {
        self.check(matches!(found, Ok(n) if n != unwanted));
    }

    /// Upstream ignores what its setup inserts return; we do not.
    fn setup(&mut self, result: Result) {
        if result.is_err() {
            pr_err!("allowedips self-test insert: FAIL\n");
            self.success = false;
        }
    }
}

/// Upstream's `wg_allowedips_selftest()`, case by case.
fn fixed() -> Result<bool> {
    let [a, b, c, d, e, f, g, h] = [
        new_peer(1)?,
        new_peer(2)?,
        new_peer(3)?,
        new_peer(4)?,
        new_peer(5)?,
        new_peer(6)?,
        new_peer(7)?,
        new_peer(8)?,
    ];
    // Upstream's NULL peer: one that owns nothing.
    let nobody = new_peer(0)?;
    let mut t = AllowedIps::<TestPeer>::new()?;
    let mut x = Checks { i: 0, success: true };
    let id = |peer: &Peer| Some(peer.n);

    x.setup(t.insert_v4(ip4(192, 168, 4, 0), 24, &a));
    x.setup(t.insert_v4(ip4(192, 168, 4, 4), 32, &b));
    x.setup(t.insert_v4(ip4(192, 168, 0, 0), 16, &c));
    x.setup(t.insert_v4(ip4(192, 95, 5, 64), 27, &d));
    // Replaces the previous entry, and host bits must be masked off.
    x.setup(t.insert_v4(ip4(192, 95, 5, 65), 27, &c));
    x.setup(t.insert_v6(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128, &d));
    x.setup(t.insert_v6(ip6(0x26075300, 0x60006b00, 0, 0), 64, &c));
    x.setup(t.insert_v4(ip4(0, 0, 0, 0), 0, &e));
    x.setup(t.insert_v6(ip6(0, 0, 0, 0), 0, &e));
    // Replaces the previous entry.
    x.setup(t.insert_v6(ip6(0, 0, 0, 0), 0, &f));
    x.setup(t.insert_v6(ip6(0x24046800, 0, 0, 0), 32, &g));
    // Host bits must be masked off.
    x.setup(t.insert_v6(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 64, &h));
    x.setup(t.insert_v6(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 128, &a));
    x.setup(t.insert_v6(ip6(0x24446800, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128, &c));
    x.setup(t.insert_v6(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98, &b));
    x.setup(t.insert_v4(ip4(64, 15, 112, 0), 20, &g));
    // Host bits must be masked off.
    x.setup(t.insert_v4(ip4(64, 15, 123, 211), 25, &h));
    x.setup(t.insert_v4(ip4(10, 0, 0, 0), 25, &a));
    x.setup(t.insert_v4(ip4(10, 0, 0, 128), 25, &b));
    x.setup(t.insert_v4(ip4(10, 1, 0, 0), 30, &a));
    x.setup(t.insert_v4(ip4(10, 1, 0, 4), 30, &b));
    x.setup(t.insert_v4(ip4(10, 1, 0, 8), 29, &c));
    x.setup(t.insert_v4(ip4(10, 1, 0, 16), 29, &d));

    let v4 = |ip: [u8; 4]| IpAddr::V4(ip);
    let v6 = |ip: [u8; 16]| IpAddr::V6(ip);
    x.is(lookup(&t, v4(ip4(192, 168, 4, 20))), id(&a));
    x.is(lookup(&t, v4(ip4(192, 168, 4, 0))), id(&a));
    x.is(lookup(&t, v4(ip4(192, 168, 4, 4))), id(&b));
    x.is(lookup(&t, v4(ip4(192, 168, 200, 182))), id(&c));
    x.is(lookup(&t, v4(ip4(192, 95, 5, 68))), id(&c));
    x.is(lookup(&t, v4(ip4(192, 95, 5, 96))), id(&e));
    x.is(lookup(&t, v6(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543))), id(&d));
    x.is(lookup(&t, v6(ip6(0x26075300, 0x60006b00, 0, 0xc02e01ee))), id(&c));
    x.is(lookup(&t, v6(ip6(0x26075300, 0x60006b01, 0, 0))), id(&f));
    x.is(lookup(&t, v6(ip6(0x24046800, 0x40040806, 0, 0x1006))), id(&g));
    x.is(lookup(&t, v6(ip6(0x24046800, 0x40040806, 0x1234, 0x5678))), id(&g));
    x.is(lookup(&t, v6(ip6(0x240467ff, 0x40040806, 0x1234, 0x5678))), id(&f));
    x.is(lookup(&t, v6(ip6(0x24046801, 0x40040806, 0x1234, 0x5678))), id(&f));
    x.is(lookup(&t, v6(ip6(0x24046800, 0x40040800, 0x1234, 0x5678))), id(&h));
    x.is(lookup(&t, v6(ip6(0x24046800, 0x40040800, 0, 0))), id(&h));
    x.is(lookup(&t, v6(ip6(0x24046800, 0x40040800, 0x10101010, 0x10101010))), id(&h));
    x.is(lookup(&t, v6(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef))), id(&a));
    x.is(lookup(&t, v4(ip4(64, 15, 116, 26))), id(&g));
    x.is(lookup(&t, v4(ip4(64, 15, 127, 3))), id(&g));
    x.is(lookup(&t, v4(ip4(64, 15, 123, 1))), id(&g));
    x.is(lookup(&t, v4(ip4(64, 15, 123, 128))), id(&h));
    x.is(lookup(&t, v4(ip4(64, 15, 123, 129))), id(&h));
    x.is(lookup(&t, v4(ip4(10, 0, 0, 52))), id(&a));
    x.is(lookup(&t, v4(ip4(10, 0, 0, 220))), id(&b));
    x.is(lookup(&t, v4(ip4(10, 1, 0, 2))), id(&a));
    x.is(lookup(&t, v4(ip4(10, 1, 0, 6))), id(&b));
    x.is(lookup(&t, v4(ip4(10, 1, 0, 10))), id(&c));
    x.is(lookup(&t, v4(ip4(10, 1, 0, 20))), id(&d));

    // remove_by_peer.
    for first in [1, 64, 128, 192, 255] {
        x.setup(t.insert_v4(ip4(first, 0, 0, 0), 32, &a));
    }
    t.remove_by_peer(&a);
    for first in [1, 64, 128, 192, 255] {
        x.is_not(lookup(&t, v4(ip4(first, 0, 0, 0))), id(&a));
    }

    // REMOVE_ME: exact prefix and owning peer only.
    x.setup(t.insert_v4(ip4(1, 0, 0, 0), 32, &a));
    x.setup(t.insert_v4(ip4(192, 0, 0, 0), 24, &a));
    x.setup(t.insert_v6(ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128, &a));
    x.setup(t.insert_v6(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98, &a));
    x.is(lookup(&t, v4(ip4(1, 0, 0, 0))), id(&a));
    x.is(lookup(&t, v4(ip4(192, 0, 0, 1))), id(&a));
    x.is(lookup(&t, v6(ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef))), id(&a));
    x.is(lookup(&t, v6(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0x10101010))), id(&a));
    // Must be an exact match to remove.
    x.setup(t.remove_v4(ip4(192, 0, 0, 0), 32, &a));
    x.is(lookup(&t, v4(ip4(192, 0, 0, 1))), id(&a));
    // A peer that owns nothing has no effect and succeeds.
    x.check(t.remove_v4(ip4(192, 0, 0, 0), 24, &nobody).is_ok());
    x.is(lookup(&t, v4(ip4(192, 0, 0, 1))), id(&a));
    // Another peer has no effect and succeeds.
    x.check(t.remove_v4(ip4(192, 0, 0, 0), 24, &b).is_ok());
    x.is(lookup(&t, v4(ip4(192, 0, 0, 1))), id(&a));
    // An invalid prefix length has no effect and is EINVAL.
    x.check(t.remove_v4(ip4(192, 0, 0, 0), 33, &b) == Err(EINVAL));
    x.is(lookup(&t, v4(ip4(192, 0, 0, 1))), id(&a));
    // Not upstream: so is inserting one (upstream's add() checks it too).
    for cidr in [33, 64, 255] {
        x.check(t.insert_v4(ip4(192, 0, 0, 0), cidr, &nobody) == Err(EINVAL));
    }
    x.is(lookup(&t, v4(ip4(192, 0, 0, 1))), id(&a));
    x.check(t.peer_allowedips(&nobody, Cursor::START).next().is_none());
    x.setup(t.remove_v4(ip4(192, 0, 0, 0), 24, &a));
    x.is_not(lookup(&t, v4(ip4(192, 0, 0, 1))), id(&a));
    x.setup(t.remove_v4(ip4(1, 0, 0, 0), 32, &a));
    x.is_not(lookup(&t, v4(ip4(1, 0, 0, 0))), id(&a));
    // Must be an exact match to remove.
    let addr = ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef);
    x.setup(t.remove_v6(addr, 96, &a));
    x.is(lookup(&t, v6(addr)), id(&a));
    // A peer that owns nothing has no effect and succeeds.
    x.check(t.remove_v6(addr, 128, &nobody).is_ok());
    x.is(lookup(&t, v6(addr)), id(&a));
    // Another peer has no effect and succeeds.
    x.check(t.remove_v6(addr, 128, &b).is_ok());
    x.is(lookup(&t, v6(addr)), id(&a));
    // An invalid prefix length has no effect and is EINVAL.
    x.check(t.remove_v6(addr, 129, &a) == Err(EINVAL));
    x.is(lookup(&t, v6(addr)), id(&a));
    for cidr in [129, 255] {
        x.check(t.insert_v6(addr, cidr, &nobody) == Err(EINVAL));
    }
    x.is(lookup(&t, v6(addr)), id(&a));
    x.check(t.peer_allowedips(&nobody, Cursor::START).next().is_none());
    x.setup(t.remove_v6(addr, 128, &a));
    x.is_not(lookup(&t, v6(addr)), id(&a));
    // Must match the peer to remove.
    let addr = ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0);
    let inside = ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0x10101010);
    x.setup(t.remove_v6(addr, 98, &b));
    x.is(lookup(&t, v6(inside)), id(&a));
    x.setup(t.remove_v6(addr, 98, &a));
    x.is_not(lookup(&t, v6(inside)), id(&a));

    // A fresh table (upstream frees and re-inits it).
    t = AllowedIps::new()?;
    x.setup(t.insert_v4(ip4(192, 168, 0, 0), 16, &a));
    x.setup(t.insert_v4(ip4(192, 168, 0, 0), 24, &a));
    t.remove_by_peer(&a);
    x.is_not(lookup(&t, v4(ip4(192, 168, 0, 1))), id(&a));

    // A trie as deep as it gets, freed (upstream checks its free path's
    // stack here; ours frees one level per grace period), with a peer of
    // its own to tell whether all of it was freed.
    let deep = new_peer(9)?;
    for i in 0..64u32 {
        let part = (!0u64).checked_shl(i).unwrap_or(0).to_be_bytes();
        let mut ip = [0xffu8; 16];
        for (byte, p) in ip.iter_mut().skip(8).zip(part) {
            *byte = p;
        }
        x.setup(t.insert_v6(ip, 128, &deep));
        let mut ip = [0u8; 16];
        for (byte, p) in ip.iter_mut().zip(part) {
            *byte = p;
        }
        x.setup(t.insert_v6(ip, 128, &deep));
    }
    x.setup(t.insert_v6([0; 16], 128, &deep));
    // Not upstream: the deepest leaves are found.
    x.is(lookup(&t, v6([0; 16])), id(&deep));
    x.is(lookup(&t, v6([0xff; 16])), id(&deep));
    x.is(lookup(&t, v6(ip6(0, 0, 0, 1))), None);
    x.check(t.peer_allowedips(&deep, Cursor::START).count() == 129);
    // Not upstream: every node goes. The nodes hold the only references to
    // `deep` left once our own is dropped, so it is dropped when, and only
    // when, the last node holding it is freed, and nodes are freed only
    // after the node above them.
    let live = LIVE_PEERS.load(Relaxed);
    drop(deep);
    t = AllowedIps::new()?;
    wait_for_frees();
    x.check(LIVE_PEERS.load(Relaxed) == live - 1);

    // Listing a peer's allowed IPs.
    x.setup(t.insert_v4(ip4(192, 95, 5, 93), 27, &a));
    x.setup(t.insert_v6(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128, &a));
    x.setup(t.insert_v4(ip4(10, 1, 0, 20), 29, &a));
    x.setup(t.insert_v6(ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 83, &a));
    x.setup(t.insert_v6(ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 21, &a));
    let expected = [
        AllowedIp::V4(ip4(192, 95, 5, 64), 27),
        AllowedIp::V6(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128),
        AllowedIp::V4(ip4(10, 1, 0, 16), 29),
        AllowedIp::V6(ip6(0x26075300, 0x6d8a6bf8, 0xdab1e000, 0), 83),
        AllowedIp::V6(ip6(0x26075000, 0, 0, 0), 21),
    ];
    let mut count = 0;
    let mut found = [false; 5];
    let mut found_other = false;
    for (_, ip) in t.peer_allowedips(&a, Cursor::START) {
        count += 1;
        match expected.iter().position(|e| *e == ip).and_then(|i| found.get_mut(i)) {
            Some(seen) => *seen = true,
            None => found_other = true,
        }
    }
    x.check(count == 5);
    for seen in found {
        x.check(seen);
    }
    x.check(!found_other);

    // Not upstream: the listing is in insertion order and resumes at a
    // cursor; re-inserting moves a prefix to the end, or to another peer;
    // every change bumps the sequence number.
    x.check(t.peer_allowedips(&a, Cursor::START).map(|(_, ip)| ip).eq(expected));
    let third = t.peer_allowedips(&a, Cursor::START).nth(2).map(|(cursor, _)| cursor);
    let resumed = third.map(|cursor| t.peer_allowedips(&a, cursor).map(|(_, ip)| ip));
    x.check(resumed.is_some_and(|ips| ips.eq(expected.into_iter().skip(2))));
    let seq = t.seq();
    x.setup(t.insert_v4(ip4(192, 95, 5, 64), 27, &a));
    x.check(t.seq() != seq);
    let moved = [expected[1], expected[2], expected[3], expected[4], expected[0]];
    x.check(t.peer_allowedips(&a, Cursor::START).map(|(_, ip)| ip).eq(moved));
    // The old cursor still resumes at the same prefix.
    let resumed = third.map(|cursor| t.peer_allowedips(&a, cursor).map(|(_, ip)| ip));
    x.check(resumed.is_some_and(|ips| ips.eq(moved.into_iter().skip(1))));
    x.setup(t.insert_v4(ip4(10, 1, 0, 16), 29, &b));
    x.check(t.peer_allowedips(&b, Cursor::START).map(|(_, ip)| ip).eq([expected[2]]));
    let moved = [expected[1], expected[3], expected[4], expected[0]];
    x.check(t.peer_allowedips(&a, Cursor::START).map(|(_, ip)| ip).eq(moved));
    // A walk in owner-id order finds the same, skipping peers without any,
    // and resumes from an id.
    let mut walk = t.walk(0);
    x.check(walk.of(&*nobody).from(Cursor::START).next().is_none());
    x.check(walk.of(&*a).from(Cursor::START).map(|(_, ip)| ip).eq(moved));
    x.check(walk.of(&*b).from(Cursor::START).map(|(_, ip)| ip).eq([expected[2]]));
    x.check(walk.of(&*c).from(Cursor::START).next().is_none());
    let mut walk = t.walk(b.n.into());
    x.check(walk.of(&*b).from(Cursor::START).map(|(_, ip)| ip).eq([expected[2]]));
    let seq = t.seq();
    x.check(t.remove_v4(ip4(10, 1, 0, 16), 29, &a).is_ok());
    x.check(t.seq() != seq);
    x.check(t.peer_allowedips(&b, Cursor::START).count() == 1);
    x.is(lookup(&t, v4(ip4(10, 1, 0, 17))), id(&b));
    t.remove_by_peer(&a);
    t.remove_by_peer(&b);
    x.check(t.peer_allowedips(&a, Cursor::START).next().is_none());
    x.check(t.table().is_empty());

    Ok(x.success)
}

/// One allowed IP of the naive table.
struct NaiveEntry {
    /// Address length in bytes: 4 or 16.
    len: usize,
    /// Host bits clear.
    addr: [u8; 16],
    cidr: u8,
    peer: u32,
}

/// `addr`'s first `len` bytes with all but the first `cidr` bits cleared,
/// done byte by byte (unlike the trie).
fn masked(addr: &[u8; 16], len: usize, cidr: u8) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, (o, a)) in out.iter_mut().zip(addr).enumerate().take(len) {
        let bits = usize::from(cidr).saturating_sub(i * 8).min(8);
        let keep = 0xffu8.checked_shl(8u32.saturating_sub(bits as u32)).unwrap_or(0);
        *o = a & keep;
    }
    out
}

/// The naive table: a flat list in insertion order, scanned for the longest
/// match.
struct Naive {
    entries: KVec<NaiveEntry>,
}

impl Naive {
    /// Inserts, or moves an existing prefix to `peer` and to the end.
    fn insert(&mut self, len: usize, addr: &[u8; 16], cidr: u8, peer: u32) -> Result {
        let addr = masked(addr, len, cidr);
        self.entries.retain(|e| !(e.len == len && e.cidr == cidr && e.addr == addr));
        Ok(self.entries.push(NaiveEntry { len, addr, cidr, peer }, GFP_KERNEL)?)
    }

    fn remove(&mut self, len: usize, addr: &[u8; 16], cidr: u8, peer: u32) {
        let addr = masked(addr, len, cidr);
        self.entries
            .retain(|e| !(e.len == len && e.cidr == cidr && e.addr == addr && e.peer == peer));
    }

    fn remove_by_peer(&mut self, peer: u32) {
        self.entries.retain(|e| e.peer != peer);
    }

    fn lookup(&self, len: usize, addr: &[u8; 16]) -> Option<u32> {
        self.entries
            .iter()
            .filter(|e| e.len == len && masked(addr, len, e.cidr) == e.addr)
            .max_by_key(|e| e.cidr)
            .map(|e| e.peer)
    }

    /// `peer`'s allowed IPs in insertion order.
    fn list(&self, peer: u32) -> Result<KVec<AllowedIp>> {
        let mut ips = KVec::new();
        for e in self.entries.iter().filter(|e| e.peer == peer) {
            ips.push(allowed_ip(e.len, &e.addr, e.cidr), GFP_KERNEL)?;
        }
        Ok(ips)
    }
}

fn allowed_ip(len: usize, addr: &[u8; 16], cidr: u8) -> AllowedIp {
    let [a, b, c, d, ..] = *addr;
    if len == 4 {
        AllowedIp::V4([a, b, c, d], cidr)
    } else {
        AllowedIp::V6(*addr, cidr)
    }
}

fn ip_addr(len: usize, addr: &[u8; 16]) -> IpAddr {
    let [a, b, c, d, ..] = *addr;
    if len == 4 {
        IpAddr::V4([a, b, c, d])
    } else {
        IpAddr::V6(*addr)
    }
}

// Scaled down from upstream (2000 peers, 400 routes with 100 mutations
// each, millions of queries) to finish in seconds under TCG.
const NUM_PEERS: u32 = 100;
const NUM_RAND_ROUTES: u32 = 50;
const NUM_MUTATED_ROUTES: u32 = 20;
/// Lookups of each family after each batch of routes and after each peer
/// is removed.
const NUM_QUERIES: u32 = 60;

/// A random prefix length for an address of `bits` bits, from 0 to `bits`
/// (upstream draws from 1 to `bits`; /0 is an allowed IP like any other).
fn random_cidr(bits: u32) -> u8 {
    random::below(bits + 1) as u8
}

fn random_u8() -> u8 {
    let mut byte = [0u8];
    random::fill(&mut byte);
    let [byte] = byte;
    byte
}

/// `base` with its first `keep` bits kept and the rest random.
fn mutate(base: &[u8; 16], len: usize, keep: u32) -> [u8; 16] {
    let mut out = *base;
    for (i, byte) in out.iter_mut().enumerate().take(len) {
        let bits = (keep as usize).saturating_sub(i * 8).min(8);
        let fixed = 0xffu8.checked_shl(8u32.saturating_sub(bits as u32)).unwrap_or(0);
        *byte = (*byte & fixed) | (random_u8() & !fixed);
    }
    out
}

struct Random {
    t: AllowedIps<TestPeer>,
    h: Naive,
    peers: KVec<Peer>,
    operations: u32,
}

impl Random {
    fn peer(&self, n: u32) -> Result<&Peer> {
        self.peers.get(n as usize).ok_or(EINVAL)
    }

    fn insert(&mut self, len: usize, addr: &[u8; 16], cidr: u8, n: u32) -> Result {
        let peer = self.peer(n)?.clone();
        let [a, b, c, d, ..] = *addr;
        if len == 4 {
            self.t.insert_v4([a, b, c, d], cidr, &peer)?;
        } else {
            self.t.insert_v6(*addr, cidr, &peer)?;
        }
        self.operations += 1;
        self.h.insert(len, addr, cidr, n)
    }

    fn remove(&mut self, len: usize, addr: &[u8; 16], cidr: u8, n: u32) -> Result {
        let peer = self.peer(n)?.clone();
        let [a, b, c, d, ..] = *addr;
        if len == 4 {
            self.t.remove_v4([a, b, c, d], cidr, &peer)?;
        } else {
            self.t.remove_v6(*addr, cidr, &peer)?;
        }
        self.operations += 1;
        self.h.remove(len, addr, cidr, n);
        Ok(())
    }

    /// Random lookups, half near an existing prefix; false on a mismatch.
    fn queries(&mut self) -> bool {
        for i in 0..2 * NUM_QUERIES {
            let len = if i % 2 == 0 { 4 } else { 16 };
            let mut addr = [0u8; 16];
            random::fill(&mut addr);
            if i % 4 >= 2 {
                let count = self.h.entries.len() as u32;
                if let Some(e) = self.h.entries.get(random::below(count) as usize) {
                    if e.len == len {
                        let keep = random::below(u32::from(e.cidr) + 8);
                        addr = mutate(&e.addr, len, keep);
                    }
                }
            }
            let addr = ip_addr(len, &addr);
            let (want, got) = match addr {
                IpAddr::V4(ip) => {
                    let mut full = [0u8; 16];
                    for (f, b) in full.iter_mut().zip(ip) {
                        *f = b;
                    }
                    (self.h.lookup(4, &full), lookup(&self.t, addr))
                }
                IpAddr::V6(ip) => (self.h.lookup(16, &ip), lookup(&self.t, addr)),
            };
            self.operations += 1;
            if got != Ok(want) {
                let version = if len == 4 { 4 } else { 6 };
                pr_err!("allowedips random v{} self-test: FAIL\n", version);
                return false;
            }
        }
        true
    }

    /// Compares peer `n`'s listing, whole and resumed half-way, with the
    /// naive table's.
    fn listing(&mut self, n: u32) -> Result<bool> {
        self.operations += 1;
        let want = self.h.list(n)?;
        let peer = self.peer(n)?;
        if !self.t.peer_allowedips(peer, Cursor::START).map(|(_, ip)| ip).eq(want.iter().copied()) {
            return Ok(false);
        }
        let half = want.len() / 2;
        let Some((cursor, _)) = self.t.peer_allowedips(peer, Cursor::START).nth(half) else {
            return Ok(want.len() == half);
        };
        Ok(self
            .t
            .peer_allowedips(peer, cursor)
            .map(|(_, ip)| ip)
            .eq(want.iter().copied().skip(half)))
    }

    /// Inserts a batch of random routes and their mutations, with some
    /// removals in between.
    fn build(&mut self, len: usize) -> Result<bool> {
        let bits = (len * 8) as u32;
        // At least one /0 (host bits set), whatever the draws below give.
        let mut any = [0u8; 16];
        random::fill(&mut any);
        self.insert(len, &any, 0, random::below(NUM_PEERS))?;
        for _ in 0..NUM_RAND_ROUTES {
            let mut base = [0u8; 16];
            random::fill(&mut base);
            let cidr = random_cidr(bits);
            self.insert(len, &base, cidr, random::below(NUM_PEERS))?;
            for _ in 0..NUM_MUTATED_ROUTES {
                let mutated = mutate(&base, len, random::below(bits));
                let cidr = random_cidr(bits);
                self.insert(len, &mutated, cidr, random::below(NUM_PEERS))?;
                // Not upstream: REMOVE_ME with random prefixes, owners and
                // non-owners, one operation in four.
                match random::below(8) {
                    0 => {
                        let count = self.h.entries.len() as u32;
                        let Some(e) = self.h.entries.get(random::below(count) as usize) else {
                            continue;
                        };
                        let (elen, addr, cidr, peer) = (e.len, e.addr, e.cidr, e.peer);
                        // Host bits set: they must not matter.
                        let addr = mutate(&addr, elen, u32::from(cidr));
                        self.remove(elen, &addr, cidr, peer)?;
                    }
                    1 => {
                        let cidr = random_cidr(bits);
                        self.remove(len, &mutated, cidr, random::below(NUM_PEERS))?;
                    }
                    _ => {}
                }
            }
            if !self.queries() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn run(&mut self) -> Result<bool> {
        if !self.build(4)? || !self.build(16)? {
            return Ok(false);
        }
        for n in 0..NUM_PEERS {
            if !self.listing(n)? {
                pr_err!("allowedips random self-test listing: FAIL\n");
                return Ok(false);
            }
            let peer = self.peer(n)?.clone();
            self.t.remove_by_peer(&peer);
            self.h.remove_by_peer(n);
            self.operations += 1;
            if !self.queries() {
                return Ok(false);
            }
        }
        if !self.t.table().is_empty() {
            pr_err!("allowedips random self-test removal: FAIL\n");
            return Ok(false);
        }
        Ok(true)
    }
}

/// The randomised comparison with the naive table.
fn randomized() -> Result<bool> {
    let mut peers = KVec::with_capacity(NUM_PEERS as usize, GFP_KERNEL)?;
    for n in 0..NUM_PEERS {
        peers.push(new_peer(n)?, GFP_KERNEL)?;
    }
    let mut test =
        Random { t: AllowedIps::new()?, h: Naive { entries: KVec::new() }, peers, operations: 0 };
    let ok = test.run()?;
    pr_info!("allowedips random self-test: {} operations\n", test.operations);
    Ok(ok)
}

/// Fixed peers 0 to `STABLE - 1` of the concurrent test own 10.k.0.0/16 and
/// 2001:db8:k::/48; only the lower half of each is looked up.
const STABLE: u32 = 16;
/// Updates the concurrent test makes while the reader runs.
const NUM_CHURN: u32 = 10000;

/// `addr` with its first `len` bytes from `prefix`, and bit 7 of byte `len`
/// (the bit after them) set or cleared.
fn graft(mut addr: [u8; 16], prefix: [u8; 16], len: usize, upper: bool) -> [u8; 16] {
    for (byte, p) in addr.iter_mut().zip(prefix).take(len) {
        *byte = p;
    }
    if let Some(next) = addr.get_mut(len) {
        *next = if upper { *next | 0x80 } else { *next & 0x7f };
    }
    addr
}

/// Stable peer `k`'s prefix, of `len` bytes (v4: 10.k.0.0/16, v6:
/// 2001:db8:k::/48), and its length in bytes.
fn stable_prefix(len: usize, k: u32) -> ([u8; 16], usize) {
    if len == 4 {
        ([10, k as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2)
    } else {
        (ip6(0x20010db8, k << 16, 0, 0), 6)
    }
}

/// An address the reader looks up, and the stable peer that must own it.
fn stable_addr(len: usize) -> (IpAddr, u32) {
    let k = random::below(STABLE);
    let mut addr = [0u8; 16];
    random::fill(&mut addr);
    let (prefix, bytes) = stable_prefix(len, k);
    // Lower half: the bit after the stable prefix is clear.
    (ip_addr(len, &graft(addr, prefix, bytes, false)), k)
}

/// What the writer changes around the stable prefixes: covering prefixes
/// (shorter, so they never win), and anything in the upper halves of the
/// stable ranges or elsewhere, so that nodes are pushed down and spliced
/// out right next to the ones the reader walks through.
fn churn_prefix(len: usize) -> ([u8; 16], u8) {
    let mut addr = [0u8; 16];
    random::fill(&mut addr);
    let bits = (len * 8) as u32;
    let (prefix, bytes) = stable_prefix(len, random::below(STABLE));
    let stable_cidr = (bytes * 8) as u32;
    match random::below(3) {
        // Covering: shorter than the stable prefixes.
        0 => (graft(addr, prefix, 1, false), (random::below(stable_cidr - 1) + 1) as u8),
        // Inside a stable range, upper half.
        1 => (
            graft(addr, prefix, bytes, true),
            (stable_cidr + 1 + random::below(bits - stable_cidr)) as u8,
        ),
        // Anywhere: a covering prefix, or one in an upper half, or one
        // unrelated; but not one in a lower half of a stable v4 range.
        _ => {
            let [first, ..] = addr;
            let addr = if len == 4 && first == 10 { graft(addr, [11; 16], 1, false) } else { addr };
            (addr, (random::below(bits) + 1) as u8)
        }
    }
}

/// Lock-free lookups on a kernel thread while this one inserts and removes
/// prefixes around theirs: the reader must always find the stable owner.
fn concurrent() -> Result<bool> {
    let mut peers = KVec::with_capacity((2 * STABLE) as usize, GFP_KERNEL)?;
    for n in 0..2 * STABLE {
        peers.push(new_peer(n)?, GFP_KERNEL)?;
    }
    let mut t = AllowedIps::<TestPeer>::new()?;
    for (k, peer) in peers.iter().enumerate().take(STABLE as usize) {
        t.insert_v4([10, k as u8, 0, 0], 16, peer)?;
        t.insert_v6(ip6(0x20010db8, (k as u32) << 16, 0, 0), 48, peer)?;
    }
    let table = t.table().clone();
    let reader = move |stop: &kthread::Stop| {
        let (mut lookups, mut wrong) = (0u64, 0u64);
        while !stop.requested() {
            for len in [4, 16] {
                let (addr, k) = stable_addr(len);
                if lookup_any(&table, addr) != Ok(Some(k)) {
                    wrong += 1;
                }
                lookups += 1;
            }
        }
        (lookups, wrong)
    };
    let writer = || -> Result {
        for i in 0..NUM_CHURN {
            let len = if i % 2 == 0 { 4 } else { 16 };
            let (addr, cidr) = churn_prefix(len);
            let peer = peers.get((STABLE + random::below(STABLE)) as usize).ok_or(EINVAL)?;
            let [a, b, c, d, ..] = addr;
            match random::below(8) {
                0..=4 if len == 4 => t.insert_v4([a, b, c, d], cidr, peer)?,
                0..=4 => t.insert_v6(addr, cidr, peer)?,
                5 if len == 4 => t.remove_v4([a, b, c, d], cidr, peer)?,
                5 => t.remove_v6(addr, cidr, peer)?,
                _ => t.remove_by_peer(peer),
            }
        }
        Ok(())
    };
    let (written, read) = kthread::scope(c"wg-allowedips-test", reader, writer)?;
    written?;
    let (lookups, wrong) = read.unwrap_or((0, 0));
    pr_info!("allowedips concurrent self-test: {} lookups during {} updates\n", lookups, NUM_CHURN);
    if wrong != 0 || lookups == 0 {
        pr_err!("allowedips concurrent self-test: FAIL ({} of {} lookups wrong)\n", wrong, lookups);
        return Ok(false);
    }
    Ok(true)
}

/// The peer number of `addr` on a (shared) table, both ways.
fn lookup_any(table: &LookupTable<TestPeer>, addr: IpAddr) -> Found {
    let counted = table.lookup_peer(addr).map(|peer| peer.n);
    let guard = rcu::read_lock();
    let borrowed = table.lookup(&guard, addr).map(|peer| peer.n);
    if counted == borrowed {
        Ok(counted)
    } else {
        Err(Disagreement)
    }
}

/// Runs every test; prints `allowedips self-tests: pass`, or what failed.
pub(crate) fn selftest() -> bool {
    let success = match fixed() {
        Ok(true) => match randomized().and_then(|ok| Ok(ok && concurrent()?)) {
            Ok(ok) => ok,
            Err(_) => {
                pr_err!("allowedips random self-test malloc: FAIL\n");
                false
            }
        },
        Ok(false) => false,
        Err(_) => {
            pr_err!("allowedips self-test malloc: FAIL\n");
            false
        }
    };
    // Every table is gone: once freed, so must be every peer they held.
    wait_for_frees();
    let leaked = LIVE_PEERS.load(Relaxed);
    if leaked != 0 {
        pr_err!("allowedips self-test free: FAIL ({} test peers left)\n", leaked);
    }
    let success = success && leaked == 0;
    if success {
        pr_info!("allowedips self-tests: pass\n");
    }
    success
}
