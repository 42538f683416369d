// SPDX-License-Identifier: GPL-2.0

//! The device's UDP sockets (upstream `socket.c`): one per address family,
//! on the same port, in the namespace the device was created in.

use crate::kapi::netdev::IfName;
use crate::kapi::sync::Rtnl;
use crate::kapi::udp::{ipv6_enabled, Family, TunnelNet};
use kernel::prelude::*;

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
