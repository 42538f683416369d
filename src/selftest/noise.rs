// SPDX-License-Identifier: GPL-2.0

//! Self-tests of the protocol core: Noise handshakes between two in-kernel
//! devices (each with the other as a peer, through the index and
//! public-key tables and the MACs), transport data both ways, keypair
//! rotation over three handshakes, the refusals (replay, flood, low-order
//! points, wrong preshared key, our own key, identity changes), cookies
//! under load, and a handshake from fixed keys compared byte for byte with
//! vectors from an independent implementation (`tests/noise-vectors.py`).

use super::{check, Outcome};
use crate::cookie::{self, MacState, SourceAddr};
use crate::kapi::{
    crypto::{self, Secret, KEY_LEN},
    random,
    rcu::{self, RcuArc},
    time::{self, NSEC_PER_SEC},
};
use crate::messages::{
    CookieReply, DataHeader, Initiation, MessageType, Response, INITIATIONS_PER_SECOND, MESSAGE_DATA_HEADER_LEN,
    NOISE_AUTHTAG_LEN, NOISE_TIMESTAMP_LEN,
};
use crate::noise::{self, DeviceNoise, HandshakeState, NoisePeer, PeerNoise, StaticIdentity};
use kernel::{
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
    time::{delay::fsleep, Delta},
};

/// The namespace identifier the ratelimiter sees in these tests.
const NET: u64 = 0x0015_e1f7;

/// A device: its name for debug lines and its protocol state.
#[pin_data]
pub(super) struct TestDevice {
    name: &'static str,
    public: [u8; KEY_LEN],
    #[pin]
    pub(super) noise: DeviceNoise<TestPeer>,
}

/// A peer of a [`TestDevice`].
#[pin_data]
pub(super) struct TestPeer {
    #[pin]
    noise: PeerNoise<TestPeer>,
    dev: Arc<TestDevice>,
    id: u64,
    dead: Atomic<bool>,
}

impl NoisePeer for TestPeer {
    fn noise(&self) -> &PeerNoise<Self> {
        &self.noise
    }

    fn device_noise(&self) -> &DeviceNoise<Self> {
        &self.dev.noise
    }

    fn internal_id(&self) -> u64 {
        self.id
    }

    fn dev_name(&self) -> impl kernel::fmt::Display + '_ {
        self.dev.name
    }

    fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }
}

fn identity(private: &[u8; KEY_LEN]) -> StaticIdentity {
    let mut identity = StaticIdentity::new();
    identity.set_private_key(&Secret::copy_from(private));
    identity
}

fn new_device(name: &'static str, private: &[u8; KEY_LEN]) -> Result<Arc<TestDevice>> {
    let identity = identity(private);
    let public = identity.keys().map_or([0; KEY_LEN], |(_, public)| *public);
    let dev = Arc::pin_init(try_pin_init!(TestDevice { name, public, noise <- DeviceNoise::new() }), GFP_KERNEL)?;
    dev.noise.set_identity(&identity)?;
    Ok(dev)
}

fn add_peer(dev: &Arc<TestDevice>, id: u64, public: &[u8; KEY_LEN], psk: Option<&Secret<KEY_LEN>>) -> Result<RcuArc<TestPeer>> {
    let peer = RcuArc::pin_init(
        try_pin_init!(TestPeer {
            noise <- PeerNoise::new(*public, psk),
            dev: dev.clone(),
            id,
            dead: Atomic::new(false),
        }),
        GFP_KERNEL,
    )?;
    dev.noise.peers.insert(&peer)?;
    Ok(peer)
}

/// What the data path does to remove a peer: out of the public-key table,
/// dead, a grace period, then the handshake and keypairs go (which breaks
/// the references between peer and device).
fn remove_peer(peer: &RcuArc<TestPeer>) {
    peer.dev.noise.peers.remove(peer);
    peer.dead.store(true, Relaxed);
    kernel::sync::rcu::synchronize_rcu();
    noise::handshake_clear(&**peer);
    peer.noise.keypairs.clear();
}

