// SPDX-License-Identifier: GPL-2.0

//! Work items and workqueues (`linux/workqueue.h`).
//!
//! A [`Work`] is embedded in an object shared through [`RcuArc`], and is
//! queued with a reference to that object: the queued work item owns a
//! counted reference until it runs (or is cancelled), and its handler gets
//! it. So no work item can run on an object that is gone, however the rest
//! of the driver sequences its teardown. [`CpuWorkers`] are the same, one
//! per possible CPU, for the parallel stages of the data plane.

use super::bindings;
use super::rcu::RcuArc;
use core::{ffi::c_void, marker::PhantomData, ptr, ptr::NonNull};
use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Atomic, Full, Relaxed, Release},
    sync::barrier::smp_mb,
    types::Opaque,
};

/// What a [`Work`] runs.
pub(crate) trait WorkHandler: 'static {
    /// The object the work item lives in.
    type Owner: Send + Sync;

    /// Runs, in process context, with the reference the queuing took.
    fn run(owner: RcuArc<Self::Owner>);
}

/// What [`CpuWorkers`] run: each drains a queue they all share.
pub(crate) trait DrainHandler: 'static {
    /// The object the workers and their queue live in.
    type Owner: Send + Sync;

    /// Takes what is queued until it finds nothing left. Process context.
    fn drain(owner: &RcuArc<Self::Owner>);

    /// Whether anything is queued.
    fn has_work(owner: &Self::Owner) -> bool;
}

/// A workqueue of our own; destroyed (after running what is queued) when
/// dropped.
///
/// # Invariants
///
/// `0` is a workqueue we allocated.
pub(crate) struct Workqueue(NonNull<bindings::workqueue_struct>);

// SAFETY: workqueues are used from any context and thread.
unsafe impl Send for Workqueue {}
// SAFETY: as above.
unsafe impl Sync for Workqueue {}

/// Flags of [`Workqueue::new`] (`WQ_*`).
#[derive(Clone, Copy)]
pub(crate) struct WqFlags(u32);

impl WqFlags {
    /// Per-CPU, for CPU-intensive work that may run during memory reclaim.
    pub(crate) const CRYPT: WqFlags = WqFlags(bindings::WGRS_WQ_CRYPT);
    /// Per-CPU, CPU-intensive, frozen during suspend.
    pub(crate) const CPU_FREEZABLE: WqFlags = WqFlags(bindings::WGRS_WQ_CPU_FREEZABLE);
    /// Unbound, frozen during suspend.
    pub(crate) const UNBOUND_FREEZABLE: WqFlags = WqFlags(bindings::WGRS_WQ_UNBOUND_FREEZABLE);
}

impl Workqueue {
    /// Allocates a workqueue called "`prefix`-`name`" (`GFP_KERNEL`).
    pub(crate) fn new(prefix: &CStr, name: &CStr, flags: WqFlags) -> Result<Self> {
        // SAFETY: both strings are NUL-terminated; returns NULL on failure.
        let wq = unsafe { bindings::wgrs_alloc_workqueue(prefix.as_ptr().cast(), name.as_ptr().cast(), flags.0) };
        // INVARIANT: allocated above.
        NonNull::new(wq).map(Workqueue).ok_or(ENOMEM)
    }

    fn as_ptr(&self) -> *mut bindings::workqueue_struct {
        self.0.as_ptr()
    }
}

impl Drop for Workqueue {
    fn drop(&mut self) {
        // SAFETY: ours; waits for queued work. Nothing can be queued any
        // more: queuing borrows the queue, which is being dropped.
        unsafe { bindings::destroy_workqueue(self.as_ptr()) };
    }
}

/// The shared part of [`Work`] and [`CpuWorkers`]: a `work_struct` and the
/// object it belongs to.
#[repr(C)]
struct RawWork {
    /// First, so that the callback finds the rest from it.
    work: Opaque<bindings::work_struct>,
    /// The erased `RcuArc<H::Owner>` object this lives in; set when first
    /// queued, and the same object every time after.
    owner: Atomic<*mut c_void>,
}

/// The `work_struct` callback of handler `H`.
///
/// # Safety
///
/// `work` must be the `work` of a [`RawWork`] that was queued by
/// [`RawWork::queue`] for `H`, which handed the run a counted reference.
unsafe extern "C" fn run_work<H: WorkHandler>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the first field of a `repr(C)` `RawWork`, queued for
    // `H`, whose run this is.
    let owner = unsafe { (*work.cast::<RawWork>()).take_owner::<H::Owner>() };
    H::run(owner);
}

