// SPDX-License-Identifier: GPL-2.0

//! Read-copy-update: objects whose memory outlives every reader that could
//! still see them, and pointer slots that publish them to lock-free readers.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)
//!
//! Two types make up the abstraction:
//!
//! - [`RcuArc<T>`]: a reference-counted heap object. Dropping the last
//!   reference does not free it: the object is dropped and freed after a
//!   grace period (`call_rcu`, see below), so that readers that found
//!   it before it became unreachable may keep using it until they leave their
//!   read-side critical section.
//! - [`RcuPtr<T>`]: a slot (`T __rcu *` in C) that owns one reference to an
//!   `RcuArc<T>`, or nothing. Readers load it with [`RcuPtr::get`]
//!   (`rcu_dereference`), which hands out a `&T` that lives as long as their
//!   [`Guard`] (`rcu_read_lock`). Updaters publish with [`RcuPtr::replace`]
//!   (`rcu_assign_pointer`), which returns the previous reference.
//!
//! Why this is sound without any lock: an object is freed only after a grace
//! period that starts when its reference count reaches zero. A reader that
//! loaded a pointer from a slot did so while that slot still held a counted
//! reference (the slot gives it up only after the exchange that removes the
//! pointer), so the reader's critical section began before the count could
//! reach zero, and the grace period waits for it. Slots inside objects
//! (e.g. the children of a tree node) keep their references until the
//! containing object itself is freed, so a reader standing on an unlinked
//! node can still follow its pointers. Writers therefore need no `&mut`
//! access for memory safety; serialising them (a mutex) is only needed for
//! the consistency of the data structure built from slots.
//!
//! Since a data structure is built and torn down with ordinary reference
//! counting, a deep structure is freed one level per grace period: dropping
//! an object drops the references it holds, which may queue further
//! callbacks, and never recurses.
//!
//! RCU callbacks run in softirq context, where nothing may sleep, while a
//! `Drop` may well sleep (release a socket, stop a timer synchronously, take
//! a mutex). So `T` is not dropped in the callback: the callback hands the
//! object to a work item, which drops and frees it in process context.
//! Objects without drop glue (`!needs_drop::<T>()`), and objects made with
//! [`RcuArc::new_atomic`] or [`RcuArc::pin_init_atomic`] (`T:`
//! [`AtomicDrop`]), are dropped and freed in the callback directly, which
//! spares the work item's wakeup for objects freed at a high rate.
//!
//! Callbacks and the work item run this module's code: [`Barrier`] must
//! outlive every `RcuArc` of the module (make it the last field of the
//! module struct).

use super::bindings;
use core::{marker::PhantomData, mem::ManuallyDrop, ops::Deref, ptr, ptr::NonNull};
use kernel::{
    alloc::{AllocError, Flags},
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Full, Relaxed, Release},
        Refcount,
    },
    types::Opaque,
};
use pin_init::PinInit;

pub(crate) use kernel::sync::rcu::{read_lock, Guard};

/// [`RcuArc`] objects whose count reached zero and that are not freed yet.
static PENDING: Atomic<i64> = Atomic::new(0);

/// Objects past their grace period, waiting for the reaper work to drop
/// them: a lock-free stack linked through their `rcu_head`s, whose `func`
/// is now the function that drops them.
static REAP: Atomic<*mut bindings::callback_head> = Atomic::new(ptr::null_mut());

/// Pushes `head` onto [`REAP`] and makes sure the reaper runs.
///
/// # Safety
///
/// `head` must be an `rcu_head` that RCU is done with, whose `func` drops
/// and frees its object, and that nothing else uses.
unsafe fn reap_later(head: *mut bindings::callback_head) {
    let mut top = REAP.load(Relaxed);
    loop {
        // SAFETY: `head` is ours (the function's contract).
        unsafe { (*head).next = top };
        // Release publishes `next` and `func` to the reaper.
        match REAP.cmpxchg(top, head, Release) {
            Ok(_) => break,
            Err(current) => top = current,
        }
    }
    // SAFETY: queueing a static work item is allowed in any context.
    unsafe { bindings::wgrs_rcu_reap_schedule() };
}

