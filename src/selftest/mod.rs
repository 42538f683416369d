// SPDX-License-Identifier: GPL-2.0

//! In-kernel self-tests, run at load when the `run_selftests` module
//! parameter is set (upstream runs its own under `DEBUG`).

mod allowedips;
mod counter;
mod noise;
mod peerlookup;
mod ratelimiter;

use kernel::prelude::*;

/// What a check found wrong, if anything.
pub(super) type Outcome = core::result::Result<(), &'static str>;

pub(super) fn check(ok: bool, what: &'static str) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(what)
    }
}

/// Logs how the self-test `name` failed, if it did (`<name> self-test:
/// FAIL (<what>)`, or `<name> self-test malloc: FAIL`); true if it passed.
pub(super) fn report(name: core::fmt::Arguments<'_>, outcome: Result<Outcome>) -> bool {
    match outcome {
        Ok(Ok(())) => true,
        Ok(Err(what)) => {
            pr_err!("{} self-test: FAIL ({})\n", name, what);
            false
        }
        Err(_) => {
            pr_err!("{} self-test malloc: FAIL\n", name);
            false
        }
    }
}

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
