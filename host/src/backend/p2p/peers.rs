//! What this node knows about other peers: addresses, successes, failures
//! (invalid records and messages count against the sender), flood limits.
//! Bounded: past [`MAX_PEERS`] the peer seen longest ago is forgotten.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::{Multiaddr, PeerId};

use super::client::without_peer;

use crate::backend::network::{PeerView, unix_now as now};

pub const MAX_PEERS: usize = 10_000;
pub(super) const MAX_ADDRESSES: usize = 8;
/// Flood limit per peer: a bucket of this many messages, refilled per second.
const BURST: f64 = 200.0;
const PER_SECOND: f64 = 100.0;
/// An unreachable peer counts once per this many seconds, however many
/// dials (every DHT query tries the routing table) and commands find it away.
const UNREACHABLE_COUNTS_EVERY: u64 = 600;

#[derive(Debug)]
pub struct Peer {
    pub addresses: Vec<Multiaddr>,
    pub connected: bool,
    pub successes: u32,
    pub failures: u32,
    /// Times dials found it away (once per [`UNREACHABLE_COUNTS_EVERY`]).
    /// Not a failure: being away is not misbehaving, and an honest peer
    /// back from an outage must not be ranked out of use for it.
    pub unreachable: u32,
    pub rate_limited: u32,
    pub(super) latency_total_ms: u64,
    pub(super) latency_samples: u32,
    /// When the peer last showed it was there (a connection, a message, an
    /// answer), in Unix seconds; 0 if never (an address we were only given).
    pub last_seen: u64,
    pub agent: Option<String>,
    tokens: f64,
    refilled: Instant,
    /// When (Unix seconds) an unreachable dial last counted, until the
    /// peer shows up again; 0 if none. Saved: each short-lived command
    /// would count once otherwise.
    pub(super) unreachable_counted: u64,
}

impl Peer {
    pub(super) fn new() -> Self {
        Self {
            addresses: Vec::new(),
            connected: false,
            successes: 0,
            failures: 0,
            unreachable: 0,
            rate_limited: 0,
            latency_total_ms: 0,
            latency_samples: 0,
            last_seen: 0,
            agent: None,
            tokens: BURST,
            refilled: Instant::now(),
            unreachable_counted: 0,
        }
    }

    /// The default policy's reputation, for what the node decides alone
    /// (pruning, `status`); commands ask the configured policy.
    pub fn reputation(&self) -> f64 {
        ggen_plugin_sdk::policy::default_reputation(self.successes, self.failures)
    }
}

#[derive(Default)]
pub struct Peers {
    pub(super) map: HashMap<PeerId, Peer>,
    /// What peers.json held of each peer when last read or written: what
    /// this process added since is what it adds to the file (see
    /// `peers_file`), so two processes do not overwrite each other's counts.
    pub(super) base: HashMap<PeerId, super::peers_file::Saved>,
    /// Peers this process dropped (pruned or past the cap), as the file
    /// held them: not written back unless another process changed them.
    pub(super) forgotten: HashMap<PeerId, super::peers_file::Saved>,
    /// Which peers.json this process last read or wrote: a change by
    /// another process is merged in at the next save.
    pub(super) file_stamp: Option<super::peers_file::Stamp>,
    /// What this process's statistics were when last loaded or saved.
    pub(super) saved_view: Vec<u8>,
    /// A peer was handed out for changing since `saved_view` was taken:
    /// until then a save need not serialise every peer to find no news.
    pub(super) touched: bool,
}

/// Whether two addresses lead to the same place, a trailing `/p2p/<id>` aside.
fn same_place(a: &Multiaddr, b: &Multiaddr) -> bool {
    without_peer(a.clone()) == without_peer(b.clone())
}

/// When to forget a peer (seeds §13.2 `prune_threshold`, `prune_after_days`).
#[derive(Debug, Clone, Copy)]
pub struct Prune {
    pub threshold: f64,
    pub after_days: u64,
}

