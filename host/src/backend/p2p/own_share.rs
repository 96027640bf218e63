//! What this node hands a DHT peer that connects while the network is
//! small (a routing table of at most K peers, so every peer is among the
//! closest to every key): its own records, the latest published first, as
//! many as a peer keeps from one sender. Kad sends stored records on only
//! hourly, so a node that started alone, or a peer that restarted with an
//! empty store, went without them for that long, and a package vanished
//! from the network with its publisher.

use libp2p::kad::store::{MemoryStore, RecordStore};
use libp2p::kad::{K_VALUE, Record};

use super::held_keys::OwnKeys;
use super::record;
use super::remote_keys::PER_PEER;

/// Whether a routing table of `peers` is small enough that a new peer is
/// among the closest to every key.
pub fn small_network(peers: usize) -> bool {
    peers <= K_VALUE.get()
}

/// This node's own records for a peer: the latest published first, at most
/// [`PER_PEER`] (a peer keeps no more from one sender).
pub fn newest_own(own: &OwnKeys, store: &MemoryStore) -> Vec<Record> {
    let mut records: Vec<_> = (own.keys())
        .filter_map(|key| store.get(key))
        .filter_map(|r| Some((record::decode(&r.value).ok()?.published(), r.into_owned())))
        .collect();
    // Stable: the undated keep the order they were announced in.
    records.sort_by(|(a, _), (b, _)| b.cmp(a));
    records.truncate(PER_PEER);
    records.into_iter().map(|(_, r)| r).collect()
}
