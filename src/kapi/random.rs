// SPDX-License-Identifier: GPL-2.0

//! The kernel's random number generator (`drivers/char/random.c`).

use super::bindings;

/// Fills `buf` with random bytes (`get_random_bytes`).
pub(crate) fn fill(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { bindings::get_random_bytes(buf.as_mut_ptr().cast(), buf.len()) };
}

/// A uniformly random integer in `0..ceil`, or 0 when `ceil` is 0
/// (`get_random_u32_below`).
pub(crate) fn below(ceil: u32) -> u32 {
    if ceil == 0 {
        return 0;
    }
    // SAFETY: no preconditions beyond a non-zero bound.
    unsafe { bindings::wgrs_get_random_u32_below(ceil) }
}
