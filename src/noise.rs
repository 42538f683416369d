// SPDX-License-Identifier: GPL-2.0

//! The Noise_IKpsk2 handshake and the session keys it derives (upstream
//! `noise.c`, plus `counter_validate` from `receive.c`).
//!
//! ```text
//! <- s
//! ******
//! -> e, es, s, ss, {t}
//! <- e, ee, se, psk, {}
//! ```
//!
//! # Where the state lives
//!
//! - [`DeviceNoise`] (one per device): the static identity as an immutable
//!   snapshot ([`StaticKeys`] in an [`RcuPtr`], replaced whole when the
//!   private key changes), the index table, the public-key table and the
//!   cookie checker.
//! - [`PeerNoise`] (one per peer): the peer's static public key
//!   (immutable), its [`Handshake`] behind a mutex that only process
//!   context takes (handshake workers and netlink), its [`Keypairs`], and
//!   its cookie state.
//! - [`Keypair`] (an [`RcuArc`]): the transport keys of one session, its
//!   sending counter (atomic, reserved in batches), its replay window (a
//!   BH spinlock: it is checked from NAPI), its indices, and a counted
//!   reference to its peer, so that a packet holding its keypair holds its
//!   peer too.
//!
//! The peer type is a parameter, [`NoisePeer`]: whatever embeds a
//! [`PeerNoise`] and can reach its device's [`DeviceNoise`]. So the
//! protocol core knows nothing of the data path, and the self-tests run it
//! with peers of their own.
//!
//! # Static-static DH: computed lazily
//!
//! Upstream precomputes DH(our static, their static) for every peer when the
//! peer is added and again for all peers when the private key changes. We
//! compute it at the first handshake that needs it and cache it in the
//! handshake, tagged with the identity snapshot it was computed from; a new
//! private key publishes a new snapshot, which invalidates every cache at
//! once. Adding 100,000 peers or changing the key of such a device then
//! costs no Curve25519 operation under the configuration lock (100,000 of
//! them take seconds of CPU, minutes under TCG), and a peer that never
//! handshakes never pays for it; the first handshake with a peer pays one
//! more DH than the others. A peer
//! whose public key is our own (or of low order) gets an all-zero result,
//! which every handshake refuses, as upstream.
//!
//! # Identity changes
//!
//! A handshake records the identity snapshot it was computed with and is
//! refused if the device has another one by the time it would commit, so no
//! session is derived from an old private key once the new one is
//! published (upstream holds its identity rwsem across each handshake step
//! for the same effect).

use crate::cookie::{CookieChecker, PeerCookie};
use crate::kapi::{
    crypto::{self, Secret, HASH_LEN, KEY_LEN},
    random,
    rcu::{self, AtomicDrop, Guard, RcuArc, RcuPtr},
    sync::{new_spinlock_bh, SpinLockBh, SpinLockBhGuard},
    time::{self, NSEC_PER_SEC},
};
use crate::messages::{
    noise_encrypted_len, Initiation, Macs, Response, COUNTER_BITS_TOTAL, COUNTER_WINDOW_SIZE,
    INITIATIONS_PER_SECOND, KEEPALIVE_TIMEOUT, MESSAGE_INITIATION_LEN, MESSAGE_RESPONSE_LEN,
    NOISE_PUBLIC_KEY_LEN, NOISE_TIMESTAMP_LEN, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME,
    REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_TIMEOUT,
};
use crate::peerlookup::{IndexTable, PubkeyTable};
use crate::wg_debug;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Mutex,
    },
};

/// What the protocol core needs from a peer.
///
/// Implemented by `peer::Peer`, and by the self-tests' peers.
pub(crate) trait NoisePeer: Send + Sync + Sized + 'static {
    /// This peer's protocol state.
    fn noise(&self) -> &PeerNoise<Self>;
    /// The protocol state of the peer's device.
    fn device_noise(&self) -> &DeviceNoise<Self>;
    /// The peer's number in debug lines (upstream's `internal_id`).
    fn internal_id(&self) -> u64;
    /// The device's name, for debug lines. Any context, softirq included
    /// (a keypair's drop prints it).
    fn dev_name(&self) -> impl kernel::fmt::Display + '_;
    /// Whether the peer is being removed: no keypair may be added once
    /// this is true (read under RCU; the remover sets it, waits for a grace
    /// period, then clears the keypairs).
    fn is_dead(&self) -> bool;
}

/// The protocol name and WireGuard's identifier, mixed into every handshake.
const HANDSHAKE_NAME: &[u8; 37] = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
const IDENTIFIER_NAME: &[u8; 34] = b"WireGuard v1 zx2c4 Jason@zx2c4.com";

/// Source of `Keypair::internal_id`, shared by all devices as upstream.
static KEYPAIR_COUNTER: Atomic<u64> = Atomic::new(0);

/// The device's static key pair, as handshakes see it: immutable, replaced
/// whole when the private key changes.
struct StaticKeys {
    private: Secret<KEY_LEN>,
    public: [u8; KEY_LEN],
}

/// The device's static Curve25519 key pair, as configured (under the
/// device's config lock); [`DeviceNoise::set_identity`] publishes it.
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

    /// Overwrites this identity with a copy of `other`, which is left to be
    /// wiped when dropped (see [`Secret::assign`]).
    pub(crate) fn assign(&mut self, other: &StaticIdentity) {
        self.private.assign(&other.private);
        self.public = other.public;
        self.has_identity = other.has_identity;
    }

    /// Installs `key`; an all-zero key removes the identity.
    pub(crate) fn set_private_key(&mut self, key: &Secret<KEY_LEN>) {
        let public = crypto::curve25519_generate_public(key);
        let private = self.private.expose_mut();
        private.copy_from_slice(key.expose());
        crypto::curve25519_clamp(private);
        self.public = public.unwrap_or([0; KEY_LEN]);
        self.has_identity = public.is_some();
    }
}

