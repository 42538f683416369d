// SPDX-License-Identifier: GPL-2.0

//! Periodic housekeeping on a deferrable delayed work item.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)
//!
//! [`Periodic<T>`] owns a `T` and calls [`Tick::tick`] on it every period,
//! in process context on `system_power_efficient_wq`, from a *deferrable*
//! timer (an idle CPU is not woken up for it). Dropping it cancels the work
//! and waits for a running tick to return (`cancel_delayed_work_sync`,
//! which copes with work that re-queues itself), so no tick can outlive the
//! data it works on: `Periodic` is pinned, and pinned memory is dropped
//! before it is reused.

use super::bindings;
use core::ptr;
use kernel::{prelude::*, types::Opaque};
use pin_init::PinInit;

/// What a [`Periodic`] runs.
pub(crate) trait Tick: Send + Sync + 'static {
    /// Called every period, in process context (it may sleep).
    fn tick(&self);
}

/// A `T` with a work item that ticks it every `period` jiffies.
///
/// # Invariants
///
/// `work` is an initialised deferrable delayed work whose function is
/// [`Periodic::run`] for this `T`; it is only queued by `start` and by
/// `run`, and is cancelled before `self` is dropped.
#[pin_data(PinnedDrop)]
pub(crate) struct Periodic<T: Tick> {
    #[pin]
    work: Opaque<bindings::delayed_work>,
    period: usize,
    #[pin]
    data: T,
}

// SAFETY: `T: Send + Sync`; the work item is only handled through the
// workqueue API, which is thread-safe.
unsafe impl<T: Tick> Send for Periodic<T> {}
// SAFETY: as above; `&Periodic` only gives `&T` out.
unsafe impl<T: Tick> Sync for Periodic<T> {}

impl<T: Tick> Periodic<T> {
    /// Initialises the data with `data`, to be ticked every
    /// `period_jiffies` (at least one) once [`Periodic::start`] is called.
    pub(crate) fn new<E>(data: impl PinInit<T, E>, period_jiffies: u64) -> impl PinInit<Self, E> {
        let period = usize::try_from(period_jiffies).unwrap_or(usize::MAX).max(1);
        // SAFETY: on success the closure has initialised every field; on
        // failure only `period` (which needs no drop), as `data` cleans up
        // after itself.
        unsafe {
            pin_init::pin_init_from_closure(move |slot: *mut Self| {
                ptr::addr_of_mut!((*slot).period).write(period);
                data.__init(ptr::addr_of_mut!((*slot).data))?;
                // INVARIANT: `run` is this type's work function.
                bindings::wgrs_init_deferrable_work(
                    Opaque::cast_into(ptr::addr_of!((*slot).work)),
                    Some(Self::run),
                );
                Ok(())
            })
        }
    }

    /// The data the ticks work on.
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    /// Schedules the first tick, one period from now. Further calls while
    /// the work is pending do nothing.
    pub(crate) fn start(&self) {
        // SAFETY: `work` is initialised (type invariant) and pinned inside
        // `self`, which cancels it before going away.
        unsafe { bindings::wgrs_queue_power_efficient_delayed_work(self.work.get(), self.period) };
    }

    /// The work function: ticks, then re-queues itself.
    ///
    /// # Safety
    ///
    /// `work` must be the `work_struct` of the `delayed_work` of a live
    /// `Periodic<T>` (guaranteed for the function that `new` installs: the
    /// work is cancelled before its `Periodic` is dropped).
    unsafe extern "C" fn run(work: *mut bindings::work_struct) {
        // SAFETY: per the function's contract.
        let this = unsafe {
            let dwork = bindings::wgrs_to_delayed_work(work);
            &*dwork.cast::<u8>().sub(core::mem::offset_of!(Self, work)).cast::<Self>()
        };
        this.data.tick();
        this.start();
    }
}

#[pinned_drop]
impl<T: Tick> PinnedDrop for Periodic<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `work` is initialised; this waits for a running tick and
        // defeats its re-queueing. Process context, as drops of pinned
        // owners of work items must be.
        unsafe { bindings::cancel_delayed_work_sync(self.work.get()) };
    }
}
