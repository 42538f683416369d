// SPDX-License-Identifier: GPL-2.0

//! MACs and cookies: WireGuard's defence against handshake floods
//! (upstream `cookie.c`).
//!
//! Every handshake message ends with two MACs:
//!
//! - mac1 = BLAKE2s-128 keyed with HASH("mac1----" || receiver's public
//!   key), over the message up to mac1. Anyone who knows the receiver's
//!   public key can make it; the receiver drops messages without it before
//!   any Curve25519 work.
//! - mac2 = BLAKE2s-128 keyed with a cookie, over the message up to mac2;
//!   zero without a cookie. A device under load answers a message whose
//!   mac2 is not valid with a cookie reply instead of processing it.
//!
//! The cookie is a MAC of the sender's source address and port under a
//! secret that the device renews every `COOKIE_SECRET_MAX_AGE` seconds. The
//! reply carries it sealed with XChaCha20-Poly1305 under HASH("cookie--" ||
//! the device's public key), with the mac1 of the message it answers as
//! associated data, so that only the host that sent that message (and
//! knows our public key) can use it; the peer keeps it for
//! `COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY` seconds.
//!
//! [`CookieChecker`] is the device's side (validate, create replies);
//! [`PeerCookie`] is the peer's side (add MACs, consume replies). Both are
//! used from handshake workers and netlink only (process context), behind
//! mutexes held for a few hash computations. The source address comes from
//! the data path as a [`SourceAddr`].

use crate::kapi::{
    crypto::{self, Blake2s, Secret, KEY_LEN},
    global::GlobalRef,
    random,
    time,
};
use crate::messages::{
    CookieReply, COOKIE_LEN, COOKIE_NONCE_LEN, COOKIE_SECRET_LATENCY, COOKIE_SECRET_MAX_AGE, MESSAGE_COOKIE_LEN,
    MESSAGE_MACS_LEN, NOISE_HASH_LEN, NOISE_PUBLIC_KEY_LEN, NOISE_SYMMETRIC_KEY_LEN,
};
use crate::noise::{DeviceNoise, NoisePeer};
use crate::ratelimiter::Ratelimiter;
use kernel::{new_mutex, prelude::*, sync::Mutex};

/// Where a handshake message came from: the outer source address and UDP
/// port (host byte order), as the data path read them from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceAddr {
    V4 { addr: [u8; 4], port: u16 },
    V6 { addr: [u8; 16], port: u16 },
}

/// What the MACs of a handshake message show (upstream `cookie_mac_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MacState {
    /// Bad mac1: drop.
    InvalidMac,
    /// Good mac1; mac2 bad or not checked. Under load: answer with a
    /// cookie reply; otherwise process.
    ValidMacButNoCookie,
    /// Good mac1 and mac2, but the source exceeds its rate: drop.
    ValidMacWithCookieButRatelimited,
    /// Good mac1 and mac2, within the rate: process.
    ValidMacWithCookie,
}

const MAC1_KEY_LABEL: &[u8; 8] = b"mac1----";
const COOKIE_KEY_LABEL: &[u8; 8] = b"cookie--";

/// HASH(label || public key): the mac1 key and the cookie sealing key.
fn precompute_key(public: &[u8; NOISE_PUBLIC_KEY_LEN], label: &[u8; 8]) -> [u8; NOISE_SYMMETRIC_KEY_LEN] {
    let mut key = [0; NOISE_SYMMETRIC_KEY_LEN];
    crypto::blake2s(&[label, public], &mut key);
    key
}

/// Splits a handshake message into what mac1 covers and the two MACs.
fn split_macs(message: &[u8]) -> Option<(&[u8], &[u8; COOKIE_LEN], &[u8; COOKIE_LEN])> {
    let (body, macs) = message.split_last_chunk::<MESSAGE_MACS_LEN>()?;
    let (mac1, mac2) = macs.split_first_chunk::<COOKIE_LEN>()?;
    Some((body, mac1, mac2.first_chunk::<COOKIE_LEN>()?))
}

fn compute_mac1(body: &[u8], key: &[u8; NOISE_SYMMETRIC_KEY_LEN]) -> [u8; COOKIE_LEN] {
    let mut mac = [0; COOKIE_LEN];
    crypto::blake2s_keyed(key, body, &mut mac);
    mac
}