/// The device-wide protocol state.
#[pin_data]
pub(crate) struct DeviceNoise<P: NoisePeer> {
    /// The published identity; empty without a private key.
    identity: RcuPtr<StaticKeys>,
    /// Local index to handshake or keypair (receiving packets).
    #[pin]
    pub(crate) index: IndexTable<P>,
    /// Static public key to peer (consuming initiations).
    #[pin]
    pub(crate) peers: PubkeyTable<P>,
    #[pin]
    pub(crate) cookie_checker: CookieChecker,
}

impl<P: NoisePeer> DeviceNoise<P> {
    /// Empty tables and no identity. Takes a reference to the global
    /// handshake ratelimiter (created with the first device). May sleep.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(DeviceNoise {
            identity: RcuPtr::null(),
            index <- IndexTable::new(),
            peers <- PubkeyTable::new(),
            cookie_checker <- CookieChecker::new(),
        })
    }

    /// Publishes `identity` (or its absence) to handshakes and the cookie
    /// checker. Callers serialise this (the device's config lock), then
    /// expire every peer's current keypairs, as upstream. May sleep.
    pub(crate) fn set_identity(&self, identity: &StaticIdentity) -> Result {
        let keys = match identity.keys() {
            Some((private, public)) => Some(RcuArc::pin_init(
                init!(StaticKeys { private <- Secret::init_with(|k| *k = *private), public: *public }? Error),
                GFP_KERNEL,
            )?),
            None => None,
        };
        self.cookie_checker.set_public_key(keys.as_ref().map(|k| &k.public));
        drop(self.identity.replace(keys));
        Ok(())
    }

    /// A counted reference to the current identity.
    fn identity(&self) -> Option<RcuArc<StaticKeys>> {
        self.identity.get_arc(&rcu::read_lock())
    }
}

/// Where a peer's handshake stands (upstream `noise_handshake_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandshakeState {
    Zeroed,
    CreatedInitiation,
    ConsumedInitiation,
    CreatedResponse,
    ConsumedResponse,
}

/// The running hash and chaining key of a handshake (Noise's symmetric
/// state).
struct SymmetricState {
    chaining_key: Secret<HASH_LEN>,
    hash: Secret<HASH_LEN>,
}

impl SymmetricState {
    fn zeroed() -> Self {
        SymmetricState { chaining_key: Secret::zeroed(), hash: Secret::zeroed() }
    }

    /// The initial state for a handshake with responder `responder_static`.
    fn new(responder_static: &[u8; NOISE_PUBLIC_KEY_LEN]) -> Self {
        let mut s = SymmetricState::zeroed();
        crypto::blake2s(&[HANDSHAKE_NAME], s.chaining_key.expose_mut());
        crypto::blake2s(&[s.chaining_key.expose(), IDENTIFIER_NAME], s.hash.expose_mut());
        s.mix_hash(responder_static);
        s
    }

    /// Overwrites both with copies of `other`'s, which it leaves to be
    /// wiped when dropped (see [`Secret::assign`]).
    fn assign(&mut self, other: &SymmetricState) {
        self.chaining_key.assign(&other.chaining_key);
        self.hash.assign(&other.hash);
    }

    fn mix_hash(&mut self, data: &[u8]) {
        let mut hash = Secret::zeroed();
        crypto::blake2s(&[self.hash.expose(), data], hash.expose_mut());
        self.hash.assign(&hash);
    }

    /// `e` (either side): the ephemeral public key goes into both.
    fn mix_ephemeral(&mut self, ephemeral: &[u8; NOISE_PUBLIC_KEY_LEN]) {
        self.mix_hash(ephemeral);
        self.mix_chaining_key(ephemeral);
    }

    /// Mixes `input` into the chaining key alone.
    fn mix_chaining_key(&mut self, input: &[u8]) {
        let mut chaining_key = Secret::zeroed();
        crypto::kdf(self.chaining_key.expose(), input, [&mut chaining_key]);
        self.chaining_key.assign(&chaining_key);
    }

    /// Mixes `input` into the chaining key and derives the message key into
    /// `key`.
    fn mix_key(&mut self, input: &[u8], key: &mut Secret<KEY_LEN>) {
        let mut chaining_key = Secret::zeroed();
        crypto::kdf(self.chaining_key.expose(), input, [&mut chaining_key, key]);
        self.chaining_key.assign(&chaining_key);
    }

    /// A DH result into the chaining key, the message key into `key`;
    /// `None` for a low-order point.
    fn mix_dh(&mut self, private: &Secret<KEY_LEN>, public: &[u8; KEY_LEN], key: &mut Secret<KEY_LEN>) -> Option<()> {
        let mut shared = Secret::zeroed();
        crypto::curve25519(private, public, &mut shared)?;
        self.mix_key(shared.expose(), key);
        Some(())
    }

    /// As [`Self::mix_dh`], without a message key (`ee`, `se`).
    fn mix_dh_only(&mut self, private: &Secret<KEY_LEN>, public: &[u8; KEY_LEN]) -> Option<()> {
        let mut shared = Secret::zeroed();
        crypto::curve25519(private, public, &mut shared)?;
        self.mix_chaining_key(shared.expose());
        Some(())
    }

    /// `ss` from the cached static-static DH, the message key into `key`;
    /// refused if it is zero.
    fn mix_static_static(&mut self, static_static: &Secret<KEY_LEN>, key: &mut Secret<KEY_LEN>) -> Option<()> {
        if static_static.is_zero() {
            return None;
        }
        self.mix_key(static_static.expose(), key);
        Some(())
    }

