// SPDX-License-Identifier: GPL-2.0

//! Socket buffers (`linux/skbuff.h`): the packets of the data plane.
//!
//! [`SkBuff`] owns one `sk_buff` and frees it when dropped; [`SkbList`]
//! owns a chain of them linked through `next` (what GSO segmentation
//! returns, and how a batch travels). The methods are the operations a
//! layer-3 tunnel performs on its packets: inspecting the inner IP header,
//! segmenting, sealing and opening the payload in place with
//! ChaCha20-Poly1305, and preparing a packet for delivery. Every method keeps
//! the buffer valid whatever it is given: a failure leaves a packet that can
//! still be freed, never a dangling one.

use super::bindings;
use core::{marker::PhantomData, mem::MaybeUninit, ptr, ptr::NonNull};
use kernel::prelude::*;

/// Fields of `struct sk_buff` read or linked in place (the struct is opaque
/// to bindgen): the packet path touches them several times per packet, and a
/// call to a C shim would cost more than the access. Offsets and types come
/// from `include/wireguard_rs.h`; `shims.c` checks the types.
pub(super) mod field {
    use super::bindings;

    /// The address of the `T` at `offset` in `*skb`.
    ///
    /// # Safety
    ///
    /// `skb` must point to a live `sk_buff` that has a `T` at `offset`.
    #[inline]
    unsafe fn at<T>(skb: *const bindings::sk_buff, offset: u32) -> *mut T {
        // SAFETY: per the function's contract, the result is in the struct.
        unsafe { skb.cast::<u8>().cast_mut().add(offset as usize).cast() }
    }

    /// `&skb->next`.
    ///
    /// # Safety
    ///
    /// `skb` must point to a live `sk_buff`.
    #[inline]
    pub(in crate::kapi) unsafe fn next(skb: *const bindings::sk_buff) -> *mut *mut bindings::sk_buff {
        // SAFETY: `next` is a `struct sk_buff *` at this offset.
        unsafe { at(skb, bindings::WGRS_SKB_NEXT_OFFSET) }
    }

    /// `&skb->prev`.
    ///
    /// # Safety
    ///
    /// `skb` must point to a live `sk_buff`, or to a `struct wgrs_skb_links`
    /// (whose links are at the same offsets).
    #[inline]
    pub(in crate::kapi) unsafe fn prev(skb: *const bindings::sk_buff) -> *mut *mut bindings::sk_buff {
        // SAFETY: `prev` is a `struct sk_buff *` at this offset.
        unsafe { at(skb, bindings::WGRS_SKB_PREV_OFFSET) }
    }

    /// `skb->cb`: `WGRS_SKB_CB_SIZE` bytes, 8-aligned.
    ///
    /// # Safety
    ///
    /// `skb` must point to a live `sk_buff`.
    #[inline]
    pub(in crate::kapi) unsafe fn cb(skb: *const bindings::sk_buff) -> *mut u8 {
        // SAFETY: `cb` is at this offset.
        unsafe { at(skb, bindings::WGRS_SKB_CB_OFFSET) }
    }

    /// `skb->len`.
    ///
    /// # Safety
    ///
    /// `skb` must point to a live `sk_buff`.
    #[inline]
    pub(in crate::kapi) unsafe fn len(skb: *const bindings::sk_buff) -> u32 {
        // SAFETY: `len` is an `unsigned int` at this offset.
        unsafe { at::<u32>(skb, bindings::WGRS_SKB_LEN_OFFSET).read() }
    }

    /// `skb_headlen(skb)`: the bytes of data in the linear part.
    ///
    /// # Safety
    ///
    /// `skb` must point to a live `sk_buff`.
    #[inline]
    pub(in crate::kapi) unsafe fn headlen(skb: *const bindings::sk_buff) -> u32 {
        // SAFETY: `data_len` is an `unsigned int` at this offset.
        let data_len = unsafe { at::<u32>(skb, bindings::WGRS_SKB_DATA_LEN_OFFSET).read() };
        // SAFETY: per the function's contract.
        unsafe { len(skb) }.wrapping_sub(data_len)
    }

    /// `skb->data`.
    ///
    /// # Safety
    ///
    /// `skb` must point to a live `sk_buff`.
    #[inline]
    pub(in crate::kapi) unsafe fn data(skb: *const bindings::sk_buff) -> *mut u8 {
        // SAFETY: `data` is an `unsigned char *` at this offset.
        unsafe { at::<*mut u8>(skb, bindings::WGRS_SKB_DATA_OFFSET).read() }
    }
}

