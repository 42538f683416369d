// SPDX-License-Identifier: GPL-2.0

//! UDP tunnel sockets (`net/udp_tunnel.h`): kernel sockets whose received
//! datagrams go to an encapsulation handler instead of a socket queue.
//!
//! A tunnel device binds its sockets in the namespace it was created in,
//! which may be another one than the device's own, and which may go away
//! while the device lives on. Kernel sockets do not keep their namespace
//! alive, so a socket must be closed before its namespace is dismantled.
//! [`TunnelNet`] makes that a property of the types rather than of the
//! driver: a socket exists either as a [`BoundSocket`], which cannot outlive
//! the RTNL section it was bound in (namespaces exit under RTNL), or inside
//! the device's [`TunnelNet`], which the link kind itself empties, under
//! RTNL, when the namespace exits or the device is uninitialised
//! (`kapi::netdev`).

use super::bindings;
use super::netdev::{Capability, Net, NetDevice};
use super::skb::SkBuff;
use super::sync::{Rtnl, RtnlCell};
use core::{marker::PhantomData, ptr, ptr::NonNull};
use kernel::{
    prelude::*,
    sync::atomic::{Acquire, Atomic, Full},
    types::Opaque,
};

/// An address family of a socket.
#[derive(Clone, Copy)]
pub(crate) enum Family {
    V4,
    V6,
}

/// Whether IPv6 is available (not disabled on the command line).
pub(crate) fn ipv6_enabled() -> bool {
    // SAFETY: no preconditions.
    unsafe { bindings::wgrs_ipv6_mod_enabled() }
}

/// An owned UDP tunnel socket on the wildcard address; released when dropped.
///
/// # Invariants
///
/// `sk` is a socket created by `wgrs_udp_tunnel_sock_create` that we own, in
/// a namespace that stays alive until it is dropped (see [`Self::bind`]).
struct UdpTunnelSocket {
    sk: NonNull<bindings::sock>,
}

impl UdpTunnelSocket {
    /// Binds to `port` (0: any free port) in `net`; datagrams go to
    /// `owner`'s receive hook.
    ///
    /// # Safety
    ///
    /// `net` must be alive, and the socket must be dropped before `net` is
    /// dismantled (before the pernet exit of the owning link kind returns)
    /// and before `owner` is.
    unsafe fn bind(net: &Net, owner: &TunnelNet, family: Family, port: u16) -> Result<Self> {
        let family = match family {
            Family::V4 => bindings::AF_INET,
            Family::V6 => bindings::AF_INET6,
        };
        let mut sk = ptr::null_mut();
        // SAFETY: `net` is live; on success `sk` is a socket we own.
        kernel::error::to_result(unsafe {
            bindings::wgrs_udp_tunnel_sock_create(
                net.as_ptr(),
                family as i32,
                port,
                Some(encap_receive),
                ptr::from_ref(owner).cast_mut().cast(),
                &mut sk,
            )
        })?;
        // INVARIANT: created and owned above; the caller keeps `net` alive.
        Ok(UdpTunnelSocket { sk: NonNull::new(sk).ok_or(EINVAL)? })
    }

    fn local_port(&self) -> u16 {
        // SAFETY: by the type invariant the socket is live.
        unsafe { bindings::wgrs_sock_local_port(self.sk.as_ptr()) }
    }

    fn into_raw(self) -> *mut bindings::sock {
        core::mem::ManuallyDrop::new(self).sk.as_ptr()
    }

    /// # Safety
    ///
    /// `sk` must come from [`Self::into_raw`], handed back exactly once.
    unsafe fn from_raw(sk: NonNull<bindings::sock>) -> Self {
        // INVARIANT: ownership comes back from `into_raw`.
        UdpTunnelSocket { sk }
    }
}

impl Drop for UdpTunnelSocket {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own the socket and its namespace
        // and owner are alive. Releasing it clears its user data; its
        // receivers ran under RCU, which the slot's `install` waited for.
        unsafe { bindings::udp_tunnel_sock_release(self.sk.as_ptr()) };
    }
}

