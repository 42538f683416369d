// SPDX-License-Identifier: GPL-2.0

//! The queues of a parallel, order-preserving packet pipeline.
//!
//! A [`Packet`] is a buffer (or a chain of them: a batch) with its state in
//! the control block of its first buffer, and a counted reference to a
//! `K` (the key it is encrypted with or for). To be processed in parallel
//! and yet delivered in order, a packet is put in two queues at once
//! ([`enqueue`]): its flow's [`OrderedQueue`] (multi-producer,
//! single-consumer, in arrival order) and a [`PacketRing`] shared by the
//! parallel workers (multi-producer, multi-consumer). A worker takes it off
//! the ring as an [`InFlight`], the only handle through which the packet's
//! buffers can be changed while it sits in its ordered queue, and
//! [`InFlight::finish`]es it, publishing its outcome with a release store.
//! The ordered queue's consumer takes packets off the head only once they
//! are finished, so it sees each worker's writes, and only then owns them.
//!
//! Upstream calls these `prev_queue`, `crypt_queue` and `PACKET_CB`.

use super::bindings;
use super::rcu::RcuArc;
use super::skb::{for_each_in_chain, SkBuff, SkbList, SkbMut, SkbQueue};
use super::sync::{new_spinlock_bh, SpinLockBh, SpinLockBhGuard};
use core::{marker::PhantomData, mem::ManuallyDrop, ptr, ptr::NonNull};
use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Atomic, Full, Relaxed, Release},
    types::Opaque,
};

/// How a packet fared in the parallel stage.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketState {
    /// Not finished yet.
    Pending = 0,
    /// Processed successfully.
    Done = 1,
    /// Failed; to be dropped in order.
    Dead = 2,
}

/// What the data plane keeps in `skb->cb` of each buffer (upstream's
/// `struct packet_cb`, less what [`Packet`] keeps there itself).
#[repr(C)]
pub(crate) struct PacketMeta {
    /// The nonce the buffer is (to be) sealed or was opened with.
    pub(crate) nonce: u64,
    /// The MTU to pad to, or 0 for none.
    pub(crate) mtu: u32,
    /// Where the packet stands in its peer's transmit order.
    pub(crate) seq: u32,
    /// The outer DS field.
    pub(crate) ds: u8,
}

/// The control block of a packet's first buffer: the metadata, then what
/// only [`Packet`] sees: the outcome of the parallel stage, the number of
/// buffers (fixed when the packet is made) and the key.
#[repr(C)]
struct PacketCb {
    meta: PacketMeta,
    state: Atomic<i32>,
    buffers: u32,
    /// An erased `RcuArc<K>` counted for the packet.
    key: *mut core::ffi::c_void,
}

const _: () = assert!(size_of::<PacketCb>() <= bindings::WGRS_SKB_CB_SIZE as usize);

/// The control block of `skb`.
///
/// # Safety
///
/// `skb` must be live.
unsafe fn packet_cb(skb: *mut bindings::sk_buff) -> *mut PacketCb {
    // SAFETY: per the function's contract. `cb` is 48 bytes, 8-aligned, at
    // least as large as `PacketCb` (checked above).
    unsafe { super::skb::field::cb(skb).cast() }
}

/// How many buffers the packet headed by `skb` was made of.
///
/// # Safety
///
/// `skb` must head a packet (its `cb` written by `Packet::from_chain`) that
/// stays alive for the call.
unsafe fn packet_buffers(skb: *mut bindings::sk_buff) -> i32 {
    // SAFETY: per the function's contract; `buffers` never changes after
    // `from_chain`.
    i32::try_from(unsafe { (*packet_cb(skb)).buffers }).unwrap_or(i32::MAX)
}

impl SkbMut<'_> {
    /// The data plane's metadata in the buffer's control block.
    pub(crate) fn meta(&mut self) -> &mut PacketMeta {
        // SAFETY: the buffer is ours through the handle; every bit pattern is
        // a valid `PacketMeta`, and the rest of the block is out of reach.
        unsafe { &mut (*packet_cb(self.as_ptr())).meta }
    }
}

/// A packet in the pipeline: a chain of buffers, whose first carries the
/// packet's state and a counted reference to a `K`.
///
/// # Invariants
///
/// `head` is the first of a chain of buffers we own; its control block's
/// `key` holds a reference counted for us (`RcuArc::<K>::into_erased`). The
/// first buffer never changes (only [`SkbMut`] handles to it are given out).
#[repr(transparent)]
pub(crate) struct Packet<K: Send + Sync> {
    head: NonNull<bindings::sk_buff>,
    _key: PhantomData<RcuArc<K>>,
}

