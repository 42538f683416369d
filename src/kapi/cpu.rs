// SPDX-License-Identifier: GPL-2.0

//! CPUs (`linux/cpumask.h`): which exist, which are online, and picking one.

use super::bindings;
use kernel::sync::atomic::{Atomic, Relaxed};

/// The possible CPUs.
pub(crate) fn possible() -> impl Iterator<Item = u32> {
    // SAFETY: no preconditions.
    let ids = unsafe { bindings::wgrs_nr_cpu_ids() };
    (0..ids).filter(|&cpu| is_possible(cpu))
}

pub(crate) fn is_possible(cpu: u32) -> bool {
    // SAFETY: the shim range-checks `cpu`.
    unsafe { bindings::wgrs_cpu_possible(cpu) }
}

/// How many CPUs are online.
pub(crate) fn online_count() -> usize {
    // SAFETY: no preconditions.
    unsafe { bindings::wgrs_num_online_cpus() as usize }
}

/// The online CPU after the one `last` names, wrapping around, and stores
/// it there: round-robin over the online CPUs. Racy by design, as
/// upstream's: two callers may get the same CPU, which costs nothing.
pub(crate) fn next_online(last: &Atomic<i32>) -> u32 {
    // SAFETY: the shim copes with any previous value (-1 included).
    let cpu = unsafe { bindings::wgrs_cpumask_next_online(last.load(Relaxed)) };
    last.store(cpu as i32, Relaxed);
    cpu
}

/// A stable online CPU for the object numbered `id`, kept in `stored` for
/// as long as it stays online (upstream `wg_cpumask_choose_online`).
pub(crate) fn choose_online(stored: &Atomic<i32>, id: u64) -> u32 {
    let cpu = stored.load(Relaxed);
    // SAFETY: the shim range-checks `cpu`.
    if cpu >= 0 && unsafe { bindings::wgrs_cpu_online(cpu as u32) } {
        return cpu as u32;
    }
    // SAFETY: no preconditions.
    let cpu = unsafe { bindings::wgrs_cpumask_nth_online(id) };
    stored.store(cpu as i32, Relaxed);
    cpu
}

/// The CPU this runs on; stable only where the caller cannot migrate (a
/// per-CPU work item, BH off), otherwise possibly stale.
pub(crate) fn current() -> u32 {
    kernel::cpu::CpuId::current().as_u32()
}

/// Lets the scheduler run something else if it wants to (`cond_resched`),
/// between packets of a long-running worker. Process context.
pub(crate) fn cond_resched() {
    // SAFETY: the workers that call this run in process context.
    unsafe { bindings::wgrs_cond_resched() };
}
