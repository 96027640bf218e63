//! The keys kad's store holds, kept within bounds. The store caps its
//! records and its provider keys with this node's own counted in: filled by
//! others (one peer sending made-up packages, or a small network with many
//! of them), it would refuse this node's own records and `start_providing`;
//! filled by this node's own (a registry of 100k packages), it would refuse
//! every other peer's. So others get at most a fixed number of keys (see
//! [`super::remote_keys`]), and this node's own at most the room kept for
//! them ([`OwnKeys`]).

use indexmap::IndexSet;
use libp2p::PeerId;
use libp2p::kad::RecordKey;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};

/// Package records (one per package name) other peers may have this node
/// hold (seeds §7.2: ~10,000).
pub const REMOTE_RECORDS: usize = 10_000;
/// Tarballs other peers may have this node hold provider records for.
pub const REMOTE_PROVIDED: usize = 8_192;
/// Room kept for this node's own records (the packages it announces).
pub const LOCAL_RECORDS: usize = 8_192;
/// Room kept for this node's own provider records (the tarballs it serves).
pub const LOCAL_PROVIDED: usize = 8_192;

/// kad's store, with room for others' keys and this node's own, and for
/// values of up to `max_value_bytes`.
pub fn bounded_store(local: PeerId, max_value_bytes: usize) -> MemoryStore {
    MemoryStore::with_config(
        local,
        MemoryStoreConfig {
            max_records: REMOTE_RECORDS + LOCAL_RECORDS,
            max_provided_keys: REMOTE_PROVIDED + LOCAL_PROVIDED,
            // kad refuses a value of its limit or more.
            max_value_bytes: max_value_bytes + 1,
            ..Default::default()
        },
    )
}

/// How much one of this node's own keys matters when room is short: a key
/// takes the room of one of a lower standing, never of its own or higher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// An older version still served because lockfiles pin it (new
    /// installs take the newest).
    Earlier,
    /// A local package's newest version, announced when the node started.
    Local,
    /// Published through this node while it runs: what its user asked for.
    Published,
}

impl Standing {
    const ALL: [Standing; 3] = [Standing::Earlier, Standing::Local, Standing::Published];
}

/// The keys of this node's own records (or of the tarballs it provides):
/// at most `limit`, the room the store keeps for them, each with its
/// [`Standing`].
pub struct OwnKeys {
    limit: usize,
    /// Per standing, in the order first held at it.
    held: [IndexSet<RecordKey>; 3],
}

/// Why [`OwnKeys::hold`] did not store a key.
pub enum Refused<E> {
    /// No room left: the limit.
    Full(usize),
    /// The store refused it.
    Store(E),
}