// SAFETY: the buffers and the reference are owned, and may move between
// CPUs (`RcuArc<K>` is `Send`).
unsafe impl<K: Send + Sync> Send for Packet<K> {}

impl<K: Send + Sync> Packet<K> {
    /// Makes `segments` a packet for `key`, pending; `None` if empty.
    pub(crate) fn new(segments: SkbQueue, key: RcuArc<K>) -> Option<Self> {
        let buffers = segments.len();
        let head = NonNull::new(segments.into_list().into_raw())?;
        // SAFETY: `head` heads the chain we owned as `segments`.
        Some(unsafe { Self::from_chain(head, buffers, key) })
    }

    /// A packet of one buffer.
    pub(crate) fn single(skb: SkBuff, key: RcuArc<K>) -> Self {
        let mut list = SkbQueue::new();
        list.push_back(skb);
        // SAFETY: a one-buffer chain we own, so its head is not null.
        unsafe { Self::from_chain(NonNull::new_unchecked(list.into_list().into_raw()), 1, key) }
    }

    /// # Safety
    ///
    /// `head` must head a chain of `buffers` buffers that we own.
    unsafe fn from_chain(head: NonNull<bindings::sk_buff>, buffers: usize, key: RcuArc<K>) -> Self {
        // SAFETY: per the function's contract the first buffer's `cb` is ours
        // to write.
        unsafe {
            let cb = packet_cb(head.as_ptr());
            ptr::addr_of_mut!((*cb).state).write(Atomic::new(PacketState::Pending as i32));
            ptr::addr_of_mut!((*cb).buffers).write(u32::try_from(buffers).unwrap_or(u32::MAX));
            ptr::addr_of_mut!((*cb).key).write(RcuArc::into_erased(key).as_ptr());
        }
        // INVARIANT: the chain is ours and `key` now holds the reference.
        Packet { head, _key: PhantomData }
    }

    /// How many buffers the packet was made of.
    fn buffers(&self) -> i32 {
        // SAFETY: by the type invariant, `head` heads a packet.
        unsafe { packet_buffers(self.head.as_ptr()) }
    }

    fn erased_key(&self) -> NonNull<core::ffi::c_void> {
        // SAFETY: by the type invariant `key` was written in `new` and is
        // non-null.
        unsafe { NonNull::new_unchecked((*packet_cb(self.head.as_ptr())).key) }
    }

    /// What the packet is for.
    pub(crate) fn key(&self) -> &K {
        // SAFETY: the key is counted for us while we live.
        unsafe { RcuArc::borrow_erased(self.erased_key()) }
    }

    /// The first buffer.
    pub(crate) fn first(&mut self) -> SkbMut<'_> {
        // SAFETY: the chain is ours, borrowed mutably through the handle.
        unsafe { SkbMut::new(self.head) }
    }

    /// Runs `f` on each buffer, in order.
    pub(crate) fn for_each(&mut self, f: impl FnMut(SkbMut<'_>)) {
        // SAFETY: the chain is ours, borrowed mutably for the walk.
        unsafe { for_each_in_chain(self.head.as_ptr(), f) }
    }

    /// Gives up the packet: its buffers, and the reference to its key.
    pub(crate) fn into_parts(self) -> (SkbList, RcuArc<K>) {
        let key = self.erased_key();
        let head = ManuallyDrop::new(self).head;
        // SAFETY: we own the chain and the counted reference, and give both
        // up exactly once (`self` is not dropped).
        unsafe { (SkbList::from_raw(head.as_ptr()), RcuArc::from_erased(key)) }
    }

    fn state(&self) -> PacketState {
        // SAFETY: our first buffer; `state` was written in `new`.
        match unsafe { &(*packet_cb(self.head.as_ptr())).state }.load(Acquire) {
            1 => PacketState::Done,
            2 => PacketState::Dead,
            _ => PacketState::Pending,
        }
    }

    fn into_raw(self) -> NonNull<bindings::sk_buff> {
        ManuallyDrop::new(self).head
    }

    /// # Safety
    ///
    /// `head` must come from [`Self::into_raw`] of a `Packet<K>`, and be
    /// handed back once.
    unsafe fn from_raw(head: NonNull<bindings::sk_buff>) -> Self {
        // INVARIANT: as when it was given up.
        Packet { head, _key: PhantomData }
    }
}

