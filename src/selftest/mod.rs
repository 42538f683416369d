// SPDX-License-Identifier: GPL-2.0

//! In-kernel self-tests, run at load when the `run_selftests` module
//! parameter is set (upstream runs its own under `DEBUG`).

mod allowedips;
mod counter;
mod noise;
mod peerlookup;
mod ratelimiter;

/// Runs every self-test; false if any failed (each failure is logged).
pub(crate) fn run() -> bool {
    // All of them, even after a failure, so that one run reports everything.
    let mut success = allowedips::selftest();
    success &= counter::selftest();
    success &= ratelimiter::selftest();
    success &= peerlookup::selftest();
    success &= noise::selftest();
    success
}
