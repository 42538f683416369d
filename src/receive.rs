// SPDX-License-Identifier: GPL-2.0

//! Receiving (upstream `receive.c`).
//!
//! Datagrams arrive from the UDP sockets in softirq. Handshake messages go
//! through a bounded ring to per-CPU workers (process context: Curve25519
//! is slow). Data messages find their keypair by index, and go to the
//! parallel decryption stage and the peer's receive queue. A peer with
//! decrypted packets waiting is queued on one of the device's delivery
//! NAPI contexts, which takes them in order, checks the replay window,
//! learns the endpoint, checks the inner source against the peer's allowed
//! IPs, and delivers them through GRO.
//!
//! Upstream gives each peer a NAPI context of its own, polled by a thread
//! of its own. Here a device has a few threaded contexts, one per CPU
//! online when it was created, each polling the peers queued on it: the
//! polls run in threads the scheduler balances (a softirq raised from a
//! busy decryption worker is deferred to ksoftirqd under load, which then
//! competes with the workers), and idle peers cost no thread.

use crate::cookie::{self, MacState, SourceAddr};
use crate::device::Tunnel;
use crate::kapi::cpu;
use crate::kapi::llist::ArcList;
use crate::kapi::napi::{Napi, NapiHandler, NapiPoll};
use crate::kapi::netdev::DeviceLink;
use crate::kapi::netdev::Stat;
use crate::kapi::queue::{InFlight, Packet, PacketState};
use crate::kapi::random;
use crate::kapi::rcu::{self, RcuArc, RcuPtr};
use crate::kapi::skb::{InnerIpError, SkBuff};
use crate::kapi::time;
use crate::kapi::udp::Endpoint;
use crate::kapi::work::DrainHandler;
use crate::messages::{
    message_data_len, CookieReply, DataHeader, Initiation, MessageType, Response,
    MAX_QUEUED_INCOMING_HANDSHAKES, MESSAGE_COOKIE_LEN, MESSAGE_DATA_HEADER_LEN,
    MESSAGE_INITIATION_LEN, MESSAGE_MINIMUM_LENGTH, MESSAGE_RESPONSE_LEN,
};
use crate::noise::{self, Keypair, NoisePeer};
use crate::peer::Peer;
use crate::{queueing, send, socket, timers, wg_debug_ratelimited};
use kernel::{prelude::*, sync::atomic::Relaxed};

/// The type of a UDP payload of `len` bytes starting with `header`, and how
/// much of it must be linear to process it (upstream `validate_header_len`).
fn message_type(header: [u8; 4], len: usize) -> Option<(MessageType, usize)> {
    match u32::from_le_bytes(header) {
        4 if len >= MESSAGE_MINIMUM_LENGTH => Some((MessageType::Data, MESSAGE_DATA_HEADER_LEN)),
        1 if len == MESSAGE_INITIATION_LEN => Some((MessageType::HandshakeInitiation, len)),
        2 if len == MESSAGE_RESPONSE_LEN => Some((MessageType::HandshakeResponse, len)),
        3 if len == MESSAGE_COOKIE_LEN => Some((MessageType::HandshakeCookie, len)),
        _ => None,
    }
}

/// A datagram from one of the device's sockets (softirq; upstream
/// `wg_packet_receive`).
pub(crate) fn receive(tunnel: &Tunnel, slot: &RcuPtr<Tunnel>, mut skb: SkBuff) {
    let mut buf = skb.as_mut();
    if !buf.pull_udp_header() {
        return;
    }
    let Some(header) = buf.head(4).and_then(|h| h.first_chunk::<4>().copied()) else {
        return;
    };
    let Some((kind, header_len)) = message_type(header, buf.len()) else {
        return;
    };
    if buf.head(header_len).is_none() {
        return;
    }
    match kind {
        MessageType::Data => {
            let ds = skb.as_mut().outer_dsfield();
            consume_data(tunnel, skb, ds);
        }
        _ => queue_handshake(tunnel, slot, skb),
    }
}

