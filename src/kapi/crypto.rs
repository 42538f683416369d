// SPDX-License-Identifier: GPL-2.0

//! The kernel's crypto library (lib/crypto) and secret handling.
//!
//! C headers: [`include/crypto/blake2s.h`](srctree/include/crypto/blake2s.h),
//! [`include/crypto/chacha20poly1305.h`](srctree/include/crypto/chacha20poly1305.h),
//! [`include/crypto/curve25519.h`](srctree/include/crypto/curve25519.h),
//! [`include/linux/siphash.h`](srctree/include/linux/siphash.h).
//!
//! Every primitive is the library's; this file only gives them slice- and
//! array-typed signatures whose lengths are checked (at compile time where
//! they are fixed, otherwise by returning failure), and builds on BLAKE2s
//! the HMAC and HKDF that Noise specifies, as upstream's `noise.c` does.
//! Keys and other secrets travel in [`Secret`], which is wiped on drop.

use super::{bindings, random};

/// Length of Curve25519 keys and of WireGuard's symmetric keys.
pub(crate) const KEY_LEN: usize = bindings::CURVE25519_KEY_SIZE as usize;

/// BLAKE2s output length (`BLAKE2S_HASH_SIZE`).
pub(crate) const HASH_LEN: usize = bindings::BLAKE2S_HASH_SIZE as usize;

/// BLAKE2s block length (`BLAKE2S_BLOCK_SIZE`).
const BLAKE2S_BLOCK_LEN: usize = bindings::BLAKE2S_BLOCK_SIZE as usize;

/// Poly1305 tag length (`CHACHA20POLY1305_AUTHTAG_SIZE`).
pub(crate) const AUTHTAG_LEN: usize = bindings::CHACHA20POLY1305_AUTHTAG_SIZE as usize;

/// XChaCha20-Poly1305 nonce length (`XCHACHA20POLY1305_NONCE_SIZE`).
pub(crate) const XNONCE_LEN: usize = bindings::XCHACHA20POLY1305_NONCE_SIZE as usize;

const _: () = assert!(KEY_LEN == 32 && HASH_LEN == 32 && bindings::CHACHA20POLY1305_KEY_SIZE == 32);

/// Bytes that are wiped (with `memzero_explicit`) when dropped.
///
/// Only the place a `Secret` is dropped in is wiped: moving one by value
/// (returning it, passing it, building a struct of it) may leave a copy in a
/// stack frame that nothing wipes. So secrets are computed into places that
/// stay put (`&mut Secret` out-parameters), and a structure that keeps one
/// has it written in place with [`Secret::init_with`]. The noise self-test looks
/// for a handshake's keys in the dead part of the stack.
pub(crate) struct Secret<const N: usize>([u8; N]);

impl<const N: usize> Secret<N> {
    /// An all-zero secret.
    pub(crate) const fn zeroed() -> Self {
        Secret([0; N])
    }

    /// `N` random bytes (`get_random_bytes`, after the RNG is seeded).
    pub(crate) fn random() -> Self {
        let mut secret = Secret::zeroed();
        random::fill_wait(&mut secret.0);
        secret
    }

    /// A copy of `bytes`, which the caller keeps (and wipes if it must).
    pub(crate) fn copy_from(bytes: &[u8; N]) -> Self {
        Secret(*bytes)
    }

    pub(crate) fn expose(&self) -> &[u8; N] {
        &self.0
    }

    pub(crate) fn expose_mut(&mut self) -> &mut [u8; N] {
        &mut self.0
    }

    /// Whether all bytes are zero (in constant time).
    pub(crate) fn is_zero(&self) -> bool {
        !memneq(&self.0, &[0; N])
    }

    /// An initialiser that zeroes the secret in the place it initialises,
    /// then lets `fill` write it there: building a structure from a `Secret`
    /// by value may leave a copy on the stack.
    pub(crate) fn init_with(fill: impl FnOnce(&mut [u8; N])) -> impl pin_init::Init<Self> {
        let init = move |slot: *mut Self| {
            // SAFETY: the initialiser's caller passes a `slot` valid for
            // writes of a `Secret<N>`, and for reads once it is written; no
            // other reference to it exists while it is being initialised.
            let bytes = unsafe {
                slot.write(Secret::zeroed());
                &mut (*slot).0
            };
            fill(bytes);
            Ok(())
        };
        // SAFETY: the closure initialises the whole of `*slot`, and never
        // fails.
        unsafe { pin_init::init_from_closure(init) }
    }

