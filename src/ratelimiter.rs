// SPDX-License-Identifier: GPL-2.0

//! The handshake ratelimiter (upstream `ratelimiter.c`).
//!
//! Under load, a handshake message with a valid cookie is processed only if
//! its source has tokens left: `PACKETS_PER_SECOND` per second with a burst
//! of `PACKETS_BURSTABLE`, per IPv4 address or IPv6 /64, per network
//! namespace. One table serves all devices: it is created with the first
//! device and destroyed with the last ([`Ratelimiter::get`], a
//! `kapi::global`), and sized as upstream from the RAM (as xt_hashlimit
//! does): 16 to 8192 buckets per family, and at most 8 entries per bucket
//! in total, beyond which new sources are refused.
//!
//! Lookups walk an RCU chain of entries, each with a spinlock for its token
//! bucket; insertions and the garbage collector, which drops entries idle
//! for a second every second, hold the table lock. Chains are linked with
//! [`RcuPtr`] slots: an unlinked entry keeps its link to the next one, so a
//! reader standing on it finds its way back, and links always point from
//! newer to older entries, so no cycle can keep entries alive. Called from
//! the handshake workers and the collector only (process context).

use crate::cookie::SourceAddr;
use crate::kapi::{
    crypto::HsiphashKey,
    global::{Global, GlobalRef},
    mm,
    periodic::{Periodic, Tick},
    rcu::{self, AtomicDrop, RcuArc, RcuPtr},
    time::{self, HZ, NSEC_PER_SEC},
};
use kernel::{
    alloc::KVVec,
    new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, SpinLock,
    },
};

pub(crate) const PACKETS_PER_SECOND: u64 = 20;
pub(crate) const PACKETS_BURSTABLE: u64 = 5;
const PACKET_COST: u64 = NSEC_PER_SEC / PACKETS_PER_SECOND;
const TOKEN_MAX: u64 = PACKET_COST * PACKETS_BURSTABLE;

/// The instance all devices share.
static RATELIMITER: Global<Ratelimiter> = Global::new();

/// A token bucket.
struct Bucket {
    last_time_ns: u64,
    tokens: u64,
}

/// One source.
#[pin_data]
struct Entry {
    /// The IPv4 address, or the first 64 bits of the IPv6 one.
    ip: u64,
    net: u64,
    #[pin]
    bucket: SpinLock<Bucket>,
    next: RcuPtr<Entry>,
}

// Its lock has no drop glue, and its link drops an `RcuArc`: freed in the
// RCU callback, as upstream frees its entries.
impl AtomicDrop for Entry {}

impl Entry {
    /// The entry of `ip` in `net` on the chain from `bucket`.
    fn find<'g>(bucket: &RcuPtr<Entry>, guard: &'g rcu::Guard, net: u64, ip: u64) -> Option<&'g Entry> {
        let mut entry = bucket.get(guard)?;
        while entry.net != net || entry.ip != ip {
            entry = entry.next.get(guard)?;
        }
        Some(entry)
    }

    /// Takes a token if there is one. Like nft_limit, but with the burst in
    /// the bucket's size rather than in the rate.
    fn take_token(&self) -> bool {
        let mut b = self.bucket.lock();
        let now = time::coarse_boottime_ns();
        let tokens = b.tokens.saturating_add(now.saturating_sub(b.last_time_ns)).min(TOKEN_MAX);
        b.last_time_ns = now;
        let allowed = tokens >= PACKET_COST;
        b.tokens = if allowed { tokens - PACKET_COST } else { tokens };
        allowed
    }
}

/// The tables; the garbage collector ticks on them.
#[pin_data]
struct Table {
    key: HsiphashKey,
    v4: KVVec<RcuPtr<Entry>>,
    v6: KVVec<RcuPtr<Entry>>,
    /// Buckets per family: a power of two.
    size: usize,
    max_entries: u32,
    total_entries: Atomic<u32>,
    /// Serialises insertions and removals.
    #[pin]
    lock: SpinLock<()>,
}

/// The ratelimiter.
#[pin_data]
pub(crate) struct Ratelimiter {
    #[pin]
    gc: Periodic<Table>,
}

/// Buckets per family, from the RAM, as xt_hashlimit sizes its table and
/// upstream borrows: 8192 above 1 GiB, else one 8-byte list head per 16 KiB,
/// at least 16.
pub(crate) fn buckets_for_ram() -> usize {
    let ram = mm::total_ram_bytes();
    if ram > 1 << 30 {
        8192
    } else {
        usize::try_from(ram / (1 << 14) / 8).unwrap_or(8192).next_power_of_two().clamp(16, 8192)
    }
}

fn empty_buckets(size: usize) -> Result<KVVec<RcuPtr<Entry>>> {
    let mut v = KVVec::with_capacity(size, GFP_KERNEL)?;
    for _ in 0..size {
        v.push(RcuPtr::null(), GFP_KERNEL)?;
    }
    Ok(v)
}

impl Ratelimiter {
    /// A reference to the shared ratelimiter, created (and its collector
    /// started) if there is none. May sleep.
    pub(crate) fn get() -> Result<GlobalRef<Ratelimiter>> {
        RATELIMITER.get(|| {
            let ratelimiter = Arc::pin_init(Ratelimiter::new(buckets_for_ram())?, GFP_KERNEL)?;
            ratelimiter.gc.start();
            Ok(ratelimiter)
        })
    }