/// The reaper work: drops and frees, in process context, every object
/// [`reap_later`] queued. Called by the work item in `shims.c`.
#[no_mangle]
unsafe extern "C" fn wgrs_rcu_reap() {
    // Taking the whole stack at once leaves no ABA problem to the pushers.
    let mut head = REAP.xchg(ptr::null_mut(), Acquire);
    while let Some(node) = NonNull::new(head) {
        // SAFETY: every node on the stack was queued by `reap_later`: it is
        // ours, and its `func` drops its object (which frees the node).
        unsafe {
            head = (*node.as_ptr()).next;
            if let Some(drop_object) = (*node.as_ptr()).func {
                drop_object(node.as_ptr());
            }
        }
    }
}

/// Types whose values may be dropped in softirq context: their drop never
/// sleeps and takes no lock that is not safe there.
///
/// A safe trait, like the rule it states: a drop that sleeps in softirq
/// context is a bug the kernel reports ("scheduling while atomic"), as is
/// a sleeping call under a spinlock, not undefined behaviour.
pub(crate) trait AtomicDrop {}

// Dropping an `RcuArc` decrements a count and may queue an RCU callback
// (`call_rcu`): neither sleeps or takes a lock.
impl<T: Send + Sync> AtomicDrop for RcuArc<T> {}
// Dropping a slot drops the `RcuArc` it holds.
impl<T: Send + Sync> AtomicDrop for RcuPtr<T> {}

/// The allocation behind an [`RcuArc`].
///
/// `repr(C)` with `head` first, so that the callback can recover the
/// allocation from the `rcu_head` pointer it is given.
///
/// # Invariants
///
/// `drop_in_callback` is set only if `T: AtomicDrop`.
#[repr(C)]
struct Inner<T> {
    head: Opaque<bindings::callback_head>,
    refcount: Refcount,
    /// Whether the RCU callback drops the value itself (else the reaper
    /// does). It takes the padding after the count when `T` is aligned to
    /// 8 bytes.
    drop_in_callback: bool,
    value: T,
}

/// A reference-counted object that is freed one RCU grace period after its
/// last reference is dropped.
///
/// `T` is dropped after that grace period, in process context, on any CPU
/// (see the module documentation). Its `Drop` may sleep, and may drop
/// further `RcuArc`s.
///
/// # Invariants
///
/// `ptr` points to a live `Inner<T>` allocated with [`KBox`], whose
/// `refcount` counts this `RcuArc`, every other `RcuArc` and every
/// [`RcuPtr`] slot that points to it. `head` is queued with `call_rcu` only
/// once the count has reached zero.
pub(crate) struct RcuArc<T: Send + Sync> {
    ptr: NonNull<Inner<T>>,
    _owns: PhantomData<Inner<T>>,
}

// A handle: moving it never moves the object it points to.
impl<T: Send + Sync> Unpin for RcuArc<T> {}

// SAFETY: an `RcuArc<T>` gives shared access to `T` from any thread (`T:
// Sync`) and may drop it on another CPU (`T: Send`).
unsafe impl<T: Send + Sync> Send for RcuArc<T> {}
// SAFETY: as above, `&RcuArc<T>` only gives out `&T`.
unsafe impl<T: Send + Sync> Sync for RcuArc<T> {}

/// An initialiser that moves `value` into place.
fn moved<T>(value: T) -> impl PinInit<T, AllocError> {
    // SAFETY: the closure initialises the whole slot and never fails.
    unsafe {
        pin_init::pin_init_from_closure(move |slot: *mut T| {
            slot.write(value);
            Ok::<(), AllocError>(())
        })
    }
}

