//! The keys kad's store holds for other peers, within bounds: at most a
//! fixed number in all, and [`PER_PEER`] from any one peer, so that a peer
//! sending made-up packages cannot fill the store. Past its share, a
//! peer's newer publication takes the room of its oldest (see [`Rank`]).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::kad::store::{MemoryStore, RecordStore};
use libp2p::kad::{ProviderRecord, Record, RecordKey};

/// Of package records or of provider keys, the keys one peer may introduce.
pub const PER_PEER: usize = 512;

/// How often a full [`RemoteKeys`] looks for keys that are gone: each look
/// walks every key, so not once per record a flooding peer sends.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// How a key ranks among the keys one peer brought, when that peer's share
/// is used up: a package record by when it was published (a peer keeps a
/// node's newest publications, whatever order they came in), a provider
/// key not at all (the keys held first stay).
pub type Rank = Option<time::OffsetDateTime>;

/// A peer's claim to have a key held: who delivers it, its rank, and
/// whether it is a newer version than the record held (charged to the peer
/// that delivered it first, not to whoever sent the package's key before).
pub struct Claim {
    pub peer: PeerId,
    pub rank: Rank,
    pub newer: bool,
}

/// A key's place in its peer's share: lowest rank first and, among equal
/// ranks, the last admitted first (a node announces its newest first).
type Place = (Rank, Reverse<u64>);

/// A key held for another peer: the peer it is charged to, its place in
/// that peer's share, and the date it came with (sent again with that date,
/// as kad replicates and republishes records, it keeps its place).
struct Held {
    owner: PeerId,
    place: Place,
    sent: Rank,
}

/// The keys held for others, each with the peer it is charged to.
pub struct RemoteKeys {
    limit: usize,
    keys: HashMap<RecordKey, Held>,
    /// Each peer's keys, in the order they give up their room.
    per_peer: HashMap<PeerId, BTreeMap<Place, RecordKey>>,
    /// Keys admitted so far (each admission's [`Place`] is its own).
    admitted: u64,
    next_sweep: Instant,
}

/// What [`RemoteKeys::admit`] decided.
#[derive(Debug, PartialEq)]
pub enum Admitted {
    No,
    /// The key may be held. `evict`: the key whose room it takes (its
    /// peer's lowest ranked), for the caller to take out of the store;
    /// `held_before`: it was held already (the store keeps it if it
    /// refuses the new one).
    Yes {
        evict: Option<RecordKey>,
        held_before: bool,
    },
}