/// An IP address of an inner (tunnelled) or outer packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum IpAddr {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Formats an address as in debug lines: dotted quad, or the eight groups
/// of IPv6 in hex; `?` for none.
pub(crate) struct AddrDisplay(pub(crate) Option<IpAddr>, pub(crate) AddrStyle);

/// How an IPv6 address is written, as printk's `%pI6` or `%pI6c`.
#[derive(Clone, Copy)]
pub(crate) enum AddrStyle {
    /// Eight groups of four digits.
    Full,
    /// RFC 5952: the longest run of zero groups as `::`.
    Compressed,
}

impl AddrDisplay {
    pub(crate) fn write(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        match self.0 {
            Some(IpAddr::V4([a, b, c, d])) => write!(f, "{a}.{b}.{c}.{d}"),
            Some(IpAddr::V6(addr)) => {
                // Room for "ffff:...:ffff" and its NUL.
                let mut buf = [0u8; 40];
                let compressed = matches!(self.1, AddrStyle::Compressed);
                // SAFETY: `buf` is writable for its length and `addr` holds
                // the 16 bytes that %pI6 reads.
                let len = unsafe {
                    bindings::wgrs_format_ip6(buf.as_mut_ptr().cast(), buf.len(), addr.as_ptr(), compressed)
                };
                let text = buf.get(..len.clamp(0, 39) as usize).unwrap_or_default();
                f.write_str(core::str::from_utf8(text).unwrap_or("?"))
            }
            None => f.write_str("?"),
        }
    }
}

impl kernel::fmt::Display for AddrDisplay {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        self.write(f)
    }
}

/// An owned socket buffer; freed when dropped.
///
/// # Invariants
///
/// `0` is an `sk_buff` that we own exclusively, and that is not on any list.
pub(crate) struct SkBuff(NonNull<bindings::sk_buff>);

// SAFETY: an owned buffer may be handed to and freed on any CPU.
unsafe impl Send for SkBuff {}

/// Exclusive access to a buffer owned elsewhere (by an [`SkBuff`], a chain,
/// or a packet in flight) for `'a`: the handle carries every operation on a
/// buffer, but cannot free it, unlink it or move it anywhere.
///
/// # Invariants
///
/// `skb` is live and only accessed through this handle during `'a`.
pub(crate) struct SkbMut<'a> {
    skb: NonNull<bindings::sk_buff>,
    _borrow: PhantomData<&'a mut SkBuff>,
}

/// `MAX_SKB_FRAGS + 8`: enough scatterlist entries for any buffer that
/// `skb_cow_data` does not reject (upstream's bound).
const MAX_SG: usize = bindings::WGRS_MAX_SKB_FRAGS as usize + 8;

/// Length of a ChaCha20-Poly1305 tag.
pub(crate) const AEAD_TAG_LEN: usize = 16;

impl SkBuff {
    /// Takes ownership of `skb`.
    ///
    /// # Safety
    ///
    /// `skb` must be a buffer the caller owns and gives up, not on a list.
    pub(super) unsafe fn from_raw(skb: NonNull<bindings::sk_buff>) -> Self {
        // INVARIANT: per the caller's contract.
        SkBuff(skb)
    }

    /// Gives up ownership.
    pub(super) fn into_raw(self) -> NonNull<bindings::sk_buff> {
        core::mem::ManuallyDrop::new(self).0
    }

    pub(super) fn as_ptr(&self) -> *mut bindings::sk_buff {
        self.0.as_ptr()
    }

    /// Bytes of packet data.
    pub(crate) fn len(&self) -> usize {
        // SAFETY: by the type invariant the buffer is live.
        unsafe { field::len(self.as_ptr()) as usize }
    }

    /// The outer endpoint of a received packet: (source address, source
    /// port, destination address, incoming interface or IPv6 scope).
    pub(crate) fn outer_endpoint(&self) -> Option<(IpAddr, u16, IpAddr, i32)> {
        outer_endpoint(self.as_ptr())
    }