/// Puts a handshake message on the device's ring for the workers.
fn queue_handshake(tunnel: &Tunnel, slot: &RcuPtr<Tunnel>, skb: SkBuff) {
    let dropped = |skb: &SkBuff| {
        wg_debug_ratelimited!(
            "{}: Dropping handshake packet from {}\n",
            tunnel.netdev().name(),
            source_display(skb)
        );
    };
    // Keys made before the RNG is seeded would be predictable.
    if !random::is_initialized() {
        dropped(&skb);
        return;
    }
    // Past half full, producers do not wait for each other: under a flood,
    // the softirq must not spin on the ring.
    let contended = tunnel.handshake_queue_len.load(Relaxed) > (MAX_QUEUED_INCOMING_HANDSHAKES / 2) as i32;
    if let Err(skb) = tunnel.handshake_ring.push(skb, contended) {
        dropped(&skb);
        return;
    }
    tunnel.handshake_queue_len.fetch_add(1, Relaxed);
    let guard = rcu::read_lock();
    if let Some(tunnel) = slot.get_arc(&guard) {
        let cpu = cpu::next_online(&tunnel.last_handshake_cpu);
        tunnel.handshake_workers.kick(&tunnel, &tunnel.handshake_receive_wq, cpu);
    }
}

/// Drops the handshake messages waiting (the device went down).
pub(crate) fn drop_queued_handshakes(tunnel: &Tunnel) {
    while tunnel.handshake_ring.pop().is_some() {}
    tunnel.handshake_queue_len.store(0, Relaxed);
}

/// A handshake worker of one CPU: drains the device's handshake ring
/// (upstream `wg_packet_handshake_receive_worker`).
pub(crate) struct HandshakeWorker;

impl DrainHandler for HandshakeWorker {
    type Owner = Tunnel;

    fn drain(tunnel: &RcuArc<Tunnel>) {
        while let Some(mut skb) = tunnel.handshake_ring.pop() {
            receive_handshake(tunnel, &mut skb);
            tunnel.handshake_queue_len.fetch_sub(1, Relaxed);
            cpu::cond_resched();
        }
    }

    fn has_work(tunnel: &Tunnel) -> bool {
        !tunnel.handshake_ring.is_empty()
    }
}

/// The source of a handshake message, for the cookie and the ratelimiter.
fn source_addr(skb: &SkBuff) -> Option<SourceAddr> {
    match socket::endpoint_from_skb(skb)? {
        Endpoint::V4 { addr, port, .. } => Some(SourceAddr::V4 { addr, port }),
        Endpoint::V6 { addr, port, .. } => Some(SourceAddr::V6 { addr, port }),
    }
}

fn source_display(skb: &SkBuff) -> socket::EndpointDisplay {
    match socket::endpoint_from_skb(skb) {
        Some(endpoint) => socket::EndpointDisplay::of(&endpoint),
        None => socket::EndpointDisplay::none(),
    }
}

/// Whether the device counts as under load: its handshake queue is an
/// eighth full, or was within the last second (upstream keeps this in one
/// static for the whole system; we keep it per device).
fn under_load(tunnel: &Tunnel) -> bool {
    if tunnel.handshake_queue_len.load(Relaxed) >= (MAX_QUEUED_INCOMING_HANDSHAKES / 8) as i32 {
        tunnel.last_under_load.store(time::coarse_boottime_ns(), Relaxed);
        return true;
    }
    let last = tunnel.last_under_load.load(Relaxed);
    if last == 0 {
        return false;
    }
    if time::has_expired(last, 1) {
        tunnel.last_under_load.store(0, Relaxed);
        return false;
    }
    true
}

/// The cookie reply to a handshake message in `skb` from `source`.
pub(crate) fn cookie_reply(
    tunnel: &Tunnel,
    skb: &mut SkBuff,
    source: &Endpoint,
    sender_index: u32,
) -> Option<[u8; MESSAGE_COOKIE_LEN]> {
    let src = match *source {
        Endpoint::V4 { addr, port, .. } => SourceAddr::V4 { addr, port },
        Endpoint::V6 { addr, port, .. } => SourceAddr::V6 { addr, port },
    };
    let len = skb.len();
    let mut buf = skb.as_mut();
    let message = buf.head(len)?;
    tunnel.noise.cookie_checker.create_reply(message, sender_index, &src)
}

