// SPDX-License-Identifier: GPL-2.0

//! Resizable, scalable hash tables with RCU lookups.
//!
//! C header: [`include/linux/rhashtable.h`](srctree/include/linux/rhashtable.h)
//!
//! [`RhashTable<K, V>`] maps fixed-size keys to values. It is the kernel's
//! `rhashtable`: lookups are lock-free under an RCU [`Guard`] and may run
//! in any context (softirq included); writers are serialised per bucket by
//! the table itself (bit locks taken with interrupts off), so they too may
//! run in any context, concurrently with each other. The table grows and
//! shrinks in a worker as it fills and empties, so that memory follows the
//! number of entries and chains stay short at any size.
//!
//! Each entry is a node allocated by this module: an [`RcuArc`] holding the
//! `rhash_head`, the key and the value. The table owns one count of every
//! node linked into it; a removed node is freed a grace period after its
//! last reference goes, so a reader that found it can keep using it until
//! it leaves its critical section. Inserting needs `V:` [`AtomicDrop`]:
//! nodes are dropped and freed in the RCU callback, as C tables free
//! theirs with `kfree_rcu`, with no work item per node.
//!
//! Nodes are removed and replaced by identity, not by key: the caller
//! decides with a predicate on the value, which makes "remove the entry
//! under this key if it is still mine" safe against the key having been
//! freed and taken again meanwhile.

use super::{
    bindings,
    rcu::{AtomicDrop, Guard, RcuArc},
};
use core::{marker::PhantomData, ptr, ptr::NonNull};
use kernel::{alloc::Flags, error::to_result, ffi::c_void, prelude::*, types::Opaque};
use pin_init::PinInit;

/// A key, compared and hashed as bytes by the C table.
///
/// # Safety
///
/// The type must have no padding and no interior mutability, and two
/// values must be equal exactly when their bytes are.
pub(crate) unsafe trait Key: Copy + Send + Sync + 'static {}

// SAFETY: a plain integer.
unsafe impl Key for u32 {}
// SAFETY: a byte array.
unsafe impl<const N: usize> Key for [u8; N] {}

/// What the table links: `repr(C)`, so that the C side finds the head and
/// the key at the offsets given to `rhashtable_init`.
#[repr(C)]
struct Node<K, V> {
    head: Opaque<bindings::rhash_head>,
    key: K,
    value: V,
}

// SAFETY: the head is only touched by the table's own (synchronised) code;
// the key is immutable once the node is linked; `V` is `Send + Sync`.
unsafe impl<K: Key, V: Send + Sync> Send for Node<K, V> {}
// SAFETY: as above.
unsafe impl<K: Key, V: Send + Sync> Sync for Node<K, V> {}
// The head and the key have no drop glue.
impl<K: Key, V: AtomicDrop> AtomicDrop for Node<K, V> {}

/// A resizable hash table from `K` to `V` (`struct rhashtable`).
///
/// # Invariants
///
/// `table` is initialised with the offsets of [`Node<K, V>`]; every object
/// linked into it is the value of an [`RcuArc<Node<K, V>>`] whose count
/// the table owns (given up with [`RcuArc::into_value_ptr`]).
#[pin_data(PinnedDrop)]
pub(crate) struct RhashTable<K: Key, V: Send + Sync + 'static> {
    #[pin]
    table: Opaque<bindings::rhashtable>,
    _nodes: PhantomData<RcuArc<Node<K, V>>>,
}

// SAFETY: the C table synchronises its writers itself and its readers use
// RCU; the nodes it owns are `Send + Sync`.
unsafe impl<K: Key, V: Send + Sync> Send for RhashTable<K, V> {}
// SAFETY: as above; `&RhashTable` only hands out `&V`.
unsafe impl<K: Key, V: Send + Sync> Sync for RhashTable<K, V> {}

/// Why an insertion failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// The key is taken.
    Exists,
    /// No memory, or the table is at its maximum size.
    Failed(Error),
}

impl From<InsertError> for Error {
    fn from(e: InsertError) -> Error {
        match e {
            InsertError::Exists => EEXIST,
            InsertError::Failed(e) => e,
        }
    }
}