    /// The buffer's operations.
    pub(crate) fn as_mut(&mut self) -> SkbMut<'_> {
        // SAFETY: we own the buffer; the handle borrows us mutably.
        unsafe { SkbMut::new(self.0) }
    }

    /// A new buffer holding a copy of `data`, with `headroom` bytes reserved
    /// in front for the headers of the layers below (`GFP_ATOMIC`).
    pub(crate) fn with_data(headroom: usize, data: &[u8]) -> Result<Self> {
        // SAFETY: no preconditions; returns an owned buffer or NULL.
        let skb = unsafe { bindings::wgrs_alloc_skb_with_data(headroom, data.as_ptr(), data.len()) };
        // INVARIANT: freshly allocated, ours.
        NonNull::new(skb).map(SkBuff).ok_or(ENOMEM)
    }

    /// Segments a GSO packet in software (`skb_gso_segment`); the original
    /// is consumed either way.
    pub(crate) fn gso_segment(self) -> Result<SkbList> {
        let mut err = 0;
        // SAFETY: the buffer is ours; the shim frees it and returns the
        // segments, or NULL with `err` set.
        let segs = unsafe { bindings::wgrs_skb_gso_segment(self.into_raw().as_ptr(), &mut err) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        // SAFETY: the segments are a fresh chain we own.
        Ok(unsafe { SkbList::from_raw(segs) })
    }

    /// Makes sure the buffer is not shared (`skb_share_check`, atomic), or
    /// drops it.
    pub(crate) fn unshare(self) -> Option<SkBuff> {
        // SAFETY: the buffer is ours; the shim returns an owned, unshared
        // buffer (maybe a clone, freeing ours) or NULL having freed ours.
        NonNull::new(unsafe { bindings::wgrs_skb_share_check(self.into_raw().as_ptr()) }).map(SkBuff)
    }

}

