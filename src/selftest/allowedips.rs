// SPDX-License-Identifier: GPL-2.0

//! Self-tests of the allowed-IPs table (upstream `selftest/allowedips.c`):
//! upstream's fixed cases, one by one.

use crate::allowedips::{AllowedIp, AllowedIps, Cursor, IpAddr};
use crate::kapi::rcu::{self, RcuArc};
use kernel::prelude::*;

/// A stand-in for a peer, known by its number.
struct TestPeer(u32);

type Peer = RcuArc<TestPeer>;

fn new_peer(n: u32) -> Result<Peer> {
    Ok(RcuArc::new(TestPeer(n), GFP_KERNEL)?)
}

const fn ip4(a: u8, b: u8, c: u8, d: u8) -> [u8; 4] {
    [a, b, c, d]
}

/// An IPv6 address from its four 32-bit words, most significant first.
fn ip6(a: u32, b: u32, c: u32, d: u32) -> [u8; 16] {
    (u128::from(a) << 96 | u128::from(b) << 64 | u128::from(c) << 32 | u128::from(d)).to_be_bytes()
}

/// The number of the peer that `addr` maps to, looked up both ways (a
/// borrowed and a counted reference), which must agree.
fn lookup(t: &AllowedIps<TestPeer>, addr: IpAddr) -> Option<u32> {
    let counted = t.table().lookup_peer(addr).map(|peer| peer.0);
    let guard = rcu::read_lock();
    let borrowed = t.table().lookup(&guard, addr).map(|peer| peer.0);
    if counted == borrowed {
        counted
    } else {
        // Matches no peer: fails every positive and negative test.
        Some(u32::MAX)
    }
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
    let id = |peer: &Peer| Some(peer.0);

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
    x.check(lookup(&t, v4(ip4(192, 168, 4, 20))) == id(&a));
    x.check(lookup(&t, v4(ip4(192, 168, 4, 0))) == id(&a));
    x.check(lookup(&t, v4(ip4(192, 168, 4, 4))) == id(&b));
    x.check(lookup(&t, v4(ip4(192, 168, 200, 182))) == id(&c));
    x.check(lookup(&t, v4(ip4(192, 95, 5, 68))) == id(&c));
    x.check(lookup(&t, v4(ip4(192, 95, 5, 96))) == id(&e));
    x.check(lookup(&t, v6(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543))) == id(&d));
    x.check(lookup(&t, v6(ip6(0x26075300, 0x60006b00, 0, 0xc02e01ee))) == id(&c));
    x.check(lookup(&t, v6(ip6(0x26075300, 0x60006b01, 0, 0))) == id(&f));
    x.check(lookup(&t, v6(ip6(0x24046800, 0x40040806, 0, 0x1006))) == id(&g));
    x.check(lookup(&t, v6(ip6(0x24046800, 0x40040806, 0x1234, 0x5678))) == id(&g));
    x.check(lookup(&t, v6(ip6(0x240467ff, 0x40040806, 0x1234, 0x5678))) == id(&f));
    x.check(lookup(&t, v6(ip6(0x24046801, 0x40040806, 0x1234, 0x5678))) == id(&f));
    x.check(lookup(&t, v6(ip6(0x24046800, 0x40040800, 0x1234, 0x5678))) == id(&h));
    x.check(lookup(&t, v6(ip6(0x24046800, 0x40040800, 0, 0))) == id(&h));
    x.check(lookup(&t, v6(ip6(0x24046800, 0x40040800, 0x10101010, 0x10101010))) == id(&h));
    x.check(lookup(&t, v6(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef))) == id(&a));
    x.check(lookup(&t, v4(ip4(64, 15, 116, 26))) == id(&g));
    x.check(lookup(&t, v4(ip4(64, 15, 127, 3))) == id(&g));
    x.check(lookup(&t, v4(ip4(64, 15, 123, 1))) == id(&g));
    x.check(lookup(&t, v4(ip4(64, 15, 123, 128))) == id(&h));
    x.check(lookup(&t, v4(ip4(64, 15, 123, 129))) == id(&h));
    x.check(lookup(&t, v4(ip4(10, 0, 0, 52))) == id(&a));
    x.check(lookup(&t, v4(ip4(10, 0, 0, 220))) == id(&b));
    x.check(lookup(&t, v4(ip4(10, 1, 0, 2))) == id(&a));
    x.check(lookup(&t, v4(ip4(10, 1, 0, 6))) == id(&b));
    x.check(lookup(&t, v4(ip4(10, 1, 0, 10))) == id(&c));
    x.check(lookup(&t, v4(ip4(10, 1, 0, 20))) == id(&d));

    // remove_by_peer.
    for first in [1, 64, 128, 192, 255] {
        x.setup(t.insert_v4(ip4(first, 0, 0, 0), 32, &a));
    }
    t.remove_by_peer(&a);
    for first in [1, 64, 128, 192, 255] {
        x.check(lookup(&t, v4(ip4(first, 0, 0, 0))) != id(&a));
    }

    // REMOVE_ME: exact prefix and owning peer only.
    x.setup(t.insert_v4(ip4(1, 0, 0, 0), 32, &a));
    x.setup(t.insert_v4(ip4(192, 0, 0, 0), 24, &a));
    x.setup(t.insert_v6(ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128, &a));
    x.setup(t.insert_v6(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98, &a));
    x.check(lookup(&t, v4(ip4(1, 0, 0, 0))) == id(&a));
    x.check(lookup(&t, v4(ip4(192, 0, 0, 1))) == id(&a));
    x.check(lookup(&t, v6(ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef))) == id(&a));
    x.check(lookup(&t, v6(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0x10101010))) == id(&a));
    // Must be an exact match to remove.
    x.setup(t.remove_v4(ip4(192, 0, 0, 0), 32, &a));
    x.check(lookup(&t, v4(ip4(192, 0, 0, 1))) == id(&a));
    // A peer that owns nothing has no effect and succeeds.
    x.check(t.remove_v4(ip4(192, 0, 0, 0), 24, &nobody).is_ok());
    x.check(lookup(&t, v4(ip4(192, 0, 0, 1))) == id(&a));
    // Another peer has no effect and succeeds.
    x.check(t.remove_v4(ip4(192, 0, 0, 0), 24, &b).is_ok());
    x.check(lookup(&t, v4(ip4(192, 0, 0, 1))) == id(&a));
    // An invalid prefix length has no effect and is EINVAL.
    x.check(t.remove_v4(ip4(192, 0, 0, 0), 33, &b) == Err(EINVAL));
    x.check(lookup(&t, v4(ip4(192, 0, 0, 1))) == id(&a));
    x.setup(t.remove_v4(ip4(192, 0, 0, 0), 24, &a));
    x.check(lookup(&t, v4(ip4(192, 0, 0, 1))) != id(&a));
    x.setup(t.remove_v4(ip4(1, 0, 0, 0), 32, &a));
    x.check(lookup(&t, v4(ip4(1, 0, 0, 0))) != id(&a));
    // Must be an exact match to remove.
    let addr = ip6(0x24446801, 0x40e40800, 0xdeaebeef, 0xdefbeef);
    x.setup(t.remove_v6(addr, 96, &a));
    x.check(lookup(&t, v6(addr)) == id(&a));
    // A peer that owns nothing has no effect and succeeds.
    x.check(t.remove_v6(addr, 128, &nobody).is_ok());
    x.check(lookup(&t, v6(addr)) == id(&a));
    // Another peer has no effect and succeeds.
    x.check(t.remove_v6(addr, 128, &b).is_ok());
    x.check(lookup(&t, v6(addr)) == id(&a));
    // An invalid prefix length has no effect and is EINVAL.
    x.check(t.remove_v6(addr, 129, &a) == Err(EINVAL));
    x.check(lookup(&t, v6(addr)) == id(&a));
    x.setup(t.remove_v6(addr, 128, &a));
    x.check(lookup(&t, v6(addr)) != id(&a));
    // Must match the peer to remove.
    let addr = ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0);
    let inside = ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0x10101010);
    x.setup(t.remove_v6(addr, 98, &b));
    x.check(lookup(&t, v6(inside)) == id(&a));
    x.setup(t.remove_v6(addr, 98, &a));
    x.check(lookup(&t, v6(inside)) != id(&a));

    // A fresh table (upstream frees and re-inits it).
    t = AllowedIps::new()?;
    x.setup(t.insert_v4(ip4(192, 168, 0, 0), 16, &a));
    x.setup(t.insert_v4(ip4(192, 168, 0, 0), 24, &a));
    t.remove_by_peer(&a);
    x.check(lookup(&t, v4(ip4(192, 168, 0, 1))) != id(&a));

    // A trie as deep as it gets, freed (upstream checks its free path's
    // stack here; ours frees one level per grace period).
    for i in 0..64u32 {
        let part = (!0u64).checked_shl(i).unwrap_or(0).to_be_bytes();
        let mut ip = [0xffu8; 16];
        for (byte, p) in ip.iter_mut().skip(8).zip(part) {
            *byte = p;
        }
        x.setup(t.insert_v6(ip, 128, &a));
        let mut ip = [0u8; 16];
        for (byte, p) in ip.iter_mut().zip(part) {
            *byte = p;
        }
        x.setup(t.insert_v6(ip, 128, &a));
    }
    x.setup(t.insert_v6([0; 16], 128, &a));
    // Not upstream: the deepest leaves are found.
    x.check(lookup(&t, v6([0; 16])) == id(&a));
    x.check(lookup(&t, v6([0xff; 16])) == id(&a));
    x.check(lookup(&t, v6(ip6(0, 0, 0, 1))).is_none());
    t = AllowedIps::new()?;

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
    let seq = t.seq();
    x.check(t.remove_v4(ip4(10, 1, 0, 16), 29, &a).is_ok());
    x.check(t.seq() != seq);
    x.check(t.peer_allowedips(&b, Cursor::START).count() == 1);
    x.check(lookup(&t, v4(ip4(10, 1, 0, 17))) == id(&b));
    t.remove_by_peer(&a);
    t.remove_by_peer(&b);
    x.check(t.peer_allowedips(&a, Cursor::START).next().is_none());
    x.check(t.table().is_empty());

    Ok(x.success)
}

/// Runs every test; prints `allowedips self-tests: pass`, or what failed.
pub(crate) fn selftest() -> bool {
    let success = match fixed() {
        Ok(ok) => ok,
        Err(_) => {
            pr_err!("allowedips self-test malloc: FAIL\n");
            false
        }
    };
    if success {
        pr_info!("allowedips self-tests: pass\n");
    }
    success
}