impl<K: Send + Sync> Drop for Packet<K> {
    fn drop(&mut self) {
        let key = self.erased_key();
        // SAFETY: as in `into_parts`; the fields are not used again.
        unsafe {
            drop(SkbList::from_raw(self.head.as_ptr()));
            drop(RcuArc::<K>::from_erased(key));
        }
    }
}

/// The consumer's end of an [`OrderedQueue`].
struct Consumer {
    tail: *mut bindings::sk_buff,
    /// A packet taken off the queue but not yet finished.
    peeked: *mut bindings::sk_buff,
}

/// A multi-producer, single-consumer queue of packets, in the order they
/// were pushed (upstream's `prev_queue`: Vyukov's intrusive MPSC queue,
/// linked through `skb->prev`). Bounded by `limit` buffers, as upstream
/// bounds it by packets: a batch counts as many as it has buffers.
///
/// # Invariants
///
/// Every buffer reachable from `head`/the consumer's `tail` (other than
/// `stub`) is the first buffer of a packet given up with
/// `Packet::<K>::into_raw`, owned by the queue (and, until it is finished,
/// shared with one [`InFlight`]).
#[pin_data(PinnedDrop)]
pub(crate) struct OrderedQueue<K: Send + Sync> {
    /// Producers swap themselves in here.
    head: Atomic<*mut bindings::sk_buff>,
    /// Buffers in the queue.
    count: Atomic<i32>,
    limit: i32,
    /// The consumer's state. Whoever finishes a packet may try to consume;
    /// one at a time does, the others only set `missed`.
    #[pin]
    consumer: SpinLockBh<Consumer>,
    /// Set by a would-be consumer that found the lock taken: the holder
    /// looks again before it leaves, as the packet it waited on may have
    /// finished after it looked.
    missed: Atomic<bool>,
    /// The queue's empty marker: a fake buffer whose `next`/`prev` the
    /// algorithm uses. Only those two fields are ever accessed.
    #[pin]
    stub: Opaque<bindings::wgrs_skb_links>,
    _packets: PhantomData<Packet<K>>,
}

// SAFETY: all shared state is atomic or behind the consumer lock; packets
// are `Send`.
unsafe impl<K: Send + Sync> Send for OrderedQueue<K> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync> Sync for OrderedQueue<K> {}

/// The link of a buffer in an [`OrderedQueue`].
///
/// # Safety
///
/// `skb` must be a buffer or the stub of a queue, live.
unsafe fn link(skb: *mut bindings::sk_buff) -> *mut *mut bindings::sk_buff {
    // SAFETY: per the function's contract; `prev` is the queue's link.
    unsafe { super::skb::field::prev(skb) }
}

impl<K: Send + Sync> OrderedQueue<K> {
    pub(crate) fn new(limit: i32) -> impl PinInit<Self> {
        pin_init!(OrderedQueue {
            head: Atomic::new(ptr::null_mut()),
            count: Atomic::new(0),
            limit,
            consumer <- new_spinlock_bh!(Consumer { tail: ptr::null_mut(), peeked: ptr::null_mut() }),
            missed: Atomic::new(false),
            stub: Opaque::zeroed(),
            _packets: PhantomData,
        })
    }

    fn stub(&self) -> *mut bindings::sk_buff {
        self.stub.get().cast()
    }

    /// The head pointer, lazily pointing at the stub: `new` cannot know the
    /// stub's final address, so NULL stands for it.
    fn head_or_stub(ptr: *mut bindings::sk_buff, stub: *mut bindings::sk_buff) -> *mut bindings::sk_buff {
        if ptr.is_null() { stub } else { ptr }
    }

    fn push_raw(&self, skb: *mut bindings::sk_buff) {
        let stub = self.stub();
        // SAFETY: `skb` is a packet's first buffer we are handing to the
        // queue (or the stub); its link is ours until published below.
        unsafe { Atomic::from_ptr(link(skb)) }.store(ptr::null_mut(), Relaxed);
        // Release publishes the link's reset before the swap.
        let prev = Self::head_or_stub(self.head.xchg(skb, Release), stub);
        // SAFETY: `prev` is the previous head: a live buffer of the queue or
        // the stub, whose link nobody else writes (we replaced it as head);
        // the consumer reads it atomically. Release publishes the packet.
        unsafe { Atomic::from_ptr(link(prev)) }.store(skb, Release);
    }

