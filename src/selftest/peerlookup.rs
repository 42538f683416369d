// SPDX-License-Identifier: GPL-2.0

//! Self-tests of the index and public-key tables: unique indices when the
//! random source repeats itself, removal by owner, duplicate public keys,
//! and lock-free lookups on another CPU that must always find a set of
//! stable entries while this one inserts and removes thousands of others
//! (which makes the table grow and shrink under them).

use super::noise::{Pair, TestPeer};
use super::{check, Outcome};
use crate::kapi::{kthread, random, rcu, rcu::RcuArc};
use crate::noise::NoisePeer;
use crate::peerlookup::{IndexEntry, IndexTable};
use kernel::prelude::*;

const STABLE: u32 = 64;
const CHURN: usize = 10_000;

/// Whether `index` names a handshake of `peer`.
fn names(table: &IndexTable<TestPeer>, index: u32, peer: &RcuArc<TestPeer>) -> bool {
    matches!(table.lookup(index, &rcu::read_lock()), Some(IndexEntry::Handshake(p)) if RcuArc::ptr_eq(p, peer))
}

fn ownership(pair: &Pair) -> Outcome {
    let (table, p, q) = (&pair.a.noise.index, &pair.a_b, &pair.b_a);
    let before = table.len();
    check(table.insert_handshake(p, || 5) == Ok(5), "insert")?;
    let mut picks = [5, 5, 7].into_iter();
    check(table.insert_handshake(q, || picks.next().unwrap_or(9)) == Ok(7), "taken index given twice")?;
    check(names(table, 5, p) && names(table, 7, q), "lookups")?;
    check(table.lookup_handshake(7).is_some_and(|peer| RcuArc::ptr_eq(&peer, q)), "counted lookup")?;
    check(table.lookup_keypair(5, &rcu::read_lock()).is_none(), "a handshake as a keypair")?;
    check(!table.remove_handshake(5, q), "removed by another peer")?;
    check(table.remove_handshake(5, p) && !table.remove_handshake(5, p), "removal")?;
    check(table.lookup_peer(5).is_none(), "removed index found")?;
    check(table.remove_handshake(7, q) && table.len() == before, "count")?;

    let keys = &pair.a.noise.peers;
    check(keys.lookup(q.noise().remote_static()).is_none(), "someone else's key found")?;
    check(keys.lookup(p.noise().remote_static()).is_some_and(|peer| RcuArc::ptr_eq(&peer, p)), "key lookup")?;
    check(keys.insert(p) == Err(EEXIST), "duplicate key")?;
    check(!keys.remove(q) && keys.remove(p) && keys.lookup(p.noise().remote_static()).is_none(), "key removal")?;
    check(keys.insert(p).is_ok() && keys.len() == 1, "key insertion")
}

fn churn(pair: &Pair) -> Result<Outcome> {
    let (table, p, q) = (&pair.a.noise.index, &pair.a_b, &pair.b_a);
    for i in 1..=STABLE {
        table.insert_handshake(q, || i)?;
    }
    let reader = |stop: &kthread::Stop| {
        let (mut lookups, mut wrong) = (0u64, 0u64);
        while !stop.requested() {
            if !names(table, 1 + random::below(STABLE), q) {
                wrong += 1;
            }
            lookups += 1;
        }
        (lookups, wrong)
    };
    let writer = || -> Result<Outcome> {
        let mut indices = KVec::with_capacity(CHURN, GFP_KERNEL)?;
        for _ in 0..CHURN {
            indices.push(table.insert_handshake(p, random::u32)?, GFP_KERNEL)?;
        }
        let found = table.len() == STABLE as usize + CHURN && indices.iter().all(|&i| names(table, i, p));
        let removed = indices.iter().all(|&i| table.remove_handshake(i, p)) && table.len() == STABLE as usize;
        Ok(check(found, "inserted entry not found").and(check(removed, "removal")))
    };
    let (written, read) = kthread::scope(c"wg-index-test", reader, writer)?;
    for i in 1..=STABLE {
        table.remove_handshake(i, q);
    }
    let (lookups, wrong) = read.unwrap_or((0, 0));
    pr_info!("index table self-test: {} lookups during {} insertions and removals\n", lookups, 2 * CHURN);
    Ok(written?.and(check(wrong == 0, "a stable entry went missing")))
}

pub(crate) fn selftest() -> bool {
    let outcome = Pair::random(None).and_then(|pair| {
        let outcome = ownership(&pair);
        let outcome = match outcome {
            Ok(()) => churn(&pair)?,
            e => e,
        };
        Ok(outcome.and(pair.teardown()))
    });
    let success = super::report(format_args!("peer lookup"), outcome);
    if success {
        pr_info!("peer lookup self-tests: pass\n");
    }
    success
}
