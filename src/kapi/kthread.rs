// SPDX-License-Identifier: GPL-2.0

//! Kernel threads, scoped like `std::thread::scope`: for self-tests that
//! need something to run on another CPU at the same time.
//!
//! C header: [`include/linux/kthread.h`](srctree/include/linux/kthread.h)

use super::bindings;
use core::{ffi::CStr, marker::PhantomData};
use kernel::{
    error::from_err_ptr,
    ffi::{c_int, c_void},
    prelude::*,
};

/// Given to the closure that runs on a thread of [`scope`], to ask whether
/// it should stop.
///
/// # Invariants
///
/// Exists only on such a thread, which is a kernel thread (so
/// `kthread_should_stop` may be called on it): it is neither `Send` nor
/// `Sync`, and the closure only borrows it.
pub(crate) struct Stop(PhantomData<*mut ()>);

impl Stop {
    /// Whether [`scope`]'s caller is done and waits for the thread to return
    /// (`kthread_should_stop`).
    pub(crate) fn requested(&self) -> bool {
        // SAFETY: by the type invariant, we are on a kernel thread.
        unsafe { bindings::kthread_should_stop() }
    }
}

/// What the thread runs, and what it leaves behind.
struct Job<F, R> {
    f: Option<F>,
    result: Option<R>,
}

/// The thread function.
///
/// # Safety
///
/// `data` must point to a `Job<F, R>` that nothing else accesses until the
/// thread has exited.
unsafe extern "C" fn run<F: FnOnce(&Stop) -> R, R>(data: *mut c_void) -> c_int {
    // SAFETY: per the function's contract.
    let job = unsafe { &mut *data.cast::<Job<F, R>>() };
    if let Some(f) = job.f.take() {
        // INVARIANT: this is the kernel thread `scope` started.
        job.result = Some(f(&Stop(PhantomData)));
    }
    0
}

/// Runs `f` on a new kernel thread called `name` while `g` runs on this one,
/// then makes [`Stop::requested`] true on the thread and waits for it to
/// exit.
///
/// Returns what `g` returned and what `f` did, or `None` for `f` if the
/// thread was stopped before it got to run it. `f` may borrow from the
/// caller: the thread is gone when this returns. May sleep.
pub(crate) fn scope<F, R, G, S>(name: &CStr, f: F, g: G) -> Result<(S, Option<R>)>
where
    F: FnOnce(&Stop) -> R + Send,
    R: Send,
    G: FnOnce() -> S,
{
    let mut job = Job::<F, R> { f: Some(f), result: None };
    let data = core::ptr::from_mut(&mut job).cast::<c_void>();
    // SAFETY: `run::<F, R>` matches `data`, which nothing but the thread
    // touches until `kthread_stop_put` below has waited for it to exit. The
    // shim takes a reference on the task for that call before it wakes the
    // thread, so the task cannot be reaped before we stop it.
    let task = from_err_ptr(unsafe {
        bindings::wgrs_kthread_run(Some(run::<F, R>), data, name.as_ptr().cast())
    })?;
    let s = g();
    // SAFETY: `task` is the thread started above, with the reference the shim
    // took; this waits for it to exit and drops that reference.
    unsafe { bindings::kthread_stop_put(task) };
    Ok((s, job.result))
}
