// SPDX-License-Identifier: GPL-2.0

//! Sending (upstream `send.c`, and the transmit half of `device.c`).
//!
//! `xmit` finds the peer of a packet and stages it (GSO super-packets cut
//! into segments). `send_staged` takes the peer's current keypair, reserves
//! nonces for the whole batch with one atomic add, and hands the batch to
//! the parallel encryption stage ([`queueing`](crate::queueing)). The
//! peer's finished batches leave in order from its CPU, sent by the worker
//! there or by the peer's [`TxWork`].
//!
//! The fast lane: a small packet of a flow with nothing in flight, while
//! other flows fill the pipeline ([`FAST_LANE_MIN_QUEUE`] packets or more),
//! is encrypted in `xmit` and leaves ahead of them (pings, DNS, keystrokes
//! under a bulk transfer), from the peer's CPU like every other. Flows are
//! told apart by their hash, in [`FLOW_CLASSES`] classes; a packet whose
//! class has anything in flight keeps its place, so that no flow is
//! reordered (two flows of a class only lose the fast lane).

use crate::device::{Tunnel, DATA_PACKET_HEAD_ROOM};
use crate::kapi::cpu;
use crate::kapi::netdev::{self, Stat};
use crate::kapi::queue::{InFlight, Packet, PacketState};
use crate::kapi::rcu::{self, RcuArc};
use crate::kapi::skb::{SkBuff, SkbList, SkbMut, SkbQueue};
use crate::kapi::sync::{new_spinlock_bh, SpinLockBh, SpinLockBhGuard};
use crate::kapi::time;
use crate::kapi::work::{DrainHandler, WorkHandler};
use crate::messages::{
    message_data_len, DataHeader, HANDSHAKE_DSCP, MAX_STAGED_PACKETS, MESSAGE_PADDING_MULTIPLE,
    REKEY_TIMEOUT,
};
use crate::noise::{self, Keypair, NoisePeer};
use crate::peer::Peer;
use crate::{queueing, receive, socket, timers, wg_debug_ratelimited};
use kernel::prelude::*;
use kernel::sync::atomic::{Atomic, Relaxed};

/// The flow classes the fast lane tells apart.
const FLOW_CLASSES: usize = 32;
/// The largest packet that may take the fast lane: interactive traffic,
/// cheap to encrypt in the sender's context.
const FAST_LANE_MAX_LEN: usize = 256;
/// How many packets must be in flight before one may overtake them: fewer
/// make a short wait, and the usual lane handles them in batches.
const FAST_LANE_MIN_QUEUE: u32 = 32;

/// The device's transmit path (upstream `wg_xmit`): routes the packet to
/// its peer by the allowed IPs and stages it there.
pub(crate) fn xmit(tunnel: &Tunnel, mut skb: SkBuff) {
    let dev = tunnel.netdev();
    if !skb.as_mut().has_valid_ip_protocol() {
        wg_debug_ratelimited!("{}: Invalid IP packet\n", dev.name());
        dev.count(Stat::TxErrors, 1);
        return;
    }
    let peer = skb.as_mut().ip_addr(false).and_then(|addr| tunnel.allowedips.lookup_peer(addr));
    let Some(peer) = peer else {
        if let Some(addr) = skb.as_mut().ip_addr(false) {
            wg_debug_ratelimited!(
                "{}: No peer has allowed IPs matching {}\n",
                dev.name(),
                crate::kapi::skb::AddrDisplay(Some(addr), crate::kapi::skb::AddrStyle::Full)
            );
        }
        skb.as_mut().icmp_unreachable();
        dev.count(Stat::TxErrors, 1);
        return;
    };
    if peer.endpoint.lock().route.is_none() {
        wg_debug_ratelimited!(
            "{}: No valid endpoint has been configured or discovered for peer {}\n",
            dev.name(),
            peer.internal_id
        );
        skb.as_mut().icmp_unreachable();
        dev.count(Stat::TxErrors, 1);
        return;
    }

    let mtu = skb.as_mut().route_mtu(dev.mtu());
    let class = skb.as_mut().flow_hash() as usize % FLOW_CLASSES;
    let gso = skb.as_mut().is_gso();
    let small = !gso && skb.len() <= FAST_LANE_MAX_LEN;
    let mut packets = SkbQueue::new();
    if gso {
        match skb.gso_segment() {
            Ok(mut segments) => {
                while let Some(segment) = segments.pop() {
                    stage_segment(&mut packets, segment, mtu);
                }
            }
            Err(_) => {
                dev.count(Stat::TxErrors, 1);
                return;
            }
        }
    } else {
        stage_segment(&mut packets, skb, mtu);
    }

    // Not when nested in another device's transmission, which may be our
    // own sending (a routing loop).
    if small && peer.fast_lane.may_overtake(class) && netdev::xmit_nesting() <= 1 {
        let Some(skb) = packets.pop_front() else {
            return;
        };
        match overtake(&peer, skb) {
            Ok(()) => return,
            Err(skb) => packets.push_back(skb),
        }
    }
    let mut staged = peer.staged.lock();
    // Too many waiting: drop the oldest first, never part of this batch.
    while staged.len() > MAX_STAGED_PACKETS {
        drop(staged.pop_front());
        dev.count(Stat::TxDropped, 1);
    }
    peer.fast_lane.number(&mut packets, Some(class));
    staged.append(&mut packets);
    drop(staged);
    send_staged(&peer);
}