    /// Overwrites the secret with a copy of `other`, which stays where it
    /// is to be wiped when it is dropped. (`*self = other` would move
    /// `other`'s bytes, and a move leaves them behind in the place it moved
    /// them from, which nothing wipes.)
    pub(crate) fn assign(&mut self, other: &Secret<N>) {
        self.0 = other.0;
    }

    /// Overwrites the secret with zeros.
    pub(crate) fn wipe(&mut self) {
        wipe(&mut self.0);
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

/// Whether `bytes` occur in the dead part of the current task's stack, below
/// the caller's frame: what calls that have returned left there unwiped.
/// For the self-tests.
pub(crate) fn stack_residue(bytes: &[u8]) -> bool {
    // SAFETY: `bytes` is valid for reads of its length; the helper reads
    // nothing else but the current task's own stack.
    unsafe { bindings::wgrs_stack_residue(bytes.as_ptr(), bytes.len()) }
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

/// A fresh clamped Curve25519 private key into `secret`
/// (`curve25519_generate_secret`). May sleep until the RNG is seeded.
pub(crate) fn curve25519_generate_secret(secret: &mut Secret<KEY_LEN>) {
    random::fill_wait(secret.expose_mut());
    curve25519_clamp(secret.expose_mut());
}

/// RFC 7748 clamping of a Curve25519 scalar (`curve25519_clamp_secret`).
pub(crate) fn curve25519_clamp(secret: &mut [u8; KEY_LEN]) {
    secret[0] &= 248;
    secret[KEY_LEN - 1] = (secret[KEY_LEN - 1] & 127) | 64;
}

/// Diffie-Hellman: `secret` times `public` into `shared`, or `None` when the
/// result is the all-zero point (`public` is of low order), which callers
/// must refuse.
pub(crate) fn curve25519(secret: &Secret<KEY_LEN>, public: &[u8; KEY_LEN], shared: &mut Secret<KEY_LEN>) -> Option<()> {
    // SAFETY: the three buffers are `CURVE25519_KEY_SIZE` bytes long.
    let ok = unsafe {
        bindings::curve25519(
            shared.expose_mut().as_mut_ptr(),
            secret.expose().as_ptr(),
            public.as_ptr(),
        )
    };
    ok.then_some(())
}

/// An incremental BLAKE2s computation with an `N`-byte output (1 to 32).
/// Its state (which holds the key of a keyed hash) is wiped when dropped.
pub(crate) struct Blake2s<const N: usize>(bindings::blake2s_ctx);

impl<const N: usize> Blake2s<N> {
    const VALID: () = assert!(N >= 1 && N <= HASH_LEN);

    /// An unkeyed hash (`blake2s_init`).
    pub(crate) fn new() -> Self {
        let () = Self::VALID;
        let mut ctx = Blake2s(pin_init::zeroed());
        // SAFETY: `ctx.0` is valid for writes; `N` is a valid output length.
        unsafe { bindings::wgrs_blake2s_init(&mut ctx.0, N) };
        ctx
    }

    /// A keyed hash (`blake2s_init_key`), with a key of 1 to 32 bytes.
    pub(crate) fn new_keyed<const K: usize>(key: &[u8; K]) -> Self {
        let () = Self::VALID;
        const { assert!(K >= 1 && K <= bindings::BLAKE2S_KEY_SIZE as usize) };
        let mut ctx = Blake2s(pin_init::zeroed());
        // SAFETY: `ctx.0` is valid for writes, `key` for reads of `K` bytes;
        // `N` and `K` are valid lengths.
        unsafe { bindings::wgrs_blake2s_init_key(&mut ctx.0, N, key.as_ptr().cast(), K) };
        ctx
    }

    pub(crate) fn update(&mut self, data: &[u8]) -> &mut Self {
        // SAFETY: `self.0` is an initialised context; `data` is valid for
        // reads of its length.
        unsafe { bindings::blake2s_update(&mut self.0, data.as_ptr(), data.len()) };
        self
    }

    /// Writes the hash to `out` (`blake2s_final`, which wipes the state).
    pub(crate) fn finalize(mut self, out: &mut [u8; N]) {
        // SAFETY: `self.0` is an initialised context whose output length is
        // `N`, the length of `out`.
        unsafe { bindings::blake2s_final(&mut self.0, out.as_mut_ptr()) };
    }
}

impl<const N: usize> Drop for Blake2s<N> {
    fn drop(&mut self) {
        // SAFETY: the context is plain bytes, valid for writes of its size.
        unsafe {
            bindings::wgrs_memzero_explicit(
                core::ptr::from_mut(&mut self.0).cast(),
                core::mem::size_of::<bindings::blake2s_ctx>(),
            )
        };
    }
}

/// The unkeyed BLAKE2s hash of the concatenation of `parts`.
pub(crate) fn blake2s<const N: usize>(parts: &[&[u8]], out: &mut [u8; N]) {
    let mut ctx = Blake2s::<N>::new();
    for part in parts {
        ctx.update(part);
    }
    ctx.finalize(out);
}

/// The BLAKE2s hash of `data` keyed with `key` (a MAC: WireGuard's mac1,
/// mac2 and cookies).
pub(crate) fn blake2s_keyed<const N: usize, const K: usize>(key: &[u8; K], data: &[u8], out: &mut [u8; N]) {
    let mut ctx = Blake2s::<N>::new_keyed(key);
    ctx.update(data);
    ctx.finalize(out);
}

/// HMAC-BLAKE2s (RFC 2104) of the concatenation of `parts` under a
/// `HASH_LEN`-byte key (all WireGuard uses; shorter than a block, so it is
/// not hashed first), into `out`.
pub(crate) fn hmac(key: &[u8; HASH_LEN], parts: &[&[u8]], out: &mut Secret<HASH_LEN>) {
    let mut x_key = Secret::<BLAKE2S_BLOCK_LEN>::zeroed();
    for (x, k) in x_key.expose_mut().iter_mut().zip(key) {
        *x = *k;
    }
    for x in x_key.expose_mut().iter_mut() {
        *x ^= 0x36;
    }
    let mut inner = Secret::<HASH_LEN>::zeroed();
    let mut ctx = Blake2s::<HASH_LEN>::new();
    ctx.update(x_key.expose());
    for part in parts {
        ctx.update(part);
    }
    ctx.finalize(inner.expose_mut());

    for x in x_key.expose_mut().iter_mut() {
        *x ^= 0x5c ^ 0x36;
    }
    let mut ctx = Blake2s::<HASH_LEN>::new();
    ctx.update(x_key.expose()).update(inner.expose());
    ctx.finalize(out.expose_mut());
}

/// HKDF (RFC 5869) over HMAC-BLAKE2s as Noise uses it: `K` (1 to 3)
/// outputs of `HASH_LEN` bytes from `data` under `chaining_key`, written
/// into `out` in order.
pub(crate) fn kdf<const K: usize>(chaining_key: &[u8; HASH_LEN], data: &[u8], out: [&mut Secret<HASH_LEN>; K]) {
    const { assert!(K >= 1 && K <= 3) };
    // Extract.
    let mut prk = Secret::zeroed();
    hmac(chaining_key, &[data], &mut prk);
    // Expand: T(i) = HMAC(prk, T(i - 1) || i), with T(0) empty.
    let mut previous: Option<&Secret<HASH_LEN>> = None;
    for (counter, slot) in (1u8..).zip(out) {
        match previous {
            None => hmac(prk.expose(), &[&[counter]], slot),
            Some(previous) => hmac(prk.expose(), &[previous.expose(), &[counter]], slot),
        }
        previous = Some(slot);
    }
    // The hashes' frames, below ours, still hold what they hashed.
    // SAFETY: no preconditions.
    unsafe { bindings::wgrs_stack_burn() };
}

/// The nonce of an AEAD operation: ChaCha20-Poly1305 takes a 64-bit counter
/// (RFC 8439 with four zero bytes in front), XChaCha20-Poly1305 24 bytes.
#[derive(Clone, Copy)]
enum Nonce<'a> {
    Counter(u64),
    Extended(&'a [u8; XNONCE_LEN]),
}

/// Seals `len` bytes at `src` into `dst` (`len + AUTHTAG_LEN` bytes).
///
/// # Safety
///
/// `src` must be valid for reads of `len` bytes and `dst` for writes of
/// `len + AUTHTAG_LEN`; they may be the same buffer, or must not overlap.
unsafe fn seal(dst: *mut u8, src: *const u8, len: usize, ad: &[u8], nonce: Nonce<'_>, key: &[u8; KEY_LEN]) {
    // SAFETY: per the function's contract; `ad` and `key` are valid for
    // reads of their lengths. The library encrypts in place (a stream
    // cipher, then a MAC over the output).
    unsafe {
        match nonce {
            Nonce::Counter(n) => bindings::chacha20poly1305_encrypt(dst, src, len, ad.as_ptr(), ad.len(), n, key.as_ptr()),
            Nonce::Extended(n) => {
                bindings::xchacha20poly1305_encrypt(dst, src, len, ad.as_ptr(), ad.len(), n.as_ptr(), key.as_ptr())
            }
        }
    }
}

/// Opens `len` bytes (ciphertext and tag) at `src` into `dst` (`len -
/// AUTHTAG_LEN` bytes); false on a forgery, and then `dst` is untouched.
///
/// # Safety
///
/// `len` must be at least `AUTHTAG_LEN`, `src` valid for reads of `len`
/// bytes and `dst` for writes of `len - AUTHTAG_LEN`; they may be the same
/// buffer, or must not overlap.
unsafe fn open(dst: *mut u8, src: *const u8, len: usize, ad: &[u8], nonce: Nonce<'_>, key: &[u8; KEY_LEN]) -> bool {
    // SAFETY: per the function's contract. The library checks the tag over
    // the source before it decrypts it into the destination.
    unsafe {
        match nonce {
            Nonce::Counter(n) => bindings::chacha20poly1305_decrypt(dst, src, len, ad.as_ptr(), ad.len(), n, key.as_ptr()),
            Nonce::Extended(n) => {
                bindings::xchacha20poly1305_decrypt(dst, src, len, ad.as_ptr(), ad.len(), n.as_ptr(), key.as_ptr())
            }
        }
    }
}

/// Seals `src` into `dst`, which must be `AUTHTAG_LEN` bytes longer; false
/// (and nothing written) otherwise.
fn seal_slices(dst: &mut [u8], src: &[u8], ad: &[u8], nonce: Nonce<'_>, key: &[u8; KEY_LEN]) -> bool {
    if src.len().checked_add(AUTHTAG_LEN) != Some(dst.len()) {
        return false;
    }
    // SAFETY: lengths as checked; `dst` is borrowed mutably, so distinct.
    unsafe { seal(dst.as_mut_ptr(), src.as_ptr(), src.len(), ad, nonce, key) };
    true
}

/// Opens `src` into `dst`, which must be `AUTHTAG_LEN` bytes shorter.
fn open_slices(dst: &mut [u8], src: &[u8], ad: &[u8], nonce: Nonce<'_>, key: &[u8; KEY_LEN]) -> bool {
    if dst.len().checked_add(AUTHTAG_LEN) != Some(src.len()) {
        return false;
    }
    // SAFETY: lengths as checked (so `src.len() >= AUTHTAG_LEN`); `dst` is
    // borrowed mutably, so distinct.
    unsafe { open(dst.as_mut_ptr(), src.as_ptr(), src.len(), ad, nonce, key) }
}

/// ChaCha20-Poly1305 (RFC 8439) sealing of `src` into `dst`, which must be
/// `AUTHTAG_LEN` bytes longer; false (and nothing written) otherwise.
pub(crate) fn chacha20poly1305_encrypt(dst: &mut [u8], src: &[u8], ad: &[u8], nonce: u64, key: &[u8; KEY_LEN]) -> bool {
    seal_slices(dst, src, ad, Nonce::Counter(nonce), key)
}

/// Opens `src` (ciphertext and tag) into `dst`, which must be `AUTHTAG_LEN`
/// bytes shorter. False on a length mismatch or a forgery, and then `dst` is
/// left untouched.
pub(crate) fn chacha20poly1305_decrypt(dst: &mut [u8], src: &[u8], ad: &[u8], nonce: u64, key: &[u8; KEY_LEN]) -> bool {
    open_slices(dst, src, ad, Nonce::Counter(nonce), key)
}

/// Seals in place: `buf` holds the plaintext followed by `AUTHTAG_LEN`
/// bytes of room, which receive the tag. False if `buf` is too short.
pub(crate) fn chacha20poly1305_encrypt_in_place(buf: &mut [u8], ad: &[u8], nonce: u64, key: &[u8; KEY_LEN]) -> bool {
    let Some(len) = buf.len().checked_sub(AUTHTAG_LEN) else {
        return false;
    };
    let ptr = buf.as_mut_ptr();
    // SAFETY: `ptr` is valid for reads and writes of `len + AUTHTAG_LEN`
    // bytes; source and destination are the same buffer.
    unsafe { seal(ptr, ptr, len, ad, Nonce::Counter(nonce), key) };
    true
}

/// Opens in place: `buf` holds ciphertext and tag; on success, its first
/// `buf.len() - AUTHTAG_LEN` bytes hold the plaintext. False on a forgery
/// (then `buf` is untouched) or if `buf` is shorter than a tag.
pub(crate) fn chacha20poly1305_decrypt_in_place(buf: &mut [u8], ad: &[u8], nonce: u64, key: &[u8; KEY_LEN]) -> bool {
    if buf.len() < AUTHTAG_LEN {
        return false;
    }
    let ptr = buf.as_mut_ptr();
    // SAFETY: `ptr` is valid for reads and writes of `buf.len()` bytes, at
    // least a tag; source and destination are the same buffer.
    unsafe { open(ptr, ptr, buf.len(), ad, Nonce::Counter(nonce), key) }
}

/// XChaCha20-Poly1305 sealing of `src` into `dst` (`AUTHTAG_LEN` longer).
pub(crate) fn xchacha20poly1305_encrypt(
    dst: &mut [u8],
    src: &[u8],
    ad: &[u8],
    nonce: &[u8; XNONCE_LEN],
    key: &[u8; KEY_LEN],
) -> bool {
    seal_slices(dst, src, ad, Nonce::Extended(nonce), key)
}

/// XChaCha20-Poly1305 opening of `src` into `dst` (`AUTHTAG_LEN` shorter).
pub(crate) fn xchacha20poly1305_decrypt(
    dst: &mut [u8],
    src: &[u8],
    ad: &[u8],
    nonce: &[u8; XNONCE_LEN],
    key: &[u8; KEY_LEN],
) -> bool {
    open_slices(dst, src, ad, Nonce::Extended(nonce), key)
}

/// A random key for HalfSipHash (`hsiphash_key_t`): a fast keyed hash for
/// hash tables whose keys an attacker chooses; not a MAC.
pub(crate) struct HsiphashKey(bindings::hsiphash_key_t);

impl HsiphashKey {
    pub(crate) fn random() -> Self {
        let mut key: bindings::hsiphash_key_t = pin_init::zeroed();
        for word in key.key.iter_mut() {
            let mut w = [0u8; core::mem::size_of::<usize>()];
            random::fill(&mut w);
            *word = usize::from_ne_bytes(w) as _;
        }
        HsiphashKey(key)
    }

    /// `hsiphash_2u32`.
    pub(crate) fn hash_2u32(&self, a: u32, b: u32) -> u32 {
        // SAFETY: `self.0` is a valid key.
        unsafe { bindings::hsiphash_2u32(a, b, &self.0) }
    }

    /// `hsiphash_3u32`.
    pub(crate) fn hash_3u32(&self, a: u32, b: u32, c: u32) -> u32 {
        // SAFETY: `self.0` is a valid key.
        unsafe { bindings::hsiphash_3u32(a, b, c, &self.0) }
    }
}