impl<T: AtomicDrop + Send + Sync> RcuArc<T> {
    /// As [`RcuArc::new`], for an object that is dropped in the RCU callback
    /// that ends its grace period.
    pub(crate) fn new_atomic(value: T, flags: Flags) -> Result<Self, AllocError> {
        // INVARIANT: `T: AtomicDrop`.
        Self::alloc(moved(value), flags, true)
    }

    /// As [`RcuArc::pin_init`], for an object that is dropped in the RCU
    /// callback that ends its grace period.
    pub(crate) fn pin_init_atomic<E: From<AllocError>>(
        init: impl PinInit<T, E>,
        flags: Flags,
    ) -> Result<Self, E> {
        // INVARIANT: `T: AtomicDrop`.
        Self::alloc(init, flags, true)
    }
}

impl<T: Send + Sync> RcuArc<T> {
    /// Allocates a new object with a reference count of one.
    pub(crate) fn new(value: T, flags: Flags) -> Result<Self, AllocError> {
        Self::pin_init(moved(value), flags)
    }

    /// Allocates a new object, initialised in place (it may contain pinned
    /// types such as locks: the object never moves), with a reference count
    /// of one.
    pub(crate) fn pin_init<E: From<AllocError>>(
        init: impl PinInit<T, E>,
        flags: Flags,
    ) -> Result<Self, E> {
        Self::alloc(init, flags, false)
    }

    /// Callers pass `drop_in_callback` only for `T: AtomicDrop`.
    fn alloc<E: From<AllocError>>(
        init: impl PinInit<T, E>,
        flags: Flags,
        drop_in_callback: bool,
    ) -> Result<Self, E> {
        let mut uninit = KBox::<Inner<T>>::new_uninit(flags)?;
        let ptr = uninit.as_mut_ptr();
        // SAFETY: `ptr` is valid for writes of an `Inner<T>`. The value is
        // never moved out of the allocation: `RcuArc` only hands out shared
        // references, and frees it in place. Should `init` fail, it leaves
        // the value uninitialised, and dropping `uninit` frees the memory
        // without dropping anything (the header needs no drop).
        unsafe {
            ptr::addr_of_mut!((*ptr).head).write(Opaque::uninit());
            ptr::addr_of_mut!((*ptr).refcount).write(Refcount::new(1));
            ptr::addr_of_mut!((*ptr).drop_in_callback).write(drop_in_callback);
            init.__init(ptr::addr_of_mut!((*ptr).value))?;
        }
        // SAFETY: every field was initialised above.
        let inner = unsafe { uninit.assume_init() };
        // INVARIANT: a fresh `KBox` allocation, counting this one reference;
        // `drop_in_callback` as the callers promise.
        Ok(RcuArc { ptr: NonNull::from(KBox::leak(inner)), _owns: PhantomData })
    }

    /// Gives up this reference as an untyped pointer, for storing it where
    /// only a pointer fits (a packet's control block).
    pub(super) fn into_erased(this: Self) -> NonNull<core::ffi::c_void> {
        ManuallyDrop::new(this).ptr.cast()
    }

    /// Takes back a reference given up with [`Self::into_erased`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_erased` of an `RcuArc<T>`, and the caller
    /// gives up that count.
    pub(super) unsafe fn from_erased(ptr: NonNull<core::ffi::c_void>) -> Self {
        // SAFETY: per the function's contract.
        unsafe { Self::from_raw(ptr.cast()) }
    }

    /// The object behind an erased reference.
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_erased` of an `RcuArc<T>` whose count
    /// stays given up (not taken back) for `'a`.
    pub(super) unsafe fn borrow_erased<'a>(ptr: NonNull<core::ffi::c_void>) -> &'a T {
        // SAFETY: the count keeps the object alive for `'a`.
        unsafe { &(*ptr.cast::<Inner<T>>().as_ptr()).value }
    }

    /// Whether `field` lies inside this object: a callback primitive
    /// embedded in `T` checks that the reference it is armed with is the
    /// object it lives in, so that the reference it keeps keeps it alive.
    pub(super) fn contains<U>(&self, field: &U) -> bool {
        let start = self.ptr.as_ptr() as usize;
        let end = start + size_of::<Inner<T>>();
        let field = ptr::from_ref(field) as usize;
        field >= start && field + size_of::<U>() <= end
    }

