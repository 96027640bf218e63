//! The keys kad's store holds, kept within bounds. The store caps its
//! records and its provider keys with this node's own counted in: filled by
//! others (one peer sending made-up packages, or a small network with many
//! of them), it would refuse this node's own records and `start_providing`;
//! filled by this node's own (a registry of 100k packages), it would refuse
//! every other peer's. So others get at most a fixed number of keys,
//! [`PER_PEER`] of them each, and this node's own at most the room kept
//! for them.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use indexmap::IndexSet;
use libp2p::PeerId;
use libp2p::kad::store::{MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::kad::{ProviderRecord, Record, RecordKey};

/// Package records (one per package name) other peers may have this node
/// hold (seeds §7.2: ~10,000).
pub const REMOTE_RECORDS: usize = 10_000;
/// Tarballs other peers may have this node hold provider records for.
pub const REMOTE_PROVIDED: usize = 8_192;
/// Of either, the keys one peer may introduce.
pub const PER_PEER: usize = 512;
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

/// How often a full [`RemoteKeys`] looks for keys that are gone: each look
/// walks every key, so not once per record a flooding peer sends.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// How a key ranks among the keys one peer brought, when that peer's share
/// is used up: a package record by when it was published (a peer keeps a
/// node's newest publications, whatever order they came in), a provider
/// key not at all (the keys held first stay).
pub type Rank = Option<time::OffsetDateTime>;

/// The keys held for others, each with the peer that brought it.
pub struct RemoteKeys {
    limit: usize,
    keys: HashMap<RecordKey, (PeerId, Rank)>,
    /// Each peer's keys, the lowest ranked first.
    per_peer: HashMap<PeerId, BTreeSet<(Rank, Vec<u8>)>>,
    next_sweep: Instant,
}

/// What [`RemoteKeys::admit`] decided.
#[derive(Debug, PartialEq)]
pub enum Admitted {
    /// The key may be held (it may be already).
    Yes,
    /// The key may be held in the room of this one, its peer's lowest
    /// ranked, for the caller to take out of the store.
    Replacing(RecordKey),
    No,
}

impl RemoteKeys {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            keys: HashMap::new(),
            per_peer: HashMap::new(),
            next_sweep: Instant::now(),
        }
    }

    /// Whether `peer` may have `key` (of `rank`) held; a key held already
    /// takes no new room, and is ranked anew. When full, or `peer`
    /// has its share, keys `live` says are gone are forgotten first (kad
    /// drops expired entries only when they are asked for), at most every
    /// [`SWEEP_EVERY`]. With its share still used up, `key` takes the room
    /// of that peer's lowest ranked key if it ranks above it: a node whose
    /// share is used up (a registry past [`PER_PEER`] packages, on a
    /// network so small that this node is close to most keys) still gets
    /// its new publications held. An
    /// admitted key the store then refuses is [`Self::release`]d.
    pub fn admit(
        &mut self,
        key: &RecordKey,
        peer: PeerId,
        rank: Rank,
        mut live: impl FnMut(&RecordKey) -> bool,
    ) -> Admitted {
        if let Some((owner, held)) = self.keys.get_mut(key) {
            if *held != rank {
                let ranked = self.per_peer.entry(*owner).or_default();
                ranked.remove(&(*held, key.to_vec()));
                ranked.insert((rank, key.to_vec()));
                *held = rank;
            }
            return Admitted::Yes;
        }
        let share_used = |keys: &Self| {
            keys.per_peer
                .get(&peer)
                .is_some_and(|k| k.len() >= PER_PEER)
        };
        if (self.keys.len() >= self.limit || share_used(self)) && Instant::now() >= self.next_sweep
        {
            self.next_sweep = Instant::now() + SWEEP_EVERY;
            let per_peer = &mut self.per_peer;
            self.keys.retain(|key, (owner, rank)| {
                let keep = live(key);
                if !keep {
                    forget(per_peer, owner, *rank, key);
                }
                keep
            });
        }
        let mut admitted = Admitted::Yes;
        if share_used(self) {
            let lowest = self.per_peer.get(&peer).and_then(BTreeSet::first);
            match lowest {
                Some((lowest, old)) if *lowest < rank => {
                    let old = RecordKey::from(old.clone());
                    self.release(&old);
                    admitted = Admitted::Replacing(old);
                }
                _ => return Admitted::No,
            }
        } else if self.keys.len() >= self.limit {
            return Admitted::No;
        }
        self.keys.insert(key.clone(), (peer, rank));
        (self.per_peer.entry(peer).or_default()).insert((rank, key.to_vec()));
        admitted
    }

    /// `key` is no longer held for another peer (it was refused, removed,
    /// or is this node's own now).
    pub fn release(&mut self, key: &RecordKey) {
        if let Some((owner, rank)) = self.keys.remove(key) {
            forget(&mut self.per_peer, &owner, rank, key);
        }
    }
}

