//! The handle to a node's event loop: async methods that send a command and
//! await its answer, each bounded by the configured timeouts.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libp2p::futures::future::{Either, join_all, ready};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::download::{Failure, culprits, download};
use super::event_loop::{Command, LAST_SAVE_WAIT};
use super::held_keys::Standing;
use super::transfer::digest_bytes;
use crate::backend::network::{
    AnnounceReport, BootstrapReport, DialFailure, NetworkSearch, NodeStatus, PeerView,
};
use crate::backend::{MarketplaceError, PackageVersion, Query, Result};

/// The event loop's answer to a command [`Client::send`] sent.
async fn answered<T>(rx: oneshot::Receiver<T>) -> Result<T> {
    rx.await.map_err(|_| stopped())
}

/// The answer to any command the event loop can no longer take.
fn stopped() -> MarketplaceError {
    MarketplaceError::Unsupported("the P2P node has stopped".into())
}

#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    /// Opens tarball streams directly, without the event loop.
    streams: libp2p_stream::Control,
    pub bootstrap_timeout: Duration,
    pub query_timeout: Duration,
}

/// This node's own addresses: its peer id, and where it listens.
struct Own {
    id: String,
    listening: HashSet<Multiaddr>,
}

impl Own {
    fn of(status: &NodeStatus) -> Self {
        Self {
            id: status.peer_id.clone(),
            listening: (status.listen_addresses.iter())
                .filter_map(|a| a.parse().ok())
                .map(without_peer)
                .collect(),
        }
    }

    fn is(&self, addr: &Multiaddr) -> bool {
        matches!(addr.iter().last(), Some(Protocol::P2p(p)) if p.to_string() == self.id)
            || self.listening.contains(&without_peer(addr.clone()))
    }
}