    /// Gives up this reference without dropping it; see [`RcuArc::from_raw`].
    fn into_raw(this: Self) -> *mut Inner<T> {
        ManuallyDrop::new(this).ptr.as_ptr()
    }

    /// Gives up this reference without dropping it, as a pointer to the
    /// value (for C containers that link objects, see `kapi::rhashtable`);
    /// see [`RcuArc::from_value_ptr`].
    pub(super) fn into_value_ptr(this: Self) -> NonNull<T> {
        let inner = Self::into_raw(this);
        // SAFETY: `inner` points to a live `Inner<T>` (our count keeps it).
        unsafe { NonNull::new_unchecked(ptr::addr_of_mut!((*inner).value)) }
    }

    /// Takes over a counted reference given up by [`RcuArc::into_value_ptr`].
    ///
    /// # Safety
    ///
    /// `value` must come from [`RcuArc::into_value_ptr`] for this `T`, and
    /// its count must be given up by the caller.
    pub(super) unsafe fn from_value_ptr(value: NonNull<T>) -> Self {
        let offset = core::mem::offset_of!(Inner<T>, value);
        // SAFETY: `value` is the `value` field of an `Inner<T>` allocation
        // (the function's contract), `offset` bytes into it.
        let inner = unsafe { value.byte_sub(offset) }.cast::<Inner<T>>();
        // SAFETY: the caller hands over the count of this reference.
        unsafe { Self::from_raw(inner) }
    }

    /// Whether `a` and `b` refer to the same object.
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// Whether `this` refers to the object `value` (compares addresses).
    pub(crate) fn is(this: &Self, value: &T) -> bool {
        ptr::eq(&**this, value)
    }

    /// Takes over a counted reference.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`RcuArc::into_raw`] (possibly stored in an
    /// [`RcuPtr`] meanwhile), and its count must be given up by the caller.
    unsafe fn from_raw(ptr: NonNull<Inner<T>>) -> Self {
        // INVARIANT: the caller hands over a counted reference.
        RcuArc { ptr, _owns: PhantomData }
    }

    /// The RCU callback of an object whose count reached zero: frees it
    /// here if dropping it does nothing or may be done in softirq context,
    /// or hands it to the reaper.
    ///
    /// # Safety
    ///
    /// `head` must be the `head` of an `Inner<T>` allocated with [`KBox`]
    /// that no reference counts any more, and whose grace period has ended.
    unsafe extern "C" fn grace_period_ended(head: *mut bindings::callback_head) {
        // SAFETY: per the function's contract, `head` starts a live `Inner<T>`
        // (`repr(C)`, `head` first) that nothing else uses.
        let drop_in_callback = unsafe { (*head.cast::<Inner<T>>()).drop_in_callback };
        if core::mem::needs_drop::<T>() && !drop_in_callback {
            // SAFETY: RCU is done with `head`; the object is unreachable, so
            // ours to hand over, and `free` matches it.
            unsafe {
                (*head).func = Some(Self::free);
                reap_later(head);
            }
        } else {
            // SAFETY: per the function's contract. Freeing memory is fine in
            // softirq context, and so is dropping `T`, which has no drop glue
            // or is `AtomicDrop` (the type invariant of `Inner`).
            unsafe { Self::free(head) };
        }
    }

    /// Drops and frees an object whose grace period has ended.
    ///
    /// # Safety
    ///
    /// As for [`Self::grace_period_ended`]; in process context unless `T`
    /// has no drop glue or the object was made to be dropped in the
    /// callback.
    unsafe extern "C" fn free(head: *mut bindings::callback_head) {
        // `head` is the first field of the `repr(C)` `Inner<T>`, and
        // `Opaque` is `repr(transparent)`.
        let inner = head.cast::<Inner<T>>();
        // SAFETY: per the function's contract, nothing can reach the
        // allocation any more; it came from `KBox`.
        drop(unsafe { KBox::from_raw(inner) });
        // Last: `Barrier` relies on this being the final access to the
        // object (the remaining instructions are covered by `rcu_barrier`
        // and by flushing the reaper, see `Barrier::drop`).
        PENDING.fetch_sub(1, Release);
    }
}