/// Two devices, each with the other as its peer.
pub(super) struct Pair {
    pub(super) a: Arc<TestDevice>,
    pub(super) b: Arc<TestDevice>,
    /// B, as A's peer.
    pub(super) a_b: RcuArc<TestPeer>,
    /// A, as B's peer.
    pub(super) b_a: RcuArc<TestPeer>,
}

impl Pair {
    fn new(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN], psk: Option<&Secret<KEY_LEN>>) -> Result<Pair> {
        let (a, b) = (new_device("wgtest0", a)?, new_device("wgtest1", b)?);
        let a_b = add_peer(&a, 1, &b.public, psk)?;
        let b_a = add_peer(&b, 2, &a.public, psk)?;
        Ok(Pair { a, b, a_b, b_a })
    }

    pub(super) fn random(psk: Option<&Secret<KEY_LEN>>) -> Result<Pair> {
        Pair::new(Secret::<KEY_LEN>::random().expose(), Secret::<KEY_LEN>::random().expose(), psk)
    }

    /// Removes both peers; their entries must be gone from every table.
    pub(super) fn teardown(self) -> Outcome {
        remove_peer(&self.a_b);
        remove_peer(&self.b_a);
        check(
            self.a.noise.index.len() == 0
                && self.b.noise.index.len() == 0
                && self.a.noise.peers.len() == 0
                && self.b.noise.peers.len() == 0,
            "teardown leaves table entries",
        )
    }
}

fn src(n: u8) -> SourceAddr {
    SourceAddr::V4 { addr: [192, 0, 2, n], port: 51820 }
}

/// The handshake message `message`, received by `dev` from `from` when not
/// under load: its MACs, then its type.
fn receive_handshake(dev: &TestDevice, message: &[u8], kind: MessageType) -> Outcome {
    check(MessageType::of(message) == Some(kind), "message type")?;
    check(
        dev.noise.cookie_checker.validate(message, &src(1), NET, false) == MacState::ValidMacButNoCookie,
        "mac1",
    )
}

/// A full handshake: `init` (a peer of the initiator) initiates, `resp` (the
/// initiator, as the responder's peer) responds; both derive keypairs.
fn handshake(init: &RcuArc<TestPeer>, resp: &RcuArc<TestPeer>) -> Outcome {
    // Initiations to the same responder must be further apart than the
    // flood rule's gap, and than the timestamps' granularity.
    past_flood_gap();
    let message = noise::create_initiation(init).ok_or("create initiation")?;
    check(init.noise.handshake_state() == HandshakeState::CreatedInitiation, "initiator state")?;
    receive_handshake(&resp.dev, &message, MessageType::HandshakeInitiation)?;
    let initiation = Initiation::from_bytes(&message).ok_or("parse initiation")?;
    let peer = noise::consume_initiation(&resp.dev.noise, &initiation).ok_or("consume initiation")?;
    check(RcuArc::ptr_eq(&peer, resp), "initiation from the wrong peer")?;
    check(resp.noise.handshake_state() == HandshakeState::ConsumedInitiation, "responder state")?;
    let message = noise::create_response(&peer).ok_or("create response")?;
    check(noise::begin_session(&peer), "responder session")?;

    receive_handshake(&init.dev, &message, MessageType::HandshakeResponse)?;
    let response = Response::from_bytes(&message).ok_or("parse response")?;
    let peer = noise::consume_response(&init.dev.noise, &response).ok_or("consume response")?;
    check(RcuArc::ptr_eq(&peer, init), "response from the wrong peer")?;
    check(noise::begin_session(&peer), "initiator session")?;
    check(
        init.noise.handshake_state() == HandshakeState::Zeroed
            && resp.noise.handshake_state() == HandshakeState::Zeroed,
        "handshake not forgotten",
    )
}

