// SPDX-License-Identifier: GPL-2.0

//! NAPI (`linux/netdevice.h`): polled, budgeted packet delivery with GRO,
//! in softirq or, on a device with threaded NAPI, in a thread per context.
//!
//! A [`Napi`] lives in an object shared through [`RcuArc`]. Scheduling it
//! takes a counted reference to that object, which the poll handler
//! borrows and completing gives back, so a scheduled NAPI context never
//! outlives its object. Its `napi_struct` has an allocation of its own,
//! freed a grace period after it leaves the device, so that removing many
//! contexts costs no grace period each. Delivery through GRO is only
//! possible from inside the poll handler, through the [`NapiPoll`] it is
//! given.

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

/// The kernel's side of a [`Napi`], in an allocation of its own: leaving
/// the device's NAPI list (RCU) then needs no grace period of its own, as
/// the memory is freed by `call_rcu` after it left. (`netif_napi_del`
/// waits a grace period for each context: minutes under TCG for 100,000
/// contexts removed at once.)
#[repr(C)]
struct Context {
    /// First, so that the poll finds the rest from it.
    napi: Opaque<bindings::napi_struct>,
    /// While scheduled: the counted reference of the schedule.
    owner: Atomic<*mut c_void>,
    rcu: Opaque<bindings::callback_head>,
}

/// A NAPI context for an object `H::Owner`, added to a device when created
/// and removed when dropped.
///
/// # Invariants
///
/// `context` is a `KBox<Context>` leaked by [`Napi::new`], whose `napi` is
/// added to the device with `poll::<H>` and enabled, until dropped. While
/// it is scheduled, `owner` holds a reference to the object containing the
/// `Napi`, counted for the schedule.
pub(crate) struct Napi<H: NapiHandler> {
    context: NonNull<Context>,
    _handler: PhantomData<H>,
}

// SAFETY: the NAPI core serialises scheduling and polling.
unsafe impl<H: NapiHandler> Send for Napi<H> {}
// SAFETY: as above.
unsafe impl<H: NapiHandler> Sync for Napi<H> {}

/// # Safety
///
/// `napi` must be the `napi` of the context of a scheduled `Napi<H>`.
unsafe extern "C" fn poll<H: NapiHandler>(napi: *mut bindings::napi_struct, budget: i32) -> i32 {
    let Ok(budget) = usize::try_from(budget) else {
        return 0;
    };
    if budget == 0 {
        return 0;
    }
    // SAFETY: `napi` is the first field of a `repr(C)` `Context`; being
    // scheduled, it holds a counted reference to its owner, which we borrow
    // (`ManuallyDrop`) until completion gives it back.
    let owner = unsafe {
        let context = &*napi.cast::<Context>();
        let erased = NonNull::new_unchecked(context.owner.load(Acquire));
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

/// # Safety
///
/// `head` must be the `rcu` of a `Context` leaked from a `KBox`, off its
/// device's list for a grace period now.
unsafe extern "C" fn free_context(head: *mut bindings::callback_head) {
    // SAFETY: per the contract, `head` lies in a `Context` we own again.
    drop(unsafe {
        KBox::from_raw(kernel::container_of!(head.cast::<Opaque<bindings::callback_head>>(), Context, rcu))
    });
}

impl<H: NapiHandler> Napi<H> {
    /// Adds a NAPI context to `dev` and enables it. Process context.
    ///
    /// The device must outlive it (callers hold a `DeviceLink`).
    pub(crate) fn new(dev: &NetDevice) -> Result<Self> {
        let context = KBox::new(
            Context { napi: Opaque::uninit(), owner: Atomic::new(ptr::null_mut()), rcu: Opaque::uninit() },
            GFP_KERNEL,
        )?;
        let context = NonNull::from(KBox::leak(context));
        // SAFETY: the shim initialises the `napi_struct` before adding it to
        // a live device, polled by `poll::<H>`.
        unsafe {
            bindings::wgrs_napi_add_enable(
                dev.as_ptr(),
                (*context.as_ptr()).napi.get().cast(),
                Some(poll::<H>),
            )
        };
        Ok(Napi { context, _handler: PhantomData })
    }

    fn context(&self) -> &Context {
        // SAFETY: by the type invariant, alive until we are dropped.
        unsafe { self.context.as_ref() }
    }

    /// Schedules a poll (`napi_schedule`), unless one is pending; `owner`
    /// must be the object the context lives in.
    pub(crate) fn schedule(&self, owner: &RcuArc<H::Owner>) {
        if !owner.contains(self) {
            return;
        }
        let context = self.context();
        let napi = context.napi.get().cast();
        // SAFETY: the context is added and enabled.
        if unsafe { bindings::napi_schedule_prep(napi) } {
            // We set it scheduled: the schedule's reference is ours to give.
            context.owner.store(RcuArc::into_erased(owner.clone()).as_ptr(), Release);
            // SAFETY: as above, and it is ours to queue now.
            unsafe { bindings::__napi_schedule(napi) };
        }
    }
}

impl<H: NapiHandler> Drop for Napi<H> {
    fn drop(&mut self) {
        // Dropped with its owner, whose count is zero: it is not scheduled
        // (a schedule holds a reference), so disabling does not wait.
        let context = self.context.as_ptr();
        // SAFETY: added and enabled at creation, removed once, here; the
        // memory is freed a grace period after it left the device's list,
        // when no RCU reader of the list can see it any more.
        unsafe {
            bindings::wgrs_napi_disable_del_unsynced((*context).napi.get().cast());
            bindings::call_rcu((*context).rcu.get(), Some(free_context));
        }
    }
}