impl RemoteKeys {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            keys: HashMap::new(),
            per_peer: HashMap::new(),
            admitted: 0,
            next_sweep: Instant::now(),
        }
    }

    /// Whether `claim.peer` may have `key` held. A date ahead of this
    /// node's clock ranks as now: it would keep its room from every later
    /// publication. A key held already takes no new room, and keeps its
    /// place when sent again with the same date; a newer version of it is
    /// charged to the peer delivering it if its share has room or makes
    /// some, else stays charged where it was. A new key takes room in its
    /// sender's share, or the room of the lowest ranked key there if it
    /// ranks above it: a node whose share is used up (a registry past
    /// [`PER_PEER`] packages, on a network so small that this node is close
    /// to most keys) still gets its new publications held. When full, or
    /// the share is used up, keys `live` says are gone are forgotten first
    /// (kad drops expired entries only when they are asked for), at most
    /// every [`SWEEP_EVERY`].
    pub fn admit(
        &mut self,
        key: &RecordKey,
        claim: Claim,
        mut live: impl FnMut(&RecordKey) -> bool,
    ) -> Admitted {
        let Claim {
            peer,
            rank: sent,
            newer,
        } = claim;
        let now = time::OffsetDateTime::now_utc();
        let rank = sent.map(|t| t.min(now));
        if let Some(held) = self.keys.get(key) {
            let owner = held.owner;
            let moves = newer && owner != peer;
            let mut evict = None;
            if moves || held.sent != sent {
                let room = moves.then(|| self.room_in_share(peer, rank)).flatten();
                self.release(key);
                let charged = match room {
                    Some(room) => {
                        evict = room;
                        peer
                    }
                    None => owner,
                };
                self.take(key, charged, (rank, sent), evict.as_ref());
            }
            return Admitted::Yes {
                evict,
                held_before: true,
            };
        }
        let used_up = |keys: &Self| {
            keys.keys.len() >= keys.limit
                || keys
                    .per_peer
                    .get(&peer)
                    .is_some_and(|k| k.len() >= PER_PEER)
        };
        if used_up(self) && Instant::now() >= self.next_sweep {
            self.next_sweep = Instant::now() + SWEEP_EVERY;
            let per_peer = &mut self.per_peer;
            self.keys.retain(|key, held| {
                let keep = live(key);
                if !keep {
                    forget(per_peer, &held.owner, &held.place);
                }
                keep
            });
        }
        match self.room_in_share(peer, rank) {
            Some(None) if self.keys.len() >= self.limit => Admitted::No,
            Some(evict) => {
                self.take(key, peer, (rank, sent), evict.as_ref());
                Admitted::Yes {
                    evict,
                    held_before: false,
                }
            }
            None => Admitted::No,
        }
    }

    /// Room in `peer`'s share for a key of `rank`: free (`Some(None)`), that
    /// of its lowest ranked key if `rank` is above it, or none.
    fn room_in_share(&self, peer: PeerId, rank: Rank) -> Option<Option<RecordKey>> {
        match self.per_peer.get(&peer) {
            Some(keys) if keys.len() >= PER_PEER => {
                let ((lowest, _), key) = keys.first_key_value()?;
                (*lowest < rank).then(|| Some(key.clone()))
            }
            _ => Some(None),
        }
    }

    /// Charge `key` to `peer` at `rank` (the date it was `sent` with, up
    /// to now), in the room of `evict`.
    fn take(
        &mut self,
        key: &RecordKey,
        owner: PeerId,
        (rank, sent): (Rank, Rank),
        evict: Option<&RecordKey>,
    ) {
        if let Some(old) = evict {
            self.release(old);
        }
        self.admitted += 1;
        let place = (rank, Reverse(self.admitted));
        (self.per_peer.entry(owner).or_default()).insert(place, key.clone());
        self.keys.insert(key.clone(), Held { owner, place, sent });
    }

    /// `key` is no longer held for another peer (it was refused, removed,
    /// or is this node's own now).
    pub fn release(&mut self, key: &RecordKey) {
        if let Some(held) = self.keys.remove(key) {
            forget(&mut self.per_peer, &held.owner, &held.place);
        }
    }
}

