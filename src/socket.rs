// SPDX-License-Identifier: GPL-2.0

//! The device's UDP sockets (upstream `socket.c`): one per address family,
//! on the same port, in the namespace the device was created in.

use crate::kapi::netdev::{IfName, Net};
use crate::kapi::sync::Rtnl;
use crate::kapi::udp::{ipv6_enabled, Family, UdpTunnelSocket};
use kernel::prelude::*;

/// How often a random port is retried when IPv6 finds it taken.
const RANDOM_PORT_RETRIES: u32 = 100;

/// The bound sockets; empty while the device is down.
pub(crate) struct Sockets {
    v4: Option<UdpTunnelSocket>,
    /// Held for its binding; the data plane will send through it.
    _v6: Option<UdpTunnelSocket>,
}

impl Sockets {
    pub(crate) const fn none() -> Self {
        Sockets { v4: None, _v6: None }
    }

    /// Binds IPv4 and (where enabled) IPv6 to `port`; 0 picks a free port
    /// that both families get.
    pub(crate) fn bind(dev: &IfName, net: &Net, rtnl: &Rtnl, port: u16) -> Result<Sockets> {
        let mut retries = 0;
        loop {
            let v4 = UdpTunnelSocket::bind(net, rtnl, Family::V4, port).inspect_err(|_| {
                pr_err!("{}: Could not create IPv4 socket\n", dev);
            })?;
            if !ipv6_enabled() {
                return Ok(Sockets { v4: Some(v4), _v6: None });
            }
            match UdpTunnelSocket::bind(net, rtnl, Family::V6, v4.local_port()) {
                Ok(v6) => return Ok(Sockets { v4: Some(v4), _v6: Some(v6) }),
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

    /// The bound port, if any.
    pub(crate) fn port(&self) -> Option<u16> {
        self.v4.as_ref().map(UdpTunnelSocket::local_port)
    }
}