    /// `psk`: mixes the preshared key into both, the message key into `key`.
    fn mix_psk(&mut self, psk: &Secret<KEY_LEN>, key: &mut Secret<KEY_LEN>) {
        let mut chaining_key = Secret::zeroed();
        let mut temp_hash = Secret::zeroed();
        crypto::kdf(self.chaining_key.expose(), psk.expose(), [&mut chaining_key, &mut temp_hash, key]);
        self.chaining_key.assign(&chaining_key);
        self.mix_hash(temp_hash.expose());
    }

    /// Seals `src` with the hash as associated data (nonce 0: each key seals
    /// one message), then mixes the ciphertext into the hash.
    fn encrypt(&mut self, dst: &mut [u8], src: &[u8], key: &Secret<KEY_LEN>) -> Option<()> {
        crypto::chacha20poly1305_encrypt(dst, src, self.hash.expose(), 0, key.expose()).then_some(())?;
        self.mix_hash(dst);
        Some(())
    }

    fn decrypt(&mut self, dst: &mut [u8], src: &[u8], key: &Secret<KEY_LEN>) -> Option<()> {
        crypto::chacha20poly1305_decrypt(dst, src, self.hash.expose(), 0, key.expose()).then_some(())?;
        self.mix_hash(src);
        Some(())
    }
}

/// A peer's handshake in progress (upstream `struct noise_handshake`),
/// behind [`PeerNoise`]'s mutex.
struct Handshake {
    state: HandshakeState,
    /// When we last accepted an initiation (for the flood rule).
    last_initiation_consumption: u64,
    /// The identity the handshake in progress uses.
    identity: Option<RcuArc<StaticKeys>>,
    /// DH(our static, their static), all-zero if refused, and the identity
    /// it was computed with.
    static_static: Secret<KEY_LEN>,
    static_static_identity: Option<RcuArc<StaticKeys>>,
    ephemeral_private: Secret<KEY_LEN>,
    remote_ephemeral: [u8; NOISE_PUBLIC_KEY_LEN],
    preshared_key: Secret<KEY_LEN>,
    symmetric: SymmetricState,
    /// The newest TAI64N timestamp accepted from the peer (replay rule).
    latest_timestamp: [u8; NOISE_TIMESTAMP_LEN],
    remote_index: u32,
    /// Our entry in the index table, while we have one.
    local_index: Option<u32>,
}

impl Handshake {
    /// A handshake that has not begun, with the peer's preshared key
    /// copied in place.
    fn new(preshared_key: Option<&Secret<KEY_LEN>>) -> impl Init<Self> + '_ {
        init!(Handshake {
            state: HandshakeState::Zeroed,
            last_initiation_consumption: 0,
            identity: None,
            static_static: Secret::zeroed(),
            static_static_identity: None,
            ephemeral_private: Secret::zeroed(),
            remote_ephemeral: [0; NOISE_PUBLIC_KEY_LEN],
            preshared_key <- Secret::init_with(|k| {
                if let Some(psk) = preshared_key {
                    k.copy_from_slice(psk.expose());
                }
            }),
            symmetric: SymmetricState::zeroed(),
            latest_timestamp: [0; NOISE_TIMESTAMP_LEN],
            remote_index: 0,
            local_index: None,
        })
    }

    fn state(&self) -> HandshakeState {
        self.state
    }

    /// Forgets the handshake in progress (upstream `handshake_zero`); the
    /// caller deals with the index entry.
    fn zero(&mut self) {
        self.ephemeral_private.wipe();
        self.remote_ephemeral = [0; NOISE_PUBLIC_KEY_LEN];
        self.symmetric = SymmetricState::zeroed();
        self.remote_index = 0;
        self.identity = None;
        self.state = HandshakeState::Zeroed;
    }

    /// DH(our static, their static) for `identity`, computed now if the
    /// cache is for another identity.
    fn static_static(
        &mut self,
        identity: &RcuArc<StaticKeys>,
        remote_static: &[u8; KEY_LEN],
    ) -> &Secret<KEY_LEN> {
        let cached = matches!(&self.static_static_identity, Some(id) if RcuArc::ptr_eq(id, identity));
        if !cached {
            // A peer with our own public key, or of low order: zero, which
            // every handshake refuses.
            if identity.public == *remote_static
                || crypto::curve25519(&identity.private, remote_static, &mut self.static_static).is_none()
            {
                self.static_static.wipe();
            }
            self.static_static_identity = Some(identity.clone());
        }
        &self.static_static
    }

    /// Moves our index-table entry to a fresh random index (upstream
    /// `wg_index_hashtable_insert`, which unhashes the entry first).
    fn reindex<P: NoisePeer>(&mut self, peer: &RcuArc<P>, pick: impl FnMut() -> u32) -> Option<u32> {
        let index = &peer.device_noise().index;
        if let Some(old) = self.local_index.take() {
            index.remove_handshake(old, peer);
        }
        // A removed peer's handshake is cleared once, under this lock, after
        // the peer is marked dead and a grace period has passed. An entry
        // made after that (by a handshake work or worker still running)
        // would never be removed, and would keep the peer, and with it the
        // device, alive for good.
        if peer.is_dead() {
            return None;
        }
        let new = index.insert_handshake(peer, pick).ok()?;
        self.local_index = Some(new);
        Some(new)
    }
}

/// A peer's protocol state, embedded in the peer.
#[pin_data]
pub(crate) struct PeerNoise<P: NoisePeer> {
    remote_static: [u8; NOISE_PUBLIC_KEY_LEN],
    /// Only process context takes it: handshake workers and netlink.
    #[pin]
    handshake: Mutex<Handshake>,
    #[pin]
    pub(crate) keypairs: Keypairs<P>,
    /// Only process context takes it, never with `handshake` held.
    #[pin]
    pub(crate) cookie: Mutex<PeerCookie>,
}