/// Processes one handshake message (upstream
/// `wg_receive_handshake_packet`). Process context.
fn receive_handshake(tunnel: &RcuArc<Tunnel>, skb: &mut SkBuff) {
    // A copy: the message is small, and the buffer is needed again for
    // its addresses and for replies.
    let len = skb.len();
    let mut copy = [0u8; MESSAGE_INITIATION_LEN];
    let Some(message) = copy.get_mut(..len) else {
        return;
    };
    match skb.as_mut().head(len) {
        Some(bytes) => message.copy_from_slice(bytes),
        None => return,
    }
    let message = &*message;
    let Some(kind) = MessageType::of(message) else {
        return;
    };
    let dev = tunnel.netdev();

    if kind == MessageType::HandshakeCookie {
        wg_debug_ratelimited!("{}: Receiving cookie response from {}\n", dev.name(), source_display(skb));
        if let Some(reply) = CookieReply::from_bytes(message) {
            if !cookie::consume_reply(&tunnel.noise, &reply) {
                wg_debug_ratelimited!("{}: Could not decrypt invalid cookie response\n", dev.name());
            }
        }
        return;
    }

    let Some(src) = source_addr(skb) else {
        return;
    };
    let under_load = under_load(tunnel);
    let mac_state = tunnel.noise.cookie_checker.validate(message, &src, dev.net_cookie(), under_load);
    let needs_cookie = match (under_load, mac_state) {
        (true, MacState::ValidMacWithCookie) | (false, MacState::ValidMacButNoCookie) => false,
        (true, MacState::ValidMacButNoCookie) => true,
        _ => {
            wg_debug_ratelimited!(
                "{}: Invalid MAC of handshake, dropping packet from {}\n",
                dev.name(),
                source_display(skb)
            );
            return;
        }
    };

    let peer = match kind {
        MessageType::HandshakeInitiation => {
            let Some(initiation) = Initiation::from_bytes(message) else {
                return;
            };
            if needs_cookie {
                send::send_handshake_cookie(tunnel, skb, initiation.sender_index);
                return;
            }
            let Some(peer) = noise::consume_initiation(&tunnel.noise, &initiation) else {
                wg_debug_ratelimited!(
                    "{}: Invalid handshake initiation from {}\n",
                    dev.name(),
                    source_display(skb)
                );
                return;
            };
            socket::set_peer_endpoint_from_skb(&peer, skb);
            wg_debug_ratelimited!(
                "{}: Receiving handshake initiation from peer {} ({})\n",
                dev.name(),
                peer.internal_id,
                socket::endpoint_of(&peer)
            );
            send::send_handshake_response(&peer);
            peer
        }
        MessageType::HandshakeResponse => {
            let Some(response) = Response::from_bytes(message) else {
                return;
            };
            if needs_cookie {
                send::send_handshake_cookie(tunnel, skb, response.sender_index);
                return;
            }
            let Some(peer) = noise::consume_response(&tunnel.noise, &response) else {
                wg_debug_ratelimited!(
                    "{}: Invalid handshake response from {}\n",
                    dev.name(),
                    source_display(skb)
                );
                return;
            };
            socket::set_peer_endpoint_from_skb(&peer, skb);
            wg_debug_ratelimited!(
                "{}: Receiving handshake response from peer {} ({})\n",
                dev.name(),
                peer.internal_id,
                socket::endpoint_of(&peer)
            );
            if noise::begin_session(&peer) {
                timers::session_derived(&peer);
                timers::handshake_complete(&peer);
                // Sends what is staged, or else a keepalive, which confirms
                // the session to the responder at once.
                send::send_keepalive(&peer);
            }
            peer
        }
        _ => return,
    };

    update_rx_stats(&peer, len);
    timers::any_authenticated_packet_received(&peer);
    timers::any_authenticated_packet_traversal(&peer);
}

fn update_rx_stats(peer: &Peer, len: usize) {
    peer.tunnel.netdev().count_rx(len);
    peer.rx_bytes.fetch_add(len as u64, Relaxed);
}

/// A data message: finds its keypair and hands it to decryption (upstream
/// `wg_packet_consume_data`). Softirq.
fn consume_data(tunnel: &Tunnel, mut skb: SkBuff, ds: u8) {
    let Some(header) = skb.as_mut().head(MESSAGE_DATA_HEADER_LEN).and_then(DataHeader::from_bytes) else {
        return;
    };
    let keypair = {
        let guard = rcu::read_lock();
        tunnel.noise.index.lookup_keypair(header.receiver_index, &guard).cloned()
    };
    let Some(keypair) = keypair else {
        return;
    };
    let peer = keypair.peer().clone();
    if peer.is_dead() {
        return;
    }
    let mut buf = skb.as_mut();
    let meta = buf.meta();
    meta.ds = ds;
    meta.nonce = header.counter;
    queueing::decrypt(&peer, Packet::single(skb, keypair));
}

