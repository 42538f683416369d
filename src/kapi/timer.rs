// SPDX-License-Identifier: GPL-2.0

//! Timers (`linux/timer.h`), in jiffies, run in softirq context.
//!
//! A [`Timer`] lives in an object shared through [`RcuArc`] and is armed
//! with a reference to it: a pending timer owns a counted reference, which
//! its handler gets (or cancelling drops). So a timer never fires on an
//! object that is gone.

use super::bindings;
use super::rcu::RcuArc;
use core::{ffi::c_void, marker::PhantomData, ptr, ptr::NonNull};
use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Atomic, Release},
    types::Opaque,
};

/// What a [`Timer`] runs.
pub(crate) trait TimerHandler: 'static {
    /// The object the timer lives in.
    type Owner: Send + Sync;

    /// Runs in softirq context with the reference arming took.
    fn run(owner: RcuArc<Self::Owner>);
}

/// A timer inside an object `H::Owner`.
///
/// # Invariants
///
/// `timer` is set up to call `expired::<H>`. While it is pending, `owner`
/// holds a reference to the object containing it, counted for the timer.
#[repr(C)]
#[pin_data]
pub(crate) struct Timer<H: TimerHandler> {
    /// First, so that the callback finds the rest from it.
    #[pin]
    timer: Opaque<bindings::timer_list>,
    owner: Atomic<*mut c_void>,
    _handler: PhantomData<H>,
}

// SAFETY: the timer core serialises arming, cancelling and expiry.
unsafe impl<H: TimerHandler> Send for Timer<H> {}
// SAFETY: as above.
unsafe impl<H: TimerHandler> Sync for Timer<H> {}

/// # Safety
///
/// `timer` must be the `timer` of a `Timer<H>` that was pending, whose
/// reference the expiry now owns.
unsafe extern "C" fn expired<H: TimerHandler>(timer: *mut bindings::timer_list) {
    // SAFETY: `timer` is the first field of a `repr(C)` `Timer<H>`, which
    // held a reference while pending; expiry takes it over.
    let owner = unsafe {
        let this = &*timer.cast::<Timer<H>>();
        RcuArc::<H::Owner>::from_erased(NonNull::new_unchecked(this.owner.load(Acquire)))
    };
    H::run(owner);
}

impl<H: TimerHandler> Timer<H> {
    pub(crate) fn new() -> impl PinInit<Self> {
        // SAFETY: every field is initialised; the timer calls `expired::<H>`.
        unsafe {
            pin_init::pin_init_from_closure(|slot: *mut Self| {
                ptr::addr_of_mut!((*slot).owner).write(Atomic::new(ptr::null_mut()));
                bindings::wgrs_timer_setup(ptr::addr_of_mut!((*slot).timer).cast(), Some(expired::<H>));
                Ok(())
            })
        }
    }

    /// Arms the timer to expire at `expires` (jiffies), or moves it there if
    /// pending (`mod_timer`). `owner` must be the object the timer lives in
    /// (otherwise nothing happens).
    pub(crate) fn modify(&self, owner: &RcuArc<H::Owner>, expires: u64) {
        if !owner.contains(self) {
            return;
        }
        let erased = RcuArc::into_erased(owner.clone());
        self.owner.store(erased.as_ptr(), Release);
        // SAFETY: the timer is set up and lives in `owner`.
        if unsafe { bindings::mod_timer(self.timer.get().cast(), expires as _) } != 0 {
            // It was pending, with a reference of its own.
            // SAFETY: ours from `into_erased` above, not handed over.
            drop(unsafe { RcuArc::<H::Owner>::from_erased(erased) });
        }
    }

    /// Whether the timer is pending.
    pub(crate) fn is_pending(&self) -> bool {
        // SAFETY: the timer is set up; this is a racy read, as in C.
        unsafe { bindings::wgrs_timer_pending(self.timer.get().cast()) }
    }

    /// Disarms the timer (`timer_delete`); a handler already running is
    /// not waited for.
    pub(crate) fn delete(&self) {
        // SAFETY: the timer is set up.
        if unsafe { bindings::timer_delete(self.timer.get().cast()) } != 0 {
            self.drop_pending_reference();
        }
    }

    /// Disarms the timer and waits for a running handler
    /// (`timer_delete_sync`). Not from the handler itself. May sleep.
    pub(crate) fn delete_sync(&self) {
        // SAFETY: the timer is set up.
        if unsafe { bindings::timer_delete_sync(self.timer.get().cast()) } != 0 {
            self.drop_pending_reference();
        }
    }

    fn drop_pending_reference(&self) {
        // SAFETY: the timer was pending, so `owner` holds its reference,
        // which disarming made ours.
        drop(unsafe { RcuArc::<H::Owner>::from_erased(NonNull::new_unchecked(self.owner.load(Acquire))) });
    }
}
