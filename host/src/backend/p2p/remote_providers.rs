//! Other peers' provider records, kept within bounds. kad's store caps the
//! keys it holds, this node's own included: filled by others (one peer
//! announcing random keys, or a small network with many tarballs), it
//! would refuse this node's own `start_providing`. So others get at most
//! [`REMOTE_KEYS`] keys, [`KEYS_PER_PEER`] of them each, and the store room
//! for [`LOCAL_KEYS`] more.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use libp2p::kad::store::{MemoryStore, RecordStore};
use libp2p::kad::{ProviderRecord, RecordKey};

/// Keys other peers may have this node hold provider records for.
pub const REMOTE_KEYS: usize = 8_192;
/// Of those, the keys one peer may introduce.
pub const KEYS_PER_PEER: usize = 512;
/// Room kept for this node's own provider records.
pub const LOCAL_KEYS: usize = 8_192;

#[derive(Default)]
pub struct RemoteProviders {
    /// Each key held for others, with the peer that brought it.
    keys: HashMap<RecordKey, PeerId>,
}

impl RemoteProviders {
    /// Store `record` (kad checked that its provider is the sender) unless
    /// that would pass a bound; whether it was stored.
    pub fn add(&mut self, store: &mut MemoryStore, record: ProviderRecord) -> bool {
        if !self.keys.contains_key(&record.key) && !self.has_room(store, &record.provider) {
            return false;
        }
        let (key, peer) = (record.key.clone(), record.provider);
        match store.add_provider(record) {
            Ok(()) => {
                self.keys.entry(key).or_insert(peer);
                true
            }
            Err(e) => {
                tracing::debug!("not storing a provider record from {peer}: {e:?}");
                false
            }
        }
    }

    fn has_room(&mut self, store: &mut MemoryStore, peer: &PeerId) -> bool {
        if self.keys.len() >= REMOTE_KEYS {
            self.forget_expired(store);
        }
        self.keys.len() < REMOTE_KEYS
            && self.keys.values().filter(|p| *p == peer).count() < KEYS_PER_PEER
    }

    /// Drop the keys whose records all expired (kad removes them only when
    /// the key is asked for).
    fn forget_expired(&mut self, store: &mut MemoryStore) {
        let now = Instant::now();
        self.keys.retain(|key, _| {
            let records = store.providers(key);
            let mut live = false;
            for r in &records {
                if r.is_expired(now) {
                    store.remove_provider(key, &r.provider);
                } else {
                    live = true;
                }
            }
            live
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::kad::store::MemoryStoreConfig;

    #[test]
    fn one_peer_cannot_take_every_key() {
        let local = PeerId::random();
        let mut store = MemoryStore::with_config(
            local,
            MemoryStoreConfig {
                max_provided_keys: REMOTE_KEYS + LOCAL_KEYS,
                ..Default::default()
            },
        );
        let mut remote = RemoteProviders::default();
        let flood = PeerId::random();
        let record = |peer: PeerId, i: usize| {
            ProviderRecord::new(RecordKey::new(&format!("key-{peer}-{i}")), peer, Vec::new())
        };
        let stored = (0..KEYS_PER_PEER + 10)
            .filter(|i| remote.add(&mut store, record(flood, *i)))
            .count();
        assert_eq!(stored, KEYS_PER_PEER);
        // Another peer still gets in, and so does this node's own record.
        assert!(remote.add(&mut store, record(PeerId::random(), 0)));
        assert!(store.add_provider(record(local, 0)).is_ok());
    }
}