/// Decrypts a packet in place, for the decryption workers.
fn decrypt(in_flight: &mut InFlight<Keypair<Peer>>) -> PacketState {
    let keypair = in_flight.key();
    if !keypair.can_receive() {
        return PacketState::Dead;
    }
    let key = *keypair.receiving_key();
    let mut first = in_flight.first();
    let nonce = first.meta().nonce;
    if first.open(MESSAGE_DATA_HEADER_LEN, nonce, &key) {
        PacketState::Done
    } else {
        PacketState::Dead
    }
}

/// The decryption worker of one CPU: drains the device's decrypt ring
/// (upstream `wg_packet_decrypt_worker`).
pub(crate) struct DecryptWorker;

impl DrainHandler for DecryptWorker {
    type Owner = Tunnel;

    fn drain(tunnel: &RcuArc<Tunnel>) {
        while let Some(mut in_flight) = tunnel.decrypt_ring.pop() {
            let state = decrypt(&mut in_flight);
            let peer = in_flight.key().peer().clone();
            in_flight.finish(state);
            schedule_delivery(&peer);
            cpu::cond_resched();
        }
    }

    fn has_work(tunnel: &Tunnel) -> bool {
        !tunnel.decrypt_ring.is_empty()
    }
}

/// A delivery NAPI context and the peers queued on it.
#[pin_data]
pub(crate) struct RxDelivery {
    #[pin]
    napi: Napi<RxPoll>,
    ready: ArcList<Peer>,
    /// Keeps the device the context is added to; dropped after it.
    _link: DeviceLink,
}

impl RxDelivery {
    /// One context per CPU online now. Before the device is registered: its
    /// contexts are threaded (see `Device::setup`).
    pub(crate) fn for_device(link: &DeviceLink) -> Result<KVec<RcuArc<RxDelivery>>> {
        let count = cpu::online_count().max(1);
        let mut deliveries = KVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            let delivery = RcuArc::pin_init(
                try_pin_init!(RxDelivery {
                    napi: Napi::new(link.netdev())?,
                    ready: ArcList::new(),
                    _link: link.clone(),
                }),
                GFP_KERNEL,
            )?;
            deliveries.push(delivery, GFP_KERNEL)?;
        }
        Ok(deliveries)
    }
}

/// Queues the peer for in-order delivery of what was decrypted: always on
/// the same context, so that one poll at a time takes its packets.
pub(crate) fn schedule_delivery(peer: &RcuArc<Peer>) {
    let deliveries = &peer.tunnel.deliveries;
    let Some(delivery) = deliveries.get(peer.internal_id as usize % deliveries.len().max(1)) else {
        return;
    };
    if delivery.ready.push(peer) {
        delivery.napi.schedule(delivery);
    }
}

/// The poll of a delivery context: delivers the queued peers' decrypted
/// packets in order (upstream `wg_packet_rx_poll`, for several peers).
pub(crate) struct RxPoll;

impl NapiHandler for RxPoll {
    type Owner = RxDelivery;

    fn poll(delivery: &RcuArc<RxDelivery>, poll: &mut NapiPoll<'_>, budget: usize) -> usize {
        let mut done = 0;
        let mut ready = delivery.ready.take_all();
        while let Some(peer) = ready.next() {
            done += deliver_in_order(&peer, poll, budget - done);
            if done >= budget {
                // The peers not reached go back on the list first, then
                // this one, which may have more, behind them.
                drop(ready);
                delivery.ready.push(&peer);
                break;
            }
        }
        done
    }
}