    fn pop_raw(&self, consumer: &mut Consumer) -> *mut bindings::sk_buff {
        let stub = self.stub();
        let load_next = |skb: *mut bindings::sk_buff| {
            // SAFETY: `skb` is the queue's tail: a live buffer of the queue
            // or the stub, whose link producers write atomically. Acquire
            // pairs with their release.
            unsafe { Atomic::from_ptr(link(skb)) }.load(Acquire)
        };
        let mut tail = Self::head_or_stub(consumer.tail, stub);
        let mut next = load_next(tail);
        if tail == stub {
            if next.is_null() {
                return ptr::null_mut();
            }
            consumer.tail = next;
            tail = next;
            next = load_next(next);
        }
        if !next.is_null() {
            consumer.tail = next;
            self.uncount(tail);
            return tail;
        }
        if tail != Self::head_or_stub(self.head.load(Acquire), stub) {
            // A producer is between its swap and its link: come back later.
            return ptr::null_mut();
        }
        self.push_raw(stub);
        next = load_next(tail);
        if !next.is_null() {
            consumer.tail = next;
            self.uncount(tail);
            return tail;
        }
        ptr::null_mut()
    }

    /// Gives back the room of `skb`, a packet's first buffer just popped.
    fn uncount(&self, skb: *mut bindings::sk_buff) {
        // SAFETY: popped by the consumer, `skb` heads a packet the queue
        // still owns.
        self.count.fetch_sub(unsafe { packet_buffers(skb) }, Relaxed);
    }

    /// Pushes `packet` at the back, unless that would put more than `limit`
    /// buffers in the queue (a packet larger than that still goes into an
    /// empty queue).
    fn push(&self, packet: Packet<K>) -> core::result::Result<(), Packet<K>> {
        let buffers = packet.buffers();
        let mut count = self.count.load(Relaxed);
        loop {
            if count > 0 && count.saturating_add(buffers) > self.limit {
                return Err(packet);
            }
            match self.count.cmpxchg(count, count.saturating_add(buffers), Relaxed) {
                Ok(_) => break,
                Err(current) => count = current,
            }
        }
        // INVARIANT: the queue takes the packet over.
        self.push_raw(packet.into_raw().as_ptr());
        Ok(())
    }

    /// Takes every finished packet off the front, in order, stopping at the
    /// first one still pending; hands each to `f`, at most `budget` of them.
    /// Returns how many were taken. One consumer runs at a time: a caller
    /// that finds another at it returns 0 at once, and the other takes what
    /// it would have, unless `budget` runs out first.
    pub(crate) fn drain_finished(&self, budget: usize, mut f: impl FnMut(Packet<K>, PacketState)) -> usize {
        let mut taken = 0;
        loop {
            let consumer = match self.consumer.try_lock() {
                Some(consumer) => consumer,
                None => {
                    // Full: our finished packet (and the caller's release of
                    // it) before the flag, the flag before the second try.
                    // Either the holder's exchange below sees the flag, or
                    // this try sees the lock released.
                    self.missed.xchg(true, Full);
                    match self.consumer.try_lock() {
                        Some(consumer) => consumer,
                        None => return taken,
                    }
                }
            };
            taken += self.take_finished(consumer, budget - taken, &mut f);
            // Full: the unlock before the flag's read; acquire pairs with the
            // setter's release, so its finished packet is seen next round.
            if taken == budget || !self.missed.xchg(false, Full) {
                return taken;
            }
        }
    }

    fn take_finished(
        &self,
        mut consumer: SpinLockBhGuard<'_, Consumer>,
        budget: usize,
        f: &mut impl FnMut(Packet<K>, PacketState),
    ) -> usize {
        let mut taken = 0;
        while taken < budget {
            if consumer.peeked.is_null() {
                consumer.peeked = self.pop_raw(&mut consumer);
            }
            let Some(head) = NonNull::new(consumer.peeked) else {
                break;
            };
            // SAFETY: by the type invariant `head` is a packet the queue
            // owns; we only borrow it to read its state, atomically.
            let peeked = ManuallyDrop::new(unsafe { Packet::<K>::from_raw(head) });
            let state = peeked.state();
            if state == PacketState::Pending {
                break;
            }
            consumer.peeked = ptr::null_mut();
            taken += 1;
            // The acquire load of the state saw the worker's release: its
            // writes are visible and it no longer touches the packet, which
            // is now ours alone.
            f(ManuallyDrop::into_inner(peeked), state);
        }
        taken
    }
}