impl RawWork {
    /// Initialises `slot` to run `func`.
    ///
    /// # Safety
    ///
    /// `slot` must be valid for writes, and `func` must take over the
    /// reference that [`Self::queue`] hands each run, to the object `slot`
    /// lives in.
    unsafe fn init(slot: *mut Self, func: unsafe extern "C" fn(*mut bindings::work_struct)) {
        // SAFETY: `slot` is valid for writes, per the function's contract.
        unsafe {
            ptr::addr_of_mut!((*slot).owner).write(Atomic::new(ptr::null_mut()));
            bindings::wgrs_init_work(ptr::addr_of_mut!((*slot).work).cast(), Some(func));
        }
    }

    /// Takes over the counted reference to the owner that queuing handed
    /// the pending run.
    ///
    /// # Safety
    ///
    /// The work must have been queued with an owner of type `T`, and the
    /// run's reference not taken yet: by the run itself, or by a cancel
    /// that dequeued it.
    unsafe fn take_owner<T: Send + Sync>(&self) -> RcuArc<T> {
        // SAFETY: per the contract, `queue` set `owner` and counted a
        // reference for this run, not yet taken.
        unsafe { RcuArc::from_erased(NonNull::new_unchecked(self.owner.load(Acquire))) }
    }

    /// Queues the work on `cpu` (or any, for `WORK_CPU_UNBOUND`) of `wq`,
    /// with a reference to `owner`, which must contain `self`.
    fn queue<T: Send + Sync>(&self, owner: &RcuArc<T>, wq: &Workqueue, cpu: i32) -> bool {
        let erased = RcuArc::into_erased(owner.clone());
        self.owner.store(erased.as_ptr(), Release);
        // SAFETY: the work is initialised and lives inside `owner`, which the
        // counted reference keeps alive until the run (or cancel) gives it
        // back; `wq` is live.
        let queued = unsafe { bindings::queue_work_on(cpu, wq.as_ptr(), self.work.get().cast()) };
        if !queued {
            // Already queued, with a reference of its own.
            // SAFETY: ours from `into_erased` above, not handed over.
            drop(unsafe { RcuArc::<T>::from_erased(erased) });
        }
        queued
    }

    /// Cancels a queued run and waits for a running one (`cancel_work_sync`).
    fn cancel_sync<T: Send + Sync>(&self) {
        // SAFETY: the work is initialised and, being borrowed, alive.
        if unsafe { bindings::cancel_work_sync(self.work.get().cast()) } {
            // The cancelled run's reference is ours to drop.
            // SAFETY: it was queued for `T`, and the cancel dequeued it.
            drop(unsafe { self.take_owner::<T>() });
        }
    }
}

/// A work item inside an object `H::Owner` shared through `RcuArc`.
#[repr(transparent)]
#[pin_data]
pub(crate) struct Work<H: WorkHandler> {
    #[pin]
    raw: RawWork,
    _handler: PhantomData<H>,
}

// SAFETY: the work item is driven through atomic operations of the
// workqueue core; the owner is `Send + Sync`.
unsafe impl<H: WorkHandler> Send for Work<H> {}
// SAFETY: as above.
unsafe impl<H: WorkHandler> Sync for Work<H> {}

impl<H: WorkHandler> Work<H> {
    pub(crate) fn new() -> impl PinInit<Self> {
        // SAFETY: `RawWork::init` initialises every field; `Work` adds only
        // a marker. The slot is valid for writes (pin-init), and `run_work`
        // takes over each run's reference to the owner.
        unsafe {
            pin_init::pin_init_from_closure(|slot: *mut Self| {
                RawWork::init(slot.cast(), run_work::<H>);
                Ok(())
            })
        }
    }

    /// Queues the work on `wq` (any CPU), unless it is queued already;
    /// `owner` must be the object the work lives in (otherwise nothing
    /// happens). Returns whether it was queued now.
    pub(crate) fn queue(&self, owner: &RcuArc<H::Owner>, wq: &Workqueue) -> bool {
        owner.contains(self) && self.raw.queue(owner, wq, bindings::WGRS_WORK_CPU_UNBOUND)
    }

    /// As [`Self::queue`], on CPU `cpu`.
    pub(crate) fn queue_on(&self, owner: &RcuArc<H::Owner>, wq: &Workqueue, cpu: u32) -> bool {
        owner.contains(self) && self.raw.queue(owner, wq, cpu as i32)
    }

    /// Cancels a queued run and waits for a running one. May sleep.
    pub(crate) fn cancel_sync(&self) {
        self.raw.cancel_sync::<H::Owner>()
    }
}

/// A CPU's worker: its work item, and whether it is draining.
#[repr(C)]
struct CpuWork {
    /// First, so that the callback finds the rest from it.
    raw: RawWork,
    /// Set by the run while it drains; a kick that finds it set does not
    /// queue the work item again.
    draining: Atomic<bool>,
}

