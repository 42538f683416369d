// SPDX-License-Identifier: GPL-2.0

//! A global instance created by its first user and destroyed by its last.
//!
//! Upstream shares some state among all devices (the handshake
//! ratelimiter) with an `init`/`uninit` pair counted under a static mutex.
//! [`Global<T>`] is that pattern as a type: [`Global::get`] returns a
//! [`GlobalRef`] (creating the instance if there is none) and dropping the
//! last `GlobalRef` destroys the instance. Users reach the instance through
//! their reference, without the lock; only creation and destruction take
//! it. The lock is a single static mutex on the C side (`shims.c`), shared
//! by all `Global`s: they are created and destroyed rarely.

use super::bindings;
use core::{cell::UnsafeCell, ops::Deref};
use kernel::{prelude::*, sync::Arc};

struct State<T> {
    users: usize,
    instance: Option<Arc<T>>,
}

/// A global `T`, alive while some [`GlobalRef`] to it is.
///
/// # Invariants
///
/// `state` is only accessed with `wgrs_global_lock` held. `instance` is
/// `Some` exactly when `users` is non-zero, and `users` counts the live
/// [`GlobalRef`]s to this `Global`.
pub(crate) struct Global<T: Send + Sync + 'static> {
    state: UnsafeCell<State<T>>,
}

// SAFETY: `state` is only accessed under the global lock; `T` is shared
// between users on any thread (`Send + Sync`).
unsafe impl<T: Send + Sync + 'static> Sync for Global<T> {}

/// Holds the C-side global lock until dropped.
struct Locked(());

impl Locked {
    fn lock() -> Self {
        // SAFETY: a static mutex; process context (callers may sleep).
        unsafe { bindings::wgrs_global_lock() };
        Locked(())
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: taken in `lock`.
        unsafe { bindings::wgrs_global_unlock() };
    }
}

impl<T: Send + Sync + 'static> Global<T> {
    pub(crate) const fn new() -> Self {
        Global { state: UnsafeCell::new(State { users: 0, instance: None }) }
    }

    /// A reference to the instance, created with `create` if there is none.
    /// May sleep.
    pub(crate) fn get(&'static self, create: impl FnOnce() -> Result<Arc<T>>) -> Result<GlobalRef<T>> {
        let _lock = Locked::lock();
        // SAFETY: the lock is held (type invariant).
        let state = unsafe { &mut *self.state.get() };
        let instance = match &state.instance {
            Some(instance) => instance.clone(),
            None => {
                let instance = create()?;
                state.instance = Some(instance.clone());
                instance
            }
        };
        // INVARIANT: counted, and `instance` is set.
        state.users = state.users.checked_add(1).ok_or(EOVERFLOW)?;
        Ok(GlobalRef { global: self, instance })
    }

    /// The number of live references (for self-tests).
    pub(crate) fn users(&'static self) -> usize {
        let _lock = Locked::lock();
        // SAFETY: the lock is held.
        unsafe { (*self.state.get()).users }
    }
}

/// A counted reference to the instance of a [`Global`].
pub(crate) struct GlobalRef<T: Send + Sync + 'static> {
    global: &'static Global<T>,
    instance: Arc<T>,
}

impl<T: Send + Sync + 'static> Deref for GlobalRef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.instance
    }
}

impl<T: Send + Sync + 'static> Drop for GlobalRef<T> {
    fn drop(&mut self) {
        let last = {
            let _lock = Locked::lock();
            // SAFETY: the lock is held.
            let state = unsafe { &mut *self.global.state.get() };
            state.users = state.users.saturating_sub(1);
            // INVARIANT: the last user takes the instance out.
            if state.users == 0 {
                state.instance.take()
            } else {
                None
            }
        };
        // The instance goes with `self.instance`, the last reference, once
        // this returns (outside the lock: its drop may sleep).
        drop(last);
    }
}
