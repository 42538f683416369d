// SPDX-License-Identifier: GPL-2.0

//! Lock-free lists of counted references, as `linux/llist.h`: any number
//! of producers push, one consumer takes everything at once.
//!
//! An object embeds one [`ListLink`] and is on at most one list at a time:
//! pushing an object already queued does nothing, so producers can push
//! it whenever it has work without checking where it is. The consumer
//! takes the whole list ([`ArcList::take_all`]) and then each object off
//! it, oldest first; an object is unqueued as it is taken, so that work
//! arriving while the consumer handles it queues it again.

use super::rcu::RcuArc;
use core::{ffi::c_void, marker::PhantomData, ptr, ptr::NonNull};
use kernel::sync::atomic::{Acquire, Atomic, Full, Relaxed, Release};

/// What an object embeds to be on an [`ArcList`].
pub(crate) struct ListLink {
    /// The next object (an erased `RcuArc`), while on a list.
    next: Atomic<*mut c_void>,
    /// Whether the object is on a list, or taken off one and not yet handed
    /// to the consumer.
    queued: Atomic<bool>,
}

impl ListLink {
    pub(crate) const fn new() -> Self {
        ListLink { next: Atomic::new(ptr::null_mut()), queued: Atomic::new(false) }
    }
}

/// An object that can be on an [`ArcList`]; implemented with
/// [`impl_listed!`](crate::impl_listed).
///
/// # Safety
///
/// `link` returns the same [`ListLink`], a field of `self`, every time.
pub(crate) unsafe trait Listed: Send + Sync + Sized {
    fn link(&self) -> &ListLink;
}

/// Makes a type [`Listed`] through one of its [`ListLink`] fields:
/// `impl_listed!(Type, field)`.
#[macro_export]
macro_rules! impl_listed {
    ($type:ty, $field:ident) => {
        // The `unsafe` is written here, in `kapi`, and sound by construction.
        #[allow(unsafe_code)]
        // SAFETY: the link is a field, the same every time.
        unsafe impl $crate::kapi::llist::Listed for $type {
            fn link(&self) -> &$crate::kapi::llist::ListLink {
                &self.$field
            }
        }
    };
}

/// A lock-free list of counted references to `T`s.
///
/// # Invariants
///
/// `head` is null or the first of a chain of erased `RcuArc<T>`s linked
/// through their `ListLink::next`, each counted for the list and with
/// `queued` set. An object whose `queued` is set is on exactly one list
/// or [`Taken`] chain, and only the one who set it (a pusher, or the
/// consumer owning the chain) writes its `next`.
pub(crate) struct ArcList<T: Listed> {
    head: Atomic<*mut c_void>,
    _owns: PhantomData<RcuArc<T>>,
}

// SAFETY: the list holds `RcuArc<T>`s, which are `Send` and `Sync`; its
// head is only changed atomically.
unsafe impl<T: Listed> Send for ArcList<T> {}
// SAFETY: as above.
unsafe impl<T: Listed> Sync for ArcList<T> {}

impl<T: Listed> ArcList<T> {
    pub(crate) const fn new() -> Self {
        ArcList { head: Atomic::new(ptr::null_mut()), _owns: PhantomData }
    }

    /// Queues `object` unless it is queued already (here or on any other
    /// list); returns whether it was queued now.
    ///
    /// Fully ordered: what the caller wrote before is visible to a consumer
    /// that takes the object, or that had taken it and is still handling it.
    pub(crate) fn push(&self, object: &RcuArc<T>) -> bool {
        if object.link().queued.xchg(true, Full) {
            return false;
        }
        self.push_queued(RcuArc::into_erased(object.clone()));
        true
    }

    /// Links a counted, queued object at the head.
    fn push_queued(&self, erased: NonNull<c_void>) {
        // SAFETY: the count `erased` stands for keeps the object alive.
        let link = unsafe { RcuArc::<T>::borrow_erased(erased) }.link();
        let mut head = self.head.load(Relaxed);
        loop {
            // INVARIANT: the object is queued by us, so its link is ours.
            link.next.store(head, Relaxed);
            match self.head.cmpxchg(head, erased.as_ptr(), Release) {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    /// Takes every queued object, for the one consumer of the list.
    pub(crate) fn take_all(&self) -> Taken<'_, T> {
        let mut newest = self.head.xchg(ptr::null_mut(), Acquire);
        // The list is newest first: reverse it.
        let mut oldest = ptr::null_mut();
        while let Some(erased) = NonNull::new(newest) {
            // SAFETY: the chain's counts keep its objects alive; their links
            // are ours now that the chain is off the list.
            let link = unsafe { RcuArc::<T>::borrow_erased(erased) }.link();
            newest = link.next.load(Relaxed);
            link.next.store(oldest, Relaxed);
            oldest = erased.as_ptr();
        }
        Taken { list: self, first: oldest }
    }
}

impl<T: Listed> Drop for ArcList<T> {
    fn drop(&mut self) {
        // Nobody is left to hand them to.
        for object in self.take_all() {
            drop(object);
        }
    }
}

/// Objects taken off an [`ArcList`], oldest first. Those not taken out of
/// it when it is dropped go back on the list, still queued.
///
/// # Invariants
///
/// `first` is null or the first of a chain as in [`ArcList`], owned by us.
pub(crate) struct Taken<'a, T: Listed> {
    list: &'a ArcList<T>,
    first: *mut c_void,
}

impl<T: Listed> Taken<'_, T> {
    /// Unlinks the first object, still marked queued.
    fn unlink_first(&mut self) -> Option<NonNull<c_void>> {
        let erased = NonNull::new(self.first)?;
        // SAFETY: per the type invariant, counted and ours.
        self.first = unsafe { RcuArc::<T>::borrow_erased(erased) }.link().next.load(Relaxed);
        Some(erased)
    }
}

impl<T: Listed> Iterator for Taken<'_, T> {
    type Item = RcuArc<T>;

    /// The oldest object left, unqueued: pushing it again queues it anew.
    fn next(&mut self) -> Option<RcuArc<T>> {
        let erased = self.unlink_first()?;
        // SAFETY: the chain's count of the object is ours to take back.
        let object = unsafe { RcuArc::<T>::from_erased(erased) };
        // Fully ordered, pairing with `push`: either a producer's push after
        // this queues the object again, or what it wrote before its push is
        // visible to whoever handles the object now.
        object.link().queued.xchg(false, Full);
        Some(object)
    }
}

impl<T: Listed> Drop for Taken<'_, T> {
    fn drop(&mut self) {
        // Back on the list, oldest first so that they come out in order.
        while let Some(erased) = self.unlink_first() {
            self.list.push_queued(erased);
        }
    }
}
