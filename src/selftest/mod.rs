// SPDX-License-Identifier: GPL-2.0

//! In-kernel self-tests, run at load when the `run_selftests` module
//! parameter is set (upstream runs its own under `DEBUG`).

mod allowedips;

/// Runs every self-test; false if any failed (each failure is logged).
pub(crate) fn run() -> bool {
    allowedips::selftest()
}