/// A data message from `from` (with its current keypair) carrying
/// `payload`, padded as the data path would.
fn seal(from: &TestPeer, payload: &[u8]) -> core::result::Result<KVec<u8>, &'static str> {
    let keypair = from.noise.keypairs.current_arc(&rcu::read_lock()).ok_or("no current keypair")?;
    let nonce = keypair.reserve_nonces(1).ok_or("no nonce")?;
    let header = DataHeader { receiver_index: keypair.remote_index(), counter: nonce };
    let mut packet = KVec::new();
    let fail = |_| "allocation";
    packet.extend_from_slice(&header.to_bytes(), GFP_KERNEL).map_err(fail)?;
    packet.extend_from_slice(payload, GFP_KERNEL).map_err(fail)?;
    packet.extend_from_slice(&[0; NOISE_AUTHTAG_LEN], GFP_KERNEL).map_err(fail)?;
    let body = packet.get_mut(MESSAGE_DATA_HEADER_LEN..).ok_or("short")?;
    check(keypair.encrypt_in_place(body, nonce), "encrypt")?;
    Ok(packet)
}

/// Receives a data message on `dev` as the data path would: keypair by
/// index, validity, decryption, replay window, confirmation. Returns the
/// peer, whether the packet confirmed a new session, and the plaintext.
fn open<'a>(dev: &TestDevice, packet: &'a mut [u8]) -> core::result::Result<(RcuArc<TestPeer>, bool, &'a [u8]), &'static str> {
    let header = DataHeader::from_packet(packet).ok_or("data header")?;
    let keypair = dev.noise.index.lookup_keypair(header.receiver_index, &rcu::read_lock()).cloned();
    let keypair = keypair.ok_or("no keypair for the index")?;
    check(keypair.can_receive(), "keypair cannot receive")?;
    let body = packet.get_mut(MESSAGE_DATA_HEADER_LEN..).ok_or("short")?;
    check(keypair.decrypt_in_place(body, header.counter), "decrypt")?;
    check(keypair.validate_counter(header.counter), "replayed counter")?;
    check(keypair.replay_max() > header.counter, "replay window maximum")?;
    let confirmed = keypair.peer().noise.keypairs.received_with(&keypair);
    let len = body.len() - NOISE_AUTHTAG_LEN;
    Ok((keypair.peer().clone(), confirmed, body.get(..len).ok_or("short")?))
}

/// Sends `payload` from `from` to the device of its peer; checks what
/// arrives and whether it confirmed a session.
fn transport(from: &RcuArc<TestPeer>, to: &RcuArc<TestPeer>, payload: &[u8], confirms: bool) -> Outcome {
    let mut packet = seal(from, payload)?;
    let (peer, confirmed, plain) = open(&to.dev, &mut packet)?;
    check(RcuArc::ptr_eq(&peer, to), "data from the wrong peer")?;
    check(plain == payload, "payload corrupted")?;
    check(confirmed == confirms, "session confirmation")
}

/// The local index of `peer`'s current keypair.
fn current_index(peer: &TestPeer) -> Option<u32> {
    peer.noise.keypairs.current(&rcu::read_lock()).map(|k| k.local_index())
}

/// Handshake, data both ways, replays, nonce batches, rotations.
fn sessions() -> Result<Outcome> {
    let psk = Secret::<KEY_LEN>::random();
    let pair = Pair::random(None)?;
    let (a_b, b_a) = (&pair.a_b, &pair.b_a);
    // One side configured at creation, the other later, as netlink may.
    a_b.noise.set_preshared_key(&psk);
    b_a.noise.set_preshared_key(&psk);
    let outcome = (|| -> Outcome {
        check(a_b.noise.with_preshared_key(|key| !crypto::memneq(key.expose(), psk.expose())), "preshared key")?;
        handshake(a_b, b_a)?;

        // The initiator sends at once; the responder waits in next.
        let guard = rcu::read_lock();
        let ka = a_b.noise.keypairs.current_arc(&guard).ok_or("initiator has no keypair")?;
        let kb = b_a.dev.noise.index.lookup_keypair(ka.remote_index(), &guard).cloned().ok_or("no index")?;
        drop(guard);
        check(ka.i_am_the_initiator() && !kb.i_am_the_initiator(), "roles")?;
        check(b_a.noise.keypairs.is_next(&kb) && current_index(b_a).is_none(), "responder keypair not next")?;
        check(kb.remote_index() == ka.local_index(), "indices")?;
        check(
            ka.sending_key() == kb.receiving_key() && ka.receiving_key() == kb.sending_key(),
            "transport keys differ",
        )?;
        check(ka.sending_key() != ka.receiving_key(), "one key both ways")?;
        check(
            !ka.should_rekey_after_send() && !ka.should_rekey_after_receive() && !kb.should_rekey_after_send(),
            "fresh keys want a rekey",
        )?;

        // The first data packet confirms the responder's session.
        let mut packet = seal(a_b, b"ping")?;
        let mut replay = KVec::new();
        replay.extend_from_slice(&packet, GFP_KERNEL).map_err(|_| "allocation")?;
        let (_, confirmed, plain) = open(&pair.b, &mut packet)?;
        check(confirmed && plain == b"ping", "first packet")?;
        check(current_index(b_a) == Some(kb.local_index()), "responder did not rotate")?;
        check(open(&pair.b, &mut replay).err() == Some("replayed counter"), "replay accepted")?;
        transport(b_a, a_b, b"pong", false)?;
        transport(a_b, b_a, b"ping again", false)?;

        // One atomic operation reserves a batch.
        let first = ka.reserve_nonces(16).ok_or("batch")?;
        check(ka.reserve_nonces(1) == Some(first + 16), "batch of nonces")?;
        let mut tampered = seal(a_b, b"tampered")?;
        if let Some(byte) = tampered.get_mut(MESSAGE_DATA_HEADER_LEN) {
            *byte ^= 1;
        }
        check(open(&pair.b, &mut tampered).err() == Some("decrypt"), "forgery accepted")?;
        transport(a_b, b_a, b"after a gap", false)?;

        // Second handshake, the other way: B's new session sends at once,
        // A's waits in next, its old one stays current.
        let a_first = current_index(a_b).ok_or("no keypair")?;
        handshake(b_a, a_b)?;
        check(current_index(a_b) == Some(a_first), "responder rotated before confirmation")?;
        check(b_a.noise.keypairs.is_previous(&kb), "initiator's old keypair not previous")?;
        transport(b_a, a_b, b"rotated", true)?;
        check(a_b.noise.keypairs.is_previous(&ka), "old keypair not previous")?;
        check(pair.a.noise.index.lookup_keypair(a_first, &rcu::read_lock()).is_some(), "previous not found")?;
        transport(a_b, b_a, b"rotated back", false)?;

        // Third: A's first keypair, now previous, goes from its index.
        handshake(a_b, b_a)?;
        check(pair.a.noise.index.lookup_keypair(a_first, &rcu::read_lock()).is_none(), "old keypair still indexed")?;
        check(!a_b.noise.keypairs.is_previous(&ka), "old keypair still previous")?;
        transport(a_b, b_a, b"third", true)?;
        transport(b_a, a_b, b"third back", false)?;

        // Expiry (vmfork): no more sending on the current keypair.
        noise::expire_current_keypairs(&**a_b);
        check(seal(a_b, b"expired").err() == Some("no nonce"), "expired keypair still sends")?;
        // But it still receives.
        transport(b_a, a_b, b"expired, receiving", false)?;
        Ok(())
    })();
    let teardown = pair.teardown();
    Ok(outcome.and(teardown))
}

/// Consumes `message` at `to`'s device; whether it was accepted.
fn consume(to: &TestPeer, message: &[u8]) -> bool {
    Initiation::from_bytes(message).and_then(|i| noise::consume_initiation(&to.dev.noise, &i)).is_some()
}

/// An initiation with a given timestamp (fresh ephemeral and index).
fn initiation_at(from: &RcuArc<TestPeer>, timestamp: [u8; NOISE_TIMESTAMP_LEN]) -> Option<[u8; 148]> {
    let mut ephemeral = Secret::zeroed();
    crypto::curve25519_generate_secret(&mut ephemeral);
    noise::create_initiation_with(from, &ephemeral, timestamp, random::u32)
}

fn timestamp(n: u32) -> [u8; NOISE_TIMESTAMP_LEN] {
    let mut t = [0; NOISE_TIMESTAMP_LEN];
    t[..8].copy_from_slice(&0x4000_0000_6000_0000u64.to_be_bytes());
    t[8..].copy_from_slice(&(n << 24).to_be_bytes());
    t
}

/// Sleeps past the flood rule's gap.
fn past_flood_gap() {
    fsleep(Delta::from_millis((2 * 1000 / INITIATIONS_PER_SECOND) as i64));
}

/// Replays, floods, low-order points, our own key, wrong preshared keys,
/// identity changes.
fn refusals() -> Result<Outcome> {
    let pair = Pair::random(None)?;
    let own = add_peer(&pair.a, 3, &pair.a.public.clone(), None)?;
    let outcome = (|| -> Outcome {
        let (a_b, b_a) = (&pair.a_b, &pair.b_a);
        // Replay: the same initiation twice.
        let first = initiation_at(a_b, timestamp(1)).ok_or("create initiation")?;
        check(consume(b_a, &first), "initiation refused")?;
        past_flood_gap();
        check(!consume(b_a, &first), "replayed initiation accepted")?;
        // An older timestamp, too.
        let older = initiation_at(a_b, timestamp(0)).ok_or("create initiation")?;
        check(!consume(b_a, &older), "older initiation accepted")?;

        // Flood: a newer initiation right after an accepted one. How soon
        // "right after" is depends on the machine: a run counts if both
        // were consumed within the gap.
        let gap = NSEC_PER_SEC / INITIATIONS_PER_SECOND;
        let mut decided = false;
        for n in 0..20u32 {
            past_flood_gap();
            let (x, y) = (
                initiation_at(a_b, timestamp(2 + 2 * n)).ok_or("create initiation")?,
                initiation_at(a_b, timestamp(3 + 2 * n)).ok_or("create initiation")?,
            );
            let start = time::coarse_boottime_ns();
            check(consume(b_a, &x), "initiation refused after the gap")?;
            let second = consume(b_a, &y);
            if time::coarse_boottime_ns() - start < gap {
                check(!second, "flood accepted")?;
                decided = true;
                break;
            }
        }
        check(decided, "flood rule: never two initiations within 20 ms (machine too slow)")?;

        // A low-order ephemeral: all-zero DH.
        let mut bad = initiation_at(a_b, timestamp(100)).ok_or("create initiation")?;
        if let Some(e) = bad.get_mut(8..40) {
            e.fill(0);
        }
        past_flood_gap();
        check(!consume(b_a, &bad), "low-order ephemeral accepted")?;
        check(!consume(b_a, &bad[..147]), "short initiation accepted")?;

        // A peer with our own public key gets no handshake.
        check(noise::create_initiation(&own).is_none(), "handshake with ourselves")?;

        // The responder changes its key: initiations to its old one fail.
        let message = noise::create_initiation(a_b).ok_or("create initiation")?;
        pair.b.noise.set_identity(&identity(Secret::<KEY_LEN>::random().expose())).map_err(|_| "set identity")?;
        check(!consume(b_a, &message), "initiation to an old key accepted")?;

        // The initiator changes its key after initiating (the same key, as
        // a new snapshot): the response is refused, and expiring clears the
        // handshake.
        let pair2 = Pair::random(None).map_err(|_| "allocation")?;
        let outcome = (|| -> Outcome {
            let message = noise::create_initiation(&pair2.a_b).ok_or("create initiation")?;
            check(consume(&pair2.b_a, &message), "initiation refused")?;
            let response = noise::create_response(&pair2.b_a).ok_or("create response")?;
            let a_private = identity(Secret::<KEY_LEN>::random().expose());
            pair2.a.noise.set_identity(&a_private).map_err(|_| "set identity")?;
            let response = Response::from_bytes(&response).ok_or("parse response")?;
            check(noise::consume_response(&pair2.a.noise, &response).is_none(), "response after a key change")?;
            noise::expire_current_keypairs(&*pair2.a_b);
            check(pair2.a_b.noise.handshake_state() == HandshakeState::Zeroed, "expired handshake")
        })();
        let teardown = pair2.teardown();
        outcome.and(teardown)?;

        // Different preshared keys: the response does not open.
        let pair3 = Pair::random(None).map_err(|_| "allocation")?;
        pair3.a_b.noise.set_preshared_key(&Secret::random());
        let outcome = (|| -> Outcome {
            let message = noise::create_initiation(&pair3.a_b).ok_or("create initiation")?;
            check(consume(&pair3.b_a, &message), "initiation refused")?;
            let response = noise::create_response(&pair3.b_a).ok_or("create response")?;
            let response = Response::from_bytes(&response).ok_or("parse response")?;
            check(noise::consume_response(&pair3.a.noise, &response).is_none(), "response with another psk")?;
            check(!noise::begin_session(&pair3.a_b), "session without a response")
        })();
        let teardown = pair3.teardown();
        outcome.and(teardown)
    })();
    remove_peer(&own);
    let teardown = pair.teardown();
    Ok(outcome.and(teardown))
}

/// mac1, mac2, cookie replies and the ratelimiter under load.
fn cookies() -> Result<Outcome> {
    let pair = Pair::random(None)?;
    let outcome = (|| -> Outcome {
        let (a_b, checker) = (&pair.a_b, &pair.b.noise.cookie_checker);
        let message = noise::create_initiation(a_b).ok_or("create initiation")?;
        let initiation = Initiation::from_bytes(&message).ok_or("parse initiation")?;
        check(initiation.macs.mac2 == [0; 16], "mac2 without a cookie")?;
        check(checker.validate(&message, &src(1), NET, false) == MacState::ValidMacButNoCookie, "mac1")?;
        let mut forged = message;
        if let Some(byte) = forged.get_mut(20) {
            *byte ^= 1;
        }
        check(checker.validate(&forged, &src(1), NET, false) == MacState::InvalidMac, "bad mac1 accepted")?;
        check(checker.validate(&message, &src(1), NET, true) == MacState::ValidMacButNoCookie, "mac2 accepted")?;

        // Under load: a cookie reply, which only the initiator can open.
        let reply = checker.create_reply(&message, initiation.sender_index, &src(1)).ok_or("create reply")?;
        check(MessageType::of(&reply) == Some(MessageType::HandshakeCookie), "reply type")?;
        let reply = CookieReply::from_bytes(&reply).ok_or("parse reply")?;
        check(reply.receiver_index == initiation.sender_index, "reply index")?;
        let mut wrong = reply.clone();
        wrong.receiver_index ^= 1;
        check(!cookie::consume_reply(&pair.a.noise, &wrong), "reply to an unknown index")?;
        check(!cookie::consume_reply(&pair.b.noise, &reply), "reply consumed by the wrong device")?;
        check(cookie::consume_reply(&pair.a.noise, &reply), "reply refused")?;
        check(!cookie::consume_reply(&pair.a.noise, &reply), "reply consumed twice")?;

        // The next initiation carries mac2, valid from that address only.
        let message = noise::create_initiation(a_b).ok_or("create initiation")?;
        check(Initiation::from_bytes(&message).is_some_and(|i| i.macs.mac2 != [0; 16]), "no mac2")?;
        check(checker.validate(&message, &src(1), NET + 1, true) == MacState::ValidMacWithCookie, "mac2")?;
        check(
            checker.validate(&message, &src(2), NET + 1, true) == MacState::ValidMacButNoCookie,
            "mac2 from another address",
        )?;
        check(
            checker.validate(&message, &SourceAddr::V4 { addr: [192, 0, 2, 1], port: 1 }, NET + 1, true)
                == MacState::ValidMacButNoCookie,
            "mac2 from another port",
        )?;
        // Past the burst, the ratelimiter steps in.
        let mut limited = false;
        for _ in 0..20 {
            match checker.validate(&message, &src(1), NET + 1, true) {
                MacState::ValidMacWithCookieButRatelimited => limited = true,
                MacState::ValidMacWithCookie => {}
                _ => return Err("mac2 under load"),
            }
        }
        check(limited, "no ratelimiting")?;
        // The cookie of another source answers another message.
        check(
            checker.create_reply(&message[..20], 0, &src(1)).is_none(),
            "reply to a message without macs",
        )
    })();
    let teardown = pair.teardown();
    Ok(outcome.and(teardown))
}

/// A byte string in hexadecimal, for failure reports.
struct Hex<'a>(&'a [u8]);