impl Peers {
    /// The peer, to change: every change goes through here.
    pub fn entry(&mut self, id: PeerId) -> &mut Peer {
        self.touched = true;
        if !self.map.contains_key(&id)
            && self.map.len() >= MAX_PEERS
            && let Some(oldest) = self
                .map
                .iter()
                .filter(|(_, p)| !p.connected)
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(id, _)| *id)
        {
            self.map.remove(&oldest);
            if let Some(saved) = self.base.remove(&oldest) {
                self.forgotten.insert(oldest, saved);
            }
        }
        self.map.entry(id).or_insert_with(Peer::new)
    }

    /// The peer, noted as seen now: it connected, sent or answered something.
    pub fn seen(&mut self, id: PeerId) -> &mut Peer {
        let peer = self.entry(id);
        peer.last_seen = now();
        peer.unreachable_counted = 0;
        peer
    }

    pub fn get(&self, id: &PeerId) -> Option<&Peer> {
        self.map.get(id)
    }

    /// An address learned from the peer or the DHT, kept if there is room.
    pub fn add_address(&mut self, id: PeerId, addr: Multiaddr) {
        let peer = self.entry(id);
        if !peer.addresses.contains(&addr) && peer.addresses.len() < MAX_ADDRESSES {
            peer.addresses.push(addr);
        }
    }

    /// An address this node just connected through: first in the list, so
    /// addresses learned elsewhere (stale, or a hostile peer's) can never
    /// crowd out one that works.
    pub fn confirm_address(&mut self, id: PeerId, addr: Multiaddr) {
        let peer = self.entry(id);
        peer.addresses.retain(|a| *a != addr);
        peer.addresses.insert(0, addr);
        peer.addresses.truncate(MAX_ADDRESSES);
    }

    pub fn success(&mut self, id: PeerId) {
        let p = self.seen(id);
        p.successes = p.successes.saturating_add(1);
    }

    /// A failed dial or download, or something invalid the peer sent: not a
    /// sign of life, so `last_seen` stays.
    pub fn failure(&mut self, id: PeerId) {
        let p = self.entry(id);
        p.failures = p.failures.saturating_add(1);
    }

    /// A dial of addresses someone typed (`bootstrap`) that found no one
    /// there: it says the peer is away only if one of them is an address the
    /// peer was known at. Else it may be a typo: no peer is listed for it,
    /// nor is one that is up counted as away.
    pub fn unreachable_at(&mut self, id: PeerId, tried: &[Multiaddr]) {
        let known = self.map.get(&id).is_some_and(|p| {
            tried
                .iter()
                .any(|t| p.addresses.iter().any(|a| same_place(a, t)))
        });
        if known {
            self.unreachable(id);
        }
    }

    /// A dial that found no one there: counted apart from failures, once
    /// per `UNREACHABLE_COUNTS_EVERY` while the peer stays away.
    pub fn unreachable(&mut self, id: PeerId) {
        let peer = self.entry(id);
        let now = now();
        // A clock set back counts too, rather than never again.
        let since = now.checked_sub(peer.unreachable_counted);
        if peer.unreachable_counted == 0 || since.is_none_or(|s| s >= UNREACHABLE_COUNTS_EVERY) {
            peer.unreachable = peer.unreachable.saturating_add(1);
            peer.unreachable_counted = now;
        }
    }

    pub fn latency(&mut self, id: PeerId, ms: u64) {
        let p = self.seen(id);
        // Saturating: peers.json may hold anything.
        p.latency_total_ms = p.latency_total_ms.saturating_add(ms);
        p.latency_samples = p.latency_samples.saturating_add(1);
    }

    /// Take one message from the peer's flood bucket; false when it is empty.
    pub fn admit(&mut self, id: PeerId) -> bool {
        let p = self.seen(id);
        let elapsed = p.refilled.elapsed().as_secs_f64();
        p.refilled = Instant::now();
        p.tokens = (p.tokens + elapsed * PER_SECOND).min(BURST);
        if p.tokens >= 1.0 {
            p.tokens -= 1.0;
            true
        } else {
            p.rate_limited = p.rate_limited.saturating_add(1);
            false
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn average_reputation(&self) -> f64 {
        if self.map.is_empty() {
            return 0.0;
        }
        self.map.values().map(Peer::reputation).sum::<f64>() / self.map.len() as f64
    }

    pub fn view(&self, id: &PeerId) -> Option<PeerView> {
        self.map.get(id).map(|p| PeerView {
            peer_id: id.to_string(),
            addresses: p.addresses.iter().map(|a| a.to_string()).collect(),
            connected: p.connected,
            successes: p.successes,
            failures: p.failures,
            unreachable: p.unreachable,
            rate_limited: p.rate_limited,
            avg_latency_ms: p
                .latency_total_ms
                .checked_div(p.latency_samples as u64)
                .map_or(0, |ms| u32::try_from(ms).unwrap_or(u32::MAX)),
            last_seen: p.last_seen,
            reputation: p.reputation(),
            agent: p.agent.clone(),
        })
    }

    pub fn views(&self) -> Vec<PeerView> {
        let mut v: Vec<PeerView> = self.map.keys().filter_map(|id| self.view(id)).collect();
        v.sort_by(|a, b| {
            b.reputation
                .total_cmp(&a.reputation)
                .then(a.peer_id.cmp(&b.peer_id))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: std::time::Duration = std::time::Duration::from_secs(1);

    #[test]
    fn floods_are_limited_and_failures_lower_reputation() {
        let mut peers = Peers::default();
        let id = PeerId::random();
        let admitted = (0..1000).filter(|_| peers.admit(id)).count();
        assert!((200..=260).contains(&admitted), "{admitted}");
        assert!(peers.get(&id).unwrap().rate_limited >= 700);
        assert_eq!(peers.get(&id).unwrap().reputation(), 0.5);
        peers.failure(id);
        assert!(peers.get(&id).unwrap().reputation() < 0.5);
    }

    #[test]
    fn a_peer_that_stays_away_counts_once_and_keeps_its_reputation() {
        let mut peers = Peers::default();
        let id = PeerId::random();
        peers.success(id);
        for _ in 0..50 {
            peers.unreachable(id);
        }
        assert_eq!(peers.get(&id).unwrap().unreachable, 1);
        peers.seen(id);
        peers.unreachable(id);
        peers.unreachable(id);
        let peer = peers.get(&id).unwrap();
        assert_eq!((peer.unreachable, peer.failures), (2, 0));
        assert!(peer.reputation() > 0.5, "away is not misbehaving");
        // The next command, still finding it away, does not count it again
        // (each one used to).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        peers.save(&path, WAIT).unwrap();
        let prune = Prune {
            threshold: 0.1,
            after_days: 30,
        };
        let mut next = Peers::load(&path, prune);
        next.unreachable(id);
        assert_eq!(next.get(&id).unwrap().unreachable, 2);
        // Ten minutes on, it counts again.
        next.entry(id).unreachable_counted -= UNREACHABLE_COUNTS_EVERY;
        next.unreachable(id);
        assert_eq!(next.get(&id).unwrap().unreachable, 3);
    }

    #[test]
    fn an_address_that_worked_comes_first() {
        let mut peers = Peers::default();
        let id = PeerId::random();
        for port in 1..=MAX_ADDRESSES + 2 {
            peers.add_address(id, format!("/ip4/10.0.0.1/tcp/{port}").parse().unwrap());
        }
        let works: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        peers.confirm_address(id, works.clone());
        let addresses = &peers.get(&id).unwrap().addresses;
        assert_eq!(addresses.len(), MAX_ADDRESSES);
        assert_eq!(addresses[0], works);
        // Confirmed again, it is not listed twice.
        peers.confirm_address(id, works.clone());
        assert_eq!(peers.get(&id).unwrap().addresses.len(), MAX_ADDRESSES);
        assert_eq!(peers.get(&id).unwrap().addresses[0], works);
    }

    #[test]
    fn a_typed_address_that_fails_says_nothing_of_the_peer() {
        let mut peers = Peers::default();
        let (met, stranger) = (PeerId::random(), PeerId::random());
        let at: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        peers.confirm_address(met, at.clone());
        let typo: Multiaddr = format!("/ip4/127.0.0.1/tcp/4999/p2p/{met}")
            .parse()
            .unwrap();
        peers.unreachable_at(met, &[typo]);
        assert_eq!(peers.get(&met).unwrap().unreachable, 0, "a typo, not away");
        let right: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{met}")
            .parse()
            .unwrap();
        peers.unreachable_at(met, &[right]);
        assert_eq!(peers.get(&met).unwrap().unreachable, 1);
        peers.unreachable_at(stranger, &[at]);
        assert!(peers.get(&stranger).is_none(), "never met: not listed");
    }

    #[test]
    fn only_signs_of_life_count_as_seen() {
        let mut peers = Peers::default();
        let id = PeerId::random();
        peers.add_address(id, "/ip4/127.0.0.1/tcp/9".parse().unwrap());
        peers.failure(id);
        assert_eq!(peers.get(&id).unwrap().last_seen, 0, "given, never seen");
        peers.success(id);
        assert!(peers.get(&id).unwrap().last_seen >= now() - 1);
        // Past the cap, a peer never seen goes before one that was.
        let mut peers = Peers::default();
        let seen = PeerId::random();
        peers.seen(seen);
        for _ in 1..MAX_PEERS {
            peers.entry(PeerId::random());
        }
        peers.entry(PeerId::random());
        assert_eq!(peers.len(), MAX_PEERS);
        assert!(peers.get(&seen).is_some());
    }
}