impl SkbMut<'_> {
    /// # Safety
    ///
    /// `skb` must be live and accessed only through the handle during `'a`.
    pub(super) unsafe fn new<'a>(skb: NonNull<bindings::sk_buff>) -> SkbMut<'a> {
        // INVARIANT: per the caller's contract.
        SkbMut { skb, _borrow: PhantomData }
    }

    pub(super) fn as_ptr(&self) -> *mut bindings::sk_buff {
        self.skb.as_ptr()
    }

    /// Bytes of packet data.
    pub(crate) fn len(&self) -> usize {
        // SAFETY: by the type invariant the buffer is live.
        unsafe { field::len(self.as_ptr()) as usize }
    }

    /// Makes the first `len` bytes linear (`pskb_may_pull`) and returns
    /// them, or `None` if the packet is shorter or memory is short.
    pub(crate) fn head(&mut self, len: usize) -> Option<&[u8]> {
        // SAFETY: the buffer is ours; on success `len` bytes at `data` are
        // linear and stay so until the buffer is changed, which needs `&mut`.
        unsafe {
            let skb = self.as_ptr();
            // `pskb_may_pull`'s fast path, without the call.
            if len > field::headlen(skb) as usize && !bindings::wgrs_pskb_may_pull(skb, len as u32) {
                return None;
            }
            Some(core::slice::from_raw_parts(field::data(skb), len))
        }
    }

    /// Cuts the packet to `len` bytes (`pskb_trim`).
    pub(crate) fn trim(&mut self, len: usize) -> Result {
        // SAFETY: the buffer is ours; `pskb_trim` copes with any length.
        kernel::error::to_result(unsafe { bindings::wgrs_pskb_trim(self.as_ptr(), len as u32) })
    }

    /// Whether the packet's IP header agrees with `skb->protocol`
    /// (upstream `wg_check_packet_protocol`).
    pub(crate) fn has_valid_ip_protocol(&self) -> bool {
        // SAFETY: the buffer is live.
        unsafe { bindings::wgrs_skb_check_ip_protocol(self.as_ptr()) }
    }

    /// The destination (or with `source`, the source) address of the IP
    /// packet this buffer holds at its network header.
    pub(crate) fn ip_addr(&self, source: bool) -> Option<IpAddr> {
        let mut addr = [0u8; 16];
        // SAFETY: `addr` has room for an IPv6 address; the buffer is live.
        match unsafe { bindings::wgrs_skb_ip_addr(self.as_ptr(), source, addr.as_mut_ptr()) } {
            4 => Some(IpAddr::V4([addr[0], addr[1], addr[2], addr[3]])),
            6 => Some(IpAddr::V6(addr)),
            _ => None,
        }
    }

    /// Whether the packet is a GSO super-packet.
    pub(crate) fn is_gso(&self) -> bool {
        // SAFETY: the buffer is live.
        unsafe { bindings::wgrs_skb_is_gso(self.as_ptr()) }
    }

    /// The packet's flow hash (`skb_get_hash`): the one its socket set, or
    /// else one computed from its addresses and ports, and kept.
    pub(crate) fn flow_hash(&mut self) -> u32 {
        // SAFETY: the buffer is ours.
        unsafe { bindings::wgrs_skb_get_hash(self.as_ptr()) }
    }

    /// The MTU of the route the packet came with, or `dev_mtu` without one.
    pub(crate) fn route_mtu(&self, dev_mtu: u32) -> u32 {
        // SAFETY: the buffer is live.
        unsafe { bindings::wgrs_skb_route_mtu(self.as_ptr(), dev_mtu) }
    }

    /// Drops the route the packet came with (`skb_dst_drop`); it is only
    /// kept for answering with ICMP.
    pub(crate) fn drop_route(&mut self) {
        // SAFETY: the buffer is ours.
        unsafe { bindings::wgrs_skb_dst_drop(self.as_ptr()) }
    }

    /// Answers the sender with an ICMP (or ICMPv6) destination unreachable,
    /// host (address) unreachable (`icmp_ndo_send`).
    pub(crate) fn icmp_unreachable(&self) {
        // SAFETY: the buffer is live; the ICMP code only reads it.
        unsafe { bindings::wgrs_skb_icmp_unreachable(self.as_ptr()) }
    }

    /// The outer DS field for encapsulating this packet with TOS 0: only its
    /// ECN bits (`ip_tunnel_ecn_encap(0, ...)`).
    pub(crate) fn ecn_encap(&self) -> u8 {
        // SAFETY: the buffer is live.
        unsafe { bindings::wgrs_skb_ecn_encap(self.as_ptr()) }
    }

    /// The DS field of the outer IP header of a received packet.
    pub(crate) fn outer_dsfield(&self) -> u8 {
        // SAFETY: the buffer is live.
        unsafe { bindings::wgrs_skb_outer_dsfield(self.as_ptr()) }
    }

    /// Releases the socket the packet is charged to (`skb_orphan`).
    pub(crate) fn orphan(&mut self) {
        // SAFETY: the buffer is ours.
        unsafe { bindings::wgrs_skb_orphan(self.as_ptr()) }
    }

    /// Resets the buffer's metadata between layers (upstream
    /// `wg_reset_packet`); `encapsulating` keeps the flow hash.
    pub(crate) fn reset(&mut self, encapsulating: bool) {
        // SAFETY: the buffer is ours.
        unsafe { bindings::wgrs_skb_reset(self.as_ptr(), encapsulating) }
    }

    /// Seals the payload in place: pads it with `padding` zero bytes,
    /// encrypts and authenticates it with ChaCha20-Poly1305 under `key` and
    /// `nonce`, appends the tag, and puts `header` in front, leaving
    /// `headroom` bytes for the layers below. Finishes a pending checksum
    /// first. Returns false (the packet is then only good
    /// for freeing) if the buffer cannot be made writable.
    pub(crate) fn seal(
        &mut self,
        headroom: usize,
        header: &[u8],
        padding: usize,
        nonce: u64,
        key: &[u8; 32],
    ) -> bool {
        let skb = self.as_ptr();
        let plain_len = self.len() + padding;
        let mut sg = [const { MaybeUninit::<bindings::scatterlist>::uninit() }; MAX_SG];
        // SAFETY: the buffer is ours. The shim makes room for `header` in
        // front and `padding` plus the tag behind, with `skb_cow_data`
        // bounding the fragments to what `sg` can describe, and maps the
        // payload into `sg`; the in-place encryption then covers exactly
        // the plaintext and writes the tag after it.
        unsafe {
            let frags = bindings::wgrs_skb_prepare_seal(
                skb,
                headroom as u32,
                header.as_ptr(),
                header.len() as u32,
                padding as u32,
                AEAD_TAG_LEN as u32,
                sg.as_mut_ptr().cast(),
                MAX_SG as u32,
            );
            frags > 0
                && bindings::chacha20poly1305_encrypt_sg_inplace(
                    sg.as_mut_ptr().cast(),
                    plain_len,
                    ptr::null(),
                    0,
                    nonce,
                    key.as_ptr(),
                )
        }
    }

    /// Opens a sealed payload in place: authenticates and decrypts what
    /// follows the first `header_len` bytes with ChaCha20-Poly1305 under
    /// `key` and `nonce`, then drops the header and the tag. Returns false
    /// on a forged or corrupt packet. The network header stays in the
    /// buffer, so the outer addresses can still be read.
    pub(crate) fn open(&mut self, header_len: usize, nonce: u64, key: &[u8; 32]) -> bool {
        let skb = self.as_ptr();
        let mut sg = [const { MaybeUninit::<bindings::scatterlist>::uninit() }; MAX_SG];
        // SAFETY: the buffer is ours. The shim pulls the header, makes the
        // payload writable (keeping the network header in the buffer) and
        // maps it into `sg`, bounded by `MAX_SG`; the payload is at least a
        // tag long (checked there), so the decryption length cannot wrap.
        unsafe {
            let len = bindings::wgrs_skb_prepare_open(
                skb,
                header_len as u32,
                AEAD_TAG_LEN as u32,
                sg.as_mut_ptr().cast(),
                MAX_SG as u32,
            );
            if len < 0 {
                return false;
            }
            bindings::chacha20poly1305_decrypt_sg_inplace(
                sg.as_mut_ptr().cast(),
                len as usize,
                ptr::null(),
                0,
                nonce,
                key.as_ptr(),
            ) && bindings::wgrs_skb_trim_tail_keep_network(skb, AEAD_TAG_LEN as u32)
        }
    }

    /// The IP version and the total length the inner IP header claims
    /// (upstream's checks before delivery).
    pub(crate) fn inner_ip(&mut self) -> core::result::Result<(u8, usize), InnerIpError> {
        let mut len = 0u32;
        // SAFETY: the buffer is ours.
        match unsafe { bindings::wgrs_skb_inner_ip(self.as_ptr(), &mut len) } {
            v @ (4 | 6) => Ok((v as u8, len as usize)),
            0 => Err(InnerIpError::Type),
            _ => Err(InnerIpError::Size),
        }
    }

    /// Marks a decrypted packet for delivery on `dev`: protocol from the IP
    /// version, checksums verified (the AEAD covered them), ECN decapsulated
    /// from the outer DS field `outer_ds`.
    pub(crate) fn prepare_delivery(&mut self, dev: &super::netdev::NetDevice, outer_ds: u8) {
        // SAFETY: the buffer is ours and holds an IP header (`inner_ip`).
        unsafe { bindings::wgrs_skb_prepare_delivery(self.as_ptr(), dev.as_ptr(), outer_ds) }
    }
}