impl<P: NoisePeer> PeerNoise<P> {
    pub(crate) fn new(
        remote_static: [u8; NOISE_PUBLIC_KEY_LEN],
        preshared_key: Option<&Secret<KEY_LEN>>,
    ) -> impl PinInit<Self, Error> + '_ {
        let cookie = PeerCookie::new(&remote_static);
        try_pin_init!(PeerNoise {
            remote_static,
            handshake <- new_mutex!(Handshake::new(preshared_key)),
            keypairs <- Keypairs::new(),
            cookie <- new_mutex!(cookie),
        })
    }

    pub(crate) fn remote_static(&self) -> &[u8; NOISE_PUBLIC_KEY_LEN] {
        &self.remote_static
    }

    /// May sleep.
    pub(crate) fn set_preshared_key(&self, key: &Secret<KEY_LEN>) {
        self.handshake.lock().preshared_key.assign(key);
    }

    /// Calls `f` with the preshared key, for get-device. May sleep.
    #[inline]
    pub(crate) fn with_preshared_key<R>(&self, f: impl FnOnce(&Secret<KEY_LEN>) -> R) -> R {
        f(&self.handshake.lock().preshared_key)
    }

    /// Where the handshake stands. May sleep.
    pub(crate) fn handshake_state(&self) -> HandshakeState {
        self.handshake.lock().state()
    }
}

/// The TAI64N timestamp of now, with the nanoseconds rounded down to a
/// power of two below the smallest gap the flood rule allows, so that the
/// timestamp does not leak a precise clock.
fn tai64n_now() -> [u8; NOISE_TIMESTAMP_LEN] {
    const GRANULE: i64 = 1 << (63 - (NSEC_PER_SEC / INITIATIONS_PER_SECOND).leading_zeros());
    let (sec, nsec) = time::real_time();
    let nsec = nsec & !(GRANULE - 1);
    let mut out = [0; NOISE_TIMESTAMP_LEN];
    out[..8].copy_from_slice(&0x400000000000000au64.wrapping_add(sec as u64).to_be_bytes());
    out[8..].copy_from_slice(&(nsec as u32).to_be_bytes());
    out
}

/// Creates a handshake initiation to `peer` with a fresh ephemeral key, the
/// current time and a fresh random index; with mac1 and mac2. `None` without
/// an identity, or for a peer we refuse (our own key, low order). Process
/// context; may sleep.
pub(crate) fn create_initiation<P: NoisePeer>(peer: &RcuArc<P>) -> Option<[u8; MESSAGE_INITIATION_LEN]> {
    // Before any lock: this may wait for the RNG to be seeded.
    let mut ephemeral = Secret::zeroed();
    crypto::curve25519_generate_secret(&mut ephemeral);
    create_initiation_with(peer, &ephemeral, tai64n_now(), random::u32)
}

/// [`create_initiation`] with the ephemeral key, the timestamp and the
/// index source given (the self-tests give fixed ones).
pub(crate) fn create_initiation_with<P: NoisePeer>(
    peer: &RcuArc<P>,
    ephemeral_private: &Secret<KEY_LEN>,
    timestamp: [u8; NOISE_TIMESTAMP_LEN],
    pick_index: impl FnMut() -> u32,
) -> Option<[u8; MESSAGE_INITIATION_LEN]> {
    let noise = peer.noise();
    let identity = peer.device_noise().identity()?;
    let mut hs = noise.handshake.lock();
    let mut sym = SymmetricState::new(&noise.remote_static);
    // e
    let ephemeral = crypto::curve25519_generate_public(ephemeral_private)?;
    sym.mix_ephemeral(&ephemeral);
    // es
    let mut key = Secret::zeroed();
    sym.mix_dh(ephemeral_private, &noise.remote_static, &mut key)?;
    // s
    let mut encrypted_static = [0; noise_encrypted_len(NOISE_PUBLIC_KEY_LEN)];
    sym.encrypt(&mut encrypted_static, &identity.public, &key)?;
    // ss
    sym.mix_static_static(hs.static_static(&identity, &noise.remote_static), &mut key)?;
    // {t}
    let mut encrypted_timestamp = [0; noise_encrypted_len(NOISE_TIMESTAMP_LEN)];
    sym.encrypt(&mut encrypted_timestamp, &timestamp, &key)?;

    let sender_index = hs.reindex(peer, pick_index)?;
    hs.symmetric.assign(&sym);
    hs.ephemeral_private.assign(ephemeral_private);
    hs.identity = Some(identity);
    hs.state = HandshakeState::CreatedInitiation;
    drop(hs);

    let mut message = Initiation {
        sender_index,
        unencrypted_ephemeral: ephemeral,
        encrypted_static,
        encrypted_timestamp,
        macs: Macs::default(),
    }
    .to_bytes();
    noise.cookie.lock().add_macs(&mut message);
    Some(message)
}

