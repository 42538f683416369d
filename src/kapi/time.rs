// SPDX-License-Identifier: GPL-2.0

//! Clocks and jiffies (`linux/ktime.h`, `linux/jiffies.h`).

use super::bindings;

/// Nanoseconds per second.
pub(crate) const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Jiffies per second.
pub(crate) const HZ: u64 = bindings::WGRS_HZ as u64;

/// Boot time in nanoseconds, at tick resolution
/// (`ktime_get_coarse_boottime_ns`): what protocol timestamps are measured
/// in. It keeps counting across suspend.
pub(crate) fn coarse_boottime_ns() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bindings::wgrs_ktime_get_coarse_boottime_ns() }
}

/// Whether `birthdate` (in [`coarse_boottime_ns`]) lies more than
/// `expiration_seconds` in the past (upstream `wg_birthdate_has_expired`).
pub(crate) fn has_expired(birthdate: u64, expiration_seconds: u64) -> bool {
    birthdate.wrapping_add(expiration_seconds * NSEC_PER_SEC) <= coarse_boottime_ns()
}

/// Wall-clock time (`ktime_get_real_ts64`), as (seconds, nanoseconds).
pub(crate) fn real_time() -> (i64, i64) {
    let mut ts = bindings::timespec64 { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is valid for writes.
    unsafe { bindings::ktime_get_real_ts64(&mut ts) };
    (ts.tv_sec, ts.tv_nsec as i64)
}

/// Wall-clock time in nanoseconds since the epoch.
pub(crate) fn real_time_ns() -> i64 {
    let (sec, nsec) = real_time();
    sec.saturating_mul(NSEC_PER_SEC as i64).saturating_add(nsec)
}

/// The current jiffies count.
pub(crate) fn jiffies() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bindings::wgrs_jiffies() }
}
