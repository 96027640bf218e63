//! The one task that owns the swarm: it answers [`Command`]s from client
//! handles and reacts to network events (validating every record and
//! announcement before use, counting bad ones against their sender).

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use libp2p::futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::kad::{
    self, GetProvidersOk, GetRecordOk, QueryId, QueryResult, Quorum, Record, store::RecordStore,
};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify};
use lru::LruCache;
use tokio::sync::{mpsc, oneshot};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::dials::{self, DialOutcome, Dials, why_failed};
use super::held_keys::{self, OwnKeys, Refused, Standing};
use super::lookup::Lookup;
use super::own_share;
use super::peers::Peers;
use super::record;
use super::remote_keys::{self, Claim, RemoteKeys};
use super::serve::Served;
use super::transfer::provider_key;
use crate::backend::network::{Metrics, NetworkPackage, NodeStatus, PeerView};
use crate::backend::ranking::QueryMatcher;
use crate::backend::{PackageVersion, Query};

/// How often changed peer statistics are written to peers.json.
const SAVE_PEERS_EVERY: Duration = Duration::from_secs(5);
/// How often a node without peers dials its bootstrap addresses again.
const REDIAL_EVERY: Duration = Duration::from_secs(30);
/// Bootstrap addresses kept for that (the first ones given).
const MAX_BOOTSTRAP: usize = 64;

/// Where a version stands among its package's (`PackageVersion::preference`).
type Preference = Option<(bool, semver::Version)>;

pub enum Command {
    Status(oneshot::Sender<NodeStatus>),
    Peers(oneshot::Sender<Vec<PeerView>>),
    Peer(PeerId, oneshot::Sender<Option<PeerView>>),
    /// Dial these addresses and start a DHT bootstrap; replies with the
    /// dials' connections and the errors of those that could not start.
    Dial(
        Vec<Multiaddr>,
        oneshot::Sender<(Vec<ConnectionId>, Vec<dials::Failed>)>,
    ),
    /// How the dials of these connections went so far.
    DialOutcome(Vec<ConnectionId>, oneshot::Sender<DialOutcome>),
    /// The package's record, from the cache or a DHT lookup (None: not found).
    Get(
        String,
        oneshot::Sender<Result<Option<NetworkPackage>, String>>,
    ),
    /// Store the package's record in the DHT; replies with how many peers
    /// took it. With no room left, one of a lower [`Standing`] gives way.
    Put(
        PackageVersion,
        Standing,
        oneshot::Sender<Result<usize, String>>,
    ),
    /// Announce on Gossipsub; replies with the topic's peer count.
    Announce(PackageVersion, oneshot::Sender<Result<usize, String>>),
    /// Peers currently subscribed to the announcement topic.
    TopicPeers(oneshot::Sender<usize>),
    /// Discovered packages matching a query.
    CacheSearch(Query, oneshot::Sender<Vec<NetworkPackage>>),
    /// Serve `<serve dir>/<hex>.tar.gz` and announce it in provider records;
    /// false when that file is not there, an error when no provider record
    /// can be stored for it. With no room left, one of a lower [`Standing`]
    /// gives up its provider record (and is still served). With the package
    /// version it is, the copy of the version it supersedes (the one the
    /// package's record holds) becomes [`Standing::Earlier`].
    Provide(
        [u8; 32],
        Standing,
        Option<PackageVersion>,
        oneshot::Sender<Result<bool, String>>,
    ),
    /// Peers (other than this node) providing a tarball.
    Providers([u8; 32], oneshot::Sender<Vec<PeerId>>),
    /// How a download from a peer went (latency in ms when it succeeded).
    Outcome(PeerId, Option<u64>),
    Shutdown,
}

/// How long the last save, on shutdown, waits for other processes' saves
/// (periodic ones never wait: the event loop goes on, the next one retries).
pub(super) const LAST_SAVE_WAIT: Duration = Duration::from_secs(10);

pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    topic: IdentTopic,
    peers: Peers,
    cache: LruCache<String, NetworkPackage>,
    pending_get: HashMap<QueryId, Lookup>,
    /// Records waiting for the peers closest to their key.
    pending_closest: HashMap<QueryId, (Record, oneshot::Sender<Result<usize, String>>)>,
    /// Records sent to those peers: how many were asked, who is waiting.
    pending_put: HashMap<QueryId, (usize, oneshot::Sender<Result<usize, String>>)>,
    peers_file: Option<PathBuf>,
    /// Verified tarballs this node serves (read by the serving tasks).
    serve_dir: PathBuf,
    served: Served,
    #[allow(clippy::type_complexity)]
    pending_providers: HashMap<QueryId, (HashSet<PeerId>, oneshot::Sender<Vec<PeerId>>)>,
    listen: Vec<Multiaddr>,
    /// Dials started by `Dial` (by connection: the DHT's own dials come
    /// and go meanwhile).
    dials: Dials,
    /// The addresses `bootstrap` was given, dialled again while this node
    /// has no peer at all.
    bootstrap: Vec<Multiaddr>,
    /// Package records and provider records held for other peers.
    remote_records: RemoteKeys,
    remote_providers: RemoteKeys,
    /// This node's own: the packages it announces, the tarballs it provides.
    own_records: OwnKeys,
    /// Peers connected now that were handed this node's own records.
    handed_own: HashSet<PeerId>,
    own_provided: OwnKeys,
    /// Per package, the copy provided as its newest, and which version it is.
    newest_copies: HashMap<String, (Preference, [u8; 32])>,
    metrics: Metrics,
    started: Instant,
    dht_server: bool,
    mode: &'static str,
}

