// SPDX-License-Identifier: GPL-2.0

//! Handing packets to the parallel crypto stages (upstream `queueing.c`
//! and `queueing.h`).
//!
//! A packet goes into its peer's ordered queue and the device's ring at
//! once (`kapi::queue::enqueue`); the next online CPU's worker is kicked
//! (round-robin); when a worker finishes a packet it runs the peer's
//! in-order stage: transmission on the peer's CPU (itself, when it runs
//! there), or delivery through its device's NAPI.

use crate::kapi::cpu;
use crate::kapi::queue::{enqueue, EnqueueError, Packet};
use crate::kapi::rcu::RcuArc;
use crate::noise::Keypair;
use crate::peer::Peer;
use crate::{receive, send};

/// A batch on its way out.
pub(crate) type TxPacket = Packet<Keypair<Peer>>;
/// A packet on its way in.
pub(crate) type RxPacket = Packet<Keypair<Peer>>;

/// Hands a batch to the encryption workers and to the peer's transmit
/// queue, which sends it once encrypted, in order.
pub(crate) fn encrypt(peer: &RcuArc<Peer>, packet: TxPacket) {
    let tunnel = &peer.tunnel;
    match enqueue(&peer.tx_queue, &tunnel.encrypt_ring, packet) {
        Ok(()) => {
            let cpu = cpu::next_online(&tunnel.last_encrypt_cpu);
            tunnel.encrypt_workers.kick(tunnel, &tunnel.crypt_wq, cpu);
        }
        // In the transmit queue, failed: it is dropped there, in order.
        Err(EnqueueError::RingFull) => kick_transmit(peer, serial_cpu(peer)),
        // Too much in flight for this peer: dropped.
        Err(EnqueueError::Full(packet)) => drop(packet),
    }
}

/// Hands a packet to the decryption workers and to the peer's receive
/// queue, which delivers it once decrypted, in order.
pub(crate) fn decrypt(peer: &RcuArc<Peer>, packet: RxPacket) {
    let tunnel = &peer.tunnel;
    match enqueue(&peer.rx_queue, &tunnel.decrypt_ring, packet) {
        Ok(()) => {
            let cpu = cpu::next_online(&tunnel.last_decrypt_cpu);
            tunnel.decrypt_workers.kick(tunnel, &tunnel.crypt_wq, cpu);
        }
        Err(EnqueueError::RingFull) => receive::schedule_delivery(peer),
        Err(EnqueueError::Full(packet)) => drop(packet),
    }
}

/// Runs the peer's in-order transmission on its CPU (stable per peer): here,
/// from a worker already there, else through the peer's work item. The CPU
/// a packet leaves from picks its transmit queue (XPS), or on loopback the
/// receive backlog, so batches sent from two CPUs could overtake each other
/// on the wire.
pub(crate) fn transmit(peer: &RcuArc<Peer>) {
    let cpu = serial_cpu(peer);
    if cpu == cpu::current() {
        send::transmit_finished(peer);
    } else {
        kick_transmit(peer, cpu);
    }
}

/// The CPU the peer's packets leave from.
pub(crate) fn serial_cpu(peer: &Peer) -> u32 {
    cpu::choose_online(&peer.serial_cpu, peer.internal_id)
}

/// Runs the peer's transmission from its work item on `cpu` (from `xmit`,
/// which may not send itself, or from another CPU).
pub(crate) fn kick_transmit(peer: &RcuArc<Peer>, cpu: u32) {
    peer.tx_work.queue_on(peer, &peer.tunnel.crypt_wq, cpu);
}