/// Store another peer's provider record (kad checked that its provider is
/// the sender) unless that would pass a bound; whether it was stored.
pub fn hold_provider(
    remote: &mut RemoteKeys,
    store: &mut MemoryStore,
    record: ProviderRecord,
) -> bool {
    let (key, peer) = (record.key.clone(), record.provider);
    let live = |store: &mut MemoryStore, key: &RecordKey| {
        let now = Instant::now();
        let mut live = false;
        for r in store.providers(key) {
            if r.is_expired(now) {
                store.remove_provider(key, &r.provider);
            } else {
                live = true;
            }
        }
        live
    };
    let evict = |store: &mut MemoryStore, old: &RecordKey| store.remove_provider(old, &peer);
    hold(remote, store, (&key, peer, None), live, evict, |store| {
        store.add_provider(record)
    })
}

/// Store a package record `source` sent, published at `rank`, unless that
/// would pass a bound; whether it was stored.
pub fn hold_record(
    remote: &mut RemoteKeys,
    store: &mut MemoryStore,
    record: Record,
    source: PeerId,
    rank: Rank,
) -> bool {
    let key = record.key.clone();
    let live = |store: &mut MemoryStore, key: &RecordKey| match store
        .get(key)
        .map(|r| r.is_expired(Instant::now()))
    {
        Some(false) => true,
        Some(true) => {
            store.remove(key);
            false
        }
        None => false,
    };
    let evict = |store: &mut MemoryStore, old: &RecordKey| store.remove(old);
    hold(remote, store, (&key, source, rank), live, evict, |store| {
        store.put(record)
    })
}

/// Admit `key` for `peer` at `rank` ([`RemoteKeys::admit`], `live` saying
/// whether the store still has a key; `evict` taking out a key it gives
/// the room of) and store it with `put`; the room goes back if the store
/// refuses it. Whether it was stored.
fn hold<E: std::fmt::Debug>(
    remote: &mut RemoteKeys,
    store: &mut MemoryStore,
    (key, peer, rank): (&RecordKey, PeerId, Rank),
    mut live: impl FnMut(&mut MemoryStore, &RecordKey) -> bool,
    evict: impl FnOnce(&mut MemoryStore, &RecordKey),
    put: impl FnOnce(&mut MemoryStore) -> Result<(), E>,
) -> bool {
    match remote.admit(key, peer, rank, |k| live(store, k)) {
        Admitted::No => return false,
        Admitted::Replacing(old) => evict(store, &old),
        Admitted::Yes => {}
    }
    put(store)
        .inspect_err(|e| {
            tracing::debug!("not storing a key from {peer}: {e:?}");
            remote.release(key);
        })
        .is_ok()
}

