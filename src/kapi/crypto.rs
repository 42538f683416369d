// SPDX-License-Identifier: GPL-2.0

//! The kernel's crypto library (lib/crypto) and secret handling.

use super::bindings;

/// Length of Curve25519 keys and of WireGuard's symmetric keys.
pub(crate) const KEY_LEN: usize = bindings::CURVE25519_KEY_SIZE as usize;

/// Bytes that are wiped (with `memzero_explicit`) when dropped.
pub(crate) struct Secret<const N: usize>([u8; N]);

impl<const N: usize> Secret<N> {
    /// An all-zero secret.
    pub(crate) const fn zeroed() -> Self {
        Secret([0; N])
    }

    pub(crate) fn expose(&self) -> &[u8; N] {
        &self.0
    }

    pub(crate) fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }
}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites `bytes` with zeros in a way the compiler cannot elide.
pub(crate) fn wipe(bytes: &mut [u8]) {
    // SAFETY: `bytes` is valid for writes of its length.
    unsafe { bindings::wgrs_memzero_explicit(bytes.as_mut_ptr().cast(), bytes.len()) };
}

/// Constant-time inequality of two equally long byte strings.
pub(crate) fn memneq<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    // SAFETY: both pointers are valid for reads of `N` bytes.
    unsafe { bindings::wgrs_crypto_memneq(a.as_ptr().cast(), b.as_ptr().cast(), N) != 0 }
}

/// The Curve25519 public key of `secret` (which need not be clamped), or
/// `None` for a secret that yields the all-zero point.
pub(crate) fn curve25519_generate_public(secret: &Secret<KEY_LEN>) -> Option<[u8; KEY_LEN]> {
    let mut public = [0u8; KEY_LEN];
    // SAFETY: both buffers are `CURVE25519_KEY_SIZE` bytes long.
    let ok = unsafe {
        bindings::curve25519_generate_public(public.as_mut_ptr(), secret.expose().as_ptr())
    };
    ok.then_some(public)
}
