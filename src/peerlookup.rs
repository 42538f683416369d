// SPDX-License-Identifier: GPL-2.0

//! Finding peers and sessions from what packets carry (upstream
//! `peerlookup.c`).
//!
//! - [`IndexTable`]: a receiver index (32 bits, random, unique per table) to
//!   the handshake or keypair that owns it. Data packets look their keypair
//!   up from softirq; responses and cookie replies find the handshake's
//!   peer from a worker.
//! - [`PubkeyTable`]: a static public key to its peer, for consuming
//!   initiations in a worker without the device's config lock.
//!
//! Both are `rhashtable`s (see `kapi::rhashtable`): lookups are lock-free
//! under RCU in any context, writers lock one bucket (any context), and the
//! tables resize themselves, so that a device with 2^20 peers (three
//! keypairs and a handshake each) keeps short chains while an idle device
//! costs a few buckets (upstream's fixed 2^13 and 2^11 buckets degrade into
//! long chains at that scale). Every operation concerns one entry, so
//! removing a peer costs its own entries only.
//!
//! Entries hold counted references (to the peer, or to the keypair, which
//! holds its peer), so that what a lookup returns can be kept beyond the
//! critical section. The tables are part of the device and their entries
//! point to peers, which point to the device: the owner of a peer removes
//! its entries (public key, handshake, keypairs) when it removes the peer.
//!
//! Removals name the entry they mean (its peer or keypair), so that an index
//! freed and taken again meanwhile is never removed by mistake.

use crate::kapi::{
    rcu::{self, AtomicDrop, Guard, RcuArc},
    rhashtable::RhashTable,
};
use crate::messages::NOISE_PUBLIC_KEY_LEN;
use crate::noise::{Keypair, NoisePeer};
use kernel::prelude::*;

/// What an index names (upstream `index_hashtable_type`).
pub(crate) enum IndexEntry<P: NoisePeer> {
    /// A handshake in progress: its peer.
    Handshake(RcuArc<P>),
    Keypair(RcuArc<Keypair<P>>),
}

// Either variant drops an `RcuArc`.
impl<P: NoisePeer> AtomicDrop for IndexEntry<P> {}

impl<P: NoisePeer> IndexEntry<P> {
    pub(crate) fn peer(&self) -> &RcuArc<P> {
        match self {
            IndexEntry::Handshake(peer) => peer,
            IndexEntry::Keypair(keypair) => keypair.peer(),
        }
    }

    fn is_handshake_of(&self, peer: &P) -> bool {
        matches!(self, IndexEntry::Handshake(p) if RcuArc::is(p, peer))
    }

    fn is_keypair(&self, keypair: &Keypair<P>) -> bool {
        matches!(self, IndexEntry::Keypair(k) if RcuArc::is(k, keypair))
    }
}

/// Local index to handshake or keypair.
#[pin_data]
pub(crate) struct IndexTable<P: NoisePeer> {
    #[pin]
    table: RhashTable<u32, IndexEntry<P>>,
}

impl<P: NoisePeer> IndexTable<P> {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(IndexTable { table <- RhashTable::new() })
    }

    /// Gives `peer`'s handshake a new index: the first one from `pick` that
    /// is free. Process context (allocates with `GFP_KERNEL`).
    pub(crate) fn insert_handshake(&self, peer: &RcuArc<P>, pick: impl FnMut() -> u32) -> Result<u32> {
        self.table.insert_unique(pick, IndexEntry::Handshake(peer.clone()), GFP_KERNEL)
    }

    /// Hands `peer`'s handshake index over to `keypair` (the session it
    /// derived); false if the handshake does not hold it. Readers find one
    /// or the other. Process context.
    pub(crate) fn replace_with_keypair(&self, index: u32, peer: &P, keypair: &RcuArc<Keypair<P>>) -> Result<bool> {
        self.table.replace_if(
            &index,
            |entry| entry.is_handshake_of(peer),
            IndexEntry::Keypair(keypair.clone()),
            GFP_KERNEL,
        )
    }

    /// Removes `peer`'s handshake from `index`, if it is there. Any context.
    pub(crate) fn remove_handshake(&self, index: u32, peer: &P) -> bool {
        self.table.remove_if(&index, |entry| entry.is_handshake_of(peer))
    }

    /// Removes `keypair` from its index, if it is there. Any context.
    pub(crate) fn remove_keypair(&self, keypair: &Keypair<P>) -> bool {
        self.table.remove_if(&keypair.local_index(), |entry| entry.is_keypair(keypair))
    }

    /// What `index` names. Any context.
    pub(crate) fn lookup<'g>(&self, index: u32, guard: &'g Guard) -> Option<&'g IndexEntry<P>> {
        self.table.get(&index, guard)
    }

    /// The keypair `index` names (a data packet's receiver index); clone the
    /// result to keep it, and its peer, beyond the critical section. Any
    /// context.
    pub(crate) fn lookup_keypair<'g>(&self, index: u32, guard: &'g Guard) -> Option<&'g RcuArc<Keypair<P>>> {
        match self.lookup(index, guard)? {
            IndexEntry::Keypair(keypair) => Some(keypair),
            IndexEntry::Handshake(_) => None,
        }
    }

    /// The peer whose handshake `index` names (a response's receiver index).
    pub(crate) fn lookup_handshake(&self, index: u32) -> Option<RcuArc<P>> {
        match self.lookup(index, &rcu::read_lock())? {
            IndexEntry::Handshake(peer) => Some(peer.clone()),
            IndexEntry::Keypair(_) => None,
        }
    }

    /// The peer whose handshake or keypair `index` names (a cookie reply's
    /// receiver index).
    pub(crate) fn lookup_peer(&self, index: u32) -> Option<RcuArc<P>> {
        Some(self.lookup(index, &rcu::read_lock())?.peer().clone())
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// Static public key to peer.
#[pin_data]
pub(crate) struct PubkeyTable<P: NoisePeer> {
    #[pin]
    table: RhashTable<[u8; NOISE_PUBLIC_KEY_LEN], RcuArc<P>>,
}

impl<P: NoisePeer> PubkeyTable<P> {
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(PubkeyTable { table <- RhashTable::new() })
    }

    /// Adds `peer` under its public key; `EEXIST` if another peer has it.
    /// Process context.
    pub(crate) fn insert(&self, peer: &RcuArc<P>) -> Result {
        let key = *peer.noise().remote_static();
        Ok(self.table.insert(key, peer.clone(), GFP_KERNEL)?)
    }

    /// Removes `peer`, if it is there. Any context.
    pub(crate) fn remove(&self, peer: &P) -> bool {
        self.table.remove_if(peer.noise().remote_static(), |p| RcuArc::is(p, peer))
    }

    /// The peer with public key `key`. Any context.
    pub(crate) fn lookup(&self, key: &[u8; NOISE_PUBLIC_KEY_LEN]) -> Option<RcuArc<P>> {
        self.table.get(key, &rcu::read_lock()).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}
