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

/// A spinlock that also disables bottom halves (`spin_lock_bh`): for data
/// shared with softirq context (packet receive, timers, NAPI).
pub(crate) type SpinLockBh<T> = kernel::sync::lock::Lock<T, SpinLockBhBackend>;

/// A [`SpinLockBh`] guard.
pub(crate) type SpinLockBhGuard<'a, T> = kernel::sync::lock::Guard<'a, T, SpinLockBhBackend>;

/// Creates a [`SpinLockBh`] initialiser with a lock class of its own (per
/// call site, as the kernel's `spin_lock_init` does).
macro_rules! new_spinlock_bh {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::kapi::sync::SpinLockBh::new(
            $inner,
            ::kernel::optional_name!($($name)?),
            ::kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_spinlock_bh;

/// The `spin_lock_bh` flavour of the kernel's spinlock backend.
pub(crate) struct SpinLockBhBackend;

// SAFETY: `lock` and `unlock` are `spin_lock_bh`/`spin_unlock_bh` on an
// initialised `spinlock_t`, which give mutual exclusion; the state is only
// touched through these functions.
unsafe impl kernel::sync::lock::Backend for SpinLockBhBackend {
    type State = kernel::bindings::spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut kernel::bindings::lock_class_key,
    ) {
        // SAFETY: the caller guarantees `ptr` is valid for writes and `name`
        // and `key` valid for reads forever.
        unsafe { kernel::bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: the caller guarantees `ptr` is an initialised lock.
        unsafe { bindings::wgrs_spin_lock_bh(ptr.cast()) }
    }

    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: the caller guarantees that it holds the lock.
        unsafe { bindings::wgrs_spin_unlock_bh(ptr.cast()) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        // SAFETY: the caller guarantees `ptr` is an initialised lock.
        (unsafe { bindings::wgrs_spin_trylock_bh(ptr.cast()) }).then_some(())
    }

    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // Every guard asks; only lockdep can answer, so without it not even
        // the call to the empty helper is made.
        #[cfg(CONFIG_LOCKDEP)]
        // SAFETY: the caller guarantees `ptr` is an initialised lock.
        unsafe {
            kernel::bindings::spin_assert_is_held(ptr)
        }
        #[cfg(not(CONFIG_LOCKDEP))]
        let _ = ptr;
    }
}
