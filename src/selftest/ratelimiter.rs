// SPDX-License-Identifier: GPL-2.0

//! Self-tests of the handshake ratelimiter (upstream
//! `selftest/ratelimiter.c`): sharing (three users, one instance), then
//! upstream's timing cases and its capacity test.
//!
//! Upstream fills the shared table, whose collector drops entries idle for
//! a second, and retries when it did: under TCG, filling 65536 entries
//! takes seconds, so the collector always does. We fill an instance of the
//! same size whose collector does not run.
//!
//! The timing cases sleep, and check that each step happened within its
//! deadline (the sleeps so far plus two thirds of a token's worth). A VM
//! under TCG on a loaded host misses deadlines now and then, so, as
//! upstream, a trial that misses one is retried (up to `TRIALS` times);
//! a wrong answer within the deadlines fails at once, with the step.

use crate::cookie::SourceAddr;
use crate::kapi::time::{self, HZ};
use crate::ratelimiter::{buckets_for_ram, Ratelimiter, PACKETS_BURSTABLE, PACKETS_PER_SECOND};
use kernel::{prelude::*, time::delay::fsleep, time::Delta};

/// Upstream's `TRIALS_BEFORE_GIVING_UP` is 5000 for a fast machine; ours
/// are slower per trial.
const TRIALS: u32 = 40;

const NET: u64 = 0x5e1f_7e57;

const MS_PER_PACKET: u64 = 1000 / PACKETS_PER_SECOND;
const _: () = assert!(1000 % PACKETS_PER_SECOND == 0);

/// (expected answer, milliseconds to sleep before), as upstream.
const EXPECTED: [(bool, u64); PACKETS_BURSTABLE as usize + 6] = {
    let mut e = [(true, 0); PACKETS_BURSTABLE as usize + 6];
    let b = PACKETS_BURSTABLE as usize;
    e[b] = (false, 0);
    e[b + 1] = (true, MS_PER_PACKET);
    e[b + 2] = (false, 0);
    e[b + 3] = (true, MS_PER_PACKET * 2);
    e[b + 4] = (true, 0);
    e[b + 5] = (false, 0);
    e
};

/// The latest jiffies at which step `index` may run.
fn deadline(start: u64, index: usize) -> u64 {
    let mut ms = 2 * MS_PER_PACKET / 3;
    for (_, sleep) in EXPECTED.iter().take(index + 1) {
        ms += sleep;
    }
    start + (ms * HZ).div_ceil(1000)
}

enum Failure {
    /// A deadline was missed: the answer proves nothing.
    TimedOut,
    /// A wrong answer, at this check.
    Wrong(u32),
}

fn v4(host: u32) -> SourceAddr {
    SourceAddr::V4 { addr: host.to_be_bytes(), port: 51820 }
}

fn v6(words: [u32; 4]) -> SourceAddr {
    let mut addr = [0u8; 16];
    for (chunk, word) in addr.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    SourceAddr::V6 { addr, port: 51820 }
}

/// One run of upstream's `timings_test`; `test` counts the checks.
fn timings(r: &Ratelimiter, test: &mut u32) -> Result<(), Failure> {
    r.gc(true);
    let start = time::jiffies();
    // A check whose answer came after its deadline is inconclusive.
    let mut check = |index: usize, got: bool, expected: bool| {
        if time::jiffies() > deadline(start, index) {
            return Err(Failure::TimedOut);
        }
        *test += 1;
        if got != expected {
            return Err(Failure::Wrong(*test));
        }
        Ok(())
    };
    for (i, &(expected, sleep)) in EXPECTED.iter().enumerate() {
        if sleep != 0 {
            fsleep(Delta::from_millis(sleep as i64));
        }
        let n = i as u32;
        check(i, r.allow(&v4(8182), NET), expected)?;
        // The same address in another namespace: a bucket of its own.
        check(i, r.allow(&v4(8182), NET ^ 1), expected)?;
        // Another address: its own bucket.
        check(i, r.allow(&v4(8182 + n + 1), NET), true)?;
        // The same /64 whatever the lower half.
        check(i, r.allow(&v6([1212, 289188, n, n]), NET), expected)?;
        check(i, r.allow(&v6([1212 + n + 1, 289188, n, n]), NET), true)?;
    }
    Ok(())
}

/// Upstream's `capacity_test`: the table takes `max_entries` sources,
/// then refuses new ones.
fn capacity(r: &Ratelimiter, test: &mut u32) -> Result<(), Failure> {
    r.gc(true);
    *test += 1;
    let (entries, max) = r.entries();
    if entries != 0 {
        return Err(Failure::Wrong(*test));
    }
    for i in 0..=max {
        *test += 1;
        if r.allow(&v4(i), NET) != (i != max) {
            return Err(Failure::Wrong(*test));
        }
    }
    Ok(())
}

/// Runs `f` until it passes, fails, or times out `TRIALS` times.
fn retried(
    name: &str,
    r: &Ratelimiter,
    f: impl Fn(&Ratelimiter, &mut u32) -> Result<(), Failure>,
) -> bool {
    for trial in 1..=TRIALS {
        let mut test = 0;
        match f(r, &mut test) {
            Ok(()) => {
                if trial > 1 {
                    pr_info!("ratelimiter {} self-test: passed on trial {}\n", name, trial);
                }
                return true;
            }
            Err(Failure::Wrong(n)) => {
                pr_err!("ratelimiter {} self-test {}: FAIL (wrong answer, trial {})\n", name, n, trial);
                return false;
            }
            Err(Failure::TimedOut) => {}
        }
    }
    pr_err!(
        "ratelimiter {} self-test: FAIL (missed its deadlines {} times: the machine is too slow or loaded)\n",
        name,
        TRIALS
    );
    false
}

pub(crate) fn selftest() -> bool {
    // One instance for all users, gone with the last.
    let refs = (Ratelimiter::get(), Ratelimiter::get(), Ratelimiter::get());
    let (Ok(a), Ok(b), Ok(c)) = refs else {
        pr_err!("ratelimiter self-test init: FAIL\n");
        return false;
    };
    if Ratelimiter::users() != 3 || !core::ptr::eq(&*a, &*b) || !core::ptr::eq(&*b, &*c) {
        pr_err!("ratelimiter self-test sharing: FAIL\n");
        return false;
    }
    drop((b, c));
    let success = retried("timings", &a, timings) && {
        let mut test = 0;
        match Ratelimiter::new_unshared(buckets_for_ram()).map(|r| capacity(&r, &mut test)) {
            Ok(Ok(())) if a.entries().1 == (buckets_for_ram() * 8) as u32 => true,
            Ok(Ok(())) => {
                pr_err!("ratelimiter sizing self-test: FAIL\n");
                false
            }
            Ok(Err(_)) => {
                pr_err!("ratelimiter capacity self-test {}: FAIL\n", test);
                false
            }
            Err(_) => {
                pr_err!("ratelimiter capacity self-test malloc: FAIL\n");
                false
            }
        }
    };
    a.gc(true);
    drop(a);
    if Ratelimiter::users() != 0 {
        pr_err!("ratelimiter self-test uninit: FAIL\n");
        return false;
    }
    if success {
        pr_info!("ratelimiter self-tests: pass\n");
    }
    success
}