/// `encap_rcv` of our sockets: hands the datagram to the owner's hook.
///
/// # Safety
///
/// Called by the UDP layer, in softirq, for a socket made by
/// `UdpTunnelSocket::bind`, whose user data is its owning `TunnelNet`.
unsafe extern "C" fn encap_receive(sk: *mut bindings::sock, skb: *mut bindings::sk_buff) -> kernel::ffi::c_int {
    let Some(skb) = NonNull::new(skb) else {
        return 0;
    };
    // SAFETY: the UDP layer gives us ownership of a live buffer. When it
    // parted a GSO packet at the socket, each datagram it hands us still
    // points to the next (`udp_queue_rcv_skb` walks them with
    // `skb_list_walk_safe`), so the buffer is unlinked before it may join
    // a chain of ours.
    let skb = unsafe {
        *super::skb::field::next(skb.as_ptr()) = ptr::null_mut();
        SkBuff::from_raw(skb)
    };
    // SAFETY: the user data is the `TunnelNet` that owns the socket, which
    // outlives it; it is cleared (and readers waited for) when the socket
    // is released, so NULL means it is going.
    let Some(owner) = NonNull::new(unsafe { bindings::wgrs_sk_user_data(sk) }) else {
        return 0;
    };
    // SAFETY: as above.
    let owner = unsafe { owner.cast::<TunnelNet>().as_ref() };
    // SAFETY: `receive` was given with the `TunnelNet`, for it.
    unsafe { (owner.receive)(owner, skb) };
    0
}

/// A socket just bound by [`TunnelNet::bind`], to be installed with
/// [`TunnelNet::install`] or dropped. It borrows the RTNL hold that keeps
/// its namespace alive, so it cannot outlive it.
pub(crate) struct BoundSocket<'r> {
    socket: UdpTunnelSocket,
    _rtnl: PhantomData<&'r Rtnl>,
}

impl BoundSocket<'_> {
    /// The port the socket is bound to.
    pub(crate) fn local_port(&self) -> u16 {
        self.socket.local_port()
    }
}

/// A socket slot: null or an owned socket, replaced under RTNL.
struct SocketSlot(Atomic<*mut bindings::sock>);

impl SocketSlot {
    const fn empty() -> Self {
        SocketSlot(Atomic::new(ptr::null_mut()))
    }

    /// Publishes `new`; returns the previous socket, which RCU readers may
    /// still be using.
    fn replace(&self, new: Option<UdpTunnelSocket>) -> Option<UdpTunnelSocket> {
        let new = new.map_or(ptr::null_mut(), UdpTunnelSocket::into_raw);
        // Full ordering includes the release that publishes `new`.
        let old = self.0.xchg(new, Full);
        // SAFETY: the slot owned `old` and hands it over.
        NonNull::new(old).map(|old| unsafe { UdpTunnelSocket::from_raw(old) })
    }
}

/// The namespace a tunnel device was created in, and the device's UDP
/// sockets there (upstream's `creating_net`, `sock4` and `sock6`).
///
/// # Invariants
///
/// `net` is null or a namespace that has not yet passed the link kind's
/// pernet exit: the kind clears it, and closes the sockets, under RTNL
/// before then (and when the device is uninitialised). The slots hold
/// sockets bound in `net`, and are empty while `net` is null.
pub(crate) struct TunnelNet {
    net: RtnlCell<*mut bindings::net>,
    v4: SocketSlot,
    v6: SocketSlot,
    /// Where datagrams go: the link kind's hook for the device.
    receive: ReceiveHook,
}

/// A link kind's receive hook: called in softirq with the `TunnelNet` the
/// socket belongs to.
pub(super) type ReceiveHook = unsafe fn(&TunnelNet, SkBuff);

// SAFETY: `net` is only accessed under RTNL; the slots are atomic and the
// sockets they own may be released from any thread.
unsafe impl Send for TunnelNet {}
// SAFETY: as above.
unsafe impl Sync for TunnelNet {}

