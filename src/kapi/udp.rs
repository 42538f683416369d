// SPDX-License-Identifier: GPL-2.0

//! UDP tunnel sockets (`net/udp_tunnel.h`): kernel sockets whose received
//! datagrams go to an encapsulation handler instead of a socket queue.

use super::bindings;
use super::netdev::Net;
use super::sync::Rtnl;
use core::ptr::NonNull;
use kernel::prelude::*;

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

/// A UDP tunnel socket bound to the wildcard address; released when dropped.
///
/// Received datagrams are dropped for now: the data plane will receive them.
///
/// # Invariants
///
/// `sk` is a socket created by `wgrs_udp_tunnel_sock_create` that we own.
pub(crate) struct UdpTunnelSocket {
    sk: NonNull<bindings::sock>,
}

// SAFETY: a kernel socket may be used and released from any thread.
unsafe impl Send for UdpTunnelSocket {}
// SAFETY: the methods taking `&self` only read immutable socket state.
unsafe impl Sync for UdpTunnelSocket {}

impl UdpTunnelSocket {
    /// Binds to `port` (0: any free port) in `net`. RTNL keeps `net` alive.
    pub(crate) fn bind(net: &Net, _rtnl: &Rtnl, family: Family, port: u16) -> Result<Self> {
        let family = match family {
            Family::V4 => bindings::AF_INET,
            Family::V6 => bindings::AF_INET6,
        };
        let mut sk = core::ptr::null_mut();
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
        // INVARIANT: created and owned above.
        Ok(UdpTunnelSocket { sk: NonNull::new(sk).ok_or(EINVAL)? })
    }

    /// The port the socket is bound to.
    pub(crate) fn local_port(&self) -> u16 {
        // SAFETY: by the type invariant the socket is live.
        unsafe { bindings::wgrs_sock_local_port(self.sk.as_ptr()) }
    }
}

impl Drop for UdpTunnelSocket {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own the socket; nothing else
        // refers to it (no `sk_user_data` is set).
        unsafe { bindings::udp_tunnel_sock_release(self.sk.as_ptr()) };
    }
}

/// `encap_rcv` until the data plane exists: consume and drop.
unsafe extern "C" fn discard(_sk: *mut bindings::sock, skb: *mut bindings::sk_buff) -> kernel::ffi::c_int {
    // SAFETY: the UDP layer hands us ownership of `skb`.
    unsafe { bindings::wgrs_kfree_skb(skb) };
    0
}
