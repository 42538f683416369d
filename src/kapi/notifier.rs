// SPDX-License-Identifier: GPL-2.0

//! System event notifiers: suspend and hibernation (`register_pm_notifier`,
//! `include/linux/suspend.h`) and VM forks (`register_random_vmfork_notifier`,
//! sent by vmgenid when the VM was cloned or restored from a snapshot).
//!
//! Either chain is empty, and registering on it does nothing, when the
//! kernel lacks `CONFIG_PM_SLEEP` or `CONFIG_VMGENID`.

use super::bindings;
use core::marker::PhantomData;
use kernel::prelude::*;
use kernel::sync::atomic::{Acquire, Atomic, Relaxed, Release};
use kernel::types::Opaque;

/// A notifier chain of system events.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chain {
    Pm,
    VmFork,
}

/// What a chain told.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The system is about to suspend (`PM_SUSPEND_PREPARE`).
    SuspendPrepare,
    /// The system is about to hibernate (`PM_HIBERNATION_PREPARE`).
    HibernationPrepare,
    /// This VM is a fork (or a restored snapshot) of another.
    VmForked,
    /// Anything else on the chain (resume, restore, ...).
    Other,
}

/// Handles the events of one chain. Called in process context, where it
/// may sleep and take RTNL (both chains are blocking).
pub(crate) trait EventHandler {
    const CHAIN: Chain;
    fn notify(event: Event);
}

/// Whether the system suspends as a matter of course (autosleep), so that
/// a suspend is no reason to forget keys.
pub(crate) fn autosleep() -> bool {
    // SAFETY: no preconditions.
    unsafe { bindings::wgrs_pm_autosleep() }
}

/// A notifier block for `H`, meant to be a `static`.
pub(crate) struct Notifier<H: EventHandler> {
    block: Opaque<bindings::notifier_block>,
    registered: Atomic<bool>,
    _handler: PhantomData<H>,
}

// SAFETY: the block is written once, before registration, under the
// `registered` flag; the chain then owns it under its own lock.
unsafe impl<H: EventHandler> Sync for Notifier<H> {}

impl<H: EventHandler> Notifier<H> {
    pub(crate) const fn new() -> Self {
        Notifier { block: Opaque::zeroed(), registered: Atomic::new(false), _handler: PhantomData }
    }

    /// Listens on `H::CHAIN` until the returned value is dropped.
    pub(crate) fn register(&'static self) -> Result<NotifierRegistration<H>> {
        if self.registered.cmpxchg(false, true, Acquire).is_err() {
            return Err(EBUSY);
        }
        let block = self.block.get();
        // SAFETY: the block is not on any chain (the flag above), so we are
        // its only writer; it is static, so it outlives its registration.
        let ret = unsafe {
            (*block).notifier_call = Some(callback::<H>);
            match H::CHAIN {
                Chain::Pm => bindings::wgrs_register_pm_notifier(block),
                Chain::VmFork => bindings::wgrs_register_vmfork_notifier(block),
            }
        };
        if ret < 0 {
            self.registered.store(false, Relaxed);
            return Err(Error::from_errno(ret));
        }
        Ok(NotifierRegistration(self))
    }
}

/// Keeps a [`Notifier`] on its chain.
pub(crate) struct NotifierRegistration<H: EventHandler + 'static>(&'static Notifier<H>);

impl<H: EventHandler> Drop for NotifierRegistration<H> {
    fn drop(&mut self) {
        let block = self.0.block.get();
        // SAFETY: registered in `Notifier::register`. Unregistering waits
        // for callbacks in progress (the chains are blocking ones).
        unsafe {
            match H::CHAIN {
                Chain::Pm => bindings::wgrs_unregister_pm_notifier(block),
                Chain::VmFork => bindings::wgrs_unregister_vmfork_notifier(block),
            };
        }
        self.0.registered.store(false, Release);
    }
}

unsafe extern "C" fn callback<H: EventHandler>(
    _block: *mut bindings::notifier_block,
    action: kernel::ffi::c_ulong,
    _data: *mut kernel::ffi::c_void,
) -> kernel::ffi::c_int {
    let event = match H::CHAIN {
        Chain::Pm if action == bindings::PM_SUSPEND_PREPARE as kernel::ffi::c_ulong => Event::SuspendPrepare,
        Chain::Pm if action == bindings::PM_HIBERNATION_PREPARE as kernel::ffi::c_ulong => {
            Event::HibernationPrepare
        }
        Chain::Pm => Event::Other,
        Chain::VmFork => Event::VmForked,
    };
    H::notify(event);
    bindings::NOTIFY_DONE as kernel::ffi::c_int
}
