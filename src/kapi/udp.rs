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
use super::netdev::{Capability, Net};
use super::sync::{Rtnl, RtnlCell};
use core::{marker::PhantomData, ptr, ptr::NonNull};
use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Full},
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
/// Received datagrams are dropped for now: the data plane will receive them.
///
/// # Invariants
///
/// `sk` is a socket created by `wgrs_udp_tunnel_sock_create` that we own, in
/// a namespace that stays alive until it is dropped (see [`Self::bind`]).
struct UdpTunnelSocket {
    sk: NonNull<bindings::sock>,
}

impl UdpTunnelSocket {
    /// Binds to `port` (0: any free port) in `net`.
    ///
    /// # Safety
    ///
    /// `net` must be alive, and the socket must be dropped before `net` is
    /// dismantled: before the pernet exit of the owning link kind returns.
    unsafe fn bind(net: &Net, family: Family, port: u16) -> Result<Self> {
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
                Some(discard),
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
        // is alive; nothing else refers to it (no `sk_user_data` is set).
        unsafe { bindings::udp_tunnel_sock_release(self.sk.as_ptr()) };
    }
}

/// `encap_rcv` until the data plane exists: consume and drop.
unsafe extern "C" fn discard(_sk: *mut bindings::sock, skb: *mut bindings::sk_buff) -> kernel::ffi::c_int {
    // SAFETY: the UDP layer hands us ownership of `skb`.
    unsafe { bindings::wgrs_kfree_skb(skb) };
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
}

// SAFETY: `net` is only accessed under RTNL; the slots are atomic and the
// sockets they own may be released from any thread.
unsafe impl Send for TunnelNet {}
// SAFETY: as above.
unsafe impl Sync for TunnelNet {}

impl TunnelNet {
    /// # Safety
    ///
    /// `net` must be alive, and [`Self::detach`] must be called under RTNL
    /// before the link kind's pernet exit for `net` returns.
    pub(super) unsafe fn new(net: *mut bindings::net) -> Self {
        // INVARIANT: per the caller's contract; no sockets yet.
        TunnelNet { net: RtnlCell::new(net), v4: SocketSlot::empty(), v6: SocketSlot::empty() }
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
        let socket = unsafe { UdpTunnelSocket::bind(net, family, port)? };
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

impl Drop for TunnelNet {
    fn drop(&mut self) {
        // Empty once detached; this only guards the invariant's other side.
        drop(self.v4.replace(None));
        drop(self.v6.replace(None));
    }
}