impl<T: Send + Sync> Clone for RcuArc<T> {
    fn clone(&self) -> Self {
        // SAFETY: by the type invariant, `ptr` is live while we hold a count.
        unsafe { self.ptr.as_ref() }.refcount.inc();
        // INVARIANT: the count was just incremented for the new reference.
        RcuArc { ptr: self.ptr, _owns: PhantomData }
    }
}

impl<T: Send + Sync> Deref for RcuArc<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: by the type invariant, `ptr` is live while we hold a count,
        // which outlives the returned borrow of `self`.
        unsafe { &self.ptr.as_ref().value }
    }
}

impl<T: Send + Sync> Drop for RcuArc<T> {
    fn drop(&mut self) {
        let inner = self.ptr.as_ptr();
        // SAFETY: by the type invariant, `inner` is live while we hold a count.
        let last = unsafe { (*inner).refcount.dec_and_test() };
        if !last {
            return;
        }
        PENDING.fetch_add(1, Relaxed);
        // SAFETY: the count reached zero, so no reference or slot points to
        // the object any more and `head` has not been queued before. Readers
        // that loaded the pointer from a slot did so before the slot gave its
        // count up, hence before this call: `call_rcu` waits for them before
        // running the callback, which matches the `KBox` allocation.
        unsafe { bindings::call_rcu((*inner).head.get(), Some(Self::grace_period_ended)) };
    }
}

/// An RCU-protected pointer slot (`T __rcu *`) that owns a reference to an
/// [`RcuArc<T>`], or is empty.
///
/// # Invariants
///
/// `ptr` is null or was obtained from [`RcuArc::into_raw`]: the slot owns
/// one count of it.
pub(crate) struct RcuPtr<T: Send + Sync> {
    ptr: Atomic<*mut Inner<T>>,
    _owns: PhantomData<RcuArc<T>>,
}

// SAFETY: a slot is a cell holding an `RcuArc<T>`, which is `Send`; every
// access to the pointer itself is atomic.
unsafe impl<T: Send + Sync> Send for RcuPtr<T> {}
// SAFETY: concurrent `get`s and `replace`s are atomic operations on `ptr`; the
// references they hand out are `RcuArc<T>`s or `&T`s, fine to share as `T:
// Sync`.
unsafe impl<T: Send + Sync> Sync for RcuPtr<T> {}

/// Waits for a grace period of the networking kind (`synchronize_net`):
/// every read-side critical section that started before has ended. May
/// sleep.
pub(crate) fn synchronize_net() {
    // SAFETY: process context, as every caller (netlink, workers).
    unsafe { bindings::synchronize_net() }
}

impl<T: Send + Sync> RcuPtr<T> {
    /// A slot holding `value`.
    pub(crate) fn new(value: RcuArc<T>) -> Self {
        // INVARIANT: the slot takes over `value`'s count.
        RcuPtr { ptr: Atomic::new(RcuArc::into_raw(value)), _owns: PhantomData }
    }

    /// An empty slot (`RCU_INITIALIZER(NULL)`).
    pub(crate) const fn null() -> Self {
        // INVARIANT: null.
        RcuPtr { ptr: Atomic::new(ptr::null_mut()), _owns: PhantomData }
    }