impl Drop for SkBuff {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own the buffer.
        unsafe { bindings::wgrs_kfree_skb(self.as_ptr()) };
    }
}

fn outer_endpoint(skb: *mut bindings::sk_buff) -> Option<(IpAddr, u16, IpAddr, i32)> {
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    let mut port = 0u16;
    let mut ifindex = 0i32;
    // SAFETY: the callers pass a live buffer received on a UDP socket (it has
    // IP and UDP headers); the outputs have room for IPv6 addresses.
    let family = unsafe {
        bindings::wgrs_skb_outer_endpoint(skb, src.as_mut_ptr(), &mut port, dst.as_mut_ptr(), &mut ifindex)
    };
    let addr = |a: [u8; 16]| match family {
        4 => Some(IpAddr::V4([a[0], a[1], a[2], a[3]])),
        6 => Some(IpAddr::V6(a)),
        _ => None,
    };
    Some((addr(src)?, port, addr(dst)?, ifindex))
}

/// Why a decrypted packet is not an IP packet we can deliver.
pub(crate) enum InnerIpError {
    /// Neither IPv4 nor IPv6 (or a truncated header).
    Type,
    /// Its header lies about its length.
    Size,
}

/// An owned chain of buffers linked through `next`, in order.
///
/// # Invariants
///
/// `head` is NULL or the first of a NULL-terminated chain of buffers we own.
pub(crate) struct SkbList {
    head: *mut bindings::sk_buff,
    _owns: PhantomData<SkBuff>,
}

// SAFETY: owned buffers may move between CPUs.
unsafe impl Send for SkbList {}

impl SkbList {
    pub(crate) const fn new() -> Self {
        SkbList { head: ptr::null_mut(), _owns: PhantomData }
    }

    /// # Safety
    ///
    /// `head` must be NULL or a chain of buffers the caller gives up.
    pub(super) unsafe fn from_raw(head: *mut bindings::sk_buff) -> Self {
        // INVARIANT: per the caller's contract.
        SkbList { head, _owns: PhantomData }
    }