/// Consumes an initiation (whose macs the caller checked): finds the peer
/// by the static key it carries, checks the timestamp (newer than any
/// before it: no replay) and the flood rule (no two accepted within
/// 1/`INITIATIONS_PER_SECOND` s), and records the handshake in that peer.
/// Returns the peer. Process context; may sleep.
pub(crate) fn consume_initiation<P: NoisePeer>(dev: &DeviceNoise<P>, src: &Initiation) -> Option<RcuArc<P>> {
    let identity = dev.identity()?;
    let mut sym = SymmetricState::new(&identity.public);
    let e = &src.unencrypted_ephemeral;
    // e
    sym.mix_ephemeral(e);
    // es
    let mut key = Secret::zeroed();
    sym.mix_dh(&identity.private, e, &mut key)?;
    // s
    let mut s = [0; NOISE_PUBLIC_KEY_LEN];
    sym.decrypt(&mut s, &src.encrypted_static, &key)?;
    // Which peer are we talking to?
    let peer = dev.peers.lookup(&s)?;
    let noise = peer.noise();
    let mut hs = noise.handshake.lock();
    // Refused if the private key changed since we used it above.
    if !dev.identity.is(&identity) {
        return None;
    }
    // ss
    sym.mix_static_static(hs.static_static(&identity, &noise.remote_static), &mut key)?;
    // {t}
    let mut t = [0; NOISE_TIMESTAMP_LEN];
    sym.decrypt(&mut t, &src.encrypted_timestamp, &key)?;

    let replay_attack = t <= hs.latest_timestamp;
    let now = time::coarse_boottime_ns();
    let flood_attack =
        hs.last_initiation_consumption.wrapping_add(NSEC_PER_SEC / INITIATIONS_PER_SECOND) as i64 > now as i64;
    if replay_attack || flood_attack {
        return None;
    }

    hs.remote_ephemeral = *e;
    hs.latest_timestamp = t;
    hs.symmetric.assign(&sym);
    hs.remote_index = src.sender_index;
    if (hs.last_initiation_consumption.wrapping_sub(now) as i64) < 0 {
        hs.last_initiation_consumption = now;
    }
    hs.identity = Some(identity);
    hs.state = HandshakeState::ConsumedInitiation;
    drop(hs);
    Some(peer)
}

/// Creates the response to the initiation `peer` consumed last, with a
/// fresh ephemeral key and index; with mac1 and mac2. Process context; may
/// sleep.
pub(crate) fn create_response<P: NoisePeer>(peer: &RcuArc<P>) -> Option<[u8; MESSAGE_RESPONSE_LEN]> {
    let mut ephemeral = Secret::zeroed();
    crypto::curve25519_generate_secret(&mut ephemeral);
    create_response_with(peer, &ephemeral, random::u32)
}

/// [`create_response`] with the ephemeral key and index source given.
pub(crate) fn create_response_with<P: NoisePeer>(
    peer: &RcuArc<P>,
    ephemeral_private: &Secret<KEY_LEN>,
    pick_index: impl FnMut() -> u32,
) -> Option<[u8; MESSAGE_RESPONSE_LEN]> {
    let noise = peer.noise();
    let mut hs = noise.handshake.lock();
    if hs.state != HandshakeState::ConsumedInitiation {
        return None;
    }
    let mut sym = SymmetricState::zeroed();
    sym.assign(&hs.symmetric);
    // e
    let ephemeral = crypto::curve25519_generate_public(ephemeral_private)?;
    sym.mix_ephemeral(&ephemeral);
    // ee
    sym.mix_dh_only(ephemeral_private, &hs.remote_ephemeral)?;
    // se
    sym.mix_dh_only(ephemeral_private, &noise.remote_static)?;
    // psk
    let mut key = Secret::zeroed();
    sym.mix_psk(&hs.preshared_key, &mut key);
    // {}
    let mut encrypted_nothing = [0; noise_encrypted_len(0)];
    sym.encrypt(&mut encrypted_nothing, &[], &key)?;

    let sender_index = hs.reindex(peer, pick_index)?;
    hs.symmetric.assign(&sym);
    hs.ephemeral_private.assign(ephemeral_private);
    hs.state = HandshakeState::CreatedResponse;
    let receiver_index = hs.remote_index;
    drop(hs);

    let mut message = Response {
        sender_index,
        receiver_index,
        unencrypted_ephemeral: ephemeral,
        encrypted_nothing,
        macs: Macs::default(),
    }
    .to_bytes();
    noise.cookie.lock().add_macs(&mut message);
    Some(message)
}

/// Consumes a response (whose macs the caller checked) to the initiation
/// its receiver index names. Returns the peer. Process context; may sleep.
pub(crate) fn consume_response<P: NoisePeer>(dev: &DeviceNoise<P>, src: &Response) -> Option<RcuArc<P>> {
    let peer = dev.index.lookup_handshake(src.receiver_index)?;
    let noise = peer.noise();
    let mut hs = noise.handshake.lock();
    // The initiation this answers, and still the latest one.
    if hs.state != HandshakeState::CreatedInitiation || hs.local_index != Some(src.receiver_index) {
        return None;
    }
    let identity = hs.identity.clone()?;
    if !dev.identity.is(&identity) {
        return None;
    }
    let mut sym = SymmetricState::zeroed();
    sym.assign(&hs.symmetric);
    let e = &src.unencrypted_ephemeral;
    // e
    sym.mix_ephemeral(e);
    // ee
    sym.mix_dh_only(&hs.ephemeral_private, e)?;
    // se
    sym.mix_dh_only(&identity.private, e)?;
    // psk
    let mut key = Secret::zeroed();
    sym.mix_psk(&hs.preshared_key, &mut key);
    // {}
    sym.decrypt(&mut [], &src.encrypted_nothing, &key)?;

    hs.remote_ephemeral = *e;
    hs.symmetric.assign(&sym);
    hs.remote_index = src.sender_index;
    hs.state = HandshakeState::ConsumedResponse;
    drop(hs);
    Some(peer)
}