impl kernel::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        for b in self.0 {
            core::fmt::Write::write_fmt(f, format_args!("{:02x}", b))?;
        }
        Ok(())
    }
}

fn same(got: &[u8], expected: &[u8], what: &'static str) -> Outcome {
    if got != expected {
        pr_err!("noise fixed-vector self-test {}: got {}\n", what, Hex(got));
        pr_err!("noise fixed-vector self-test {}: expected {}\n", what, Hex(expected));
        return Err(what);
    }
    Ok(())
}

/// 32 consecutive bytes from `start`, as the script's `bytes(range(...))`.
fn run(start: u8) -> [u8; KEY_LEN] {
    core::array::from_fn(|i| start.wrapping_add(i as u8))
}

/// The handshake of `tests/noise-vectors.py`, from the same inputs.
fn fixed_vectors() -> Result<Outcome> {
    let psk = Secret::copy_from(&run(0x80));
    let pair = Pair::new(&run(0x00), &run(0x20), Some(&psk))?;
    let outcome = (|| -> Outcome {
        let (i, r) = (&pair.a_b, &pair.b_a);
        let mut t = [0; NOISE_TIMESTAMP_LEN];
        t[..8].copy_from_slice(&(0x400000000000000au64 + 1767225600).to_be_bytes());
        t[8..].copy_from_slice(&(3u32 << 24).to_be_bytes());
        let initiation =
            noise::create_initiation_with(i, &Secret::copy_from(&run(0x40)), t, || VEC_I_I).ok_or("create initiation")?;
        same(&initiation, &VEC_INITIATION, "initiation")?;
        check(consume(r, &initiation), "consume initiation")?;
        let response =
            noise::create_response_with(r, &Secret::copy_from(&run(0x60)), || VEC_I_R).ok_or("create response")?;
        same(&response, &VEC_RESPONSE, "response")?;
        check(noise::begin_session(r), "responder session")?;
        let response = Response::from_bytes(&response).ok_or("parse response")?;
        noise::consume_response(&pair.a.noise, &response).ok_or("consume response")?;
        check(noise::begin_session(i), "initiator session")?;
        // What the handshake had, the keys it made and the keys it was
        // given must not outlive it in the stack frames it used.
        let mut left = false;
        for (secret, what) in [
            (&VEC_T_SEND_I, "initiator sending key"),
            (&VEC_T_RECV_I, "initiator receiving key"),
            (&run(0x40), "initiator ephemeral key"),
            (&run(0x60), "responder ephemeral key"),
            (&run(0x80), "preshared key"),
            (&run(0x00), "initiator static key"),
            (&run(0x20), "responder static key"),
        ] {
            if crypto::stack_residue(secret) {
                pr_err!("noise self-test: the {} is left on the stack\n", what);
                left = true;
            }
        }
        check(!left, "secrets left on the stack")?;

        let ki = i.noise.keypairs.current_arc(&rcu::read_lock()).ok_or("no keypair")?;
        let kr = pair.b.noise.index.lookup_keypair(VEC_I_R, &rcu::read_lock()).cloned().ok_or("no keypair")?;
        same(ki.sending_key(), &VEC_T_SEND_I, "initiator sending key")?;
        same(ki.receiving_key(), &VEC_T_RECV_I, "initiator receiving key")?;
        same(kr.receiving_key(), &VEC_T_SEND_I, "responder receiving key")?;
        same(kr.sending_key(), &VEC_T_RECV_I, "responder sending key")?;

        let mut keepalive = seal(i, &[])?;
        same(&keepalive, &VEC_DATA0, "keepalive")?;
        let mut data = seal(i, b"WireGuard vector")?;
        same(&data, &VEC_DATA1, "data")?;
        check(open(&pair.b, &mut keepalive)?.2.is_empty(), "keepalive payload")?;
        check(open(&pair.b, &mut data)?.2 == b"WireGuard vector", "data payload")
    })();
    let teardown = pair.teardown();
    Ok(outcome.and(teardown))
}

