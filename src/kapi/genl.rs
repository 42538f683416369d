// SPDX-License-Identifier: GPL-2.0

//! Generic netlink families with split `do` and `dump` operations.
//!
//! A family is a `static` [`Family`] over a `static` table of [`SplitOp`]s,
//! each with a `static` [`Policy`] that the core validates requests against
//! before calling the handler. Handlers read attributes through [`Attrs`]
//! and write replies through [`Message`] (batches of small attributes
//! through an [`AttrBuf`] in its free room); none exposes raw buffers, and
//! every read and write is bounds-checked, so no request can make them
//! misbehave.

use super::bindings;
use super::netdev::Net;
use core::{ffi::CStr, marker::PhantomData, mem::MaybeUninit, ptr::NonNull};
use kernel::{
    error::from_result,
    prelude::*,
    sync::atomic::{Acquire, Atomic, Release},
    types::Opaque,
};

/// Length of a netlink attribute header.
const NLA_HDRLEN: usize = bindings::WGRS_NLA_HDRLEN as usize;
/// Netlink attributes are padded to this alignment.
const NLA_ALIGNTO: usize = 4;

/// The room an attribute with `payload` bytes takes, padding included
/// (`nla_total_size`).
pub(crate) const fn attr_size(payload: usize) -> usize {
    (NLA_HDRLEN + payload).next_multiple_of(NLA_ALIGNTO)
}

/// The room [`AttrBuf::put_u64`] can take: the value and, where unaligned
/// loads are slow, an empty pad attribute before it.
pub(crate) const U64_ATTR_SIZE: usize = attr_size(0) + attr_size(8);

/// One attribute's validation rule (`struct nla_policy`).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct PolicyEntry(bindings::nla_policy);

impl PolicyEntry {
    const fn typed(kind: u32) -> Self {
        let mut entry: bindings::nla_policy = pin_init::zeroed();
        entry.type_ = kind as u8;
        PolicyEntry(entry)
    }

    /// No rule: the attribute is accepted unvalidated (or rejected under
    /// strict validation when it lies beyond `maxattr`).
    pub(crate) const UNSPEC: Self = Self::typed(bindings::NLA_UNSPEC);

    pub(crate) const fn u8() -> Self {
        Self::typed(bindings::NLA_U8)
    }

    pub(crate) const fn u16() -> Self {
        Self::typed(bindings::NLA_U16)
    }

    pub(crate) const fn u32() -> Self {
        Self::typed(bindings::NLA_U32)
    }

    pub(crate) const fn u64() -> Self {
        Self::typed(bindings::NLA_U64)
    }

    /// A NUL-terminated string of at most `max_len` characters.
    pub(crate) const fn nul_string(max_len: u16) -> Self {
        let mut entry = Self::typed(bindings::NLA_NUL_STRING);
        entry.0.len = max_len;
        entry
    }

    /// Binary data of exactly `len` bytes.
    pub(crate) const fn exact_len(len: u16) -> Self {
        let mut entry = Self::typed(bindings::NLA_BINARY);
        entry.0.validation_type = bindings::NLA_VALIDATE_RANGE as u8;
        entry.0.__bindgen_anon_1.__bindgen_anon_1.min = len as i16;
        entry.0.__bindgen_anon_1.__bindgen_anon_1.max = len as i16;
        entry
    }

    /// Binary data of at least `len` bytes.
    pub(crate) const fn min_len(len: u16) -> Self {
        let mut entry = Self::typed(bindings::NLA_BINARY);
        entry.0.validation_type = bindings::NLA_VALIDATE_MIN as u8;
        entry.0.__bindgen_anon_1.__bindgen_anon_1.min = len as i16;
        entry
    }

    /// A `u32` whose set bits must all lie within `mask`.
    pub(crate) const fn u32_mask(mask: u32) -> Self {
        let mut entry = Self::typed(bindings::NLA_U32);
        entry.0.validation_type = bindings::NLA_VALIDATE_MASK as u8;
        entry.0.__bindgen_anon_1.mask = mask;
        entry
    }