/// `addr` without its trailing `/p2p/<id>`, if it has one: where it leads.
pub fn without_peer(mut addr: Multiaddr) -> Multiaddr {
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// Tarballs from this size on come from several providers at once.
const PARALLEL_FROM: u64 = 8 << 20;
const PARALLEL_PEERS: usize = 3;

/// How long an announcement waits for a first topic peer when connected.
const TOPIC_WAIT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(25);
/// How long after an answer ended early its closed connection may still
/// be news to the swarm.
const CUT_SETTLES: Duration = Duration::from_millis(500);

impl Client {
    pub fn new(
        tx: mpsc::Sender<Command>,
        streams: libp2p_stream::Control,
        bootstrap_timeout: Duration,
        query_timeout: Duration,
    ) -> Self {
        Self {
            tx,
            streams,
            bootstrap_timeout,
            query_timeout,
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        answered(self.send(make).await?).await
    }

    /// Send a command and return the receiver of its answer: commands sent
    /// one after another reach the event loop in that order, however their
    /// answers are awaited (futures that each send and await their own
    /// could be polled out of order, under tokio's cooperative budget).
    async fn send<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<oneshot::Receiver<T>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| stopped())?;
        Ok(rx)
    }

    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }

    /// Resolves once the event loop has stopped: after its last save of
    /// peers.json, which may wait [`LAST_SAVE_WAIT`] for other processes'
    /// saves (a bound of 2 s cut it off, and 24 commands at once lost their
    /// news), plus the time to write the file.
    pub async fn closed(&self) {
        let bound = LAST_SAVE_WAIT + Duration::from_secs(5);
        let _ = tokio::time::timeout(bound, self.tx.closed()).await;
    }

    pub async fn status(&self) -> Result<NodeStatus> {
        self.ask(Command::Status).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerView>> {
        self.ask(Command::Peers).await
    }

    pub async fn peer(&self, peer_id: &str) -> Result<PeerView> {
        let id: PeerId = peer_id.parse().map_err(|e| {
            MarketplaceError::Validation(format!("`{peer_id}` is not a peer id ({e})"))
        })?;
        if self.status().await?.peer_id == peer_id {
            return Err(MarketplaceError::Validation(format!(
                "{peer_id} is this node's own peer id; `ggen marketplace p2p status` describes this node"
            )));
        }
        self.ask(|tx| Command::Peer(id, tx)).await?.ok_or_else(|| {
            MarketplaceError::NotFound(format!("this node has not met peer {peer_id}"))
        })
    }

    /// Dial `addresses` and wait (at most the bootstrap timeout) until one
    /// of them is connected or every dial has failed. Peers connected before
    /// do not count (a node with peers said an unreachable address worked).
    pub async fn bootstrap(&self, addresses: &[String]) -> Result<BootstrapReport> {
        // Each address once (however it is spelled), in the order given;
        // reported as it was given (`/ipfs/` and IPv6 addresses would come
        // back rewritten).
        let mut given: Vec<(Multiaddr, String)> = Vec::new();
        for a in addresses {
            let addr = parse_multiaddr(a)?;
            if !given.iter().any(|(seen, _)| *seen == addr) {
                given.push((addr, a.clone()));
            }
        }
        let spelled: HashMap<Multiaddr, String> = given.iter().cloned().collect();
        // The node's own addresses are not dialled: a failure like any
        // other (a list shared by every node, this one too, is common).
        let own = Own::of(&self.status().await?);
        let (own_addrs, addrs): (Vec<Multiaddr>, Vec<Multiaddr>) = given
            .iter()
            .map(|(a, _)| a.clone())
            .partition(|a| own.is(a));
        let own_addrs = own_addrs
            .into_iter()
            .map(|a| (a, "that is this node's own address".to_owned()));
        // Reached means one of these dials connected: a peer connected
        // already (at another address) does not make a dead address good.
        let (ids, not_dialled) = self.ask(|tx| Command::Dial(addrs, tx)).await?;
        let deadline = Instant::now() + self.bootstrap_timeout;
        loop {
            let outcome = self.ask(|tx| Command::DialOutcome(ids.clone(), tx)).await?;
            let silent = outcome.reached.is_empty() && Instant::now() >= deadline;
            if !outcome.reached.is_empty() || outcome.in_flight.is_empty() || silent {
                let waited = format!("no answer within {}s", self.bootstrap_timeout.as_secs());
                // The ones still being dialled after a success are left out.
                let still = (outcome.in_flight.into_iter())
                    .filter(|_| silent)
                    .map(|address| (address, waited.clone()));
                let failed = (own_addrs
                    .chain(not_dialled)
                    .chain(outcome.failed)
                    .chain(still))
                .map(|(address, error)| DialFailure {
                    address: spelled
                        .get(&address)
                        .cloned()
                        .unwrap_or(address.to_string()),
                    error,
                })
                .collect();
                return Ok(BootstrapReport {
                    dialed: given.into_iter().map(|(_, spelled)| spelled).collect(),
                    reached: outcome.reached.iter().map(|p| p.to_string()).collect(),
                    connected_peers: self.status().await?.connected_peers.len(),
                    failed,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Store the package's record in the DHT; how many peers acknowledged it.
    pub async fn put_record(&self, package: &PackageVersion, standing: Standing) -> Result<usize> {
        self.send_put(package, standing).await?.await
    }

    /// [`Self::put_record`] in two steps: the command is sent (in order,
    /// see [`Self::send`]) when this resolves; the future it returns waits
    /// for the answer.
    pub async fn send_put(
        &self,
        package: &PackageVersion,
        standing: Standing,
    ) -> Result<impl Future<Output = Result<usize>> + Send + 'static> {
        let answer = self
            .send(|tx| Command::Put(package.clone(), standing, tx))
            .await?;
        // Two queries: the closest peers, then the record to each of them.
        let within = self.query_timeout * 2;
        Ok(async move {
            tokio::time::timeout(within + Duration::from_secs(1), answered(answer))
                .await
                .map_err(|_| {
                    MarketplaceError::Unsupported(format!(
                        "storing the DHT record timed out after {}s",
                        within.as_secs()
                    ))
                })??
                .map_err(MarketplaceError::Unsupported)
        })
    }

    /// Serve the package's tarball (its newest version) if its verified copy
    /// is in the serve directory.
    pub async fn provide(&self, package: &PackageVersion, standing: Standing) -> Result<bool> {
        self.send_provide(package, standing).await?.await
    }

    /// [`Self::provide`] in two steps, as [`Self::send_put`].
    pub async fn send_provide(
        &self,
        package: &PackageVersion,
        standing: Standing,
    ) -> Result<impl Future<Output = Result<bool>> + Send + 'static> {
        Ok(match digest_bytes(&package.checksum) {
            Some(sha) => Either::Left(self.send_provide_as(sha, standing, Some(package)).await?),
            None => Either::Right(ready(Ok(false))),
        })
    }

    /// Serve the tarball with this sha256 if its verified copy is in the serve directory.
    pub async fn provide_digest(&self, sha256: [u8; 32], standing: Standing) -> Result<bool> {
        self.send_provide_as(sha256, standing, None).await?.await
    }

    /// Send the command that provides `sha256` (of `version_of`'s newest
    /// version, if given); the future it returns waits for the answer.
    async fn send_provide_as(
        &self,
        sha256: [u8; 32],
        standing: Standing,
        version_of: Option<&PackageVersion>,
    ) -> Result<impl Future<Output = Result<bool>> + Send + 'static> {
        let version_of = version_of.cloned();
        let answer = self
            .send(|tx| Command::Provide(sha256, standing, version_of, tx))
            .await?;
        Ok(async move { answered(answer).await?.map_err(MarketplaceError::Network) })
    }

    /// The peers providing `package`'s tarball, with this node's statistics.
    pub async fn providers(&self, package: &PackageVersion) -> Result<Vec<PeerView>> {
        let who = format!("{}@{}", package.name, package.version);
        let sha = digest_bytes(&package.checksum)
            .ok_or_else(|| MarketplaceError::Security(format!("{who} has a malformed checksum")))?;
        let ids = tokio::time::timeout(
            self.query_timeout + Duration::from_secs(1),
            self.ask(|tx| Command::Providers(sha, tx)),
        )
        .await
        .map_err(|_| {
            MarketplaceError::Network(format!("looking up providers of {who} timed out"))
        })??;
        let mut views = Vec::new();
        for id in ids {
            let view = self.ask(|tx| Command::Peer(id, tx)).await?;
            views.push(view.unwrap_or_else(|| PeerView::unknown(id.to_string())));
        }
        Ok(views)
    }

    /// Download `package`'s tarball into `dest`, trying the peers in `order`
    /// (the policy's ranking) and verifying its sha256. A large tarball of
    /// known size is first fetched from the top [`PARALLEL_PEERS`] providers
    /// at once, segment by segment; a segment a peer fails to deliver counts
    /// against that peer. Otherwise, or when the parts do not add up, the
    /// providers are tried one at a time: a provider that fails (wrong
    /// bytes, short stream, silence, missing) is penalised and the next one
    /// tried. Parts that did not add up are compared with the verified copy
    /// afterwards, and the peers that sent wrong ones are penalised too. A
    /// provider that disagrees with the record's size is not penalised for
    /// it (the record may be wrong): from then on each provider says the
    /// size and the checksum decides.
    /// Returns who delivered it.
    pub async fn fetch(
        &self,
        package: &PackageVersion,
        order: &[String],
        dest: &Path,
    ) -> Result<String> {
        let who = format!("{}@{}", package.name, package.version);
        let sha = digest_bytes(&package.checksum)
            .ok_or_else(|| MarketplaceError::Security(format!("{who} has a malformed checksum")))?;
        // 0: unknown (a lockfile without it); each provider is asked.
        let mut size = (package.size > 0).then_some(package.size);
        let mut peers = Vec::new();
        for id in order {
            peers.push(id.parse::<PeerId>().map_err(|e| {
                MarketplaceError::Validation(format!("`{id}` is not a peer id ({e})"))
            })?);
        }
        if peers.is_empty() {
            return Err(MarketplaceError::Network(format!(
                "no usable peer provides {who}"
            )));
        }
        let mut failures = Vec::new();
        let mut mixed = None;
        if size.is_some_and(|s| s >= PARALLEL_FROM) && peers.len() > 1 {
            let group: Vec<PeerId> = peers.iter().take(PARALLEL_PEERS).copied().collect();
            match self.download_from(&group, &sha, size, dest).await {
                Ok(()) => {
                    return Ok(group
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(","));
                }
                // (A cut is judged in `download_from`: never seen here.)
                Err(Failure::Peer(peer, why) | Failure::Cut(peer, why)) => {
                    tracing::warn!("peer {peer} failed to deliver part of {who}: {why}");
                    self.penalise(peer).await;
                    failures.push(format!("{peer}: {why}"));
                    peers.retain(|p| *p != peer);
                }
                Err(Failure::Mixed(senders)) => {
                    tracing::warn!(
                        "the parts of {who} from {} providers do not match its checksum; trying one provider at a time",
                        group.len()
                    );
                    let kept = set_aside(dest);
                    mixed = std::fs::rename(dest, &kept).ok().map(|()| (kept, senders));
                }
                Err(Failure::Size { peer, claimed }) => {
                    size = None;
                    warn_other_size(peer, &who, claimed, package.size);
                }
                Err(Failure::Unreachable(peer, why)) => {
                    tracing::warn!("peer {peer} cannot deliver part of {who}: {why}");
                    failures.push(format!("{peer}: {why}"));
                    peers.retain(|p| *p != peer);
                }
                Err(Failure::Local(why)) => return Err(MarketplaceError::Network(why)),
            }
        }
        let (mut delivered, mut penalised) = (None, HashSet::new());
        for peer in &peers {
            let mut result = self.download_from(&[*peer], &sha, size, dest).await;
            if let Err(Failure::Size { claimed, .. }) = result {
                // The record may be the one that is wrong: the checksum decides.
                size = None;
                warn_other_size(*peer, &who, claimed, package.size);
                result = self.download_from(&[*peer], &sha, size, dest).await;
            }
            match result {
                Ok(()) => {
                    delivered = Some(*peer);
                    break;
                }
                Err(Failure::Local(why)) => {
                    failures.push(why);
                    break;
                }
                Err(Failure::Unreachable(_, why)) => {
                    tracing::warn!(
                        "peer {peer} cannot deliver {who}: {why}; trying the next provider"
                    );
                    failures.push(format!("{peer}: {why}"));
                }
                Err(failure) => {
                    tracing::warn!(
                        "peer {peer} failed to deliver {who}: {failure}; trying the next provider"
                    );
                    self.penalise(*peer).await;
                    penalised.insert(*peer);
                    failures.push(format!("{peer}: {failure}"));
                }
            }
        }
        if let Some((kept, senders)) = mixed {
            if delivered.is_some() {
                // One that was only unreachable still answers for its parts.
                self.blame_wrong_parts(&who, &kept, dest, senders, &penalised)
                    .await;
            }
            let _ = std::fs::remove_file(&kept);
        }
        delivered.map(|p| p.to_string()).ok_or_else(|| {
            MarketplaceError::Network(format!(
                "every provider of {who} failed ({})",
                failures.join("; ")
            ))
        })
    }

    /// Penalise the peers whose parts of `kept` (a download from several
    /// peers that failed its checksum) differ from the verified `good`,
    /// unless already `penalised`.
    async fn blame_wrong_parts(
        &self,
        who: &str,
        kept: &Path,
        good: &Path,
        senders: Vec<PeerId>,
        penalised: &HashSet<PeerId>,
    ) {
        let (kept_path, good_path) = (kept.to_owned(), good.to_owned());
        let found =
            tokio::task::spawn_blocking(move || culprits(&kept_path, &good_path, &senders)).await;
        let found = match found.map_err(std::io::Error::other).and_then(|r| r) {
            Ok(found) => found,
            Err(e) => return tracing::debug!("cannot compare the parts of {who}: {e}"),
        };
        for peer in found.difference(penalised) {
            tracing::warn!("peer {peer} sent wrong parts of {who}");
            self.penalise(*peer).await;
        }
    }

    async fn penalise(&self, peer: PeerId) {
        let _ = self.tx.send(Command::Outcome(peer, None)).await;
    }

    /// An answer that ended early: the peer cut its stream short (a
    /// failure) while its connection stays open; a connection that closed
    /// too (it crashed, went offline) only means it is away. The swarm
    /// hears of the closed connection a moment after the stream does.
    async fn judge_cut(&self, peer: PeerId, why: String) -> Failure {
        let deadline = Instant::now() + CUT_SETTLES;
        loop {
            let connected = self
                .ask(|tx| Command::Peer(peer, tx))
                .await
                .ok()
                .flatten()
                .is_some_and(|view| view.connected);
            if !connected {
                return Failure::Unreachable(peer, format!("{why}: its connection closed"));
            }
            if Instant::now() >= deadline {
                return Failure::Peer(peer, why);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One download from `group`; on success each of them is credited with
    /// its latency (the failure cases are the caller's to judge).
    async fn download_from(
        &self,
        group: &[PeerId],
        sha: &[u8; 32],
        size: Option<u64>,
        dest: &Path,
    ) -> std::result::Result<(), Failure> {
        let started = Instant::now();
        match download(&self.streams, group, sha, size, dest, self.query_timeout).await {
            Ok(()) => {}
            Err(Failure::Cut(peer, why)) => return Err(self.judge_cut(peer, why).await),
            Err(failure) => return Err(failure),
        }
        let ms = started.elapsed().as_millis() as u64;
        for peer in group {
            let _ = self.tx.send(Command::Outcome(*peer, Some(ms))).await;
        }
        Ok(())
    }

    /// Store the record in the DHT and announce it on Gossipsub: a package
    /// published through this node, which takes the room of one it
    /// announced at start if there is no other.
    pub async fn announce(&self, package: &PackageVersion) -> Result<AnnounceReport> {
        // A node whose room for provider records is full (of packages
        // published through it) still puts the record and announces: it is
        // reported.
        let not_provided = match self.provide(package, Standing::Published).await {
            Ok(_) => None,
            Err(MarketplaceError::Network(why)) => Some(why),
            Err(e) => return Err(e),
        };
        let connected = !self.status().await?.connected_peers.is_empty();
        let put = self.put_record(package, Standing::Published).await?;
        // Subscriptions arrive just after a connection opens; give them a moment.
        if connected {
            let deadline = Instant::now() + TOPIC_WAIT.min(self.bootstrap_timeout);
            while self.ask(Command::TopicPeers).await? == 0 && Instant::now() < deadline {
                tokio::time::sleep(POLL).await;
            }
        }
        let gossip = self
            .ask(|tx| Command::Announce(package.clone(), tx))
            .await?
            .map_err(MarketplaceError::Unsupported)?;
        Ok(AnnounceReport {
            gossip_peers: gossip,
            dht_peers: put,
            not_provided,
        })
    }

    /// Discovered packages matching `query`, and DHT lookups of `names` (in parallel).
    pub async fn search(&self, query: &Query, names: &[String]) -> Result<NetworkSearch> {
        let mut result = NetworkSearch {
            hits: self
                .ask(|tx| Command::CacheSearch(query.clone(), tx))
                .await?,
            publishers: Vec::new(),
            dht_lookups: names.to_vec(),
            dht_timeouts: Vec::new(),
        };
        let lookups = names.iter().map(|name| async move {
            let asked = self.ask(|tx| Command::Get(name.clone(), tx));
            match tokio::time::timeout(self.query_timeout + Duration::from_secs(1), asked).await {
                Ok(Ok(Ok(found))) => (name, Ok(found)),
                Ok(Ok(Err(why))) => (name, Err(why)),
                Ok(Err(e)) => (name, Err(e.to_string())),
                Err(_) => (name, Err(format!("the DHT lookup of {name} timed out"))),
            }
        });
        for (name, answer) in join_all(lookups).await {
            match answer {
                Ok(Some(hit)) => result.hits.push(hit),
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!("{why}");
                    result.dht_timeouts.push(name.clone());
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for hit in &result.hits {
            if !seen.insert(hit.publisher.clone()) {
                continue;
            }
            let view = match hit.publisher.parse::<PeerId>() {
                Ok(id) => self.ask(|tx| Command::Peer(id, tx)).await?,
                Err(_) => None,
            };
            result
                .publishers
                .push(view.unwrap_or_else(|| PeerView::unknown(hit.publisher.clone())));
        }
        Ok(result)
    }
}

fn warn_other_size(peer: PeerId, who: &str, claimed: u64, recorded: u64) {
    tracing::warn!(
        "peer {peer} says {who} is {claimed} bytes, its record {recorded}; asking each provider, the checksum decides"
    );
}

/// Where a download that failed its checksum waits to be compared.
fn set_aside(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".mixed");
    PathBuf::from(name)
}

/// A listen address: as [`parse_multiaddr`], but naming no peer (a node
/// listens under its own id; another's was taken and ignored).
pub fn parse_listen_multiaddr(text: &str) -> Result<Multiaddr> {
    let addr = parse_multiaddr(text)?;
    if addr
        .iter()
        .any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
    {
        return Err(MarketplaceError::Validation(format!(
            "`{text}`: a listen address names no peer (the node listens under its own id); drop the /p2p/ part"
        )));
    }
    Ok(addr)
}

pub fn parse_multiaddr(text: &str) -> Result<Multiaddr> {
    let addr: Multiaddr = text.parse().map_err(|e| {
        MarketplaceError::Validation(format!(
            "`{text}` is not a multiaddr like /ip4/127.0.0.1/tcp/4001/p2p/<peer id> ({e})"
        ))
    })?;
    // The swarm has a TCP transport and no DNS resolver: anything else
    // (an empty address, /dns4, QUIC) could only fail later, silently.
    use libp2p::multiaddr::Protocol;
    let like = "give an address like /ip4/127.0.0.1/tcp/4001/p2p/<peer id>";
    let parts: Vec<Protocol> = addr.iter().collect();
    match parts.as_slice() {
        [Protocol::Ip4(_) | Protocol::Ip6(_), Protocol::Tcp(_)]
        | [
            Protocol::Ip4(_) | Protocol::Ip6(_),
            Protocol::Tcp(_),
            Protocol::P2p(_),
        ] => Ok(addr),
        [Protocol::Ip4(_) | Protocol::Ip6(_)] => Err(MarketplaceError::Validation(format!(
            "`{text}` has no port; {like}"
        ))),
        [Protocol::Ip4(_) | Protocol::Ip6(_), Protocol::Tcp(_), ..] => {
            Err(MarketplaceError::Validation(format!(
                "`{text}`: only one /p2p/<peer id> may follow the port; {like}"
            )))
        }
        _ => Err(MarketplaceError::Validation(format!(
            "`{text}`: ggen speaks TCP over IPv4 or IPv6 only; {like}"
        ))),
    }
}