    /// How many devices share the ratelimiter (for self-tests).
    pub(crate) fn users() -> usize {
        RATELIMITER.users()
    }

    /// An instance of its own with `buckets` buckets per family (a power
    /// of two), whose collector does not run: for self-tests.
    pub(crate) fn new_unshared(buckets: usize) -> Result<Arc<Ratelimiter>> {
        Arc::pin_init(Ratelimiter::new(buckets)?, GFP_KERNEL)
    }

    fn new(size: usize) -> Result<impl PinInit<Self, Error>> {
        if !size.is_power_of_two() {
            return Err(EINVAL);
        }
        let (v4, v6) = (empty_buckets(size)?, empty_buckets(size)?);
        let max_entries = (size * 8) as u32;
        Ok(try_pin_init!(Ratelimiter {
            gc <- Periodic::new(
                try_pin_init!(Table {
                    key: HsiphashKey::random(),
                    v4,
                    v6,
                    size,
                    max_entries,
                    total_entries: Atomic::new(0),
                    lock <- new_spinlock!(()),
                }? Error),
                HZ,
            ),
        }? Error))
    }

    /// Whether a handshake message from `src` in namespace `net` may be
    /// processed: takes a token from its bucket, or makes one for a new
    /// source (false when the table is full). `net` is any value that
    /// tells namespaces apart (the `struct net` address, as upstream, or
    /// its cookie); its low 32 bits are hashed. Process context.
    pub(crate) fn allow(&self, src: &SourceAddr, net: u64) -> bool {
        self.gc.data().allow(src, net)
    }

    /// Drops the entries idle for more than a second, or all of them.
    pub(crate) fn gc(&self, all: bool) {
        self.gc.data().gc(all);
    }

    /// The number of sources tracked, and the most there may be.
    pub(crate) fn entries(&self) -> (u32, u32) {
        let table = self.gc.data();
        (table.total_entries.load(Relaxed), table.max_entries)
    }
}

impl Table {
    fn allow(&self, src: &SourceAddr, net: u64) -> bool {
        let net_word = net as u32;
        let (buckets, ip, hash) = match src {
            SourceAddr::V4 { addr, .. } => {
                let ip = u32::from_ne_bytes(*addr);
                (&self.v4, u64::from(ip), self.key.hash_2u32(net_word, ip))
            }
            SourceAddr::V6 { addr, .. } => {
                // The /64.
                let Some(prefix) = addr.first_chunk::<8>() else {
                    return false;
                };
                let ip = u64::from_ne_bytes(*prefix);
                (&self.v6, ip, self.key.hash_3u32(net_word, (ip >> 32) as u32, ip as u32))
            }
        };
        let Some(bucket) = buckets.get(hash as usize & (self.size - 1)) else {
            return false;
        };

        {
            let guard = rcu::read_lock();
            if let Some(entry) = Entry::find(bucket, &guard, net, ip) {
                return entry.take_token();
            }
        }

        if self.total_entries.fetch_add(1, Relaxed) >= self.max_entries {
            self.total_entries.fetch_sub(1, Relaxed);
            return false;
        }
        let entry = RcuArc::pin_init_atomic(
            try_pin_init!(Entry {
                ip,
                net,
                bucket <- new_spinlock!(Bucket {
                    last_time_ns: time::coarse_boottime_ns(),
                    tokens: TOKEN_MAX - PACKET_COST,
                }),
                next: RcuPtr::null(),
            }? Error),
            GFP_KERNEL,
        );
        let Ok(entry) = entry else {
            self.total_entries.fetch_sub(1, Relaxed);
            return false;
        };
        let _lock = self.lock.lock();
        let guard = rcu::read_lock();
        // Another worker may have added the source since our lookup: one
        // bucket per source, or each would start with a burst of its own
        // (upstream's does).
        if let Some(existing) = Entry::find(bucket, &guard, net, ip) {
            self.total_entries.fetch_sub(1, Relaxed);
            return existing.take_token();
        }
        // Not yet visible: link it in front of the chain, then publish it.
        drop(entry.next.replace(bucket.get_arc(&guard)));
        drop(bucket.replace(Some(entry)));
        true
    }

    fn gc(&self, all: bool) {
        let now = time::coarse_boottime_ns();
        for bucket in Iterator::chain(self.v4.iter(), self.v6.iter()) {
            let _lock = self.lock.lock();
            let guard = rcu::read_lock();
            let mut slot = bucket;
            while let Some(entry) = slot.get(&guard) {
                // An entry used since `now` was read is not idle (upstream's
                // unsigned difference wraps there and drops it, handing its
                // source a fresh burst while it is being limited).
                let idle = now.saturating_sub(entry.bucket.lock().last_time_ns) > NSEC_PER_SEC;
                if all || idle {
                    // Readers on `entry` still find the rest of the chain.
                    drop(slot.replace(entry.next.get_arc(&guard)));
                    self.total_entries.fetch_sub(1, Relaxed);
                } else {
                    slot = &entry.next;
                }
            }
        }
    }
}

impl Tick for Table {
    fn tick(&self) {
        self.gc(false);
    }
}