    /// A nest of nests, each validated against `policy`.
    pub(crate) const fn nested_array<const N: usize>(policy: &'static Policy<N>) -> Self {
        let mut entry = Self::typed(bindings::NLA_NESTED_ARRAY);
        entry.0.len = (N - 1) as u16;
        entry.0.__bindgen_anon_1.nested_policy = policy.0.as_ptr().cast();
        entry
    }
}

/// A validation table indexed by attribute type; `N - 1` is the largest type.
#[repr(transparent)]
pub(crate) struct Policy<const N: usize>([PolicyEntry; N]);

// SAFETY: policies are immutable; their pointers only lead to other statics.
unsafe impl<const N: usize> Sync for Policy<N> {}

impl<const N: usize> Policy<N> {
    pub(crate) const fn new() -> Self {
        Policy([PolicyEntry::UNSPEC; N])
    }

    /// Sets the rule for attribute type `kind`.
    pub(crate) const fn with(mut self, kind: u32, entry: PolicyEntry) -> Self {
        self.0[kind as usize] = entry;
        self
    }
}

/// Permission and capability flags of an operation (`GENL_*`).
#[derive(Clone, Copy)]
pub(crate) struct OpFlags(u8);

impl OpFlags {
    /// Requires CAP_NET_ADMIN over the user namespace of the caller's netns.
    pub(crate) const UNS_ADMIN_PERM: OpFlags = OpFlags(bindings::GENL_UNS_ADMIN_PERM as u8);
}

/// A `do` handler: one request, one acknowledgement.
pub(crate) trait DoHandler {
    fn doit(request: &Request<'_>) -> Result;
}

/// Whether a dump has more to say after this message.
pub(crate) enum DumpProgress {
    Done,
    More,
}

/// A `dump` handler: one request, a series of reply messages.
pub(crate) trait DumpHandler {
    /// What the dump remembers between messages.
    type State: Send;