/// The key derivation alone: what it hashed must not stay below it on the
/// stack. Checked right after it returns, before any other call could
/// overwrite its callees' frames (lib/crypto's BLAKE2s keeps each block's
/// words in its frame, and HKDF hashes its first output to make the second).
fn kdf_residue() -> Result<Outcome> {
    let (mut first, mut second) = (Secret::zeroed(), Secret::zeroed());
    crypto::kdf(&run(0xa0), &run(0xc0), [&mut first, &mut second]);
    let left = crypto::stack_residue(first.expose()) || crypto::stack_residue(second.expose());
    Ok(check(!left, "kdf left its output on the stack"))
}

/// Runs every test; prints `noise self-tests: pass`, or what failed.
pub(crate) fn selftest() -> bool {
    let mut success = true;
    for (name, test) in [
        ("fixed-vector", fixed_vectors as fn() -> Result<Outcome>),
        ("kdf-residue", kdf_residue),
        ("handshake", sessions),
        ("refusal", refusals),
        ("cookie", cookies),
    ] {
        success &= super::report(format_args!("noise {}", name), test());
    }
    if success {
        pr_info!("noise self-tests: pass\n");
    }
    success
}

/// The indices the vectors use.
const VEC_I_I: u32 = 0x3c2b1a09;
const VEC_I_R: u32 = 0x8f7e6d5c;