/// mac2 covers what mac1 covers, and mac1.
fn compute_mac2(body: &[u8], mac1: &[u8; COOKIE_LEN], cookie: &Secret<COOKIE_LEN>) -> [u8; COOKIE_LEN] {
    let mut mac = [0; COOKIE_LEN];
    let mut ctx = Blake2s::<COOKIE_LEN>::new_keyed(cookie.expose());
    ctx.update(body).update(mac1);
    ctx.finalize(&mut mac);
    mac
}

/// The device's side, under its mutex.
struct CheckerState {
    secret: Secret<NOISE_HASH_LEN>,
    secret_birthdate: u64,
    cookie_encryption_key: [u8; NOISE_SYMMETRIC_KEY_LEN],
    message_mac1_key: [u8; NOISE_SYMMETRIC_KEY_LEN],
}

/// The device's cookie checker (upstream `struct cookie_checker`).
#[pin_data]
pub(crate) struct CookieChecker {
    #[pin]
    state: Mutex<CheckerState>,
    /// The handshake ratelimiter, shared by all devices.
    ratelimiter: GlobalRef<Ratelimiter>,
}

impl CookieChecker {
    /// A checker without keys (the device has no identity yet) and a fresh
    /// secret. Takes a reference to the shared ratelimiter. May sleep.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(CookieChecker {
            state <- new_mutex!(init!(CheckerState {
                secret <- Secret::init_with(|secret| random::fill_wait(secret)),
                secret_birthdate: time::coarse_boottime_ns(),
                cookie_encryption_key: [0; NOISE_SYMMETRIC_KEY_LEN],
                message_mac1_key: [0; NOISE_SYMMETRIC_KEY_LEN],
            })),
            ratelimiter: Ratelimiter::get()?,
        })
    }

    /// Derives the keys from the device's public key (none: zero keys,
    /// which nothing matches in practice). May sleep.
    pub(crate) fn set_public_key(&self, public: Option<&[u8; NOISE_PUBLIC_KEY_LEN]>) {
        let mut state = self.state.lock();
        match public {
            Some(public) => {
                state.cookie_encryption_key = precompute_key(public, COOKIE_KEY_LABEL);
                state.message_mac1_key = precompute_key(public, MAC1_KEY_LABEL);
            }
            None => {
                state.cookie_encryption_key = [0; NOISE_SYMMETRIC_KEY_LEN];
                state.message_mac1_key = [0; NOISE_SYMMETRIC_KEY_LEN];
            }
        }
    }

    /// The cookie of `src` into `cookie`: a MAC of its address and port
    /// under the secret, which is renewed first if it is too old.
    fn make_cookie(&self, src: &SourceAddr, cookie: &mut Secret<COOKIE_LEN>) {
        let mut state = self.state.lock();
        if time::has_expired(state.secret_birthdate, COOKIE_SECRET_MAX_AGE) {
            state.secret_birthdate = time::coarse_boottime_ns();
            random::fill_wait(state.secret.expose_mut());
        }
        let mut ctx = Blake2s::<COOKIE_LEN>::new_keyed(state.secret.expose());
        let port = match src {
            SourceAddr::V4 { addr, port } => {
                ctx.update(addr);
                port
            }
            SourceAddr::V6 { addr, port } => {
                ctx.update(addr);
                port
            }
        };
        ctx.update(&port.to_be_bytes());
        ctx.finalize(cookie.expose_mut());
    }

    /// Checks the MACs of a handshake `message` (initiation or response)
    /// from `src` in namespace `net` (any identifier of it, see
    /// [`Ratelimiter::allow`]). mac2 and the rate are only checked with
    /// `check_cookie` (the device is under load). Process context.
    pub(crate) fn validate(&self, message: &[u8], src: &SourceAddr, net: u64, check_cookie: bool) -> MacState {
        let Some((body, mac1, mac2)) = split_macs(message) else {
            return MacState::InvalidMac;
        };
        let mac1_key = self.state.lock().message_mac1_key;
        if crypto::memneq(&compute_mac1(body, &mac1_key), mac1) {
            return MacState::InvalidMac;
        }
        if !check_cookie {
            return MacState::ValidMacButNoCookie;
        }
        let mut cookie = Secret::zeroed();
        self.make_cookie(src, &mut cookie);
        if crypto::memneq(&compute_mac2(body, mac1, &cookie), mac2) {
            return MacState::ValidMacButNoCookie;
        }
        if !self.ratelimiter.allow(src, net) {
            return MacState::ValidMacWithCookieButRatelimited;
        }
        MacState::ValidMacWithCookie
    }

    /// The cookie reply to `message` (a handshake message from `src` whose
    /// sender index is `sender_index`); `None` if `message` is too short to
    /// carry MACs. Process context; may sleep.
    pub(crate) fn create_reply(
        &self,
        message: &[u8],
        sender_index: u32,
        src: &SourceAddr,
    ) -> Option<[u8; MESSAGE_COOKIE_LEN]> {
        let (_, mac1, _) = split_macs(message)?;
        let mut reply = CookieReply {
            receiver_index: sender_index,
            nonce: [0; COOKIE_NONCE_LEN],
            encrypted_cookie: [0; crate::messages::noise_encrypted_len(COOKIE_LEN)],
        };
        random::fill_wait(&mut reply.nonce);
        let mut cookie = Secret::zeroed();
        self.make_cookie(src, &mut cookie);
        let key = self.state.lock().cookie_encryption_key;
        crypto::xchacha20poly1305_encrypt(&mut reply.encrypted_cookie, cookie.expose(), mac1, &reply.nonce, &key)
            .then(|| reply.to_bytes())
    }
}