/// Derives the transport keys of a completed handshake (after creating or
/// consuming a response) into a new keypair, which takes over the
/// handshake's index and is added to the peer's keypairs, and forgets the
/// handshake. False if there was no completed handshake, on allocation
/// failure, or if the peer is being removed. Process context; may sleep.
pub(crate) fn begin_session<P: NoisePeer>(peer: &RcuArc<P>) -> bool {
    let noise = peer.noise();
    let index = &peer.device_noise().index;
    let mut hs = noise.handshake.lock();
    let i_am_the_initiator = match hs.state {
        HandshakeState::CreatedResponse => false,
        HandshakeState::ConsumedResponse => true,
        _ => return false,
    };
    let Some(local_index) = hs.local_index else {
        return false;
    };
    let mut first = Secret::zeroed();
    let mut second = Secret::zeroed();
    crypto::kdf(hs.symmetric.chaining_key.expose(), &[], [&mut first, &mut second]);
    let (sending, receiving) = if i_am_the_initiator { (&first, &second) } else { (&second, &first) };
    // Dropped in the RCU callback, as upstream frees its keypairs: one goes
    // per handshake, and handing each to the reaper would wake a worker.
    let Ok(keypair) = RcuArc::pin_init_atomic(
        Keypair::new(peer.clone(), sending, receiving, local_index, hs.remote_index, i_am_the_initiator),
        GFP_KERNEL,
    ) else {
        return false;
    };
    hs.zero();
    // The keypair takes the handshake's index over.
    if !matches!(index.replace_with_keypair(local_index, peer, &keypair), Ok(true)) {
        index.remove_handshake(local_index, peer);
        hs.local_index = None;
        return false;
    }
    hs.local_index = None;
    // Under RCU, so that removal (which sets is_dead, waits for a grace
    // period, then clears the keypairs) cannot miss this keypair.
    let guard = rcu::read_lock();
    if peer.is_dead() {
        drop(guard);
        index.remove_keypair(&keypair);
        return false;
    }
    noise.keypairs.add_new(keypair.clone());
    keypair.owner.announce();
    drop(guard);
    true
}

/// Forgets the handshake in progress and its index entry (peer removal,
/// device down, suspend). Process context; may sleep.
pub(crate) fn handshake_clear<P: NoisePeer>(peer: &P) {
    let mut hs = peer.noise().handshake.lock();
    if let Some(index) = hs.local_index.take() {
        peer.device_noise().index.remove_handshake(index, peer);
    }
    hs.zero();
}

/// Clears the handshake and stops sending with the current and next
/// keypairs, so that the next packet starts a handshake (vmfork, private
/// key change). The caller also resets its handshake rate limit (upstream
/// `wg_noise_reset_last_sent_handshake`). Process context; may sleep.
pub(crate) fn expire_current_keypairs<P: NoisePeer>(peer: &P) {
    handshake_clear(peer);
    peer.noise().keypairs.expire_sending();
}

/// The receiving replay window (RFC 6479): a ring of `COUNTER_BITS_TOTAL`
/// bits, one word of which is always being recycled, so that it accepts
/// each counter at most once within `COUNTER_WINDOW_SIZE` of the largest
/// one seen, and none at or beyond `REJECT_AFTER_MESSAGES`.
pub(crate) struct ReplayCounter {
    /// One more than the largest counter accepted; 0 before the first.
    counter: u64,
    backtrack: [usize; WORDS],
}

const BITS_PER_WORD: u64 = usize::BITS as u64;
const WORDS: usize = (COUNTER_BITS_TOTAL / BITS_PER_WORD) as usize;
const _: () = assert!(WORDS.is_power_of_two());

impl ReplayCounter {
    pub(crate) const fn new() -> Self {
        ReplayCounter { counter: 0, backtrack: [0; WORDS] }
    }

    /// One more than the largest counter accepted so far.
    pub(crate) fn max(&self) -> u64 {
        self.counter
    }

    /// Accepts `their_counter` if it was not seen and is not too old (upstream
    /// `counter_validate`).
    pub(crate) fn validate(&mut self, their_counter: u64) -> bool {
        if self.counter >= REJECT_AFTER_MESSAGES + 1 || their_counter >= REJECT_AFTER_MESSAGES {
            return false;
        }
        // No overflow: both are below REJECT_AFTER_MESSAGES.
        let their_counter = their_counter + 1;
        if COUNTER_WINDOW_SIZE + their_counter < self.counter {
            return false;
        }
        let index = their_counter / BITS_PER_WORD;
        if their_counter > self.counter {
            let index_current = self.counter / BITS_PER_WORD;
            let top = (index - index_current).min(WORDS as u64);
            for i in 1..=top {
                if let Some(word) = self.backtrack.get_mut(((i + index_current) % WORDS as u64) as usize) {
                    *word = 0;
                }
            }
            self.counter = their_counter;
        }
        let bit = 1usize << (their_counter % BITS_PER_WORD);
        match self.backtrack.get_mut((index % WORDS as u64) as usize) {
            Some(word) => {
                let seen = *word & bit != 0;
                *word |= bit;
                !seen
            }
            None => false,
        }
    }
}

/// The transport keys of one session (upstream `struct noise_keypair`).
#[pin_data]
pub(crate) struct Keypair<P: NoisePeer> {
    sending: Secret<KEY_LEN>,
    receiving: Secret<KEY_LEN>,
    sending_valid: Atomic<bool>,
    receiving_valid: Atomic<bool>,
    /// When the keys were derived (`coarse_boottime_ns`).
    birthdate: u64,
    sending_counter: Atomic<u64>,
    /// Checked from NAPI (softirq), hence BH-safe.
    #[pin]
    replay: SpinLockBh<ReplayCounter>,
    /// `replay.max()`, readable without the lock.
    replay_max: Atomic<u64>,
    local_index: u32,
    remote_index: u32,
    i_am_the_initiator: bool,
    owner: Owner<P>,
}

// A keypair's drop wipes its keys, drops a reference to its peer
// (`AtomicDrop`) and may print a line (`printk`, with the device's name,
// which `NoisePeer::dev_name` gives in any context); the lock needs no drop.
impl<P: NoisePeer> AtomicDrop for Keypair<P> {}