/// Delivers up to `budget` of the peer's decrypted packets, in order.
fn deliver_in_order(peer: &RcuArc<Peer>, poll: &mut NapiPoll<'_>, budget: usize) -> usize {
    peer.rx_queue.drain_finished(budget, |packet, state| {
        if state != PacketState::Done {
            return;
        }
        let (mut segments, keypair) = packet.into_parts();
        let Some(mut skb) = segments.pop() else {
            return;
        };
        let nonce = skb.as_mut().meta().nonce;
        if !keypair.validate_counter(nonce) {
            wg_debug_ratelimited!(
                "{}: Packet has invalid nonce {} (max {})\n",
                peer.tunnel.netdev().name(),
                nonce,
                keypair.replay_max()
            );
            return;
        }
        let Some(endpoint) = socket::endpoint_from_skb(&skb) else {
            return;
        };
        skb.as_mut().reset(false);
        consume_data_done(peer, &keypair, skb, &endpoint, poll);
    })
}

/// Delivers a decrypted, in-order, fresh packet (upstream
/// `wg_packet_consume_data_done`). NAPI, BH disabled.
fn consume_data_done(
    peer: &RcuArc<Peer>,
    keypair: &Keypair<Peer>,
    mut skb: SkBuff,
    endpoint: &Endpoint,
    poll: &mut NapiPoll<'_>,
) {
    let dev = peer.tunnel.netdev();
    socket::set_peer_endpoint(peer, endpoint);
    if peer.noise.keypairs.received_with(keypair) {
        timers::handshake_complete(peer);
        send::send_staged(peer);
    }
    keep_key_fresh(peer);
    timers::any_authenticated_packet_received(peer);
    timers::any_authenticated_packet_traversal(peer);

    // An empty packet is a keepalive.
    if skb.len() == 0 {
        update_rx_stats(peer, message_data_len(0));
        wg_debug_ratelimited!(
            "{}: Receiving keepalive packet from peer {} ({})\n",
            dev.name(),
            peer.internal_id,
            socket::endpoint_of(peer)
        );
        return;
    }
    timers::data_received(peer);

    let outer_ds = skb.as_mut().meta().ds;
    let (_, len) = match skb.as_mut().inner_ip() {
        Ok(ip) => ip,
        Err(InnerIpError::Type) => return dishonest(peer, Stat::RxFrameErrors, "is neither ipv4 nor ipv6"),
        Err(InnerIpError::Size) => return dishonest(peer, Stat::RxLengthErrors, "has incorrect size"),
    };
    skb.as_mut().prepare_delivery(dev, outer_ds);
    let len_before_trim = skb.len();
    if len > len_before_trim {
        return dishonest(peer, Stat::RxLengthErrors, "has incorrect size");
    }
    if skb.as_mut().trim(len).is_err() {
        return;
    }
    // Crypto-routing: the inner source must be one of the peer's.
    let routed = skb.as_mut().ip_addr(true).and_then(|src| {
        let guard = rcu::read_lock();
        peer.tunnel.allowedips.lookup(&guard, src).map(|p| core::ptr::eq(p, &**peer))
    });
    if routed != Some(true) {
        wg_debug_ratelimited!(
            "{}: Packet has unallowed src IP ({}) from peer {} ({})\n",
            dev.name(),
            crate::kapi::skb::AddrDisplay(skb.as_mut().ip_addr(true), crate::kapi::skb::AddrStyle::Compressed),
            peer.internal_id,
            socket::endpoint_of(peer)
        );
        dev.count(Stat::RxErrors, 1);
        dev.count(Stat::RxFrameErrors, 1);
        return;
    }
    poll.gro_receive(skb);
    update_rx_stats(peer, message_data_len(len_before_trim));
}

fn dishonest(peer: &Peer, stat: Stat, what: &str) {
    let dev = peer.tunnel.netdev();
    wg_debug_ratelimited!(
        "{}: Packet {} from peer {} ({})\n",
        dev.name(),
        what,
        peer.internal_id,
        socket::endpoint_of(peer)
    );
    dev.count(Stat::RxErrors, 1);
    dev.count(stat, 1);
}

/// Asks for a handshake shortly before the current session, which we
/// initiated, would expire on the receiving side (upstream
/// `keep_key_fresh` of `receive.c`).
fn keep_key_fresh(peer: &RcuArc<Peer>) {
    if peer.timers.sent_lastminute_handshake.load(Relaxed) {
        return;
    }
    let send = {
        let guard = rcu::read_lock();
        peer.noise.keypairs.current(&guard).is_some_and(|keypair| keypair.should_rekey_after_receive())
    };
    if send {
        peer.timers.sent_lastminute_handshake.store(true, Relaxed);
        send::send_queued_handshake_initiation(peer, false);
    }
}