impl EventLoop {
    pub fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        serve_dir: PathBuf,
        served: Served,
        cache_capacity: usize,
        dht_server: bool,
        mode: &'static str,
    ) -> Self {
        let cache_capacity = NonZeroUsize::new(cache_capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            swarm,
            commands,
            topic: IdentTopic::new(record::TOPIC),
            peers: Peers::default(),
            cache: LruCache::new(cache_capacity),
            pending_get: HashMap::new(),
            pending_closest: HashMap::new(),
            pending_put: HashMap::new(),
            peers_file: None,
            serve_dir,
            served,
            pending_providers: HashMap::new(),
            listen: Vec::new(),
            dials: Dials::default(),
            bootstrap: Vec::new(),
            remote_records: RemoteKeys::new(held_keys::REMOTE_RECORDS),
            remote_providers: RemoteKeys::new(held_keys::REMOTE_PROVIDED),
            own_records: OwnKeys::new(held_keys::LOCAL_RECORDS),
            handed_own: HashSet::new(),
            own_provided: OwnKeys::new(held_keys::LOCAL_PROVIDED),
            newest_copies: HashMap::new(),
            metrics: Metrics {
                cache_capacity: cache_capacity.get(),
                ..Metrics::default()
            },
            started: Instant::now(),
            dht_server,
            mode,
        }
    }

    /// Use statistics saved by an earlier run (peers.json); saved again
    /// every [`SAVE_PEERS_EVERY`] when they changed, and on shutdown.
    pub fn with_peers(mut self, peers: Peers, file: PathBuf) -> Self {
        self.peers = peers;
        self.peers_file = Some(file);
        self
    }

    pub async fn run(mut self) {
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&self.topic) {
            tracing::warn!("cannot subscribe to {}: {e}", record::TOPIC);
        }
        // A node killed (kill -9, power loss) lost every penalty it had
        // learned when they were written only on shutdown.
        // Not at once: a node just started has learned nothing yet.
        let mut save = tokio::time::interval_at(
            tokio::time::Instant::now() + SAVE_PEERS_EVERY,
            SAVE_PEERS_EVERY,
        );
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut redial =
            tokio::time::interval_at(tokio::time::Instant::now() + REDIAL_EVERY, REDIAL_EVERY);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // The error saving last failed with: warned about once per cause.
        let mut failing: Option<String> = None;
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = save.tick() => self.save_peers(&mut failing, Duration::ZERO),
                _ = redial.tick() => self.redial_bootstrap(),
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => {
                        self.save_peers(&mut failing, LAST_SAVE_WAIT);
                        break;
                    }
                    Some(command) => self.on_command(command),
                },
            }
        }
    }

    /// Dial `addr` as `bootstrap` asked (its outcome is kept for
    /// `DialOutcome`, and a failure judged as a typed address's).
    fn dial(&mut self, addr: Multiaddr) -> Result<ConnectionId, DialError> {
        let dial = DialOpts::from(addr.clone());
        let id = dial.connection_id();
        self.swarm.dial(dial)?;
        self.dials.started(id, addr);
        Ok(id)
    }

    /// A node that lost every peer (or never reached its bootstrap peers,
    /// down when it started) dials the bootstrap addresses again.
    fn redial_bootstrap(&mut self) {
        if self.swarm.connected_peers().next().is_some() {
            return;
        }
        for addr in self.bootstrap.clone() {
            if let Err(e) = self.dial(addr.clone()) {
                tracing::debug!("cannot dial {addr} again: {e}");
            }
        }
    }

    fn save_peers(&mut self, failing: &mut Option<String>, wait: Duration) {
        let Some(file) = &self.peers_file else {
            return;
        };
        match self.peers.save(file, wait) {
            Ok(()) => *failing = None,
            // Another process is saving: the next tick retries, no news.
            Err(e) if wait.is_zero() && e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => {
                // Once per cause, not every few seconds.
                let why = e.to_string();
                if failing.as_ref() != Some(&why) {
                    tracing::warn!("cannot save peer statistics to {}: {why}", file.display());
                    *failing = Some(why);
                }
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peers.views());
            }
            Command::Peer(id, reply) => {
                let _ = reply.send(self.peers.view(&id));
            }
            Command::Dial(addrs, reply) => {
                let (mut ids, mut errors) = (Vec::new(), Vec::new());
                for addr in addrs {
                    // Into the routing table and peers.json once a connection
                    // goes through it: a mistyped address or peer id must not
                    // be listed, nor handed to other peers by the DHT.
                    if !self.bootstrap.contains(&addr) && self.bootstrap.len() < MAX_BOOTSTRAP {
                        self.bootstrap.push(addr.clone());
                    }
                    match self.dial(addr.clone()) {
                        Ok(id) => ids.push(id),
                        Err(e) => errors.push((addr, why_failed(&e))),
                    }
                }
                let _ = self.swarm.behaviour_mut().kademlia.bootstrap();
                let _ = reply.send((ids, errors));
            }
            Command::DialOutcome(ids, reply) => {
                let _ = reply.send(self.dials.outcome(&ids));
            }
            Command::Get(name, reply) => {
                // Asked of the DHT even when the cache knows the package:
                // its publisher may have put a newer version since.
                match self.cache.contains(&name) {
                    true => self.metrics.cache_hits += 1,
                    false => self.metrics.cache_misses += 1,
                }
                self.metrics.dht_queries += 1;
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kademlia
                    .get_record(record::key(&name));
                self.pending_get.insert(id, Lookup::new(name, reply));
            }
            Command::Put(mut package, standing, reply) => {
                if super::serve::fault().as_deref() == Some("record-size") {
                    package.size += 1;
                }
                let record = Record {
                    key: record::key(&package.name),
                    value: record::encode(&package),
                    publisher: Some(*self.swarm.local_peer_id()),
                    expires: None,
                };
                // Stored here (as put_record does), then sent to the closest
                // peers in a query of its own: put_record's statistics count
                // the peer lookup too, which doubled "stored on N peers".
                let kademlia = &mut self.swarm.behaviour_mut().kademlia;
                if let Some(held) = record::stored(kademlia.store_mut(), &record.key)
                    && held.preference() > package.preference()
                {
                    // Published through this node since the start-up list
                    // was read, or another peer's: the DHT holds each
                    // package's newest.
                    let _ = reply.send(Err(format!(
                        "the network's record of {} holds a newer version ({}) than {}",
                        package.name, held.version, package.version
                    )));
                    return;
                }
                if let Some(old) = self.own_records.make_room_for(&record.key, standing) {
                    kademlia.store_mut().remove(&old);
                    tracing::info!("a package's DHT record gave its room to {}", package.name);
                }
                let stored = (self.own_records).hold(&record.key, standing, || {
                    kademlia.store_mut().put(record.clone())
                });
                if let Err(refused) = stored {
                    let _ = reply.send(Err(match refused {
                        Refused::Full(n) => format!(
                            "this node announces {n} packages already, the most it holds records for"
                        ),
                        Refused::Store(e) => format!("cannot store the record ({e:?})"),
                    }));
                    return;
                }
                self.metrics.dht_queries += 1;
                // Its own now, if another peer's record held the key.
                self.remote_records.release(&record.key);
                let id = kademlia.get_closest_peers(record.key.to_vec());
                self.pending_closest.insert(id, (record, reply));
            }
            Command::Announce(package, reply) => {
                let peers = self.topic_peers();
                let result = match self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(self.topic.clone(), record::encode(&package))
                {
                    Ok(_) => {
                        self.metrics.announcements_sent += 1;
                        Ok(peers)
                    }
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(0),
                    Err(e) => Err(format!("cannot announce: {e}")),
                };
                let _ = reply.send(result);
            }
            Command::TopicPeers(reply) => {
                let _ = reply.send(self.topic_peers());
            }
            Command::CacheSearch(query, reply) => {
                let hits = self.cache_search(&query);
                if hits.is_empty() {
                    self.metrics.cache_misses += 1;
                } else {
                    self.metrics.cache_hits += 1;
                }
                let _ = reply.send(hits);
            }
            Command::Provide(sha, mut standing, version_of, reply) => {
                let path = self.serve_dir.join(format!("{}.tar.gz", hex::encode(sha)));
                let provided = if path.is_file() {
                    self.served.insert(sha, path);
                    if let Some(package) = &version_of {
                        standing = self.supersede(package, sha, standing);
                    }
                    // Served all the same: a peer that knows this node asks it.
                    let key = provider_key(&sha);
                    let kademlia = &mut self.swarm.behaviour_mut().kademlia;
                    if let Some(old) = self.own_provided.make_room_for(&key, standing) {
                        kademlia.stop_providing(&old);
                    }
                    (self.own_provided)
                        .hold(&key, standing, || kademlia.start_providing(key.clone()))
                        .map(|_| true)
                        .map_err(|refused| match refused {
                            Refused::Full(n) => format!(
                                "this node provides {n} tarballs already, the most it announces (peers that ask this node still get them)"
                            ),
                            Refused::Store(e) => format!(
                                "no provider record could be stored for it ({e:?}); peers that ask this node still get it"
                            ),
                        })
                } else {
                    Ok(false)
                };
                let _ = reply.send(provided);
            }
            Command::Providers(sha, reply) => {
                self.metrics.dht_queries += 1;
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kademlia
                    .get_providers(provider_key(&sha));
                self.pending_providers.insert(id, (HashSet::new(), reply));
            }
            Command::Outcome(peer, latency) => match latency {
                Some(ms) => {
                    self.peers.success(peer);
                    self.peers.latency(peer, ms);
                }
                None => self.peers.failure(peer),
            },
            Command::Shutdown => {}
        }
    }

    /// `package`'s tarball (`sha`) is to be provided as its newest, at
    /// `standing`: the copy that was provided as its newest before (an
    /// older version, or bytes a forced publish replaced) becomes an older
    /// copy, and gives way first when room is short. If that copy is of a
    /// newer version (published through the node while it was starting),
    /// this one is the older copy: the standing it gets.
    fn supersede(
        &mut self,
        package: &PackageVersion,
        sha: [u8; 32],
        standing: Standing,
    ) -> Standing {
        let version = package.preference();
        if let Some((newest, old)) = self.newest_copies.get(&package.name)
            && *old != sha
        {
            if *newest > version {
                return Standing::Earlier;
            }
            (self.own_provided).lower(&provider_key(old), Standing::Earlier);
        }
        (self.newest_copies).insert(package.name.clone(), (version, sha));
        standing
    }

    /// Providers other than this node (the P2P policy orders them).
    fn others(&self, peers: HashSet<PeerId>) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = peers
            .into_iter()
            .filter(|p| p != self.swarm.local_peer_id())
            .collect();
        peers.sort();
        peers
    }

    fn topic_peers(&self) -> usize {
        let hash = self.topic.hash();
        self.swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&hash))
            .count()
    }

    fn cache_search(&mut self, query: &Query) -> Vec<NetworkPackage> {
        let matcher = QueryMatcher::new(query);
        self.cache
            .iter()
            .filter(|(_, hit)| matcher.score(&hit.package).is_some())
            .map(|(_, hit)| hit.clone())
            .collect()
    }

    /// Put this node's own newest records on `peer`, a DHT server that has
    /// just connected, once per connection, while the network is small
    /// (see own_share.rs).
    fn hand_own_records(&mut self, peer: PeerId) {
        let kademlia = &mut self.swarm.behaviour_mut().kademlia;
        let table: usize = kademlia.kbuckets().map(|b| b.num_entries()).sum();
        if !own_share::small_network(table) || !self.handed_own.insert(peer) {
            return;
        }
        for record in own_share::newest_own(&self.own_records, kademlia.store_mut()) {
            kademlia.put_record_to(record, std::iter::once(peer), Quorum::One);
        }
    }

    /// Answer lookup `id` (if still waiting) with the newest record found,
    /// else the cache's, else a timeout (`timed_out`) or nothing.
    fn end_lookup(&mut self, id: QueryId, timed_out: bool) {
        if let Some(lookup) = self.pending_get.remove(&id) {
            let cached = self.cache.get(&lookup.name).cloned();
            let failed = timed_out.then(|| format!("the DHT lookup of {} timed out", lookup.name));
            lookup.answer(cached, failed);
        }
    }

    /// Keep the newer version when a package is learned twice.
    fn remember(&mut self, hit: NetworkPackage) {
        let newer = match self.cache.peek(&hit.package.name) {
            Some(old) => hit.package.preference() >= old.package.preference(),
            None => true,
        };
        if newer {
            self.cache.put(hit.package.name.clone(), hit);
        }
        self.metrics.cache_size = self.cache.len();
    }

    fn status(&mut self) -> NodeStatus {
        let records_held = self.records_held();
        let connected: Vec<String> = self
            .swarm
            .connected_peers()
            .map(|p| p.to_string())
            .collect();
        let mut metrics = self.metrics.clone();
        metrics.peer_count = connected.len();
        metrics.peer_reputation_avg = self.peers.average_reputation();
        metrics.cache_size = self.cache.len();
        let lookups = metrics.cache_hits + metrics.cache_misses;
        metrics.cache_hit_rate = if lookups == 0 {
            0.0
        } else {
            metrics.cache_hits as f64 / lookups as f64
        };
        let local = *self.swarm.local_peer_id();
        let mut listen: Vec<String> = self
            .listen
            .iter()
            .map(|a| a.clone().with(Protocol::P2p(local)).to_string())
            .collect();
        listen.sort();
        NodeStatus {
            peer_id: local.to_string(),
            listen_addresses: listen,
            connected_peers: connected,
            known_peers: self.peers.len(),
            records_held,
            tarballs_served: self.served.len(),
            dht_server: self.dht_server,
            uptime_secs: self.started.elapsed().as_secs(),
            mode: self.mode.to_owned(),
            dials_in_flight: self.dials.in_flight(),
            metrics,
        }
    }

    fn records_held(&mut self) -> usize {
        self.swarm
            .behaviour_mut()
            .kademlia
            .store_mut()
            .records()
            .count()
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::debug!("listening on {address}");
                self.listen.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen.retain(|a| a != &address);
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!("dial failed: {error}");
                let typed = self.dials.ended(connection_id, Err(why_failed(&error)));
                // Unreachable counts against a peer; a dial cut short because
                // another succeeded, or an address of someone else, does not.
                if let (Some(peer), DialError::Transport(tried)) = (peer_id, &error) {
                    if typed {
                        let tried: Vec<Multiaddr> = tried.iter().map(|(a, _)| a.clone()).collect();
                        self.peers.unreachable_at(peer, &tried);
                    } else {
                        self.peers.unreachable(peer);
                    }
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                self.dials.ended(connection_id, Ok(peer_id));
                let peer = self.peers.seen(peer_id);
                peer.connected = true;
                if endpoint.is_dialer() {
                    let addr = endpoint.get_remote_address().clone();
                    self.peers.confirm_address(peer_id, addr.clone());
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer_id, addr);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                // Connected until now: seen now.
                self.peers.seen(peer_id).connected = false;
                // Back later, it may have lost what it held (a restart).
                self.handed_own.remove(&peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info.protocols.contains(&super::behaviour::KAD_PROTOCOL) {
                    self.hand_own_records(peer_id);
                }
                self.peers.seen(peer_id).agent = Some(info.agent_version.clone());
                for addr in info.listen_addrs {
                    self.peers.add_address(peer_id, addr.clone());
                    self.swarm
                        .behaviour_mut()
                        .kademlia
                        .add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_announcement(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Kademlia(event)) => self.on_kad(event),
            _ => {}
        }
    }

    fn on_announcement(
        &mut self,
        from: PeerId,
        id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        let acceptance = if !self.peers.admit(from) {
            self.metrics.messages_rate_limited += 1;
            // A sustained flood counts against the sender too.
            if self
                .peers
                .get(&from)
                .is_some_and(|p| p.rate_limited % 100 == 0)
            {
                self.peers.failure(from);
            }
            MessageAcceptance::Ignore
        } else {
            match record::decode(&message.data) {
                // Only answers to our own requests earn credit: accepting
                // unsolicited messages must not let a peer farm reputation.
                Ok(package) => {
                    self.metrics.announcements_received += 1;
                    let publisher = message.source.unwrap_or(from).to_string();
                    self.remember(NetworkPackage {
                        package,
                        publisher,
                        via: "gossip".into(),
                    });
                    MessageAcceptance::Accept
                }
                Err(why) => {
                    tracing::info!("rejected an announcement from {from}: {why}");
                    self.metrics.messages_rejected += 1;
                    self.peers.failure(from);
                    if let Some(author) = message.source.filter(|a| *a != from) {
                        self.peers.failure(author);
                    }
                    MessageAcceptance::Reject
                }
            }
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &from, acceptance);
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::AddProvider {
                        record: Some(record),
                    },
            } => {
                // Filtering hands these to us as well (they were never
                // stored, so only a provider itself could say it provides).
                let store = self.swarm.behaviour_mut().kademlia.store_mut();
                if remote_keys::hold_provider(&mut self.remote_providers, store, record) {
                    self.metrics.provider_records_received += 1;
                }
            }
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => match record::decode_record(&record.key, &record.value) {
                Ok(package) => {
                    let store = self.swarm.behaviour_mut().kademlia.store_mut();
                    // This node's own record stays its own against the same
                    // version (its own record replicated back to it, or the
                    // same package announced by another peer).
                    let own = self.own_records.holds(&record.key);
                    let new = package.preference();
                    let old = record::stored(store, &record.key).map(|old| old.preference());
                    let keep_old = old
                        .as_ref()
                        .is_some_and(|old| *old > new || (own && *old == new));
                    if !keep_old {
                        let key = record.key.clone();
                        let publisher = record.publisher.unwrap_or(source).to_string();
                        let claim = Claim {
                            peer: source,
                            rank: package.published(),
                            newer: old.is_some_and(|old| old < new),
                        };
                        let remote = &mut self.remote_records;
                        if remote_keys::hold_record(remote, store, record, claim) {
                            // Held for that peer now, whoever's it was.
                            self.own_records.release(&key);
                            // What an announcement told the cache is
                            // superseded (a cache search showed it still).
                            if self.cache.contains(&package.name) {
                                self.remember(NetworkPackage {
                                    package,
                                    publisher,
                                    via: "dht".into(),
                                });
                            }
                        }
                    }
                }
                Err(why) => {
                    tracing::info!("rejected a DHT record from {source}: {why}");
                    self.metrics.records_rejected += 1;
                    self.peers.failure(source);
                }
            },
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                stats: _,
                step,
            } => match result {
                QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(found))) => {
                    let from = found.peer.or(found.record.publisher);
                    match record::decode_record(&found.record.key, &found.record.value) {
                        Ok(package) => {
                            // Latency only: reputation is earned by delivering
                            // tarballs (ADR-004), not by answering lookups.
                            if let Some(p) = found.peer
                                && let Some(lookup) = self.pending_get.get(&id)
                            {
                                self.peers
                                    .latency(p, lookup.asked.elapsed().as_millis() as u64);
                            }
                            let hit = NetworkPackage {
                                publisher: found
                                    .record
                                    .publisher
                                    .map(|p| p.to_string())
                                    .unwrap_or_default(),
                                via: "dht".into(),
                                package,
                            };
                            self.remember(hit.clone());
                            let enough =
                                (self.pending_get.get_mut(&id)).is_some_and(|l| l.found(hit));
                            if enough {
                                self.end_lookup(id, false);
                                if let Some(mut q) =
                                    self.swarm.behaviour_mut().kademlia.query_mut(&id)
                                {
                                    q.finish();
                                }
                            }
                        }
                        Err(why) => {
                            self.metrics.records_rejected += 1;
                            if let Some(p) = from {
                                tracing::info!("rejected a DHT record from {p}: {why}");
                                self.peers.failure(p);
                            }
                        }
                    }
                }
                QueryResult::GetRecord(Ok(GetRecordOk::FinishedWithNoAdditionalRecord {
                    ..
                })) => self.end_lookup(id, false),
                QueryResult::GetRecord(Err(e)) => {
                    let timed_out = matches!(e, kad::GetRecordError::Timeout { .. });
                    if timed_out && self.pending_get.contains_key(&id) {
                        self.metrics.dht_query_failures += 1;
                    }
                    self.end_lookup(id, timed_out);
                }
                QueryResult::GetProviders(result) => {
                    let last = step.last;
                    let finished = match result {
                        Ok(GetProvidersOk::FoundProviders { providers, .. }) => {
                            if let Some((found, _)) = self.pending_providers.get_mut(&id) {
                                found.extend(providers);
                            }
                            last
                        }
                        Ok(GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => true,
                        Err(_) => {
                            self.metrics.dht_query_failures += 1;
                            true
                        }
                    };
                    if finished && let Some((found, reply)) = self.pending_providers.remove(&id) {
                        let _ = reply.send(self.others(found));
                    }
                }
                QueryResult::GetClosestPeers(result) if step.last => {
                    if let Some((record, reply)) = self.pending_closest.remove(&id) {
                        let peers = match result {
                            Ok(found) => found.peers,
                            Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                        };
                        if peers.is_empty() {
                            let _ = reply.send(Ok(0));
                            return;
                        }
                        let asked = peers.len();
                        let id = self.swarm.behaviour_mut().kademlia.put_record_to(
                            record,
                            peers.into_iter().map(|p| p.peer_id),
                            Quorum::All,
                        );
                        self.pending_put.insert(id, (asked, reply));
                    }
                }
                QueryResult::PutRecord(result) => {
                    if let Some((asked, reply)) = self.pending_put.remove(&id) {
                        // Acknowledged, which a peer that rejects the record
                        // (after validating it) does too: kad answers first.
                        let stored = match result {
                            Ok(_) => asked,
                            Err(kad::PutRecordError::QuorumFailed { success, .. }) => success.len(),
                            Err(kad::PutRecordError::Timeout { success, .. }) => {
                                self.metrics.dht_query_failures += 1;
                                success.len()
                            }
                        };
                        let _ = reply.send(Ok(stored));
                    }
                }
                _ => {}
            },
            kad::Event::RoutingUpdated {
                peer, addresses, ..
            } => {
                for addr in addresses.iter() {
                    self.peers.add_address(peer, addr.clone());
                }
            }
            _ => {}
        }
    }
}