/// A peer's fast lane. Staged packets are numbered in the order they are
/// staged, which is the order they leave in, and each flow class keeps the
/// number of its last; the peer's CPU notes the last that left, after
/// sending it. Packets that overtake wait, sealed, on the express list,
/// which that CPU empties before each batch it sends.
#[pin_data]
pub(crate) struct FastLane {
    #[pin]
    express: SpinLockBh<SkbQueue>,
    /// Whether `express` may hold packets, for looking without the lock.
    express_pending: Atomic<bool>,
    /// The number of the last packet staged. Written under the staged lock.
    staged: Atomic<u32>,
    /// The number of the last packet that left, sent or dropped in order.
    left: Atomic<u32>,
    /// The number of each class's last staged packet. Written under the
    /// staged lock.
    classes: [Atomic<u32>; FLOW_CLASSES],
}

impl FastLane {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(FastLane {
            express <- new_spinlock_bh!(SkbQueue::new()),
            express_pending: Atomic::new(false),
            staged: Atomic::new(0),
            left: Atomic::new(0),
            classes: [const { Atomic::new(0) }; FLOW_CLASSES],
        })
    }

    /// Numbers `packets` (of flow class `class`, if any) as the next to be
    /// staged. Under the peer's staged lock.
    fn number(&self, packets: &mut SkbQueue, class: Option<usize>) {
        let mut seq = self.staged.load(Relaxed);
        packets.for_each(|mut skb| {
            seq = seq.wrapping_add(1);
            skb.meta().seq = seq;
        });
        self.staged.store(seq, Relaxed);
        if let Some(slot) = class.and_then(|class| self.classes.get(class)) {
            slot.store(seq, Relaxed);
        }
    }

    /// Whether a packet of `class` may overtake the packets in flight:
    /// there are enough to wait for, and none of its class.
    fn may_overtake(&self, class: usize) -> bool {
        let left = self.left.load(Relaxed);
        let Some(last_of_class) = self.classes.get(class) else {
            return false;
        };
        // Read apart from each other: a "negative" count is a stale view.
        let in_flight = self.staged.load(Relaxed).wrapping_sub(left);
        (FAST_LANE_MIN_QUEUE..i32::MAX as u32).contains(&in_flight) && !is_before(left, last_of_class.load(Relaxed))
    }

    /// Everything staged up to `seq` has left.
    fn left(&self, seq: u32) {
        self.left.store(seq, Relaxed);
    }
}

