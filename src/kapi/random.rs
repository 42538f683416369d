// SPDX-License-Identifier: GPL-2.0

//! The kernel's random number generator (`drivers/char/random.c`).

use super::bindings;

/// Fills `buf` with random bytes (`get_random_bytes`).
pub(crate) fn fill(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { bindings::get_random_bytes(buf.as_mut_ptr().cast(), buf.len()) };
}

/// Fills `buf` with random bytes once the generator is seeded
/// (`get_random_bytes_wait`): for long-term and ephemeral keys. May sleep,
/// but only early in boot.
pub(crate) fn fill_wait(buf: &mut [u8]) {
    // SAFETY: no preconditions; process context. An interrupted wait
    // (which workers and netlink handlers do not see) still fills `buf`,
    // as `get_random_bytes_wait` does.
    let _ = unsafe { bindings::wait_for_random_bytes() };
    fill(buf);
}

/// A uniformly random `u32` (`get_random_u32`).
pub(crate) fn u32() -> u32 {
    // SAFETY: no preconditions.
    unsafe { bindings::get_random_u32() }
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

/// Whether the random number generator has been seeded: keys made before
/// would be predictable (`rng_is_initialized`).
pub(crate) fn is_initialized() -> bool {
    // SAFETY: no preconditions.
    unsafe { bindings::wgrs_rng_is_initialized() }
}
