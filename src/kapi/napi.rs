// SPDX-License-Identifier: GPL-2.0

//! NAPI (`linux/netdevice.h`): polled, budgeted packet delivery in softirq,
//! with GRO.
//!
//! A [`Napi`] lives in an object shared through [`RcuArc`]. Scheduling it
//! takes a counted reference to that object, which the poll handler
//! borrows and completing gives back, so a scheduled NAPI context never
//! outlives its object. Delivery through GRO is only possible from inside
//! the poll handler, through the [`NapiPoll`] it is given.

use super::bindings;
use super::netdev::NetDevice;
use super::rcu::RcuArc;
use super::skb::SkBuff;
use core::{ffi::c_void, marker::PhantomData, mem::ManuallyDrop, ptr, ptr::NonNull};
use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Atomic, Release},
    types::Opaque,
};

/// What a [`Napi`] polls.
pub(crate) trait NapiHandler: 'static {
    /// The object the NAPI context lives in.
    type Owner: Send + Sync;

    /// Delivers up to `budget` packets through `poll`; returns how many it
    /// handled. Fewer than `budget` means it is done for now.
    fn poll(owner: &RcuArc<Self::Owner>, poll: &mut NapiPoll<'_>, budget: usize) -> usize;
}

/// The right to deliver through a NAPI context, held by its poll handler.
pub(crate) struct NapiPoll<'a> {
    napi: *mut bindings::napi_struct,
    _poll: PhantomData<&'a mut ()>,
}

impl NapiPoll<'_> {
    /// Hands a packet to GRO and the stack (`napi_gro_receive`).
    pub(crate) fn gro_receive(&mut self, skb: SkBuff) {
        // SAFETY: we are in this context's poll handler, which owns it; the
        // buffer is ours to give.
        unsafe { bindings::wgrs_napi_gro_receive(self.napi, skb.into_raw().as_ptr()) };
    }
}

/// A NAPI context inside an object `H::Owner`, added to a device when
/// created and removed when dropped.
///
/// # Invariants
///
/// `napi` is added to `dev` with `poll::<H>` and enabled, until dropped.
/// While it is scheduled, `owner` holds a reference to the object
/// containing it, counted for the schedule.
#[repr(C)]
#[pin_data(PinnedDrop)]
pub(crate) struct Napi<H: NapiHandler> {
    /// First, so that the poll finds the rest from it.
    #[pin]
    napi: Opaque<bindings::napi_struct>,
    owner: Atomic<*mut c_void>,
    _handler: PhantomData<H>,
}

// SAFETY: the NAPI core serialises scheduling and polling.
unsafe impl<H: NapiHandler> Send for Napi<H> {}
// SAFETY: as above.
unsafe impl<H: NapiHandler> Sync for Napi<H> {}

/// # Safety
///
/// `napi` must be the `napi` of a scheduled `Napi<H>`.
unsafe extern "C" fn poll<H: NapiHandler>(napi: *mut bindings::napi_struct, budget: i32) -> i32 {
    let Ok(budget) = usize::try_from(budget) else {
        return 0;
    };
    if budget == 0 {
        return 0;
    }
    // SAFETY: `napi` is the first field of a `repr(C)` `Napi<H>`; being
    // scheduled, it holds a counted reference to its owner, which we borrow
    // (`ManuallyDrop`) until completion gives it back.
    let owner = unsafe {
        let this = &*napi.cast::<Napi<H>>();
        let erased = NonNull::new_unchecked(this.owner.load(Acquire));
        ManuallyDrop::new(RcuArc::<H::Owner>::from_erased(erased))
    };
    let mut token = NapiPoll { napi, _poll: PhantomData };
    let done = H::poll(&owner, &mut token, budget).min(budget);
    // SAFETY: we are the poll; `napi_complete_done` unschedules unless it
    // was scheduled again meanwhile, in which case the reference stays.
    if done < budget && unsafe { bindings::napi_complete_done(napi, done as i32) } {
        drop(ManuallyDrop::into_inner(owner));
    }
    done as i32
}

impl<H: NapiHandler> Napi<H> {
    /// Adds a NAPI context to `dev` and enables it. Process context.
    pub(crate) fn new(dev: &NetDevice) -> impl PinInit<Self> + '_ {
        // SAFETY: every field is initialised; the context is added to a live
        // device (which, per the callers' contract through `DeviceLink`,
        // outlives it) and polls with `poll::<H>`.
        unsafe {
            pin_init::pin_init_from_closure(move |slot: *mut Self| {
                ptr::addr_of_mut!((*slot).owner).write(Atomic::new(ptr::null_mut()));
                bindings::wgrs_napi_add_enable(
                    dev.as_ptr(),
                    ptr::addr_of_mut!((*slot).napi).cast(),
                    Some(poll::<H>),
                );
                Ok(())
            })
        }
    }

    /// Schedules a poll (`napi_schedule`), unless one is pending; `owner`
    /// must be the object the context lives in.
    pub(crate) fn schedule(&self, owner: &RcuArc<H::Owner>) {
        if !owner.contains(self) {
            return;
        }
        let napi = self.napi.get().cast();
        // SAFETY: the context is added and enabled.
        if unsafe { bindings::napi_schedule_prep(napi) } {
            // We set it scheduled: the schedule's reference is ours to give.
            self.owner.store(RcuArc::into_erased(owner.clone()).as_ptr(), Release);
            // SAFETY: as above, and it is ours to queue now.
            unsafe { bindings::__napi_schedule(napi) };
        }
    }
}

#[pinned_drop]
impl<H: NapiHandler> PinnedDrop for Napi<H> {
    fn drop(self: Pin<&mut Self>) {
        // Dropped with its owner, whose count is zero: it is not scheduled
        // (a schedule holds a reference), so disabling does not wait.
        // SAFETY: added and enabled at creation; removed once, here.
        unsafe { bindings::wgrs_napi_disable_del(self.napi.get().cast()) };
    }
}