impl TunnelNet {
    /// # Safety
    ///
    /// `net` must be alive, and [`Self::detach`] must be called under RTNL
    /// before the link kind's pernet exit for `net` returns. The
    /// `TunnelNet` must not move, and `receive` must be sound to call with
    /// it from softirq until it is detached.
    pub(super) unsafe fn new(net: *mut bindings::net, receive: ReceiveHook) -> Self {
        // INVARIANT: per the caller's contract; no sockets yet.
        TunnelNet {
            net: RtnlCell::new(net),
            v4: SocketSlot::empty(),
            v6: SocketSlot::empty(),
            receive,
        }
    }

    fn net<'r>(&self, rtnl: &'r Rtnl) -> Option<&'r Net> {
        let net = self.net.get(rtnl);
        // SAFETY: by the type invariant a non-null `net` is alive until it is
        // cleared, which happens under RTNL, held for `'r`.
        (!net.is_null()).then(|| unsafe { Net::from_raw(net) })
    }

    /// Whether `net` is the creating namespace.
    pub(super) fn is(&self, rtnl: &Rtnl, net: *mut bindings::net) -> bool {
        !net.is_null() && self.net.get(rtnl) == net
    }

    /// Whether the current task has `cap` over the user namespace owning the
    /// creating namespace (false once that namespace has exited).
    pub(crate) fn capable(&self, rtnl: &Rtnl, cap: Capability) -> bool {
        self.net(rtnl).is_some_and(|net| net.ns_capable(cap))
    }

    /// Binds a socket to `port` (0: any free port) in the creating namespace;
    /// `ENONET` once it has exited.
    pub(crate) fn bind<'r>(&self, rtnl: &'r Rtnl, family: Family, port: u16) -> Result<BoundSocket<'r>> {
        let net = self.net(rtnl).ok_or(ENONET)?;
        // SAFETY: `net` is alive while RTNL is held, and the socket either
        // stays a `BoundSocket` borrowing that hold or moves into `self`,
        // which is emptied before the namespace exits.
        let socket = unsafe { UdpTunnelSocket::bind(net, self, family, port)? };
        Ok(BoundSocket { socket, _rtnl: PhantomData })
    }

    /// Replaces the sockets with `v4` and `v6` (`None` closes them) and
    /// releases the old ones once no packet can be using them. May sleep.
    pub(crate) fn install(&self, _rtnl: &Rtnl, v4: Option<BoundSocket<'_>>, v6: Option<BoundSocket<'_>>) {
        // INVARIANT: bound sockets come from `bind`, which only succeeds
        // while `net` is set, in `net`.
        let old = [
            self.v4.replace(v4.map(|s| s.socket)),
            self.v6.replace(v6.map(|s| s.socket)),
        ];
        if old.iter().any(Option::is_some) {
            // SAFETY: process context, as every RTNL holder.
            unsafe { bindings::synchronize_net() };
        }
        drop(old);
    }

    /// Closes the sockets and forgets the namespace: it is exiting, or the
    /// device is being uninitialised.
    pub(super) fn detach(&self, rtnl: &Rtnl) {
        self.install(rtnl, None, None);
        // INVARIANT: the slots are empty and stay so (`bind` now fails).
        self.net.set(rtnl, ptr::null_mut());
    }
}