fn forget(
    per_peer: &mut HashMap<PeerId, BTreeMap<Place, RecordKey>>,
    owner: &PeerId,
    place: &Place,
) {
    if let Entry::Occupied(mut keys) = per_peer.entry(*owner) {
        keys.get_mut().remove(place);
        if keys.get().is_empty() {
            keys.remove();
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
    let claim = Claim {
        peer,
        rank: None,
        newer: false,
    };
    let evict = |store: &mut MemoryStore, old: &RecordKey| store.remove_provider(old, &peer);
    hold(remote, store, (&key, claim), live, evict, |store| {
        store.add_provider(record)
    })
}

/// Store a package record unless that would pass a bound; whether it was
/// stored.
pub fn hold_record(
    remote: &mut RemoteKeys,
    store: &mut MemoryStore,
    record: Record,
    claim: Claim,
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
    hold(remote, store, (&key, claim), live, evict, |store| {
        store.put(record)
    })
}

/// Admit `key` ([`RemoteKeys::admit`], `live` saying whether the store
/// still has a key; `evict` taking out a key it gives the room of) and
/// store it with `put`; a new key's room goes back if the store refuses
/// it. Whether it was stored.
fn hold<E: std::fmt::Debug>(
    remote: &mut RemoteKeys,
    store: &mut MemoryStore,
    (key, claim): (&RecordKey, Claim),
    mut live: impl FnMut(&mut MemoryStore, &RecordKey) -> bool,
    evict: impl FnOnce(&mut MemoryStore, &RecordKey),
    put: impl FnOnce(&mut MemoryStore) -> Result<(), E>,
) -> bool {
    let peer = claim.peer;
    let held_before = match remote.admit(key, claim, |k| live(store, k)) {
        Admitted::No => return false,
        Admitted::Yes {
            evict: old,
            held_before,
        } => {
            // Out first: only then has the store's count room for the new
            // key. (`put` fails only past the store's bounds, which the
            // shares keep it within, or on a record over the size limit,
            // which decoding refused already: nothing is evicted for naught.)
            if let Some(old) = old {
                evict(store, &old);
            }
            held_before
        }
    };
    put(store)
        .inspect_err(|e| {
            tracing::debug!("not storing a key from {peer}: {e:?}");
            if !held_before {
                remote.release(key);
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::p2p::held_keys::{
        LOCAL_PROVIDED, LOCAL_RECORDS, REMOTE_PROVIDED, REMOTE_RECORDS, bounded_store,
    };

    fn key(peer: &PeerId, i: usize) -> RecordKey {
        RecordKey::new(&format!("key-{peer}-{i}"))
    }

    /// Midnight `day` days after a day 100 days ago: dates in the past,
    /// whatever the clock says.
    fn on(day: i64) -> Rank {
        let today = time::OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT);
        Some(today - time::Duration::days(100 - day))
    }

    /// `key` sent by `peer`, published at `rank` (a newer version if
    /// `newer`), everything live: "new", "held", "no", or "evicts <key>".
    fn admit(remote: &mut RemoteKeys, key: &RecordKey, peer: PeerId, rank: Rank) -> String {
        claim(remote, key, peer, rank, false, |_| true)
    }

    fn claim(
        remote: &mut RemoteKeys,
        key: &RecordKey,
        peer: PeerId,
        rank: Rank,
        newer: bool,
        live: impl FnMut(&RecordKey) -> bool,
    ) -> String {
        match remote.admit(key, Claim { peer, rank, newer }, live) {
            Admitted::No => "no".into(),
            Admitted::Yes {
                evict: None,
                held_before: false,
            } => "new".into(),
            Admitted::Yes {
                evict: None,
                held_before: true,
            } => "held".into(),
            Admitted::Yes {
                evict: Some(old), ..
            } => {
                format!("evicts {}", String::from_utf8_lossy(old.as_ref()))
            }
        }
    }

    fn name(key: RecordKey) -> String {
        format!("evicts {}", String::from_utf8_lossy(key.as_ref()))
    }

    #[test]
    fn one_peer_gets_its_share_and_many_peers_the_limit() {
        let mut remote = RemoteKeys::new(PER_PEER * 2 + 10);
        let flood = PeerId::random();
        assert!((0..PER_PEER).all(|i| admit(&mut remote, &key(&flood, i), flood, None) == "new"));
        // A key it brought before takes no new room.
        assert_eq!(admit(&mut remote, &key(&flood, 0), flood, None), "held");
        // Two more peers fill it to the limit.
        let others = [PeerId::random(), PeerId::random()];
        for (peer, count) in [(others[0], PER_PEER), (others[1], 10)] {
            assert!((0..count).all(|i| admit(&mut remote, &key(&peer, i), peer, None) == "new"));
        }
        // Full: room comes back as keys expire (looked for once in a while,
        // not on every refusal) or are released.
        let late = PeerId::random();
        let gone = key(&flood, 3);
        let late_key = |i| key(&late, i);
        assert_eq!(
            claim(&mut remote, &late_key(0), late, None, false, |k| *k != gone),
            "new"
        );
        assert_eq!(
            claim(&mut remote, &late_key(1), late, None, false, |_| false),
            "no"
        );
        remote.release(&key(&others[0], 0));
        assert_eq!(admit(&mut remote, &late_key(1), late, None), "new");
        // The flooder's expired key counts no more against it; past its
        // share again, it gets no more.
        remote.release(&key(&others[1], 0));
        assert_eq!(admit(&mut remote, &key(&flood, 3), flood, None), "new");
        remote.release(&key(&others[1], 1));
        assert_eq!(
            admit(&mut remote, &key(&flood, PER_PEER), flood, None),
            "no"
        );
        assert_eq!(admit(&mut remote, &late_key(2), late, None), "new");
        assert_eq!(admit(&mut remote, &late_key(3), late, None), "no");
    }

    #[test]
    fn a_peer_past_its_share_keeps_its_newest_publications() {
        let mut remote = RemoteKeys::new(REMOTE_RECORDS);
        let (node, other) = (PeerId::random(), PeerId::random());
        let mut from_node = |i: usize, rank: Rank| admit(&mut remote, &key(&node, i), node, rank);
        // Its share: undated records (another tool's registry) and one dated.
        for i in 0..PER_PEER - 1 {
            assert_eq!(from_node(i, None), "new");
        }
        assert_eq!(from_node(999, on(10)), "new");
        // Past it, an undated one is refused; a dated one takes the room of
        // the undated one admitted last, once.
        assert_eq!(from_node(1000, None), "no");
        assert_eq!(from_node(1001, on(11)), name(key(&node, PER_PEER - 2)));
        assert_eq!(from_node(PER_PEER - 2, None), "no");
        // Newer ones replace every undated one, then the oldest dated.
        for i in 0..PER_PEER - 2 {
            assert!(from_node(2000 + i, on(12)).starts_with("evicts"), "{i}");
        }
        assert_eq!(from_node(3000, on(12)), name(key(&node, 999)));
        assert_eq!(from_node(3001, on(9)), "no");
        // A key held takes its new rank (a newer version's record).
        assert_eq!(from_node(1001, on(8)), "held");
        assert_eq!(from_node(3002, on(9)), name(key(&node, 1001)));
        // A date ahead of this node's clock ranks as now: today's
        // publications still come in after a share of such dates.
        let ahead = Some(time::OffsetDateTime::now_utc() + time::Duration::days(365));
        for i in 0..PER_PEER {
            assert!(from_node(4000 + i, ahead).starts_with("evicts"), "{i}");
        }
        let now = Some(time::OffsetDateTime::now_utc() + time::Duration::seconds(1));
        assert!(from_node(5000, now).starts_with("evicts"));
        // Another peer's share is its own.
        assert_eq!(admit(&mut remote, &key(&other, 0), other, None), "new");
    }

    /// A record sent again with its date (kad replicates and republishes
    /// every record) keeps its place: dates ahead of the clock stay at the
    /// time they came, below what was published after.
    #[test]
    fn a_record_sent_again_keeps_its_place() {
        let mut remote = RemoteKeys::new(REMOTE_RECORDS);
        let node = PeerId::random();
        let now = || Some(time::OffsetDateTime::now_utc());
        let ahead = Some(time::OffsetDateTime::now_utc() + time::Duration::days(365));
        for i in 0..PER_PEER - 1 {
            assert_eq!(admit(&mut remote, &key(&node, i), node, ahead), "new");
        }
        let genuine = key(&node, 999);
        assert_eq!(admit(&mut remote, &genuine, node, now()), "new");
        for i in 0..PER_PEER - 1 {
            assert_eq!(admit(&mut remote, &key(&node, i), node, ahead), "held");
        }
        let next = admit(&mut remote, &key(&node, 1000), node, now());
        assert!(
            next.starts_with("evicts") && next != name(genuine),
            "{next}"
        );
    }

    /// A newer version is the publication of whoever sends it: charged to
    /// that peer, it no longer gives way to the first sender's publications.
    #[test]
    fn a_newer_version_is_charged_to_its_sender() {
        let mut remote = RemoteKeys::new(REMOTE_RECORDS);
        let (first, second, third) = (PeerId::random(), PeerId::random(), PeerId::random());
        let shared = RecordKey::new(&"shared");
        // The first sender brings version 1 and fills its share.
        assert_eq!(admit(&mut remote, &shared, first, on(1)), "new");
        for i in 0..PER_PEER - 1 {
            assert_eq!(admit(&mut remote, &key(&first, i), first, on(10)), "new");
        }
        // The same version sent again (a replication) stays where it was.
        assert_eq!(
            claim(&mut remote, &shared, second, on(1), false, |_| true),
            "held"
        );
        // A newer version is the second sender's publication: the first
        // sender's next ones take the room of its own oldest, never its.
        assert_eq!(
            claim(&mut remote, &shared, second, on(12), true, |_| true),
            "held"
        );
        for i in 0..PER_PEER {
            let outcome = admit(&mut remote, &key(&first, 1000 + i), first, on(14));
            assert!(
                outcome.starts_with("evicts key-") || outcome == "new",
                "{i}: {outcome}"
            );
        }
        // A sender with no room for it (its share used up by newer keys):
        // a newer version stays charged where it was.
        for i in 0..PER_PEER {
            assert_eq!(admit(&mut remote, &key(&third, i), third, on(20)), "new");
        }
        assert_eq!(
            claim(&mut remote, &shared, third, on(16), true, |_| true),
            "held"
        );
        for i in 0..PER_PEER - 1 {
            assert_eq!(admit(&mut remote, &key(&second, i), second, on(30)), "new");
        }
        assert_eq!(
            admit(&mut remote, &key(&second, 999), second, on(30)),
            name(shared)
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
                let claim = Claim {
                    peer,
                    rank: None,
                    newer: false,
                };
                held += usize::from(hold_record(&mut records, &mut store, record, claim));
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