/// A keypair's number and peer; logs the keypair's end when dropped, if
/// its creation was logged (the kselftest pairs the lines up).
struct Owner<P: NoisePeer> {
    internal_id: u64,
    peer: RcuArc<P>,
    announced: Atomic<bool>,
}

impl<P: NoisePeer> Owner<P> {
    fn announce(&self) {
        self.announced.store(true, Relaxed);
        wg_debug!(
            "{}: Keypair {} created for peer {}\n",
            self.peer.dev_name(),
            self.internal_id,
            self.peer.internal_id()
        );
    }
}

impl<P: NoisePeer> Drop for Owner<P> {
    fn drop(&mut self) {
        if self.announced.load(Relaxed) {
            wg_debug!(
                "{}: Keypair {} destroyed for peer {}\n",
                self.peer.dev_name(),
                self.internal_id,
                self.peer.internal_id()
            );
        }
    }
}

impl<P: NoisePeer> Keypair<P> {
    fn new<'a>(
        peer: RcuArc<P>,
        sending: &'a Secret<KEY_LEN>,
        receiving: &'a Secret<KEY_LEN>,
        local_index: u32,
        remote_index: u32,
        i_am_the_initiator: bool,
    ) -> impl PinInit<Self, Error> + 'a {
        try_pin_init!(Keypair {
            sending <- Secret::init_with(|k| k.copy_from_slice(sending.expose())),
            receiving <- Secret::init_with(|k| k.copy_from_slice(receiving.expose())),
            sending_valid: Atomic::new(true),
            receiving_valid: Atomic::new(true),
            birthdate: time::coarse_boottime_ns(),
            sending_counter: Atomic::new(0),
            replay <- new_spinlock_bh!(ReplayCounter::new()),
            replay_max: Atomic::new(0),
            local_index,
            remote_index,
            i_am_the_initiator,
            owner: Owner {
                internal_id: KEYPAIR_COUNTER.fetch_add(1, Relaxed) + 1,
                peer,
                announced: Atomic::new(false),
            },
        })
    }

    /// The peer; a reference to the keypair holds one to it.
    pub(crate) fn peer(&self) -> &RcuArc<P> {
        &self.owner.peer
    }

    /// Our index: data packets for this session carry it.
    pub(crate) fn local_index(&self) -> u32 {
        self.local_index
    }

    /// The peer's index: our data packets carry it.
    pub(crate) fn remote_index(&self) -> u32 {
        self.remote_index
    }

    pub(crate) fn i_am_the_initiator(&self) -> bool {
        self.i_am_the_initiator
    }

    pub(crate) fn sending_key(&self) -> &[u8; KEY_LEN] {
        self.sending.expose()
    }

    pub(crate) fn receiving_key(&self) -> &[u8; KEY_LEN] {
        self.receiving.expose()
    }

    /// Reserves `n` consecutive nonces with one atomic operation and returns
    /// the first; `None` (and the keypair stops sending) once the keys are
    /// too old or the counter would reach `REJECT_AFTER_MESSAGES`, or if the
    /// keypair was invalidated. Any context.
    pub(crate) fn reserve_nonces(&self, n: u64) -> Option<u64> {
        if !self.sending_valid.load(Relaxed) {
            return None;
        }
        if time::has_expired(self.birthdate, REJECT_AFTER_TIME) {
            self.sending_valid.store(false, Relaxed);
            return None;
        }
        let first = self.sending_counter.fetch_add(n, Relaxed);
        match first.checked_add(n) {
            Some(end) if end <= REJECT_AFTER_MESSAGES => Some(first),
            _ => {
                self.sending_valid.store(false, Relaxed);
                None
            }
        }
    }

    /// Whether sending on this keypair calls for a new handshake (upstream
    /// `keep_key_fresh` in send.c): too many messages, or, as initiator,
    /// keys older than `REKEY_AFTER_TIME`.
    pub(crate) fn should_rekey_after_send(&self) -> bool {
        self.sending_valid.load(Relaxed)
            && (self.sending_counter.load(Relaxed) > REKEY_AFTER_MESSAGES
                || (self.i_am_the_initiator && time::has_expired(self.birthdate, REKEY_AFTER_TIME)))
    }

    /// Whether receiving on this keypair calls for a new handshake (upstream
    /// `keep_key_fresh` in receive.c): as initiator, keys close to
    /// `REJECT_AFTER_TIME`, before the peer gives up on them.
    pub(crate) fn should_rekey_after_receive(&self) -> bool {
        self.sending_valid.load(Relaxed)
            && self.i_am_the_initiator
            && time::has_expired(self.birthdate, REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT)
    }

    /// Whether packets may still be received on this keypair; marks it
    /// invalid once its keys are too old or its counter too high. Any
    /// context.
    pub(crate) fn can_receive(&self) -> bool {
        if !self.receiving_valid.load(Relaxed) {
            return false;
        }
        if time::has_expired(self.birthdate, REJECT_AFTER_TIME)
            || self.replay_max.load(Relaxed) >= REJECT_AFTER_MESSAGES
        {
            self.receiving_valid.store(false, Relaxed);
            return false;
        }
        true
    }

    /// Encrypts `buf` (the padded packet, then `NOISE_AUTHTAG_LEN` bytes of
    /// room for the tag) in place with `nonce`.
    pub(crate) fn encrypt_in_place(&self, buf: &mut [u8], nonce: u64) -> bool {
        crypto::chacha20poly1305_encrypt_in_place(buf, &[], nonce, self.sending.expose())
    }

    /// Decrypts `buf` (ciphertext and tag) in place; the plaintext is its
    /// first `len - NOISE_AUTHTAG_LEN` bytes. Check the counter afterwards,
    /// in order, with [`Keypair::validate_counter`].
    pub(crate) fn decrypt_in_place(&self, buf: &mut [u8], nonce: u64) -> bool {
        crypto::chacha20poly1305_decrypt_in_place(buf, &[], nonce, self.receiving.expose())
    }

    /// Accepts `nonce` once (the replay window). Any context.
    pub(crate) fn validate_counter(&self, nonce: u64) -> bool {
        let mut replay: SpinLockBhGuard<'_, ReplayCounter> = self.replay.lock();
        let ok = replay.validate(nonce);
        self.replay_max.store(replay.max(), Relaxed);
        ok
    }

    /// One more than the largest counter received (for debug lines).
    pub(crate) fn replay_max(&self) -> u64 {
        self.replay_max.load(Relaxed)
    }

    /// Removes the keypair from the index table, so that no new packet finds
    /// it (upstream `wg_noise_keypair_put(keypair, true)`).
    fn unreference(this: Option<RcuArc<Self>>) {
        if let Some(keypair) = this {
            keypair.peer().device_noise().index.remove_keypair(&keypair);
        }
    }
}