#[pinned_drop]
impl<K: Send + Sync> PinnedDrop for OrderedQueue<K> {
    fn drop(self: Pin<&mut Self>) {
        // Whatever is left is freed (the queue owns it; `&mut` means no
        // worker holds any of it any more, see `InFlight`).
        let mut consumer = self.consumer.lock();
        loop {
            let head = if consumer.peeked.is_null() {
                self.pop_raw(&mut consumer)
            } else {
                core::mem::replace(&mut consumer.peeked, ptr::null_mut())
            };
            let Some(head) = NonNull::new(head) else {
                break;
            };
            // SAFETY: owned by the queue, handed back once.
            drop(unsafe { Packet::<K>::from_raw(head) });
        }
    }
}

/// A packet a worker took off a [`PacketRing`]: its buffers are the
/// worker's to change until it is [`finish`](Self::finish)ed, while the
/// packet itself stays in its ordered queue.
///
/// # Invariants
///
/// `packet` is also in an ordered queue, pending; nobody else touches its
/// buffers until `finish`, and it is never dropped or moved out from here.
pub(crate) struct InFlight<K: Send + Sync> {
    packet: ManuallyDrop<Packet<K>>,
}

impl<K: Send + Sync> InFlight<K> {
    /// What the packet is for.
    pub(crate) fn key(&self) -> &K {
        self.packet.key()
    }

    /// The first buffer.
    pub(crate) fn first(&mut self) -> SkbMut<'_> {
        self.packet.first()
    }

    /// Runs `f` on each buffer, in order.
    pub(crate) fn for_each(&mut self, f: impl FnMut(SkbMut<'_>)) {
        self.packet.for_each(f)
    }

    /// Publishes the outcome; the ordered queue's consumer takes the packet
    /// from here.
    pub(crate) fn finish(self, state: PacketState) {
        let this = ManuallyDrop::new(self);
        // SAFETY: our packet's first buffer; the state is atomic. Release:
        // our writes to the buffers happen before the consumer sees the new
        // state. After this store we touch nothing.
        unsafe { &(*packet_cb(this.packet.head.as_ptr())).state }.store(state as i32, Release);
    }
}

impl<K: Send + Sync> Drop for InFlight<K> {
    fn drop(&mut self) {
        // Never silently lost: unfinished work counts as failed.
        // SAFETY: as in `finish`.
        unsafe { &(*packet_cb(self.packet.head.as_ptr())).state }
            .store(PacketState::Dead as i32, Release);
    }
}

/// A bounded multi-producer, multi-consumer ring of packets (`ptr_ring`),
/// shared by the parallel workers of a stage.
///
/// # Invariants
///
/// `ring` is initialised; every entry is a packet that is also in an
/// ordered queue and pending, put there by [`enqueue`].
#[pin_data(PinnedDrop)]
pub(crate) struct PacketRing<K: Send + Sync> {
    #[pin]
    ring: Opaque<bindings::ptr_ring>,
    _packets: PhantomData<InFlight<K>>,
}

// SAFETY: the ring has its own producer and consumer locks (BH-safe).
unsafe impl<K: Send + Sync> Send for PacketRing<K> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync> Sync for PacketRing<K> {}

impl<K: Send + Sync> PacketRing<K> {
    /// A ring of `size` entries (`GFP_KERNEL`).
    pub(crate) fn new(size: u32) -> impl PinInit<Self, Error> {
        // SAFETY: on success the ring is initialised in place; on failure
        // the slot is left as it was (nothing to drop).
        unsafe {
            pin_init::pin_init_from_closure(move |slot: *mut Self| {
                let ring = ptr::addr_of_mut!((*slot).ring).cast::<bindings::ptr_ring>();
                kernel::error::to_result(bindings::wgrs_ptr_ring_init(ring, size))
            })
        }
    }

    fn ring(&self) -> *mut bindings::ptr_ring {
        self.ring.get()
    }

    /// Whether no packet is waiting (`ptr_ring_empty_bh`).
    pub(crate) fn is_empty(&self) -> bool {
        // SAFETY: the ring is initialised.
        unsafe { bindings::wgrs_ptr_ring_empty_bh(self.ring()) }
    }

    /// Takes the next packet to process (`ptr_ring_consume_bh`).
    pub(crate) fn pop(&self) -> Option<InFlight<K>> {
        // SAFETY: the ring is initialised; entries are ours to take.
        let head = NonNull::new(unsafe { bindings::wgrs_ptr_ring_consume_bh(self.ring()) })?;
        // INVARIANT: per the ring's invariant.
        // SAFETY: the ring holds packets given up with `Packet::into_raw`.
        Some(InFlight { packet: ManuallyDrop::new(unsafe { Packet::from_raw(head.cast()) }) })
    }
}