    /// Validates the request and sets up the dump.
    fn start(request: &Request<'_>) -> Result<Self::State>;

    /// Writes the next message.
    fn dump(state: &mut Self::State, writer: &mut DumpWriter<'_>) -> Result<DumpProgress>;
}

/// One operation of a family (`struct genl_split_ops`).
#[repr(transparent)]
pub(crate) struct SplitOp(bindings::genl_split_ops);

// SAFETY: immutable; its pointers lead to static policies and functions.
unsafe impl Sync for SplitOp {}

impl SplitOp {
    const fn base<const N: usize>(cmd: u8, policy: &'static Policy<N>, flags: u8) -> Self {
        let mut op: bindings::genl_split_ops = pin_init::zeroed();
        op.cmd = cmd;
        op.flags = flags;
        op.policy = policy.0.as_ptr().cast();
        op.maxattr = (N - 1) as u32;
        SplitOp(op)
    }

    pub(crate) const fn doit<H: DoHandler, const N: usize>(
        cmd: u32,
        policy: &'static Policy<N>,
        flags: OpFlags,
    ) -> Self {
        let mut op = Self::base(cmd as u8, policy, flags.0 | bindings::GENL_CMD_CAP_DO as u8);
        op.0.__bindgen_anon_1.__bindgen_anon_1.doit = Some(doit_callback::<H, N>);
        op
    }

    pub(crate) const fn dump<H: DumpHandler, const N: usize>(
        cmd: u32,
        policy: &'static Policy<N>,
        flags: OpFlags,
    ) -> Self {
        let mut op = Self::base(cmd as u8, policy, flags.0 | bindings::GENL_CMD_CAP_DUMP as u8);
        op.0.__bindgen_anon_1.__bindgen_anon_2.start = Some(start_callback::<H, N>);
        op.0.__bindgen_anon_1.__bindgen_anon_2.dumpit = Some(dumpit_callback::<H>);
        op.0.__bindgen_anon_1.__bindgen_anon_2.done = Some(done_callback::<H>);
        op
    }
}

/// A generic netlink family.
pub(crate) struct Family {
    inner: Opaque<bindings::genl_family>,
    name: &'static CStr,
    version: u8,
    ops: &'static [SplitOp],
    /// Set while registered (or being registered): the once-guard that makes
    /// `register` the only writer of `inner` outside the core.
    registered: Atomic<bool>,
}

// SAFETY: `inner` is written only by the one `register` call that wins
// `registered`, before the core knows it, and afterwards only by the
// genetlink core under its own lock.
unsafe impl Sync for Family {}

impl Family {
    pub(crate) const fn new(name: &'static CStr, version: u8, ops: &'static [SplitOp]) -> Self {
        Family { inner: Opaque::zeroed(), name, version, ops, registered: Atomic::new(false) }
    }

    /// Registers the family (netns-aware); unregistered when the returned
    /// value is dropped. `EBUSY` while it is registered already.
    pub(crate) fn register(&'static self, module: &'static ThisModule) -> Result<FamilyRegistration> {
        if self.registered.cmpxchg(false, true, Acquire).is_err() {
            return Err(EBUSY);
        }
        let name = self.name.to_bytes_with_nul();
        // SAFETY: winning the guard above makes us the only writer, and the
        // core does not know the family yet.
        unsafe {
            let family = &mut *self.inner.get();
            if name.len() > family.name.len() {
                self.registered.store(false, Release);
                return Err(EINVAL);
            }
            for (dst, src) in family.name.iter_mut().zip(name) {
                *dst = *src as kernel::ffi::c_char;
            }
            family.version = self.version.into();
            family.set_netnsok(1);
            family.module = module.as_ptr().cast();
            family.split_ops = self.ops.as_ptr().cast();
            family.n_split_ops = self.ops.len() as u8;
        }
        // SAFETY: fully set up and static.
        let ret = unsafe { bindings::genl_register_family(self.inner.get()) };
        if ret < 0 {
            self.registered.store(false, Release);
            return Err(Error::from_errno(ret));
        }
        Ok(FamilyRegistration(self))
    }
}

/// Keeps a [`Family`] registered.
pub(crate) struct FamilyRegistration(&'static Family);

impl Drop for FamilyRegistration {
    fn drop(&mut self) {
        // SAFETY: registered in `Family::register`; this waits for running
        // handlers and dumps to finish.
        unsafe { bindings::genl_unregister_family(self.0.inner.get()) };
        // The core is done with `inner`: the next `register` may write it.
        self.0.registered.store(false, Release);
    }
}

/// A request as the handlers see it.
pub(crate) struct Request<'a> {
    attrs: Attrs<'a>,
    net: &'a Net,
}

impl<'a> Request<'a> {
    pub(crate) fn attrs(&self) -> &Attrs<'a> {
        &self.attrs
    }

    /// The namespace of the requesting socket.
    pub(crate) fn net(&self) -> &'a Net {
        self.net
    }
}

/// The validated top-level attributes of a request, indexed by type.
pub(crate) struct Attrs<'a> {
    table: &'a [*mut bindings::nlattr],
}

impl<'a> Attrs<'a> {
    /// # Safety
    ///
    /// `table` must hold `len` entries, each NULL or a valid attribute whose
    /// bytes stay valid for `'a` and are only accessed through [`Attr`].
    unsafe fn from_raw(table: *mut *mut bindings::nlattr, len: usize) -> Self {
        let table = if table.is_null() {
            &[][..]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { core::slice::from_raw_parts(table, len) }
        };
        Attrs { table }
    }

    pub(crate) fn get(&self, kind: u32) -> Option<Attr<'a>> {
        let ptr = NonNull::new(*self.table.get(kind as usize)?)?;
        // SAFETY: entries of the table are valid attributes for `'a`.
        Some(unsafe { Attr::from_raw(ptr) })
    }
}

/// The attributes of a nest, indexed by type (`nla_parse_nested`).
pub(crate) struct AttrTable<'a, const N: usize>([Option<Attr<'a>>; N]);