/// Decodes a hexadecimal string of `2 * N` digits, at compile time.
const fn hex<const N: usize>(s: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a hex digit"),
        }
    }
    let s = s.as_bytes();
    assert!(s.len() == 2 * N);
    let mut out = [0; N];
    let mut i = 0;
    while i < N {
        out[i] = nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

// Produced by tests/noise-vectors.py (Python hashlib, hmac and the
// `cryptography` package), independently of our implementation.
const VEC_INITIATION: [u8; 148] = hex(concat!(
    "01000000091a2b3c79a631eede1bf9c98f12032cdeadd0e7a079398fc786b88c",
    "c846ec89af85a51af0225eb421886af8f54fb31289d49dcd82b0f6f3279d40d7",
    "cff913fece0c64ad226eef3320755b393b72f16842c8d7ee78a74e9372396282",
    "8cf4ecc183f4dbcd0bc4e450a18d828f8f11af6793b11a7e15560bda693bcfd8",
    "a755c41200000000000000000000000000000000",
));
const VEC_RESPONSE: [u8; 92] = hex(concat!(
    "020000005c6d7e8f091a2b3c675dd574ed7789310b3d2e7681f3790b466c773b",
    "1521fecf36577958371ea52fe2856876460b8537a938a0f6df27b5a7955e6b49",
    "177cedd71ef0582a81db7bb800000000000000000000000000000000",
));
const VEC_T_SEND_I: [u8; 32] = hex(concat!(
    "f26d13be8f8fe7fe36805b47503285e73bcb2fc6fe3ef37834e5f6128ad8cf50",
));
const VEC_T_RECV_I: [u8; 32] = hex(concat!(
    "083bdab92ffb8da7ab5063bb2d96de2b7e09008d8e07bcf96ac25c340a778665",
));
const VEC_DATA0: [u8; 32] = hex(concat!(
    "040000005c6d7e8f0000000000000000c05b5687dc9e973b4033587e96b81434",
));
const VEC_DATA1: [u8; 48] = hex(concat!(
    "040000005c6d7e8f0100000000000000e859f13c86cbf79dd73179c858abd426",
    "9e27e1265bd9692398f12d5e257803be",
));