impl<K: Key, V: Send + Sync + 'static> RhashTable<K, V> {
    /// An empty table. May sleep.
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        let head_offset = core::mem::offset_of!(Node<K, V>, head);
        let key_offset = core::mem::offset_of!(Node<K, V>, key);
        let key_len = core::mem::size_of::<K>();
        // SAFETY: on success the closure has initialised the table (and the
        // phantom field needs no initialisation); on failure it leaves
        // nothing behind (`rhashtable_init` frees what it allocated).
        unsafe {
            pin_init::pin_init_from_closure(move |slot: *mut Self| {
                let (Ok(head_offset), Ok(key_offset), Ok(key_len)) =
                    (u16::try_from(head_offset), u16::try_from(key_offset), u16::try_from(key_len))
                else {
                    return Err(EINVAL);
                };
                // INVARIANT: the offsets and length of `Node<K, V>`.
                to_result(bindings::wgrs_rhashtable_init(
                    Opaque::cast_into(ptr::addr_of!((*slot).table)),
                    key_len,
                    key_offset,
                    head_offset,
                ))
            })
        }
    }

    fn raw(&self) -> *mut bindings::rhashtable {
        self.table.get()
    }

    /// The value under `key`, valid for as long as `guard` is held.
    pub(crate) fn get<'g>(&self, key: &K, _guard: &'g Guard) -> Option<&'g V> {
        let node = self.lookup(key)?;
        // SAFETY: the node was linked when we found it under the guard's
        // read-side critical section; it is freed only a grace period after
        // it is unlinked, which outlasts `'g`.
        Some(unsafe { &(*node.as_ptr()).value })
    }

    /// The node under `key`; the caller must be in an RCU read-side
    /// critical section for as long as it uses the result.
    fn lookup(&self, key: &K) -> Option<NonNull<Node<K, V>>> {
        // SAFETY: the table is initialised; `key` is valid for reads of the
        // table's key length (`size_of::<K>()`). Callers hold an RCU guard.
        let obj = unsafe { bindings::wgrs_rhashtable_lookup(self.raw(), ptr::from_ref(key).cast()) };
        NonNull::new(obj.cast::<Node<K, V>>())
    }

    /// Links a node whose count is handed to the table, or gives it back
    /// with the errno (`-EEXIST` if the key is taken).
    fn link(&self, node: RcuArc<Node<K, V>>) -> Result<(), (RcuArc<Node<K, V>>, Error)> {
        let ptr = RcuArc::into_value_ptr(node);
        // SAFETY: the table is initialised; `head` is the node's, which is
        // in no table. On success the table owns the count `into_value_ptr`
        // gave up (the type invariant).
        let ret = unsafe { bindings::wgrs_rhashtable_insert(self.raw(), Opaque::cast_into(ptr::addr_of!((*ptr.as_ptr()).head))) };
        match to_result(ret) {
            Ok(()) => Ok(()),
            // SAFETY: not linked: the count is still ours.
            Err(e) => Err((unsafe { RcuArc::from_value_ptr(ptr) }, e)),
        }
    }

    /// Removes the entry under `key` if `pred` accepts its value; returns
    /// whether this call removed it. Readers may still see the value until
    /// a grace period has passed.
    pub(crate) fn remove_if(&self, key: &K, pred: impl FnOnce(&V) -> bool) -> bool {
        let guard = super::rcu::read_lock();
        let Some(node) = self.lookup(key) else {
            return false;
        };
        // SAFETY: found under `guard`, so live until it is dropped.
        if !pred(unsafe { &(*node.as_ptr()).value }) {
            return false;
        }
        // SAFETY: the table is initialised; `head` belongs to a node that is
        // live (see above), linked in this table or already unlinked, which
        // the table detects (-ENOENT).
        let ret = unsafe { bindings::wgrs_rhashtable_remove(self.raw(), Opaque::cast_into(ptr::addr_of!((*node.as_ptr()).head))) };
        drop(guard);
        if ret != 0 {
            return false;
        }
        // SAFETY: we unlinked it, so the table's count is ours to drop; the
        // node is freed a grace period after the last reference goes.
        drop(unsafe { RcuArc::from_value_ptr(node) });
        true
    }

    /// The number of entries (`atomic_read(&ht->nelems)`).
    pub(crate) fn len(&self) -> usize {
        // SAFETY: the table is initialised.
        let n = unsafe { bindings::wgrs_rhashtable_nelems(self.raw()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// `rhashtable_free_and_destroy`'s callback: drops the table's count of
    /// a node still linked at destruction.
    ///
    /// # Safety
    ///
    /// `obj` must be a node linked in a table of this type, which is being
    /// destroyed (so nothing else unlinks it).
    unsafe extern "C" fn free_node(obj: *mut c_void, _arg: *mut c_void) {
        if let Some(node) = NonNull::new(obj.cast::<Node<K, V>>()) {
            // SAFETY: the table owned this count (type invariant).
            drop(unsafe { RcuArc::from_value_ptr(node) });
        }
    }
}

// Inserting: nodes are dropped in the RCU callback (see the module
// documentation).
impl<K: Key, V: AtomicDrop + Send + Sync + 'static> RhashTable<K, V> {
    fn new_node(key: K, value: V, flags: Flags) -> Result<RcuArc<Node<K, V>>> {
        Ok(RcuArc::new_atomic(Node { head: Opaque::zeroed(), key, value }, flags)?)
    }

    /// Inserts `value` under `key`, unless the key is taken.
    pub(crate) fn insert(&self, key: K, value: V, flags: Flags) -> Result<(), InsertError> {
        let node = Self::new_node(key, value, flags).map_err(InsertError::Failed)?;
        match self.link(node) {
            Ok(()) => Ok(()),
            Err((_, e)) if e == EEXIST => Err(InsertError::Exists),
            Err((_, e)) => Err(InsertError::Failed(e)),
        }
    }

    /// Inserts `value` under the first key from `pick` that is not taken,
    /// and returns that key. One allocation, however many keys it tries.
    pub(crate) fn insert_unique(&self, mut pick: impl FnMut() -> K, value: V, flags: Flags) -> Result<K> {
        let mut key = pick();
        let mut node = Self::new_node(key, value, flags)?;
        loop {
            match self.link(node) {
                Ok(()) => return Ok(key),
                Err((back, e)) if e == EEXIST => node = back,
                Err((_, e)) => return Err(e),
            }
            key = pick();
            let ptr = RcuArc::into_value_ptr(node);
            // SAFETY: the node was never linked and this is its only
            // reference, so nothing reads the key while we change it; the
            // pointer has the allocation's (mutable) provenance.
            unsafe { ptr::addr_of_mut!((*ptr.as_ptr()).key).write(key) };
            // SAFETY: takes back the count given up just above.
            node = unsafe { RcuArc::from_value_ptr(ptr) };
        }
    }

    /// Replaces the entry under `key` by `value` if `pred` accepts the old
    /// value, atomically for readers (they find one or the other). Returns
    /// whether it did.
    pub(crate) fn replace_if(&self, key: &K, pred: impl FnOnce(&V) -> bool, value: V, flags: Flags) -> Result<bool> {
        let new = Self::new_node(*key, value, flags)?;
        let guard = super::rcu::read_lock();
        let Some(old) = self.lookup(key) else {
            return Ok(false);
        };
        // SAFETY: found under `guard`, so live until it is dropped.
        if !pred(unsafe { &(*old.as_ptr()).value }) {
            return Ok(false);
        }
        let new = RcuArc::into_value_ptr(new);
        // SAFETY: the table is initialised; `old` is live (see above) and
        // `new` is a fresh node with the same key, in no table.
        let ret = unsafe {
            bindings::wgrs_rhashtable_replace(
                self.raw(),
                Opaque::cast_into(ptr::addr_of!((*old.as_ptr()).head)),
                Opaque::cast_into(ptr::addr_of!((*new.as_ptr()).head)),
            )
        };
        drop(guard);
        if ret != 0 {
            // SAFETY: `new` was not linked: its count is still ours.
            drop(unsafe { RcuArc::from_value_ptr(new) });
            return Ok(false);
        }
        // SAFETY: `old` was unlinked by us, so the table's count is ours;
        // the table now owns `new`'s.
        drop(unsafe { RcuArc::from_value_ptr(old) });
        Ok(true)
    }
}

#[pinned_drop]
impl<K: Key, V: Send + Sync + 'static> PinnedDrop for RhashTable<K, V> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: the table is initialised and, as we have it exclusively,
        // unused; `free_node` matches its nodes. Process context: this
        // waits for the resize worker.
        unsafe { bindings::rhashtable_free_and_destroy(self.raw(), Some(Self::free_node), ptr::null_mut()) };
    }
}