impl<'a, const N: usize> AttrTable<'a, N> {
    pub(crate) fn get(&self, kind: u32) -> Option<Attr<'a>> {
        *self.0.get(kind as usize)?
    }
}

/// One attribute of a request. Reads copy out of the request buffer, so no
/// reference into it outlives a call, and [`Attr::take_secret`] may wipe the
/// buffer through any copy of an `Attr`.
#[derive(Clone, Copy)]
pub(crate) struct Attr<'a> {
    ptr: NonNull<bindings::nlattr>,
    _data: PhantomData<&'a [u8]>,
}

impl<'a> Attr<'a> {
    /// # Safety
    ///
    /// `ptr` must be a valid attribute: its header and `nla_len` bytes lie
    /// in the request buffer, valid for reads and writes for `'a`.
    unsafe fn from_raw(ptr: NonNull<bindings::nlattr>) -> Self {
        Attr { ptr, _data: PhantomData }
    }

    fn header(&self) -> bindings::nlattr {
        // SAFETY: a valid attribute has a readable header.
        unsafe { self.ptr.as_ptr().read_unaligned() }
    }

    fn payload_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr().cast::<u8>().wrapping_add(NLA_HDRLEN)
    }

    pub(crate) fn payload_len(&self) -> usize {
        usize::from(self.header().nla_len).saturating_sub(NLA_HDRLEN)
    }

    /// The attribute type, without the nested and byte-order flags.
    pub(crate) fn kind(&self) -> u16 {
        self.header().nla_type & bindings::NLA_TYPE_MASK as u16
    }

    /// Whether the attribute carries `NLA_F_NESTED`, which the kernel's
    /// `nla_parse_nested` demands of any nest it parses.
    pub(crate) fn has_nested_flag(&self) -> bool {
        self.header().nla_type & bindings::NLA_F_NESTED as u16 != 0
    }

    /// Copies the payload into the start of `buf`; returns the payload
    /// length (which may exceed what was copied).
    pub(crate) fn copy_to(&self, buf: &mut [u8]) -> usize {
        let len = self.payload_len();
        let n = len.min(buf.len());
        // SAFETY: the payload holds `len >= n` readable bytes; `buf` is ours.
        unsafe { core::ptr::copy_nonoverlapping(self.payload_ptr(), buf.as_mut_ptr(), n) };
        len
    }

    /// The payload, which must be exactly `N` bytes long.
    pub(crate) fn array<const N: usize>(&self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        if self.copy_to(&mut out) != N {
            return Err(EINVAL);
        }
        Ok(out)
    }

    fn leading<const N: usize>(&self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        if self.copy_to(&mut out) < N {
            return Err(EINVAL);
        }
        Ok(out)
    }

    pub(crate) fn u8(&self) -> Result<u8> {
        Ok(self.leading::<1>()?[0])
    }

    pub(crate) fn u16(&self) -> Result<u16> {
        Ok(u16::from_ne_bytes(self.leading()?))
    }

    pub(crate) fn u32(&self) -> Result<u32> {
        Ok(u32::from_ne_bytes(self.leading()?))
    }

    /// A NUL-terminated string payload, copied out; it must fit in `N`
    /// bytes, NUL included.
    pub(crate) fn string<const N: usize>(&self) -> Result<StrBuf<N>> {
        let mut buf = StrBuf([0u8; N]);
        self.copy_to(&mut buf.0);
        if !buf.0.contains(&0) {
            return Err(EINVAL);
        }
        Ok(buf)
    }

    /// Copies a payload of exactly `N` bytes into `secret` and wipes it in
    /// the request, so that secrets do not linger in socket buffers.
    pub(crate) fn take_secret<const N: usize>(self, secret: &mut super::crypto::Secret<N>) -> Result {
        let len = self.payload_len();
        let copied = self.copy_to(secret.expose_mut());
        // SAFETY: the payload is `len` bytes in the request buffer, which the
        // handler may write; no reference into it is alive (reads copy).
        super::crypto::wipe(unsafe { core::slice::from_raw_parts_mut(self.payload_ptr(), len) });
        if copied != N {
            secret.wipe();
            return Err(EINVAL);
        }
        Ok(())
    }

    /// The attributes nested in this one, in order.
    pub(crate) fn nested(&self) -> NestedAttrs<'a> {
        NestedAttrs { next: self.payload_ptr(), rest: self.payload_len(), _data: PhantomData }
    }

    /// The attributes nested in this one, indexed by type; a later
    /// duplicate wins and types `>= N` are skipped (strict policy validation
    /// already rejected unknown ones).
    pub(crate) fn parse_nested<const N: usize>(&self) -> AttrTable<'a, N> {
        let mut table = AttrTable([None; N]);
        for attr in self.nested() {
            if let Some(slot) = table.0.get_mut(usize::from(attr.kind())) {
                *slot = Some(attr);
            }
        }
        table
    }
}