/// A peer's sessions (upstream `struct noise_keypairs`): `current` sends,
/// all three receive. Readers load the slots under RCU from any context;
/// writers rotate them under a BH spinlock. Keypairs hold their peer, so
/// removing a peer must [`Keypairs::clear`] them (after marking it dead and
/// waiting for a grace period), or the two keep each other alive.
#[pin_data]
pub(crate) struct Keypairs<P: NoisePeer> {
    current: RcuPtr<Keypair<P>>,
    previous: RcuPtr<Keypair<P>>,
    /// A responder's newest session, until the first data packet on it
    /// confirms that the initiator has it.
    next: RcuPtr<Keypair<P>>,
    #[pin]
    lock: SpinLockBh<()>,
}

impl<P: NoisePeer> Keypairs<P> {
    fn new() -> impl PinInit<Self> {
        pin_init!(Keypairs {
            current: RcuPtr::null(),
            previous: RcuPtr::null(),
            next: RcuPtr::null(),
            lock <- new_spinlock_bh!(()),
        })
    }

    /// The keypair to send with, valid for the guard's critical section.
    pub(crate) fn current<'g>(&self, guard: &'g Guard) -> Option<&'g Keypair<P>> {
        self.current.get(guard)
    }

    /// A counted reference to the keypair to send with.
    pub(crate) fn current_arc(&self, guard: &Guard) -> Option<RcuArc<Keypair<P>>> {
        self.current.get_arc(guard)
    }

    /// Whether `keypair` is the previous one (for self-tests and debug).
    pub(crate) fn is_previous(&self, keypair: &RcuArc<Keypair<P>>) -> bool {
        self.previous.is(keypair)
    }

    /// Whether `keypair` is the next one (for self-tests and debug).
    pub(crate) fn is_next(&self, keypair: &RcuArc<Keypair<P>>) -> bool {
        self.next.is(keypair)
    }

    /// Installs a new session (upstream `add_new_keypair`).
    fn add_new(&self, new: RcuArc<Keypair<P>>) {
        let _lock = self.lock.lock();
        let guard = rcu::read_lock();
        if new.i_am_the_initiator {
            // We sent an initiation and got the response: the new keys are
            // confirmed and send at once.
            if let Some(next) = self.next.get_arc(&guard) {
                // A responder session never confirmed: it becomes the
                // previous one (this may follow key-compromise
                // impersonation, as upstream notes) and current goes.
                drop(self.next.replace(None));
                let old_previous = self.previous.replace(Some(next));
                Keypair::unreference(self.current.replace(Some(new)));
                Keypair::unreference(old_previous);
            } else {
                let old_previous = self.previous.replace(self.current.get_arc(&guard));
                drop(self.current.replace(Some(new)));
                Keypair::unreference(old_previous);
            }
        } else {
            // We responded: the initiator has not used the keys yet, so
            // they wait in next until the first data packet on them.
            Keypair::unreference(self.next.replace(Some(new)));
            Keypair::unreference(self.previous.replace(None));
        }
    }

    /// Called for each data packet received on `keypair`: the first one on
    /// the next keypair confirms it, which becomes current (upstream
    /// `wg_noise_received_with_keypair`). Returns whether it did, in which
    /// case the caller treats it as a completed handshake. Any context.
    pub(crate) fn received_with(&self, keypair: &Keypair<P>) -> bool {
        let holds = |slot: &RcuPtr<Keypair<P>>, guard: &Guard| {
            slot.get(guard).is_some_and(|k| core::ptr::eq(k, keypair))
        };
        // First without the lock: almost always not the next one.
        if !holds(&self.next, &rcu::read_lock()) {
            return false;
        }
        let _lock = self.lock.lock();
        let guard = rcu::read_lock();
        if !holds(&self.next, &guard) {
            return false;
        }
        let old_previous = self.previous.replace(self.current.get_arc(&guard));
        drop(self.current.replace(self.next.get_arc(&guard)));
        drop(self.next.replace(None));
        Keypair::unreference(old_previous);
        true
    }

    /// Drops all three sessions and their index entries. Any context.
    pub(crate) fn clear(&self) {
        let _lock = self.lock.lock();
        // Next first, so that `received_with` stops promoting it before the
        // others go.
        Keypair::unreference(self.next.replace(None));
        Keypair::unreference(self.previous.replace(None));
        Keypair::unreference(self.current.replace(None));
    }

    /// Stops sending on the current and next keypairs.
    fn expire_sending(&self) {
        let _lock = self.lock.lock();
        let guard = rcu::read_lock();
        for slot in [&self.next, &self.current] {
            if let Some(keypair) = slot.get(&guard) {
                keypair.sending_valid.store(false, Relaxed);
            }
        }
    }
}
