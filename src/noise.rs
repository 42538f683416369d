// SPDX-License-Identifier: GPL-2.0

//! The Noise_IKpsk2 handshake; so far the device's static identity.

use crate::kapi::crypto::{self, Secret, KEY_LEN};

/// The device's static Curve25519 key pair.
pub(crate) struct StaticIdentity {
    /// Stored clamped, as upstream does.
    private: Secret<KEY_LEN>,
    public: [u8; KEY_LEN],
    /// False without a key, or for a key whose public point is zero.
    has_identity: bool,
}

impl StaticIdentity {
    pub(crate) const fn new() -> Self {
        StaticIdentity { private: Secret::zeroed(), public: [0; KEY_LEN], has_identity: false }
    }

    /// The key pair, if the device has one.
    pub(crate) fn keys(&self) -> Option<(&[u8; KEY_LEN], &[u8; KEY_LEN])> {
        self.has_identity.then_some((self.private.expose(), &self.public))
    }

    /// Whether `key` is the stored private key (compared in constant time,
    /// against the clamped form, as upstream).
    pub(crate) fn is_private_key(&self, key: &Secret<KEY_LEN>) -> bool {
        !crypto::memneq(self.private.expose(), key.expose())
    }

    /// Installs `key`; an all-zero key removes the identity.
    pub(crate) fn set_private_key(&mut self, key: &Secret<KEY_LEN>) {
        let public = crypto::curve25519_generate_public(key);
        let private = self.private.expose_mut();
        private.copy_from_slice(key.expose());
        clamp(private);
        self.public = public.unwrap_or([0; KEY_LEN]);
        self.has_identity = public.is_some();
    }
}

/// RFC 7748 clamping of a Curve25519 scalar.
fn clamp(secret: &mut [u8; KEY_LEN]) {
    secret[0] &= 248;
    secret[KEY_LEN - 1] = (secret[KEY_LEN - 1] & 127) | 64;
}
