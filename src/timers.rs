// SPDX-License-Identifier: GPL-2.0

//! Per-peer timers (upstream `timers.c`).
//!
//! - Retransmit the handshake if we don't hear back after `REKEY_TIMEOUT +
//!   jitter` seconds; give up after `MAX_TIMER_HANDSHAKES` tries.
//! - Send a keepalive if we received a packet but sent none for
//!   `KEEPALIVE_TIMEOUT` seconds.
//! - Start a new handshake if we sent a packet but heard nothing back for
//!   `KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter` seconds.
//! - Zero all keys after `REJECT_AFTER_TIME * 3` seconds without new ones.
//! - If enabled, send a keepalive every persistent-keepalive interval.
//!
//! Timers are only armed while the device is up and the peer alive.

use crate::kapi::rcu::{self, RcuArc};
use crate::kapi::random;
use crate::kapi::time::{self, HZ};
use crate::kapi::timer::{Timer, TimerHandler};
use crate::kapi::work::WorkHandler;
use crate::messages::{
    KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REJECT_AFTER_TIME, REKEY_TIMEOUT,
    REKEY_TIMEOUT_JITTER_MAX_JIFFIES,
};
use crate::noise::{self, NoisePeer};
use crate::peer::Peer;
use crate::{send, socket, wg_debug};
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

/// The timers of a peer, and the state they share.
#[pin_data]
pub(crate) struct Timers {
    #[pin]
    retransmit_handshake: Timer<RetransmitHandshake>,
    #[pin]
    send_keepalive: Timer<SendKeepalive>,
    #[pin]
    new_handshake: Timer<NewHandshake>,
    #[pin]
    zero_key_material: Timer<ZeroKeyMaterial>,
    #[pin]
    persistent_keepalive: Timer<PersistentKeepalive>,
    pub(crate) handshake_attempts: Atomic<u32>,
    need_another_keepalive: Atomic<bool>,
    pub(crate) sent_lastminute_handshake: Atomic<bool>,
}

impl Timers {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Timers {
            retransmit_handshake <- Timer::new(),
            send_keepalive <- Timer::new(),
            new_handshake <- Timer::new(),
            zero_key_material <- Timer::new(),
            persistent_keepalive <- Timer::new(),
            handshake_attempts: Atomic::new(0),
            need_another_keepalive: Atomic::new(false),
            sent_lastminute_handshake: Atomic::new(false),
        })
    }

    /// Disarms the timer that zeroes keys, as nothing is left to zero.
    pub(crate) fn stop_zeroing_keys(&self) {
        self.zero_key_material.delete();
    }

    /// Disarms every timer and waits for running handlers. May sleep.
    pub(crate) fn stop(&self) {
        self.retransmit_handshake.delete_sync();
        self.send_keepalive.delete_sync();
        self.new_handshake.delete_sync();
        self.zero_key_material.delete_sync();
        self.persistent_keepalive.delete_sync();
    }
}

/// Arms `timer` of `peer` for `expires` jiffies, if the device is up and
/// the peer alive (upstream `mod_peer_timer`).
fn arm<H: TimerHandler<Owner = Peer>>(peer: &RcuArc<Peer>, timer: &Timer<H>, expires: u64) {
    // The peer's removal waits for a grace period after marking it dead, and
    // only then stops the timers: checking under RCU makes that enough.
    let _guard = rcu::read_lock();
    if peer.tunnel.netdev().is_running() && !peer.is_dead() {
        timer.modify(peer, expires);
    }
}

fn jitter() -> u64 {
    u64::from(random::below(REKEY_TIMEOUT_JITTER_MAX_JIFFIES as u32))
}

fn after(seconds: u64) -> u64 {
    time::jiffies() + seconds * HZ
}

struct RetransmitHandshake;

impl TimerHandler for RetransmitHandshake {
    type Owner = Peer;

    fn run(peer: RcuArc<Peer>) {
        let timers = &peer.timers;
        let dev = peer.tunnel.netdev().name();
        let attempts = timers.handshake_attempts.load(Relaxed);
        if attempts > MAX_TIMER_HANDSHAKES as u32 {
            wg_debug!(
                "{}: Handshake for peer {} ({}) did not complete after {} attempts, giving up\n",
                dev,
                peer.internal_id,
                socket::endpoint_of(&peer),
                MAX_TIMER_HANDSHAKES + 2
            );
            timers.send_keepalive.delete();
            // Drop what waited for a session, and do not try again until
            // something new is sent.
            peer.purge_staged();
            // Destroy whatever is left of the partial exchange later.
            if !timers.zero_key_material.is_pending() {
                arm(&peer, &timers.zero_key_material, after(REJECT_AFTER_TIME * 3));
            }
        } else {
            timers.handshake_attempts.store(attempts + 1, Relaxed);
            wg_debug!(
                "{}: Handshake for peer {} ({}) did not complete after {} seconds, retrying (try {})\n",
                dev,
                peer.internal_id,
                socket::endpoint_of(&peer),
                REKEY_TIMEOUT,
                attempts + 2
            );
            // The source address may be what is wrong.
            socket::clear_peer_endpoint_src(&peer);
            send::send_queued_handshake_initiation(&peer, true);
        }
    }
}