impl OwnKeys {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            held: Default::default(),
        }
    }

    fn standing_of(&self, key: &RecordKey) -> Option<Standing> {
        Standing::ALL
            .into_iter()
            .find(|s| self.held[*s as usize].contains(key))
    }

    fn len(&self) -> usize {
        self.held.iter().map(IndexSet::len).sum()
    }

    /// Store `key` as this node's own with `store` if there is room (a key
    /// it has takes none, and rises to `standing` if that is higher); the
    /// room goes back if the store refuses a new key.
    pub fn hold<T, E>(
        &mut self,
        key: &RecordKey,
        standing: Standing,
        store: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Refused<E>> {
        let had = self.standing_of(key);
        if had.is_none() && self.len() >= self.limit {
            return Err(Refused::Full(self.limit));
        }
        if had.is_none_or(|had| had < standing) {
            self.release(key);
            self.held[standing as usize].insert(key.clone());
        }
        store().map_err(|e| {
            if had.is_none() {
                self.release(key);
            }
            Refused::Store(e)
        })
    }

    /// When there is no room for `key` (of `standing`), a key of the
    /// lowest standing below it gives up its room, the one held last (a
    /// starting node announces its newest publications first): that key,
    /// for the caller to take out of the store.
    pub fn make_room_for(&mut self, key: &RecordKey, standing: Standing) -> Option<RecordKey> {
        if self.holds(key) || self.len() < self.limit {
            return None;
        }
        let lowest = (Standing::ALL.into_iter())
            .take_while(|s| *s < standing)
            .find(|s| !self.held[*s as usize].is_empty())?;
        self.held[lowest as usize].pop()
    }

    /// Every key held, the highest standing first, each standing in the
    /// order its keys were first held at it.
    pub fn keys(&self) -> impl Iterator<Item = &RecordKey> {
        self.held.iter().rev().flatten()
    }

    /// Whether `key` is this node's own.
    pub fn holds(&self, key: &RecordKey) -> bool {
        self.standing_of(key).is_some()
    }

    /// `key`, if held above `standing`, falls to it (a newer version took
    /// its package's place), as the last of that standing held.
    pub fn lower(&mut self, key: &RecordKey, standing: Standing) {
        if self.standing_of(key).is_some_and(|had| had > standing) {
            self.release(key);
            self.held[standing as usize].insert(key.clone());
        }
    }

    /// `key` is no longer this node's own (another peer's record holds it,
    /// or it was evicted).
    pub fn release(&mut self, key: &RecordKey) {
        for keys in &mut self.held {
            keys.shift_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p::kad::Record;
    use libp2p::kad::store::RecordStore;

    use super::*;

    fn key(peer: &PeerId, i: usize) -> RecordKey {
        RecordKey::new(&format!("key-{peer}-{i}"))
    }

    #[test]
    fn this_nodes_own_keys_stop_at_their_room() {
        use Standing::{Earlier, Local, Published};
        let mut own = OwnKeys::new(2);
        let local = PeerId::random();
        let k = |i| key(&local, i);
        let ok = || Ok::<_, ()>(());
        let held = |r: Result<(), Refused<()>>| match r {
            Ok(()) => "held",
            Err(Refused::Full(2)) => "full",
            Err(Refused::Full(_)) => "wrong limit",
            Err(Refused::Store(())) => "refused",
        };
        assert_eq!(held(own.hold(&k(0), Local, ok)), "held");
        // The store refuses a new key: its room goes back.
        assert_eq!(held(own.hold(&k(1), Local, || Err(()))), "refused");
        assert_eq!(held(own.hold(&k(1), Local, ok)), "held");
        assert_eq!(held(own.hold(&k(2), Local, ok)), "full");
        // A key it has is still its own (a newer version's record), and
        // keeps its room when the store refuses the newer record.
        assert_eq!(held(own.hold(&k(1), Local, || Err(()))), "refused");
        assert_eq!(held(own.hold(&k(2), Local, ok)), "full");
        // Nothing of a lower standing: no room is made.
        assert_eq!(own.make_room_for(&k(2), Local), None);
        own.release(&k(0));
        assert_eq!(held(own.hold(&k(2), Earlier, ok)), "held");
        // Full, with key 2 of a lower standing: it makes room for a key
        // above it (only when room is short, and only once).
        assert_eq!(own.make_room_for(&k(1), Local), None);
        assert_eq!(own.make_room_for(&k(3), Earlier), None);
        assert_eq!(own.make_room_for(&k(3), Local), Some(k(2)));
        assert_eq!(held(own.hold(&k(3), Local, ok)), "held");
        assert_eq!(own.make_room_for(&k(4), Local), None);
        // A published key takes the room of the local key held last.
        assert_eq!(own.make_room_for(&k(4), Published), Some(k(3)));
        assert_eq!(held(own.hold(&k(4), Published, ok)), "held");
        assert_eq!(own.make_room_for(&k(5), Published), Some(k(1)));
        assert_eq!(held(own.hold(&k(5), Published, ok)), "held");
        assert_eq!(own.make_room_for(&k(6), Published), None);
        // A key held again rises to the higher standing; holding it at a
        // lower one does not lower it.
        own.release(&k(5));
        assert_eq!(held(own.hold(&k(6), Earlier, ok)), "held");
        assert_eq!(held(own.hold(&k(6), Local, ok)), "held");
        assert_eq!(own.make_room_for(&k(7), Local), None);
        assert_eq!(held(own.hold(&k(6), Earlier, ok)), "held");
        assert_eq!(own.make_room_for(&k(7), Local), None);
        assert_eq!(own.make_room_for(&k(7), Published), Some(k(6)));
        // A newer version came: its package's older copy falls, and gives
        // way first; lowering never raises.
        assert_eq!(held(own.hold(&k(7), Published, ok)), "held");
        own.lower(&k(4), Earlier);
        own.lower(&k(4), Published);
        assert_eq!(own.make_room_for(&k(8), Local), Some(k(4)));
    }

    #[test]
    fn values_up_to_the_limit_are_held() {
        let local = PeerId::random();
        let mut store = bounded_store(local, 1024);
        assert!(
            store
                .put(Record::new(key(&local, 0), vec![b'x'; 1024]))
                .is_ok()
        );
        assert!(
            store
                .put(Record::new(key(&local, 1), vec![b'x'; 1025]))
                .is_err()
        );
    }
}