fn forget(
    per_peer: &mut HashMap<PeerId, BTreeSet<(Rank, Vec<u8>)>>,
    owner: &PeerId,
    rank: Rank,
    key: &RecordKey,
) {
    if let Entry::Occupied(mut keys) = per_peer.entry(*owner) {
        keys.get_mut().remove(&(rank, key.to_vec()));
        if keys.get().is_empty() {
            keys.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(peer: &PeerId, i: usize) -> RecordKey {
        RecordKey::new(&format!("key-{peer}-{i}"))
    }

    #[test]
    fn one_peer_gets_its_share_and_many_peers_the_limit() {
        let mut remote = RemoteKeys::new(PER_PEER * 2 + 10);
        let flood = PeerId::random();
        assert!(
            (0..PER_PEER)
                .all(|i| remote.admit(&key(&flood, i), flood, None, |_| true) == Admitted::Yes)
        );
        // A key it brought before takes no new room.
        assert_eq!(
            remote.admit(&key(&flood, 0), flood, None, |_| true),
            Admitted::Yes
        );
        // Two more peers fill it to the limit.
        let others = [PeerId::random(), PeerId::random()];
        for (peer, count) in [(others[0], PER_PEER), (others[1], 10)] {
            assert!(
                (0..count)
                    .all(|i| remote.admit(&key(&peer, i), peer, None, |_| true) == Admitted::Yes)
            );
        }
        // Full: room comes back as keys expire (looked for once in a while,
        // not on every refusal) or are released.
        let late = PeerId::random();
        assert_eq!(
            remote.admit(&key(&late, 0), late, None, |k| *k != key(&flood, 3)),
            Admitted::Yes
        );
        assert_eq!(
            remote.admit(&key(&late, 1), late, None, |_| false),
            Admitted::No
        );
        remote.release(&key(&others[0], 0));
        assert_eq!(
            remote.admit(&key(&late, 1), late, None, |_| true),
            Admitted::Yes
        );
        // The flooder's expired key counts no more against it; past its
        // share again, it gets no more.
        remote.release(&key(&others[1], 0));
        assert_eq!(
            remote.admit(&key(&flood, 3), flood, None, |_| true),
            Admitted::Yes
        );
        remote.release(&key(&others[1], 1));
        assert_eq!(
            remote.admit(&key(&flood, PER_PEER), flood, None, |_| true),
            Admitted::No
        );
        assert_eq!(
            remote.admit(&key(&late, 2), late, None, |_| true),
            Admitted::Yes
        );
        assert_eq!(
            remote.admit(&key(&late, 3), late, None, |_| true),
            Admitted::No
        );
    }

    #[test]
    fn a_peer_past_its_share_keeps_its_newest_publications() {
        let mut remote = RemoteKeys::new(REMOTE_RECORDS);
        let (node, other) = (PeerId::random(), PeerId::random());
        let on = |day: u8| {
            let date = time::Date::from_calendar_date(2026, time::Month::November, day);
            Some(date.unwrap().midnight().assume_utc())
        };
        let mut admit = |i: usize, rank: Rank| remote.admit(&key(&node, i), node, rank, |_| true);
        // Its share: undated records (another tool's registry) and one dated.
        for i in 0..PER_PEER - 1 {
            assert_eq!(admit(i, None), Admitted::Yes);
        }
        assert_eq!(admit(999, on(10)), Admitted::Yes);
        // Past it, an undated one is refused; a dated one takes the room of
        // an undated one, once.
        assert_eq!(admit(1000, None), Admitted::No);
        let Admitted::Replacing(gone) = admit(1001, on(11)) else {
            panic!("a newer record was refused")
        };
        assert!(gone != key(&node, 999) && gone != key(&node, 1001));
        assert_eq!(remote.admit(&gone, node, None, |_| true), Admitted::No);
        // Newer ones replace every undated one, then the oldest dated.
        let mut admit = |i: usize, rank: Rank| remote.admit(&key(&node, i), node, rank, |_| true);
        for i in 0..PER_PEER - 2 {
            assert!(
                matches!(admit(2000 + i, on(12)), Admitted::Replacing(_)),
                "{i}"
            );
        }
        assert_eq!(admit(3000, on(12)), Admitted::Replacing(key(&node, 999)));
        assert_eq!(admit(3001, on(9)), Admitted::No);
        // A key held takes its new rank (a newer version's record).
        assert_eq!(admit(1001, on(8)), Admitted::Yes);
        assert_eq!(admit(3002, on(9)), Admitted::Replacing(key(&node, 1001)));
        // Another peer's share is its own.
        assert_eq!(
            remote.admit(&key(&other, 0), other, None, |_| true),
            Admitted::Yes
        );
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

    #[test]
    fn others_filling_their_share_leave_room_for_this_nodes_own() {
        let local = PeerId::random();
        let mut store = bounded_store(local, 1024);
        let (mut records, mut provided) = (
            RemoteKeys::new(REMOTE_RECORDS),
            RemoteKeys::new(REMOTE_PROVIDED),
        );
        let (mut held, mut providing) = (0, 0);
        for _ in 0..REMOTE_RECORDS.max(REMOTE_PROVIDED) / PER_PEER + 2 {
            let peer = PeerId::random();
            for i in 0..PER_PEER {
                let record = Record::new(key(&peer, i), b"x".to_vec());
                held += usize::from(hold_record(&mut records, &mut store, record, peer, None));
                let record = ProviderRecord::new(key(&peer, i), peer, Vec::new());
                providing += usize::from(hold_provider(&mut provided, &mut store, record));
            }
        }
        assert_eq!((held, providing), (REMOTE_RECORDS, REMOTE_PROVIDED));
        for i in 0..LOCAL_RECORDS.max(LOCAL_PROVIDED) {
            let mut record = Record::new(key(&local, i), b"own".to_vec());
            record.publisher = Some(local);
            assert_eq!(store.put(record).is_ok(), i < LOCAL_RECORDS, "record {i}");
            let record = ProviderRecord::new(key(&local, i), local, Vec::new());
            assert_eq!(
                store.add_provider(record).is_ok(),
                i < LOCAL_PROVIDED,
                "key {i}"
            );
        }
    }
}