/// A string copied out of a request, NUL-terminated within `N` bytes.
pub(crate) struct StrBuf<const N: usize>([u8; N]);

impl<const N: usize> StrBuf<N> {
    pub(crate) fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).unwrap_or(c"")
    }
}

/// Iterates over nested attributes; stops at the first malformed header.
pub(crate) struct NestedAttrs<'a> {
    next: *mut u8,
    rest: usize,
    _data: PhantomData<&'a [u8]>,
}

impl<'a> Iterator for NestedAttrs<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        if self.rest < NLA_HDRLEN {
            return None;
        }
        let ptr = NonNull::new(self.next.cast::<bindings::nlattr>())?;
        // SAFETY: at least a header's worth of the parent's payload remains.
        let len = usize::from(unsafe { ptr.as_ptr().read_unaligned() }.nla_len);
        if len < NLA_HDRLEN || len > self.rest {
            self.rest = 0;
            return None;
        }
        let step = len.next_multiple_of(NLA_ALIGNTO).min(self.rest);
        self.next = self.next.wrapping_add(step);
        self.rest -= step;
        // SAFETY: the header and its `len` bytes lie within the parent's
        // payload, which is valid for `'a`.
        Some(unsafe { Attr::from_raw(ptr) })
    }
}

/// Writes attributes into a reply.
pub(crate) struct Message<'a> {
    skb: NonNull<bindings::sk_buff>,
    _skb: PhantomData<&'a mut bindings::sk_buff>,
}

impl Message<'_> {
    /// Lets `f` write attributes straight into the message's free room, and
    /// keeps what it wrote (less what it truncated): one call for a batch
    /// of attributes rather than one per attribute.
    pub(crate) fn append<R>(&mut self, f: impl FnOnce(&mut AttrBuf<'_>) -> R) -> R {
        let mut room = 0;
        // SAFETY: `skb` is ours to write.
        let tail = unsafe { bindings::wgrs_skb_tail(self.skb.as_ptr(), &mut room) };
        // SAFETY: the `room` bytes after the tail are the buffer's, unused
        // (hence uninitialised) and ours while we hold the message.
        let room = unsafe { core::slice::from_raw_parts_mut(tail.cast(), room as usize) };
        let mut buf = AttrBuf { room, len: 0 };
        let result = f(&mut buf);
        if buf.len > 0 {
            // SAFETY: `len` is within the tailroom, and by `AttrBuf`'s
            // invariant every byte below it was written.
            unsafe { bindings::skb_put(self.skb.as_ptr(), buf.len as u32) };
        }
        result
    }
}

/// Attributes written into a message's free room; see [`Message::append`].
/// The format is netlink's: a 4-byte header (length, type) per attribute,
/// each padded with zeroes to 4 bytes, nests holding their children.
///
/// # Invariants
///
/// Every byte of `room` below `len` has been written, and `len` is a
/// multiple of 4.
pub(crate) struct AttrBuf<'b> {
    room: &'b mut [MaybeUninit<u8>],
    len: usize,
}

