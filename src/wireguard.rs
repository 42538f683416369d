// SPDX-License-Identifier: GPL-2.0

//! wireguard-rs: the WireGuard secure network tunnel, in Rust.
//!
//! A drop-in for the kernel's `drivers/net/wireguard`: the same link kind,
//! generic netlink family, wire format and behaviour, so that `ip` and `wg`
//! drive it unchanged. One module per concern, as upstream:
//!
//! - [`device`]: the net_device and its rtnl link kind;
//! - [`netlink`]: the "wireguard" generic netlink family;
//! - [`noise`]: the Noise_IKpsk2 handshake, keypairs and the replay window;
//! - [`cookie`]: mac1, mac2 and cookie replies;
//! - [`ratelimiter`]: the handshake ratelimiter shared by all devices;
//! - [`peerlookup`]: the index and public-key tables;
//! - [`peer`]: peers, by public key and in creation order;
//! - [`socket`]: the UDP sockets;
//! - [`allowedips`]: the allowed-IPs trie, which maps addresses to peers;
//! - [`messages`]: the wire format and protocol constants;
//! - [`selftest`]: in-kernel self-tests, run at load with `run_selftests=1`.
//!
//! All FFI and `unsafe` code lives in [`kapi`]; the rest is safe Rust.

mod kapi;

#[deny(unsafe_code)]
mod allowedips;
#[deny(unsafe_code)]
mod cookie;
#[deny(unsafe_code)]
mod device;
#[deny(unsafe_code)]
mod messages;
#[deny(unsafe_code)]
mod netlink;
#[deny(unsafe_code)]
mod noise;
#[deny(unsafe_code)]
mod peer;
#[deny(unsafe_code)]
mod peerlookup;
#[deny(unsafe_code)]
mod queueing;
#[deny(unsafe_code)]
mod ratelimiter;
#[deny(unsafe_code)]
mod receive;
#[deny(unsafe_code)]
mod selftest;
#[deny(unsafe_code)]
mod send;
#[deny(unsafe_code)]
mod socket;
#[deny(unsafe_code)]
mod timers;

use kernel::prelude::*;

/// Upstream's `WIREGUARD_VERSION`, whose protocol and interface we implement.
const WIREGUARD_VERSION: &str = "1.0.0";

/// Whether the debug lines are printed: on a kernel built with
/// `CONFIG_WIREGUARD_DEBUG`, as upstream's, or when loaded with `debug=1`
/// (upstream's lines can also be turned on through dynamic debug, which
/// Rust's printing lacks).
fn debug_enabled() -> bool {
    cfg!(CONFIG_WIREGUARD_DEBUG) || module_parameters::debug.value()
}

/// Prints at `KERN_DEBUG` when [`debug_enabled`] (upstream's `pr_debug`).
/// The kselftest pairs these lines up.
macro_rules! wg_debug {
    ($($arg:tt)*) => {
        if $crate::debug_enabled() {
            ::kernel::print_macro!(::kernel::print::format_strings::DEBUG, false, $($arg)*)
        }
    };
}
pub(crate) use wg_debug;

/// [`wg_debug!`], rate limited with the rest of the networking stack's
/// messages (upstream's `net_dbg_ratelimited`): for per-packet lines. Off,
/// it costs no ratelimit check, as upstream's.
macro_rules! wg_debug_ratelimited {
    ($($arg:tt)*) => {
        // Checked first, so that no line costs a ratelimit check when off.
        if $crate::debug_enabled() && $crate::kapi::netdev::net_ratelimit() {
            $crate::wg_debug!($($arg)*)
        }
    };
}
pub(crate) use wg_debug_ratelimited;

module! {
    type: WireGuard,
    name: "wireguard_rs",
    authors: ["wireguard-rs developers"],
    description: "WireGuard secure network tunnel, in Rust",
    license: "GPL",
    alias: ["rtnl-link-wireguard", "net-pf-16-proto-16-family-wireguard"],
    params: {
        run_selftests: bool {
            default: false,
            description: "Run the self-tests at load",
        },
        debug: bool {
            default: false,
            description: "Print the debug lines even without CONFIG_WIREGUARD_DEBUG",
        },
    },
}

struct WireGuard {
    // Dropped in declaration order: the family goes first, so that no
    // netlink request can reach a device while the link kind goes away.
    _genl: kapi::genl::FamilyRegistration,
    // Before the link kind: their handlers walk its devices.
    _suspend: kapi::notifier::NotifierRegistration<device::SuspendHandler>,
    _vmfork: kapi::notifier::NotifierRegistration<device::VmForkHandler>,
    _link: kapi::netdev::LinkRegistration<device::Device>,
    // Last: waits for the RCU callbacks of everything the above freed.
    _rcu: kapi::rcu::Barrier,
}

impl kernel::Module for WireGuard {
    fn init(module: &'static ThisModule) -> Result<Self> {
        // Dropped on every return, so that no RCU callback outlives the module.
        let rcu = kapi::rcu::Barrier::new();
        if module_parameters::run_selftests.value() && !selftest::run() {
            return Err(ENOTRECOVERABLE);
        }
        let link = device::LINK_KIND.register()?;
        let suspend = device::SUSPEND_NOTIFIER.register()?;
        let vmfork = device::VMFORK_NOTIFIER.register()?;
        let genl = netlink::FAMILY.register(module)?;
        pr_info!(
            "WireGuard {} loaded (wireguard-rs). See www.wireguard.com for information.\n",
            WIREGUARD_VERSION
        );
        pr_info!("Copyright (C) 2026 wireguard-rs developers. All Rights Reserved.\n");
        Ok(WireGuard { _genl: genl, _suspend: suspend, _vmfork: vmfork, _link: link, _rcu: rcu })
    }
}
