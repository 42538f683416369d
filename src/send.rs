// SPDX-License-Identifier: GPL-2.0

//! Sending (upstream `send.c`, and the transmit half of `device.c`).
//!
//! `xmit` finds the peer of a packet and stages it (GSO super-packets cut
//! into segments). `send_staged` takes the peer's current keypair, reserves
//! nonces for the whole batch with one atomic add, and hands the batch to
//! the parallel encryption stage ([`queueing`](crate::queueing)). The
//! peer's finished batches leave in order from its CPU, sent by the worker
//! there or by the peer's [`TxWork`].

use crate::device::{Tunnel, DATA_PACKET_HEAD_ROOM};
use crate::kapi::netdev::Stat;
use crate::kapi::queue::{InFlight, Packet, PacketState};
use crate::kapi::rcu::{self, RcuArc};
use crate::kapi::skb::{SkBuff, SkbQueue};
use crate::kapi::time;
use crate::kapi::work::{DrainHandler, WorkHandler};
use crate::messages::{
    message_data_len, DataHeader, HANDSHAKE_DSCP, MAX_STAGED_PACKETS, MESSAGE_PADDING_MULTIPLE,
    REKEY_TIMEOUT,
};
use crate::noise::{self, Keypair, NoisePeer};
use crate::peer::Peer;
use crate::{queueing, receive, socket, timers, wg_debug_ratelimited};
use kernel::sync::atomic::Relaxed;

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
    let mut packets = SkbQueue::new();
    if skb.as_mut().is_gso() {
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

    let mut staged = peer.staged.lock();
    // Too many waiting: drop the oldest first, never part of this batch.
    while staged.len() > MAX_STAGED_PACKETS {
        drop(staged.pop_front());
        dev.count(Stat::TxDropped, 1);
    }
    staged.append(&mut packets);
    drop(staged);
    send_staged(&peer);
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
    packets.for_each(|mut skb| {
        // No outer TOS but the inner ECN bits: nothing else leaks.
        let ds = skb.ecn_encap();
        let meta = skb.meta();
        meta.ds = ds;
        meta.nonce = nonce;
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

/// Sends a keepalive, unless data is waiting to go anyway.
pub(crate) fn send_keepalive(peer: &RcuArc<Peer>) {
    if peer.staged.lock().is_empty() {
        let Ok(mut skb) = SkBuff::with_data(DATA_PACKET_HEAD_ROOM, &[]) else {
            return;
        };
        skb.as_mut().meta().mtu = peer.tunnel.netdev().mtu();
        peer.staged.lock().push_back(skb);
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
    let key = *keypair.sending_key();
    let remote_index = keypair.remote_index();
    let mut state = PacketState::Done;
    in_flight.for_each(|mut skb| {
        if state == PacketState::Dead {
            return;
        }
        let meta = skb.meta();
        let (nonce, mtu) = (meta.nonce, meta.mtu);
        let header = DataHeader { receiver_index: remote_index, counter: nonce }.to_bytes();
        let padding = padding(skb.len(), mtu);
        if skb.seal(DATA_PACKET_HEAD_ROOM, &header, padding, nonce, &key) {
            skb.reset(true);
        } else {
            state = PacketState::Dead;
        }
    });
    state
}

/// Sends the peer's batches the workers finished, in the order they were
/// staged (upstream `wg_packet_tx_worker`); with another thread at it,
/// leaves them to that one.
pub(crate) fn transmit_finished(peer: &RcuArc<Peer>) {
    peer.tx_queue.drain_finished(usize::MAX, |packet, state| {
        let (segments, _keypair) = packet.into_parts();
        if state == PacketState::Done {
            send_finished(peer, segments);
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
fn send_finished(peer: &RcuArc<Peer>, mut segments: crate::kapi::skb::SkbList) {
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