/// A position in an [`AttrBuf`], to truncate back to.
#[derive(Clone, Copy)]
pub(crate) struct AttrMark(usize);

/// A nest opened in an [`AttrBuf`], to close with [`AttrBuf::end`].
#[must_use]
pub(crate) struct AttrNest(usize);

impl AttrBuf<'_> {
    /// Where the next attribute goes.
    #[inline(always)]
    pub(crate) fn mark(&self) -> AttrMark {
        AttrMark(self.len)
    }

    /// Runs `f` on this buffer, where attributes written one by one are
    /// checked one by one. When at least `N` bytes of room are left, `f`
    /// runs instead on a view of exactly `N` bytes, whose size the compiler
    /// knows: once `f` is inlined, the checks of writes of known sizes that
    /// fit in `N` fold away. What `f` writes and whether it fails are the
    /// same either way; only its cost differs.
    ///
    /// Marks and nests taken inside `f` belong to the buffer `f` is given.
    #[inline(always)]
    pub(crate) fn with_room<const N: usize, R>(&mut self, f: impl FnOnce(&mut AttrBuf<'_>) -> R) -> R {
        let Some(block) = self.room.get_mut(self.len..).and_then(|room| room.first_chunk_mut::<N>()) else {
            return f(self);
        };
        let mut view = AttrBuf { room: block, len: 0 };
        let result = f(&mut view);
        // INVARIANT: the view's first `len` bytes, a multiple of 4, are
        // written, and follow ours.
        self.len += view.len;
        result
    }

    /// Forgets what was written after `mark`.
    #[inline(always)]
    pub(crate) fn truncate(&mut self, mark: AttrMark) {
        // INVARIANT: marks are earlier lengths, so multiples of 4.
        if mark.0 < self.len {
            self.len = mark.0;
        }
    }

    #[inline(always)]
    fn write(&mut self, at: usize, bytes: &[u8]) {
        let end = at.saturating_add(bytes.len());
        if let Some(dst) = self.room.get_mut(at..end) {
            // SAFETY: `dst` is `bytes.len()` bytes of the room we borrow
            // exclusively, so valid for writes and disjoint from `bytes`;
            // `MaybeUninit<u8>` has the layout of `u8`.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.as_mut_ptr().cast(), bytes.len()) };
        }
    }

    /// Writes the header of an attribute of `payload` bytes and its padding;
    /// returns where the payload goes, which the caller fills at once.
    #[inline(always)]
    fn begin(&mut self, kind: u32, payload: usize) -> Result<usize> {
        let kind = u16::try_from(kind).map_err(|_| EINVAL)?;
        let len = NLA_HDRLEN.checked_add(payload).filter(|&len| len <= usize::from(u16::MAX));
        let len = len.ok_or(EMSGSIZE)?;
        let end = self.len + len.next_multiple_of(NLA_ALIGNTO);
        if end > self.room.len() {
            return Err(EMSGSIZE);
        }
        let at = self.len;
        // The padding: the last word zeroed whole (a fixed-size store), then
        // the header and the payload over whatever part of it they cover.
        self.write(end - NLA_ALIGNTO, &[0; NLA_ALIGNTO]);
        let [l0, l1] = (len as u16).to_ne_bytes();
        let [k0, k1] = kind.to_ne_bytes();
        self.write(at, &[l0, l1, k0, k1]);
        // INVARIANT: the caller writes the payload before anything else.
        self.len = end;
        Ok(at + NLA_HDRLEN)
    }

    #[inline(always)]
    pub(crate) fn put_bytes(&mut self, kind: u32, bytes: &[u8]) -> Result {
        let at = self.begin(kind, bytes.len())?;
        self.write(at, bytes);
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn put_u8(&mut self, kind: u32, value: u8) -> Result {
        self.put_bytes(kind, &[value])
    }

    #[inline(always)]
    pub(crate) fn put_u16(&mut self, kind: u32, value: u16) -> Result {
        self.put_bytes(kind, &value.to_ne_bytes())
    }

    #[inline(always)]
    pub(crate) fn put_u32(&mut self, kind: u32, value: u32) -> Result {
        self.put_bytes(kind, &value.to_ne_bytes())
    }

    /// A string, NUL included.
    #[inline(always)]
    pub(crate) fn put_cstr(&mut self, kind: u32, value: &CStr) -> Result {
        self.put_bytes(kind, value.to_bytes_with_nul())
    }

    /// A `u64`, as `nla_put_64bit` writes it: where unaligned loads are
    /// slow, an empty `pad` attribute first if the payload would not be
    /// 8-byte aligned.
    #[inline(always)]
    pub(crate) fn put_u64(&mut self, kind: u32, value: u64, pad: u32) -> Result {
        if cfg!(not(CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS)) {
            let payload = self.room.as_ptr().addr() + self.len + NLA_HDRLEN;
            if payload % 8 != 0 {
                let room = self.room.len() - self.len;
                // As upstream: room for the pad and the value, or neither.
                if room < U64_ATTR_SIZE {
                    return Err(EMSGSIZE);
                }
                self.begin(pad, 0)?;
            }
        }
        self.put_bytes(kind, &value.to_ne_bytes())
    }

    /// Opens a nested attribute (`NLA_F_NESTED` set, as `nla_nest_start`).
    #[inline(always)]
    pub(crate) fn nest(&mut self, kind: u32) -> Result<AttrNest> {
        let start = self.len;
        self.begin(kind | bindings::NLA_F_NESTED, 0)?;
        Ok(AttrNest(start))
    }

    /// Closes `nest` around what was written since it was opened.
    #[inline(always)]
    pub(crate) fn end(&mut self, nest: AttrNest) {
        let len = u16::try_from(self.len.saturating_sub(nest.0)).unwrap_or(u16::MAX);
        self.write(nest.0, &len.to_ne_bytes());
    }
}

/// Writes the messages of a dump.
pub(crate) struct DumpWriter<'a> {
    skb: NonNull<bindings::sk_buff>,
    cb: NonNull<bindings::netlink_callback>,
    family: *const bindings::genl_family,
    cmd: u8,
    header: Option<NonNull<c_void>>,
    _skb: PhantomData<&'a mut bindings::sk_buff>,
}