    pub(super) fn into_raw(self) -> *mut bindings::sk_buff {
        core::mem::ManuallyDrop::new(self).head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Takes the first buffer off the chain.
    pub(crate) fn pop(&mut self) -> Option<SkBuff> {
        let first = NonNull::new(self.head)?;
        // SAFETY: `first` heads our chain; unlinking it makes it a lone
        // buffer we own.
        unsafe {
            self.head = *field::next(first.as_ptr());
            *field::next(first.as_ptr()) = ptr::null_mut();
            Some(SkBuff::from_raw(first))
        }
    }

    /// Runs `f` on each buffer, in order.
    pub(crate) fn for_each(&mut self, f: impl FnMut(SkbMut<'_>)) {
        // SAFETY: the chain is ours, and borrowed mutably for the walk.
        unsafe { for_each_in_chain(self.head, f) }
    }
}

/// Runs `f` on each buffer of the chain starting at `head`, in order.
///
/// # Safety
///
/// The chain must be live and only accessed by `f` meanwhile.
pub(super) unsafe fn for_each_in_chain(head: *mut bindings::sk_buff, mut f: impl FnMut(SkbMut<'_>)) {
    let mut next = head;
    while let Some(skb) = NonNull::new(next) {
        // SAFETY: `skb` is live; the handle cannot unlink it, so reading its
        // `next` first is enough to keep walking.
        unsafe {
            next = *field::next(skb.as_ptr());
            f(SkbMut::new(skb));
        }
    }
}

impl Drop for SkbList {
    fn drop(&mut self) {
        // SAFETY: the chain is ours.
        unsafe { bindings::wgrs_kfree_skb_list(self.head) };
    }
}

/// A queue of owned buffers with O(1) operations at both ends where the
/// data plane needs them (upstream's `sk_buff_head`, without its lock).
///
/// # Invariants
///
/// `list` is our chain; `tail` is its last buffer (NULL when empty); `len`
/// counts its buffers.
pub(crate) struct SkbQueue {
    list: SkbList,
    tail: *mut bindings::sk_buff,
    len: usize,
}

// SAFETY: owned buffers may move between CPUs.
unsafe impl Send for SkbQueue {}

impl SkbQueue {
    pub(crate) const fn new() -> Self {
        SkbQueue { list: SkbList::new(), tail: ptr::null_mut(), len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push_back(&mut self, skb: SkBuff) {
        let skb = skb.into_raw().as_ptr();
        // SAFETY: `skb` is ours and unlinked; `tail` is our last buffer.
        unsafe {
            if self.tail.is_null() {
                self.list.head = skb;
            } else {
                *field::next(self.tail) = skb;
            }
        }
        self.tail = skb;
        self.len += 1;
    }

    pub(crate) fn pop_front(&mut self) -> Option<SkBuff> {
        let skb = self.list.pop()?;
        self.len -= 1;
        if self.list.is_empty() {
            self.tail = ptr::null_mut();
        }
        Some(skb)
    }

    /// Moves all of `other` to our back.
    pub(crate) fn append(&mut self, other: &mut SkbQueue) {
        let SkbQueue { list, tail, len } = core::mem::replace(other, SkbQueue::new());
        if len == 0 {
            return;
        }
        let head = list.into_raw();
        // SAFETY: `head..=tail` is the chain we took over; `self.tail` is
        // our last buffer.
        unsafe {
            if self.tail.is_null() {
                self.list.head = head;
            } else {
                *field::next(self.tail) = head;
            }
        }
        self.tail = tail;
        self.len += len;
    }

    /// Moves all of `other` to our front.
    pub(crate) fn prepend(&mut self, other: &mut SkbQueue) {
        let mut other = core::mem::replace(other, SkbQueue::new());
        core::mem::swap(self, &mut other);
        self.append(&mut other);
    }

    /// The buffers, as a chain.
    pub(crate) fn into_list(self) -> SkbList {
        self.list
    }

    /// Runs `f` on each buffer, in order.
    pub(crate) fn for_each(&mut self, f: impl FnMut(SkbMut<'_>)) {
        self.list.for_each(f)
    }
}


impl SkbMut<'_> {
    /// Checks the outer IP and UDP headers of a datagram received on a UDP
    /// socket, and leaves the buffer holding exactly the UDP payload, its
    /// first 4 bytes linear. False for a malformed datagram.
    pub(crate) fn pull_udp_header(&mut self) -> bool {
        // SAFETY: the buffer is ours and came from a UDP socket.
        unsafe { bindings::wgrs_skb_pull_udp_header(self.as_ptr()) }
    }
}
