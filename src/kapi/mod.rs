// SPDX-License-Identifier: GPL-2.0

//! Safe abstractions over the kernel C APIs that wireguard-rs uses.
//!
//! This is the only place in the crate with FFI and `unsafe`; the WireGuard
//! logic (the sibling modules of `kapi`) is written in safe Rust on top of
//! it. Each submodule wraps one kernel facility and documents the invariants
//! that make its safe interface sound.

pub(crate) mod bindings;
pub(crate) mod cpu;
pub(crate) mod crypto;
pub(crate) mod genl;
pub(crate) mod global;
pub(crate) mod kthread;
pub(crate) mod llist;
pub(crate) mod mm;
pub(crate) mod napi;
pub(crate) mod notifier;
pub(crate) mod netdev;
pub(crate) mod periodic;
pub(crate) mod queue;
pub(crate) mod random;
pub(crate) mod rcu;
pub(crate) mod rhashtable;
pub(crate) mod skb;
pub(crate) mod sync;
pub(crate) mod time;
pub(crate) mod timer;
pub(crate) mod uapi;
pub(crate) mod udp;
pub(crate) mod work;