/// Whether order number `a` came before `b` (they wrap).
fn is_before(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

fn stage_segment(packets: &mut SkbQueue, skb: SkBuff, mtu: u32) {
    let Some(mut skb) = skb.unshare() else {
        return;
    };
    // The route was only kept for ICMP.
    skb.as_mut().drop_route();
    skb.as_mut().meta().mtu = mtu;
    packets.push_back(skb);
}

/// Sends what is staged on `peer`, if it has a usable session; otherwise
/// keeps it staged and asks for a handshake (upstream
/// `wg_packet_send_staged_packets`).
pub(crate) fn send_staged(peer: &RcuArc<Peer>) {
    let mut packets = core::mem::replace(&mut *peer.staged.lock(), SkbQueue::new());
    if packets.is_empty() {
        return;
    }
    let keypair = peer.noise.keypairs.current_arc(&rcu::read_lock());
    let first_nonce = keypair.as_ref().and_then(|keypair| keypair.reserve_nonces(packets.len() as u64));
    let (Some(keypair), Some(first_nonce)) = (keypair, first_nonce) else {
        // Waiting for a handshake: release the sending sockets' memory,
        // and put the packets back in front of whatever arrived meanwhile.
        packets.for_each(|mut skb| skb.orphan());
        peer.staged.lock().prepend(&mut packets);
        send_queued_handshake_initiation(peer, false);
        return;
    };
    let mut nonce = first_nonce;
    packets.for_each(|skb| {
        set_nonce(skb, nonce);
        nonce += 1;
    });
    let Some(packet) = Packet::new(packets, keypair) else {
        return;
    };
    if peer.is_dead() {
        return;
    }
    queueing::encrypt(peer, packet);
}

fn set_nonce(mut skb: SkbMut<'_>, nonce: u64) {
    // No outer TOS but the inner ECN bits: nothing else leaks.
    let ds = skb.ecn_encap();
    let meta = skb.meta();
    meta.ds = ds;
    meta.nonce = nonce;
}

/// Seals `skb` with the peer's current keypair and puts it on the express
/// list, which it leaves by now if this is the peer's CPU. Gives it back
/// if there is no keypair to use, or if the list is busy: being emptied
/// further up this CPU's stack (our sending looped back), or filled by
/// another CPU.
fn overtake(peer: &RcuArc<Peer>, mut skb: SkBuff) -> Result<(), SkBuff> {
    let lane = &peer.fast_lane;
    let Some(mut express) = lane.express.try_lock() else {
        return Err(skb);
    };
    let Some(keypair) = peer.noise.keypairs.current_arc(&rcu::read_lock()) else {
        return Err(skb);
    };
    let Some(nonce) = keypair.reserve_nonces(1) else {
        return Err(skb);
    };
    set_nonce(skb.as_mut(), nonce);
    if !seal(skb.as_mut(), keypair.sending_key(), keypair.remote_index()) {
        return Ok(());
    }
    express.push_back(skb);
    lane.express_pending.store(true, Relaxed);
    let cpu = queueing::serial_cpu(peer);
    if cpu == cpu::current() {
        send_express_locked(peer, express);
    } else {
        drop(express);
        queueing::kick_transmit(peer, cpu);
    }
    Ok(())
}

/// Sends what waits on the express list, before anything staged after it.
/// On the peer's CPU, not under the list's lock (nothing that sends under
/// it comes back here).
fn send_express(peer: &RcuArc<Peer>) {
    if peer.fast_lane.express_pending.load(Relaxed) {
        send_express_locked(peer, peer.fast_lane.express.lock());
    }
}

/// Holds the list while sending, so that nothing overtakes what it held.
fn send_express_locked(peer: &RcuArc<Peer>, mut express: SpinLockBhGuard<'_, SkbQueue>) {
    peer.fast_lane.express_pending.store(false, Relaxed);
    let packets = core::mem::replace(&mut *express, SkbQueue::new());
    if !packets.is_empty() {
        send_finished(peer, packets.into_list());
    }
}

/// Sends a keepalive, unless data is waiting to go anyway.
pub(crate) fn send_keepalive(peer: &RcuArc<Peer>) {
    if peer.staged.lock().is_empty() {
        let Ok(mut skb) = SkBuff::with_data(DATA_PACKET_HEAD_ROOM, &[]) else {
            return;
        };
        skb.as_mut().meta().mtu = peer.tunnel.netdev().mtu();
        let mut packets = SkbQueue::new();
        packets.push_back(skb);
        let mut staged = peer.staged.lock();
        peer.fast_lane.number(&mut packets, None);
        staged.append(&mut packets);
        drop(staged);
        wg_debug_ratelimited!(
            "{}: Sending keepalive packet to peer {} ({})\n",
            peer.tunnel.netdev().name(),
            peer.internal_id,
            socket::endpoint_of(peer)
        );
    }
    send_staged(peer);
}

/// How much zero padding `len` bytes get: up to a multiple of 16, but not
/// past the MTU (upstream `calculate_skb_padding`).
fn padding(len: usize, mtu: u32) -> usize {
    let mtu = mtu as usize;
    if mtu == 0 {
        return len.next_multiple_of(MESSAGE_PADDING_MULTIPLE) - len;
    }
    // The stack may hand us a packet larger than the MTU; pad its last MTU.
    let last_unit = if len > mtu { len % mtu } else { len };
    mtu.min(last_unit.next_multiple_of(MESSAGE_PADDING_MULTIPLE)) - last_unit
}

/// Encrypts a packet in place, for the encryption workers.
pub(crate) fn encrypt(in_flight: &mut InFlight<Keypair<Peer>>) -> PacketState {
    let keypair = in_flight.key();
    let (key, remote_index) = (*keypair.sending_key(), keypair.remote_index());
    let mut state = PacketState::Done;
    in_flight.for_each(|skb| {
        if state == PacketState::Done && !seal(skb, &key, remote_index) {
            state = PacketState::Dead;
        }
    });
    state
}

/// Encrypts one buffer in place, for the peer's `remote_index`, under `key`
/// and the nonce in its metadata; false if it can only be freed.
fn seal(mut skb: SkbMut<'_>, key: &[u8; 32], remote_index: u32) -> bool {
    let meta = skb.meta();
    let (nonce, mtu) = (meta.nonce, meta.mtu);
    let header = DataHeader { receiver_index: remote_index, counter: nonce }.to_bytes();
    let padding = padding(skb.len(), mtu);
    if !skb.seal(DATA_PACKET_HEAD_ROOM, &header, padding, nonce, key) {
        return false;
    }
    skb.reset(true);
    true
}

/// Sends the peer's batches the workers finished, in the order they were
/// staged (upstream `wg_packet_tx_worker`); with another thread at it,
/// leaves them to that one.
pub(crate) fn transmit_finished(peer: &RcuArc<Peer>) {
    send_express(peer);
    peer.tx_queue.drain_finished(usize::MAX, |packet, state| {
        send_express(peer);
        let (mut segments, _keypair) = packet.into_parts();
        let mut last = None;
        segments.for_each(|mut skb| last = Some(skb.meta().seq));
        if state == PacketState::Done {
            send_finished(peer, segments);
        }
        if let Some(seq) = last {
            peer.fast_lane.left(seq);
        }
    });
}

/// A peer's in-order transmission from a work item on its CPU.
pub(crate) struct TxWork;

impl WorkHandler for TxWork {
    type Owner = Peer;

    fn run(peer: RcuArc<Peer>) {
        transmit_finished(&peer);
    }
}

/// Sends a finished batch (upstream `wg_packet_create_data_done`).
fn send_finished(peer: &RcuArc<Peer>, mut segments: SkbList) {
    let mut data_sent = false;
    timers::any_authenticated_packet_traversal(peer);
    timers::any_authenticated_packet_sent(peer);
    while let Some(mut skb) = segments.pop() {
        let is_keepalive = skb.len() == message_data_len(0);
        let ds = skb.as_mut().meta().ds;
        if socket::send_skb_to_peer(peer, skb, ds).is_ok() && !is_keepalive {
            data_sent = true;
        }
    }
    if data_sent {
        timers::data_sent(peer);
    }
    keep_key_fresh(peer);
}

/// Starts a handshake early if the current session is getting old.
fn keep_key_fresh(peer: &RcuArc<Peer>) {
    let rekey = {
        let guard = rcu::read_lock();
        peer.noise.keypairs.current(&guard).is_some_and(|keypair| keypair.should_rekey_after_send())
    };
    if rekey {
        send_queued_handshake_initiation(peer, false);
    }
}

/// Asks for a handshake initiation to be sent, unless one went out less
/// than `REKEY_TIMEOUT` ago (upstream
/// `wg_packet_send_queued_handshake_initiation`).
pub(crate) fn send_queued_handshake_initiation(peer: &RcuArc<Peer>, is_retry: bool) {
    if !is_retry {
        peer.timers.handshake_attempts.store(0, Relaxed);
    }
    let _guard = rcu::read_lock();
    if !time::has_expired(peer.last_sent_handshake.load(Relaxed), REKEY_TIMEOUT) || peer.is_dead() {
        return;
    }
    peer.handshake_work.queue(peer, &peer.tunnel.handshake_send_wq);
}

/// Sends a handshake initiation, in process context.
pub(crate) struct HandshakeSendWork;

impl WorkHandler for HandshakeSendWork {
    type Owner = Peer;

    fn run(peer: RcuArc<Peer>) {
        // Rate limited.
        if !time::has_expired(peer.last_sent_handshake.load(Relaxed), REKEY_TIMEOUT) {
            return;
        }
        peer.last_sent_handshake.store(time::coarse_boottime_ns(), Relaxed);
        wg_debug_ratelimited!(
            "{}: Sending handshake initiation to peer {} ({})\n",
            peer.tunnel.netdev().name(),
            peer.internal_id,
            socket::endpoint_of(&peer)
        );
        if let Some(message) = noise::create_initiation(&peer) {
            timers::any_authenticated_packet_traversal(&peer);
            timers::any_authenticated_packet_sent(&peer);
            peer.last_sent_handshake.store(time::coarse_boottime_ns(), Relaxed);
            // Armed before the send (upstream arms it after): the response
            // may be handled on another CPU before the send returns, and
            // must find the timer armed to disarm it, or the timer would
            // start a second handshake REKEY_TIMEOUT after the first.
            timers::handshake_initiated(&peer);
            let _ = socket::send_buffer_to_peer(&peer, &message, HANDSHAKE_DSCP);
        }
    }
}

/// Answers an initiation that `peer` just sent us (upstream
/// `wg_packet_send_handshake_response`).
pub(crate) fn send_handshake_response(peer: &RcuArc<Peer>) {
    peer.last_sent_handshake.store(time::coarse_boottime_ns(), Relaxed);
    wg_debug_ratelimited!(
        "{}: Sending handshake response to peer {} ({})\n",
        peer.tunnel.netdev().name(),
        peer.internal_id,
        socket::endpoint_of(peer)
    );
    let Some(message) = noise::create_response(peer) else {
        return;
    };
    if noise::begin_session(peer) {
        timers::session_derived(peer);
        timers::any_authenticated_packet_traversal(peer);
        timers::any_authenticated_packet_sent(peer);
        peer.last_sent_handshake.store(time::coarse_boottime_ns(), Relaxed);
        let _ = socket::send_buffer_to_peer(peer, &message, HANDSHAKE_DSCP);
    }
}

/// Answers a handshake message with a cookie, under load (upstream
/// `wg_packet_send_handshake_cookie`).
pub(crate) fn send_handshake_cookie(tunnel: &Tunnel, in_skb: &mut SkBuff, sender_index: u32) {
    let Some(source) = socket::endpoint_from_skb(in_skb) else {
        return;
    };
    wg_debug_ratelimited!(
        "{}: Sending cookie response for denied handshake message for {}\n",
        tunnel.netdev().name(),
        socket::EndpointDisplay::of(&source)
    );
    if let Some(reply) = receive::cookie_reply(tunnel, in_skb, &source, sender_index) {
        let _ = socket::send_buffer_as_reply_to_skb(tunnel, in_skb, &reply);
    }
}

/// The encryption worker of one CPU: drains the device's encrypt ring
/// (upstream `wg_packet_encrypt_worker`).
pub(crate) struct EncryptWorker;

impl DrainHandler for EncryptWorker {
    type Owner = Tunnel;

    fn drain(tunnel: &RcuArc<Tunnel>) {
        while let Some(mut in_flight) = tunnel.encrypt_ring.pop() {
            let state = encrypt(&mut in_flight);
            let peer = in_flight.key().peer().clone();
            in_flight.finish(state);
            queueing::transmit(&peer);
            crate::kapi::cpu::cond_resched();
        }
    }

    fn has_work(tunnel: &Tunnel) -> bool {
        !tunnel.encrypt_ring.is_empty()
    }
}