struct SendKeepalive;

impl TimerHandler for SendKeepalive {
    type Owner = Peer;

    fn run(peer: RcuArc<Peer>) {
        send::send_keepalive(&peer);
        if peer.timers.need_another_keepalive.xchg(false, Relaxed) {
            arm(&peer, &peer.timers.send_keepalive, after(KEEPALIVE_TIMEOUT));
        }
    }
}

struct NewHandshake;

impl TimerHandler for NewHandshake {
    type Owner = Peer;

    fn run(peer: RcuArc<Peer>) {
        wg_debug!(
            "{}: Retrying handshake with peer {} ({}) because we stopped hearing back after {} seconds\n",
            peer.tunnel.netdev().name(),
            peer.internal_id,
            socket::endpoint_of(&peer),
            KEEPALIVE_TIMEOUT + REKEY_TIMEOUT
        );
        // The source address may be what is wrong.
        socket::clear_peer_endpoint_src(&peer);
        send::send_queued_handshake_initiation(&peer, false);
    }
}

struct ZeroKeyMaterial;

impl TimerHandler for ZeroKeyMaterial {
    type Owner = Peer;

    fn run(peer: RcuArc<Peer>) {
        // Clearing takes the handshake mutex: not from softirq.
        let _guard = rcu::read_lock();
        if !peer.is_dead() {
            peer.clear_keys_work.queue(&peer, &peer.tunnel.handshake_send_wq);
        }
    }
}

/// Zeroes a peer's keys in process context, for [`ZeroKeyMaterial`].
pub(crate) struct ClearKeysWork;

impl WorkHandler for ClearKeysWork {
    type Owner = Peer;

    fn run(peer: RcuArc<Peer>) {
        wg_debug!(
            "{}: Zeroing out all keys for peer {} ({}), since we haven't received a new one in {} seconds\n",
            peer.tunnel.netdev().name(),
            peer.internal_id,
            socket::endpoint_of(&peer),
            REJECT_AFTER_TIME * 3
        );
        noise::handshake_clear(&*peer);
        peer.noise.keypairs.clear();
    }
}

struct PersistentKeepalive;

impl TimerHandler for PersistentKeepalive {
    type Owner = Peer;

    fn run(peer: RcuArc<Peer>) {
        if peer.persistent_keepalive_interval() != 0 {
            send::send_keepalive(&peer);
        }
    }
}

/// After an authenticated data packet is sent.
pub(crate) fn data_sent(peer: &RcuArc<Peer>) {
    let timer = &peer.timers.new_handshake;
    if !timer.is_pending() {
        arm(peer, timer, after(KEEPALIVE_TIMEOUT + REKEY_TIMEOUT) + jitter());
    }
}

/// After an authenticated data packet is received.
pub(crate) fn data_received(peer: &RcuArc<Peer>) {
    if peer.tunnel.netdev().is_running() {
        let timer = &peer.timers.send_keepalive;
        if !timer.is_pending() {
            arm(peer, timer, after(KEEPALIVE_TIMEOUT));
        } else {
            peer.timers.need_another_keepalive.store(true, Relaxed);
        }
    }
}

/// After any authenticated packet is sent: keepalive, data or handshake.
pub(crate) fn any_authenticated_packet_sent(peer: &Peer) {
    peer.timers.send_keepalive.delete();
}

/// After any authenticated packet is received: keepalive, data or handshake.
pub(crate) fn any_authenticated_packet_received(peer: &Peer) {
    peer.timers.new_handshake.delete();
}

/// After a handshake initiation is sent.
pub(crate) fn handshake_initiated(peer: &RcuArc<Peer>) {
    arm(peer, &peer.timers.retransmit_handshake, after(REKEY_TIMEOUT) + jitter());
}

/// After a handshake response is received and processed, or when the first
/// data packet confirms a session we responded to.
pub(crate) fn handshake_complete(peer: &Peer) {
    peer.timers.retransmit_handshake.delete();
    peer.timers.handshake_attempts.store(0, Relaxed);
    peer.timers.sent_lastminute_handshake.store(false, Relaxed);
    peer.last_handshake.store(time::real_time_ns(), Relaxed);
}

/// After an ephemeral key is created: before sending a response, or after
/// receiving one.
pub(crate) fn session_derived(peer: &RcuArc<Peer>) {
    arm(peer, &peer.timers.zero_key_material, after(REJECT_AFTER_TIME * 3));
}

/// Before any authenticated packet is sent, or after one is received.
pub(crate) fn any_authenticated_packet_traversal(peer: &RcuArc<Peer>) {
    let interval = peer.persistent_keepalive_interval();
    if interval != 0 {
        arm(peer, &peer.timers.persistent_keepalive, after(u64::from(interval)));
    }
}
