// SPDX-License-Identifier: GPL-2.0

//! Memory facts (`linux/mm.h`).

use super::bindings;

/// The RAM the kernel manages, in bytes (`totalram_pages() << PAGE_SHIFT`).
pub(crate) fn total_ram_bytes() -> u64 {
    // SAFETY: no preconditions; an atomic read.
    let pages = unsafe { bindings::wgrs_totalram_pages() };
    (pages as u64).saturating_mul(bindings::WGRS_PAGE_SIZE as u64)
}