/// A peer's side (upstream `struct cookie`), behind a mutex in the peer.
pub(crate) struct PeerCookie {
    birthdate: u64,
    is_valid: bool,
    cookie: Secret<COOKIE_LEN>,
    have_sent_mac1: bool,
    last_mac1_sent: [u8; COOKIE_LEN],
    cookie_decryption_key: [u8; KEY_LEN],
    message_mac1_key: [u8; KEY_LEN],
}

impl PeerCookie {
    /// The keys for talking to the peer whose public key is `remote_static`.
    pub(crate) fn new(remote_static: &[u8; NOISE_PUBLIC_KEY_LEN]) -> Self {
        PeerCookie {
            birthdate: 0,
            is_valid: false,
            cookie: Secret::zeroed(),
            have_sent_mac1: false,
            last_mac1_sent: [0; COOKIE_LEN],
            cookie_decryption_key: precompute_key(remote_static, COOKIE_KEY_LABEL),
            message_mac1_key: precompute_key(remote_static, MAC1_KEY_LABEL),
        }
    }

    /// Writes mac1, and mac2 if we hold a fresh cookie, into the last
    /// `MESSAGE_MACS_LEN` bytes of `message`, and remembers mac1 for the
    /// cookie reply this may draw.
    pub(crate) fn add_macs(&mut self, message: &mut [u8]) {
        let Some((body, macs)) = message.split_last_chunk_mut::<MESSAGE_MACS_LEN>() else {
            return;
        };
        let mac1 = compute_mac1(body, &self.message_mac1_key);
        self.last_mac1_sent = mac1;
        self.have_sent_mac1 = true;
        let mac2 = if self.is_valid
            && !time::has_expired(self.birthdate, COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY)
        {
            compute_mac2(body, &mac1, &self.cookie)
        } else {
            [0; COOKIE_LEN]
        };
        let (mac1_out, mac2_out) = macs.split_at_mut(COOKIE_LEN);
        mac1_out.copy_from_slice(&mac1);
        mac2_out.copy_from_slice(&mac2);
    }

    /// Takes the cookie out of a reply to the last message we sent; false
    /// if we sent none since the last cookie, or the reply does not
    /// authenticate.
    pub(crate) fn consume_reply(&mut self, reply: &CookieReply) -> bool {
        if !self.have_sent_mac1 {
            return false;
        }
        let mut cookie = Secret::<COOKIE_LEN>::zeroed();
        if !crypto::xchacha20poly1305_decrypt(
            cookie.expose_mut(),
            &reply.encrypted_cookie,
            &self.last_mac1_sent,
            &reply.nonce,
            &self.cookie_decryption_key,
        ) {
            return false;
        }
        self.cookie.assign(&cookie);
        self.birthdate = time::coarse_boottime_ns();
        self.is_valid = true;
        self.have_sent_mac1 = false;
        true
    }
}

/// Consumes a cookie reply for the handshake or keypair its receiver index
/// names. False if there is none, or the reply is not for our last message
/// (upstream logs "Could not decrypt invalid cookie response"). Process
/// context; may sleep.
pub(crate) fn consume_reply<P: NoisePeer>(dev: &DeviceNoise<P>, reply: &CookieReply) -> bool {
    match dev.index.lookup_peer(reply.receiver_index) {
        Some(peer) => peer.noise().cookie.lock().consume_reply(reply),
        None => false,
    }
}