    /// `rcu_dereference`: the object in the slot, valid until the reader
    /// leaves its critical section.
    pub(crate) fn get<'g>(&self, _guard: &'g Guard) -> Option<&'g T> {
        // Acquire pairs with the release of `replace`, so the object's
        // initialisation is visible (a stronger form of the address
        // dependency `rcu_dereference` relies on).
        let ptr = NonNull::new(self.ptr.load(Acquire))?;
        // SAFETY: the slot held a count when we loaded the pointer, and it
        // gives that count up only after a later exchange. So the object can
        // reach zero and be queued for freeing only after this load, while
        // `_guard` proves that we are in a read-side critical section that
        // started earlier: the grace period waits for it, which outlives `'g`.
        Some(unsafe { &(*ptr.as_ptr()).value })
    }

    /// A counted reference to the object in the slot, or `None` if the slot
    /// is empty or its object is already on its way out (a concurrent
    /// `replace` dropped the last count): `refcount_inc_not_zero`.
    pub(crate) fn get_arc(&self, _guard: &Guard) -> Option<RcuArc<T>> {
        let ptr = NonNull::new(self.ptr.load(Acquire))?;
        // SAFETY: the object is live for the guard's critical section (see
        // `get`). `Refcount` is a transparent wrapper around the C
        // `refcount_t`, the type the shim takes.
        let counted = unsafe {
            bindings::wgrs_refcount_inc_not_zero(
                ptr::addr_of!((*ptr.as_ptr()).refcount).cast_mut().cast(),
            )
        };
        if !counted {
            return None;
        }
        // SAFETY: the count was just incremented for the returned reference.
        Some(unsafe { RcuArc::from_raw(ptr) })
    }

    /// Whether the slot is empty (`rcu_access_pointer(p) == NULL`).
    pub(crate) fn is_null(&self) -> bool {
        self.ptr.load(Relaxed).is_null()
    }

    /// Whether the slot holds `arc`'s object (compares pointers only).
    pub(crate) fn is(&self, arc: &RcuArc<T>) -> bool {
        self.ptr.load(Relaxed) == arc.ptr.as_ptr()
    }

    /// `rcu_assign_pointer`: publishes `new` (fully initialised before any
    /// reader can see it) and returns the previous content, which readers may
    /// still be using: it is freed a grace period after its last reference
    /// goes away.
    pub(crate) fn replace(&self, new: Option<RcuArc<T>>) -> Option<RcuArc<T>> {
        let new = new.map_or(ptr::null_mut(), RcuArc::into_raw);
        // INVARIANT: the slot takes over `new`'s count and gives up the old
        // pointer's, which we return. Full ordering includes the release
        // that publishes `new`.
        let old = self.ptr.xchg(new, Full);
        // SAFETY: the old pointer's count is handed over to the caller.
        NonNull::new(old).map(|old| unsafe { RcuArc::from_raw(old) })
    }
}

impl<T: Send + Sync> Drop for RcuPtr<T> {
    fn drop(&mut self) {
        if let Some(ptr) = NonNull::new(*self.ptr.get_mut()) {
            // SAFETY: the slot's count is handed over, to be dropped.
            drop(unsafe { RcuArc::from_raw(ptr) });
        }
    }
}

/// Waits, when dropped, for every [`RcuArc`] whose count reached zero to be
/// freed, including the ones that frees release in turn, and for the RCU
/// callbacks and reaper runs that did so to have returned. Keep one alive
/// for as long as the module may drop `RcuArc`s: as the last field of the
/// module struct.
pub(crate) struct Barrier(());

/// Waits until what was dropped before the call is freed, except what those
/// frees release in turn (`rcu_barrier`, then the reaper). Process context;
/// sleeps.
pub(crate) fn barrier() {
    kernel::sync::rcu::rcu_barrier();
    // SAFETY: process context, as documented.
    unsafe { bindings::wgrs_rcu_reap_flush() };
}

impl Barrier {
    pub(crate) fn new() -> Self {
        Barrier(())
    }
}

impl Drop for Barrier {
    fn drop(&mut self) {
        loop {
            // Seen zero before the barriers: every object is freed, and any
            // callback or reaper run that may still be returning was queued
            // before the barriers below, which wait for it.
            let idle = PENDING.load(Acquire) == 0;
            barrier();
            if idle {
                break;
            }
        }
    }
}
