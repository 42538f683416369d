// SPDX-License-Identifier: GPL-2.0

//! The RTNL lock, as a guard and as a proof token.

use super::bindings;
use core::{cell::UnsafeCell, marker::PhantomData, ops::Deref};

/// Proof that the current thread holds the RTNL lock.
///
/// # Invariants
///
/// A `&Rtnl` exists only while the RTNL lock is held by the current thread.
pub(crate) struct Rtnl(PhantomData<*mut ()>);

impl Rtnl {
    /// Creates the token inside a callback that the core calls with RTNL held.
    ///
    /// # Safety
    ///
    /// The caller must hold the RTNL lock for the lifetime of the token.
    pub(super) unsafe fn assume_held() -> Self {
        Rtnl(PhantomData)
    }
}

/// Holds the RTNL lock until dropped.
pub(crate) struct RtnlGuard(Rtnl);

impl RtnlGuard {
    /// Takes the RTNL lock; may sleep.
    pub(crate) fn lock() -> Self {
        // SAFETY: `rtnl_lock` has no preconditions beyond process context,
        // which every caller of this (netlink handlers) is in.
        unsafe { bindings::rtnl_lock() };
        // INVARIANT: the lock was just taken.
        RtnlGuard(Rtnl(PhantomData))
    }
}

impl Deref for RtnlGuard {
    type Target = Rtnl;

    fn deref(&self) -> &Rtnl {
        &self.0
    }
}

impl Drop for RtnlGuard {
    fn drop(&mut self) {
        // SAFETY: by the type invariant, this thread holds the lock.
        unsafe { bindings::rtnl_unlock() };
    }
}

/// A value that is only read or written with the RTNL lock held.
pub(crate) struct RtnlCell<T: Copy>(UnsafeCell<T>);

// SAFETY: all access goes through `&Rtnl`, so it is serialised by the lock.
unsafe impl<T: Copy + Send> Sync for RtnlCell<T> {}

impl<T: Copy> RtnlCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        RtnlCell(UnsafeCell::new(value))
    }

    pub(crate) fn get(&self, _rtnl: &Rtnl) -> T {
        // SAFETY: RTNL serialises this read with every write.
        unsafe { *self.0.get() }
    }

    pub(crate) fn set(&self, _rtnl: &Rtnl, value: T) {
        // SAFETY: RTNL serialises this write with every other access.
        unsafe { *self.0.get() = value };
    }
}