impl TunnelNet {
    /// Sends `skb` to `endpoint` through the socket of its family (upstream
    /// `send4`/`send6`): routes it (through `cache` when given) from the
    /// endpoint's source address, marked `mark`, with outer DS field `ds`.
    /// A source address that is no longer ours, or that routes elsewhere
    /// than its interface, is cleared in `endpoint` (the caller decides
    /// whether to keep that). `ENONET` without a socket.
    pub(crate) fn send(
        &self,
        dev: &NetDevice,
        skb: SkBuff,
        endpoint: &mut Endpoint,
        ds: u8,
        mark: u32,
        cache: Option<&DstCache>,
    ) -> Result {
        let cache = cache.map_or(ptr::null_mut(), |cache| cache.cache.get());
        let _bh = RcuBhGuard::new();
        let ret = match endpoint {
            Endpoint::V4 { addr, port, src, src_ifindex } => {
                let Some(sk) = NonNull::new(self.v4.0.load(Acquire)) else {
                    return Err(ENONET);
                };
                // SAFETY: the socket is alive while we are in an RCU-BH read
                // section (`install` waits for one before releasing it);
                // the buffer is given up; the addresses are valid for the
                // call; `cache` is NULL or a live cache.
                unsafe {
                    bindings::wgrs_udp_send4(
                        sk.as_ptr(),
                        skb.into_raw().as_ptr(),
                        dev.as_ptr(),
                        mark,
                        src.as_mut_ptr(),
                        src_ifindex,
                        addr.as_ptr(),
                        port.to_be(),
                        ds,
                        cache,
                    )
                }
            }
            Endpoint::V6 { addr, port, scope_id, src, .. } => {
                let Some(sk) = NonNull::new(self.v6.0.load(Acquire)) else {
                    return Err(ENONET);
                };
                // SAFETY: as above.
                unsafe {
                    bindings::wgrs_udp_send6(
                        sk.as_ptr(),
                        skb.into_raw().as_ptr(),
                        dev.as_ptr(),
                        mark,
                        src.as_mut_ptr(),
                        addr.as_ptr(),
                        port.to_be(),
                        *scope_id,
                        ds,
                        cache,
                    )
                }
            }
        };
        kernel::error::to_result(ret)
    }
}

/// `rcu_read_lock_bh()` until dropped.
struct RcuBhGuard(PhantomData<*mut ()>);

impl RcuBhGuard {
    fn new() -> Self {
        // SAFETY: no preconditions; paired with the unlock on drop, on this
        // thread (the guard is neither `Send` nor `Sync`).
        unsafe { bindings::wgrs_rcu_read_lock_bh() };
        RcuBhGuard(PhantomData)
    }
}

impl Drop for RcuBhGuard {
    fn drop(&mut self) {
        // SAFETY: locked in `new` on this thread.
        unsafe { bindings::wgrs_rcu_read_unlock_bh() };
    }
}

/// Where a peer is: its address and port, and the local source address
/// (and, for IPv4, interface) replies go out from (sticky source).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    V4 { addr: [u8; 4], port: u16, src: [u8; 4], src_ifindex: i32 },
    V6 { addr: [u8; 16], port: u16, flowinfo: u32, scope_id: u32, src: [u8; 16] },
}

impl Endpoint {
    /// Whether a source address was learned (or set) for replies.
    pub(crate) fn has_source(&self) -> bool {
        match self {
            Endpoint::V4 { src, .. } => *src != [0; 4],
            Endpoint::V6 { src, .. } => *src != [0; 16],
        }
    }

    /// Forgets the source address (and interface).
    pub(crate) fn clear_source(&mut self) {
        match self {
            Endpoint::V4 { src, src_ifindex, .. } => {
                *src = [0; 4];
                *src_ifindex = 0;
            }
            Endpoint::V6 { src, .. } => *src = [0; 16],
        }
    }
}

/// A per-CPU cache of the route to one destination (`struct dst_cache`).
#[pin_data(PinnedDrop)]
pub(crate) struct DstCache {
    #[pin]
    cache: Opaque<bindings::dst_cache>,
}

// SAFETY: the cache is per-CPU inside, made for concurrent use.
unsafe impl Send for DstCache {}
// SAFETY: as above.
unsafe impl Sync for DstCache {}

impl DstCache {
    /// An empty cache (`GFP_KERNEL`).
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        // SAFETY: initialised in place, or left untouched on failure.
        unsafe {
            pin_init::pin_init_from_closure(|slot: *mut Self| {
                kernel::error::to_result(bindings::dst_cache_init(slot.cast(), bindings::WGRS_GFP_KERNEL))
            })
        }
    }

    /// Forgets the cached routes, now (`dst_cache_reset_now`).
    pub(crate) fn reset(&self) {
        // SAFETY: initialised; safe from any context.
        unsafe { bindings::dst_cache_reset_now(self.cache.get()) }
    }
}

#[pinned_drop]
impl PinnedDrop for DstCache {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { bindings::dst_cache_destroy(self.cache.get()) }
    }
}

impl Drop for TunnelNet {
    fn drop(&mut self) {
        // Empty once detached; this only guards the invariant's other side.
        drop(self.v4.replace(None));
        drop(self.v6.replace(None));
    }
}
