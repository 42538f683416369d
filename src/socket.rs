// SPDX-License-Identifier: GPL-2.0

//! The device's UDP sockets (upstream `socket.c`): one per address family,
//! on the same port, in the namespace the device was created in.

use crate::device::{Tunnel, SKB_HEADER_LEN};
use crate::kapi::netdev::IfName;
use crate::kapi::skb::{AddrDisplay, AddrStyle, IpAddr, SkBuff};
use crate::kapi::sync::Rtnl;
use crate::kapi::udp::{ipv6_enabled, Endpoint, Family, TunnelNet};
use crate::peer::{Peer, Sockaddr};
use kernel::{prelude::*, sync::atomic::Relaxed};

/// How often a random port is retried when IPv6 finds it taken.
const RANDOM_PORT_RETRIES: u32 = 100;

/// Binds IPv4 and (where enabled) IPv6 to `port`, replacing the sockets the
/// device had only once both are bound; 0 picks a free port that both
/// families get. Returns the bound port.
pub(crate) fn bind(net: &TunnelNet, dev: &IfName, rtnl: &Rtnl, port: u16) -> Result<u16> {
    let mut retries = 0;
    loop {
        let v4 = net.bind(rtnl, Family::V4, port).inspect_err(|_| {
            pr_err!("{}: Could not create IPv4 socket\n", dev);
        })?;
        let bound = v4.local_port();
        if !ipv6_enabled() {
            net.install(rtnl, Some(v4), None);
            return Ok(bound);
        }
        match net.bind(rtnl, Family::V6, bound) {
            Ok(v6) => {
                net.install(rtnl, Some(v4), Some(v6));
                return Ok(bound);
            }
            Err(err) if err == EADDRINUSE && port == 0 && retries < RANDOM_PORT_RETRIES => {
                retries += 1;
            }
            Err(err) => {
                pr_err!("{}: Could not create IPv6 socket\n", dev);
                return Err(err);
            }
        }
    }
}

/// Closes the sockets.
pub(crate) fn close(net: &TunnelNet, rtnl: &Rtnl) {
    net.install(rtnl, None, None);
}

/// Sends `skb` to `peer`'s endpoint through the device's socket, with outer
/// DS field `ds`, counting its bytes on success (upstream
/// `wg_socket_send_skb_to_peer`).
pub(crate) fn send_skb_to_peer(peer: &Peer, skb: SkBuff, ds: u8) -> Result {
    let len = skb.len();
    let tunnel = &peer.tunnel;
    // Not held while sending: the packet may come back through another
    // device of ours, or this one (nested tunnels, routing loops).
    let Some(original) = peer.endpoint.lock().route else {
        return Err(EAFNOSUPPORT);
    };
    let mut route = original;
    let sent = tunnel.link.tunnel_net().send(
        tunnel.netdev(),
        skb,
        &mut route,
        ds,
        tunnel.fwmark(),
        Some(&peer.dst_cache),
    );
    // Sending may have dropped a stale source address: keep that, unless
    // the endpoint changed meanwhile.
    if route != original {
        let mut endpoint = peer.endpoint.lock();
        if endpoint.route == Some(original) {
            endpoint.route = Some(route);
        }
    }
    if sent.is_ok() {
        peer.tx_bytes.fetch_add(len as u64, Relaxed);
    }
    sent
}

/// Sends a handshake message to `peer` (upstream
/// `wg_socket_send_buffer_to_peer`).
pub(crate) fn send_buffer_to_peer(peer: &Peer, buffer: &[u8], ds: u8) -> Result {
    send_skb_to_peer(peer, SkBuff::with_data(SKB_HEADER_LEN, buffer)?, ds)
}

/// Sends a message back to where `in_skb` came from, not through any peer
/// (upstream `wg_socket_send_buffer_as_reply_to_skb`: cookie replies).
pub(crate) fn send_buffer_as_reply_to_skb(tunnel: &Tunnel, in_skb: &SkBuff, buffer: &[u8]) -> Result {
    let mut endpoint = endpoint_from_skb(in_skb).ok_or(EINVAL)?;
    let skb = SkBuff::with_data(SKB_HEADER_LEN, buffer)?;
    tunnel.link.tunnel_net().send(tunnel.netdev(), skb, &mut endpoint, 0, tunnel.fwmark(), None)
}

/// Where a received packet came from, and the address it reached us at.
pub(crate) fn endpoint_from_skb(skb: &SkBuff) -> Option<Endpoint> {
    let (src, port, dst, ifindex) = skb.outer_endpoint()?;
    match (src, dst) {
        (IpAddr::V4(addr), IpAddr::V4(src)) => Some(Endpoint::V4 { addr, port, src, src_ifindex: ifindex }),
        (IpAddr::V6(addr), IpAddr::V6(src)) => {
            Some(Endpoint::V6 { addr, port, flowinfo: 0, scope_id: ifindex as u32, src })
        }
        _ => None,
    }
}

/// Roaming: makes `endpoint` the peer's (upstream
/// `wg_socket_set_peer_endpoint`).
pub(crate) fn set_peer_endpoint(peer: &Peer, endpoint: &Endpoint) {
    let mut current = peer.endpoint.lock();
    // Rarely changes: most calls stop here.
    if current.route.as_ref() == Some(endpoint) {
        return;
    }
    current.route = Some(*endpoint);
    current.sockaddr = Some(Sockaddr::from_endpoint(endpoint));
    drop(current);
    peer.dst_cache.reset();
}

/// Roaming: the endpoint `skb` came from becomes the peer's.
pub(crate) fn set_peer_endpoint_from_skb(peer: &Peer, skb: &SkBuff) {
    if let Some(endpoint) = endpoint_from_skb(skb) {
        set_peer_endpoint(peer, &endpoint);
    }
}

/// Forgets the peer's sticky source address, in case it is what is wrong.
pub(crate) fn clear_peer_endpoint_src(peer: &Peer) {
    if let Some(route) = peer.endpoint.lock().route.as_mut() {
        route.clear_source();
    }
    peer.dst_cache.reset();
}

/// Formats an endpoint for debug lines, as upstream's `%pISpfsc`.
pub(crate) struct EndpointDisplay(Option<Endpoint>);

impl EndpointDisplay {
    pub(crate) fn of(endpoint: &Endpoint) -> Self {
        EndpointDisplay(Some(*endpoint))
    }

    pub(crate) fn none() -> Self {
        EndpointDisplay(None)
    }
}

/// A peer's current endpoint, for debug lines.
pub(crate) fn endpoint_of(peer: &Peer) -> EndpointDisplay {
    EndpointDisplay(peer.endpoint.lock().route)
}

impl kernel::fmt::Display for EndpointDisplay {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        match self.0 {
            None => f.write_str("(none)"),
            Some(Endpoint::V4 { addr, port, .. }) => {
                AddrDisplay(Some(IpAddr::V4(addr)), AddrStyle::Compressed).write(f)?;
                write!(f, ":{port}")
            }
            Some(Endpoint::V6 { addr, port, scope_id, .. }) => {
                f.write_str("[")?;
                AddrDisplay(Some(IpAddr::V6(addr)), AddrStyle::Compressed).write(f)?;
                if scope_id != 0 {
                    write!(f, "%{scope_id}")?;
                }
                write!(f, "]:{port}")
            }
        }
    }
}