#[pinned_drop]
impl<K: Send + Sync> PinnedDrop for PacketRing<K> {
    fn drop(self: Pin<&mut Self>) {
        // Entries left are still in their ordered queues, which free them:
        // mark them failed, then free only the array.
        while let Some(in_flight) = self.pop() {
            drop(in_flight);
        }
        // SAFETY: initialised, and empty now.
        unsafe { bindings::wgrs_ptr_ring_cleanup(self.ring()) };
    }
}

/// Why [`enqueue`] could not take a packet.
pub(crate) enum EnqueueError<K: Send + Sync> {
    /// The ordered queue is full: the packet is handed back.
    Full(Packet<K>),
    /// The ring is full: the packet is in its ordered queue, already
    /// marked failed; kick that queue's consumer.
    RingFull,
}

/// Puts `packet` in `ordered` (for its consumer, in order) and in `ring`
/// (for a worker). Afterwards only the worker that pops it may change it.
pub(crate) fn enqueue<K: Send + Sync>(
    ordered: &OrderedQueue<K>,
    ring: &PacketRing<K>,
    packet: Packet<K>,
) -> core::result::Result<(), EnqueueError<K>> {
    let head = packet.head;
    ordered.push(packet).map_err(EnqueueError::Full)?;
    // SAFETY: the packet is in its ordered queue and pending; the ring takes
    // the worker's share of it (`InFlight`).
    if unsafe { bindings::wgrs_ptr_ring_produce_bh(ring.ring(), head.as_ptr().cast()) } != 0 {
        // SAFETY: nobody else has the worker's share; we finish it here.
        drop(InFlight { packet: ManuallyDrop::new(unsafe { Packet::<K>::from_raw(head) }) });
        return Err(EnqueueError::RingFull);
    }
    Ok(())
}

/// A bounded multi-producer, multi-consumer ring of buffers (`ptr_ring`),
/// for a stage that needs no ordering (incoming handshakes).
///
/// # Invariants
///
/// `ring` is initialised; its entries are buffers it owns.
#[pin_data(PinnedDrop)]
pub(crate) struct SkbRing {
    #[pin]
    ring: Opaque<bindings::ptr_ring>,
}

// SAFETY: the ring has its own producer and consumer locks (BH-safe).
unsafe impl Send for SkbRing {}
// SAFETY: as above.
unsafe impl Sync for SkbRing {}

impl SkbRing {
    /// A ring of `size` entries (`GFP_KERNEL`).
    pub(crate) fn new(size: u32) -> impl PinInit<Self, Error> {
        // SAFETY: as for `PacketRing::new`.
        unsafe {
            pin_init::pin_init_from_closure(move |slot: *mut Self| {
                let ring = ptr::addr_of_mut!((*slot).ring).cast::<bindings::ptr_ring>();
                kernel::error::to_result(bindings::wgrs_ptr_ring_init(ring, size))
            })
        }
    }

    /// Adds `skb`, or hands it back when the ring is full, or (with
    /// `contended`) when another producer holds the lock.
    pub(crate) fn push(&self, skb: SkBuff, contended: bool) -> core::result::Result<(), SkBuff> {
        let raw = skb.into_raw();
        // SAFETY: the ring is initialised; on success it owns the buffer.
        if unsafe { bindings::wgrs_ptr_ring_produce_bh_try(self.ring.get(), raw.as_ptr().cast(), contended) } != 0 {
            // SAFETY: not taken: still ours.
            return Err(unsafe { SkBuff::from_raw(raw) });
        }
        Ok(())
    }

    /// Whether no buffer is waiting (`ptr_ring_empty_bh`).
    pub(crate) fn is_empty(&self) -> bool {
        // SAFETY: the ring is initialised.
        unsafe { bindings::wgrs_ptr_ring_empty_bh(self.ring.get()) }
    }

    pub(crate) fn pop(&self) -> Option<SkBuff> {
        // SAFETY: the ring is initialised; entries are buffers it owns.
        let skb = NonNull::new(unsafe { bindings::wgrs_ptr_ring_consume_bh(self.ring.get()) })?;
        // SAFETY: taken off the ring: ours.
        Some(unsafe { SkBuff::from_raw(skb.cast()) })
    }
}

#[pinned_drop]
impl PinnedDrop for SkbRing {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: initialised; frees the buffers left and the array.
        unsafe { bindings::wgrs_ptr_ring_cleanup_skbs(self.ring.get()) };
    }
}