impl DumpWriter<'_> {
    /// The namespace of the socket the dump is for.
    pub(crate) fn net(&self) -> &Net {
        // SAFETY: the dump's socket, and with it its namespace, lives for the
        // whole dump, so at least as long as this round's writer.
        unsafe { Net::from_raw(bindings::wgrs_netlink_cb_net(self.cb.as_ptr())) }
    }

    /// Starts this round's message. `generation` identifies the state being
    /// dumped: if it differs from the previous round's, the message is
    /// flagged `NLM_F_DUMP_INTR` so that userspace knows to retry.
    pub(crate) fn begin(&mut self, generation: u32) -> Result<Message<'_>> {
        if self.header.is_some() {
            return Err(EINVAL);
        }
        let (skb, cb) = (self.skb.as_ptr(), self.cb.as_ptr());
        // SAFETY: `skb` and `cb` are the dump's, valid during `dumpit`.
        let header = unsafe {
            bindings::wgrs_netlink_cb_set_seq(cb, generation);
            bindings::genlmsg_put(
                skb,
                bindings::wgrs_netlink_cb_portid(cb),
                bindings::wgrs_netlink_cb_nlmsg_seq(cb),
                self.family,
                bindings::WGRS_NLM_F_MULTI as i32,
                self.cmd,
            )
        };
        let header = NonNull::new(header).ok_or(EMSGSIZE)?;
        // SAFETY: `header` was just put into `skb` for this dump.
        unsafe { bindings::wgrs_genl_dump_check_consistent(cb, header.as_ptr()) };
        self.header = Some(header);
        Ok(Message { skb: self.skb, _skb: PhantomData })
    }
}