/// The `work_struct` callback of [`CpuWorkers`] with handler `H`: drains
/// until the queue is empty with the flag clear, so that a kick skipped
/// because the flag was set is never lost.
///
/// # Safety
///
/// As for [`run_work`]; `work` is also the start of a [`CpuWork`].
unsafe extern "C" fn run_cpu_work<H: DrainHandler>(work: *mut bindings::work_struct) {
    // SAFETY: `work` starts a `repr(C)` `CpuWork`, which lives in the owner
    // our counted reference keeps alive; it was queued for `H`, and this is
    // its run.
    let (this, owner) = unsafe {
        let this = &*work.cast::<CpuWork>();
        (this, this.raw.take_owner::<H::Owner>())
    };
    loop {
        this.draining.store(true, Relaxed);
        H::drain(&owner);
        // Full: the flag's clearing before the queue's check, against a
        // kick's queuing before its read of the flag (see `kick`).
        this.draining.xchg(false, Full);
        if !H::has_work(&owner) {
            break;
        }
    }
}

/// One worker per possible CPU, all running `H` over a queue they share,
/// inside an object `H::Owner` shared through `RcuArc`: the workers of a
/// parallel stage.
///
/// A worker already draining is not queued again (upstream's are): a work
/// item queued while it runs goes on its pool's list, and for a
/// CPU-intensive workqueue that wakes an idle kworker of the pool, which
/// finds the item taken and sleeps again.
///
/// # Invariants
///
/// `works` is a per-CPU allocation of initialised [`CpuWork`]s, freed on
/// drop. A `CpuWorkers` is only dropped with its owner, whose count is zero
/// then: none of its works is queued (each queued one holds a reference).
pub(crate) struct CpuWorkers<H: DrainHandler> {
    works: NonNull<c_void>,
    _handler: PhantomData<H>,
}

// SAFETY: the works are driven by the workqueue core.
unsafe impl<H: DrainHandler> Send for CpuWorkers<H> {}
// SAFETY: as above.
unsafe impl<H: DrainHandler> Sync for CpuWorkers<H> {}

impl<H: DrainHandler> CpuWorkers<H> {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions; returns NULL on failure.
        let works = unsafe { bindings::wgrs_alloc_percpu_works(size_of::<CpuWork>(), align_of::<CpuWork>()) };
        let works = NonNull::new(works).ok_or(ENOMEM)?;
        for cpu in super::cpu::possible() {
            let work = Self::work_ptr(works, cpu);
            // SAFETY: a per-CPU slot of ours, valid for writes; `run_cpu_work`
            // takes over each run's reference to the owner.
            unsafe {
                RawWork::init(work.cast(), run_cpu_work::<H>);
                ptr::addr_of_mut!((*work).draining).write(Atomic::new(false));
            }
        }
        // INVARIANT: allocated and initialised above.
        Ok(CpuWorkers { works, _handler: PhantomData })
    }

    fn work_ptr(works: NonNull<c_void>, cpu: u32) -> *mut CpuWork {
        // SAFETY: `works` is a per-CPU allocation and `cpu` a possible CPU.
        unsafe { bindings::wgrs_per_cpu_ptr(works.as_ptr(), cpu).cast() }
    }

    /// Makes sure CPU `cpu`'s worker will look at the queue after what the
    /// caller just put there: queues it on `wq`, unless it is queued
    /// already or draining. `owner` must be the object the workers live in.
    /// Returns whether it was queued now.
    pub(crate) fn kick(&self, owner: &RcuArc<H::Owner>, wq: &Workqueue, cpu: u32) -> bool {
        if !owner.contains(self) || !super::cpu::is_possible(cpu) {
            return false;
        }
        // SAFETY: initialised for every possible CPU, alive while borrowed.
        let work = unsafe { &*Self::work_ptr(self.works, cpu) };
        // Full: the caller's queuing before the flag's read. Either the
        // worker's exchange in `run_cpu_work` comes after this barrier and
        // its check of the queue sees the new entry, or this read sees the
        // flag cleared and queues the worker.
        smp_mb(Full);
        if work.draining.load(Relaxed) {
            return false;
        }
        work.raw.queue(owner, wq, cpu as i32)
    }
}

impl<H: DrainHandler> Drop for CpuWorkers<H> {
    fn drop(&mut self) {
        // SAFETY: by the type invariant none is queued; a run that is still
        // returning finished with its owner, and `flush` waits for it.
        unsafe {
            for cpu in super::cpu::possible() {
                bindings::flush_work(Self::work_ptr(self.works, cpu).cast());
            }
            bindings::free_percpu(self.works.as_ptr());
        }
    }
}