/// A boxed dump state behind `cb->args[0]`.
fn dump_state<H: DumpHandler>(cb: *mut bindings::netlink_callback) -> *mut *mut c_void {
    // SAFETY: `cb` is a live callback (all callers get it from the core).
    unsafe { bindings::wgrs_netlink_cb_state(cb) }
}

unsafe extern "C" fn doit_callback<H: DoHandler, const N: usize>(
    skb: *mut bindings::sk_buff,
    info: *mut bindings::genl_info,
) -> kernel::ffi::c_int {
    let _request_skb = skb;
    // SAFETY: the core passes a parsed request: `attrs` has `maxattr + 1`
    // entries (our policy's `N`), valid until we return.
    let request = unsafe {
        Request {
            attrs: Attrs::from_raw(bindings::wgrs_genl_info_attrs(info), N),
            net: Net::from_raw(bindings::wgrs_genl_info_net(info)),
        }
    };
    from_result(|| H::doit(&request).map(|()| 0))
}

unsafe extern "C" fn start_callback<H: DumpHandler, const N: usize>(
    cb: *mut bindings::netlink_callback,
) -> kernel::ffi::c_int {
    from_result(|| {
        // SAFETY: as in `doit_callback`, for the dump's request.
        let request = unsafe {
            let info = bindings::wgrs_genl_info_dump(cb);
            Request {
                attrs: Attrs::from_raw(bindings::wgrs_genl_info_attrs(info), N),
                net: Net::from_raw(bindings::wgrs_netlink_cb_net(cb)),
            }
        };
        let state = KBox::new(H::start(&request)?, GFP_KERNEL)?;
        // SAFETY: `args[0]` is ours; `done` frees what we store here.
        unsafe { *dump_state::<H>(cb) = KBox::into_raw(state).cast() };
        Ok(0)
    })
}

unsafe extern "C" fn dumpit_callback<H: DumpHandler>(
    skb: *mut bindings::sk_buff,
    cb: *mut bindings::netlink_callback,
) -> kernel::ffi::c_int {
    // SAFETY: `start` succeeded, so `args[0]` holds our state, and the core
    // never runs two rounds of one dump at once.
    let state = unsafe { &mut *(*dump_state::<H>(cb)).cast::<H::State>() };
    let (Some(skb_ptr), Some(cb_ptr)) = (NonNull::new(skb), NonNull::new(cb)) else {
        return EINVAL.to_errno();
    };
    // SAFETY: a dump's callback has the genl_info of its request.
    let (family, cmd) = unsafe {
        let info = bindings::wgrs_genl_info_dump(cb);
        (bindings::wgrs_genl_info_family(info), bindings::wgrs_genl_info_cmd(info))
    };
    let mut writer =
        DumpWriter { skb: skb_ptr, cb: cb_ptr, family, cmd, header: None, _skb: PhantomData };
    let result = H::dump(state, &mut writer);
    let Some(header) = writer.header else {
        return match result {
            Ok(_) => 0,
            Err(e) => e.to_errno(),
        };
    };
    // SAFETY: `header` was put into `skb` in this round.
    unsafe {
        match result {
            Err(e) => {
                bindings::wgrs_genlmsg_cancel(skb, header.as_ptr());
                e.to_errno()
            }
            Ok(progress) => {
                bindings::wgrs_genlmsg_end(skb, header.as_ptr());
                match progress {
                    DumpProgress::Done => 0,
                    DumpProgress::More => super::skb::field::len(skb) as kernel::ffi::c_int,
                }
            }
        }
    }
}

unsafe extern "C" fn done_callback<H: DumpHandler>(
    cb: *mut bindings::netlink_callback,
) -> kernel::ffi::c_int {
    let slot = dump_state::<H>(cb);
    // SAFETY: `args[0]` is NULL (start failed or never ran) or our state.
    unsafe {
        if !(*slot).is_null() {
            drop(KBox::from_raw((*slot).cast::<H::State>()));
            *slot = core::ptr::null_mut();
        }
    }
    0
}
