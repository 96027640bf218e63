//! The P2P network as the domain sees it: plain data and one trait, no
//! libp2p types. `backend::p2p` implements it (feature `p2p`) for a node
//! running in another process (through its control socket) and for a
//! short-lived node inside this one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{PackageVersion, Query, Result};

/// A package learned from the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkPackage {
    pub package: PackageVersion,
    /// PeerId of the node that published it.
    pub publisher: String,
    /// `gossip` (an announcement this node received) or `dht` (a record lookup).
    pub via: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetworkSearch {
    pub hits: Vec<NetworkPackage>,
    /// What this node knows of each publisher among the hits.
    #[serde(default)]
    pub publishers: Vec<PeerView>,
    /// Names looked up in the DHT.
    pub dht_lookups: Vec<String>,
    /// Lookups that timed out.
    pub dht_timeouts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerView {
    pub peer_id: String,
    pub addresses: Vec<String>,
    pub connected: bool,
    pub successes: u32,
    pub failures: u32,
    /// Times dials found it away (not failures: see `Peer::unreachable`).
    #[serde(default)]
    pub unreachable: u32,
    /// Messages dropped by the flood limit.
    pub rate_limited: u32,
    /// Mean latency of answered requests, milliseconds.
    pub avg_latency_ms: u32,
    /// Unix seconds.
    pub last_seen: u64,
    pub reputation: f64,
    /// The agent string it announced through identify.
    pub agent: Option<String>,
}

impl PeerView {
    /// A peer this node has no statistics for.
    pub fn unknown(peer_id: String) -> Self {
        Self {
            peer_id,
            addresses: Vec::new(),
            connected: false,
            successes: 0,
            failures: 0,
            unreachable: 0,
            rate_limited: 0,
            avg_latency_ms: 0,
            last_seen: 0,
            reputation: 0.5,
            agent: None,
        }
    }
}

/// The seeds §11.2 metrics a node keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metrics {
    pub peer_count: usize,
    pub dht_queries: u64,
    pub dht_query_failures: u64,
    pub peer_reputation_avg: f64,
    pub cache_size: usize,
    pub cache_capacity: usize,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_hit_rate: f64,
    pub announcements_received: u64,
    pub announcements_sent: u64,
    pub messages_rejected: u64,
    pub messages_rate_limited: u64,
    pub records_rejected: u64,
    /// Other peers' provider records stored (they say they serve a
    /// tarball); absent from nodes of earlier ggen versions.
    #[serde(default)]
    pub provider_records_received: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub peer_id: String,
    pub listen_addresses: Vec<String>,
    pub connected_peers: Vec<String>,
    pub known_peers: usize,
    /// DHT records this node stores.
    pub records_held: usize,
    /// Tarballs this node serves to peers (every version it has a copy of).
    #[serde(default)]
    pub tarballs_served: usize,
    pub dht_server: bool,
    pub uptime_secs: u64,
    /// `running node` (reached through the control socket) or `client node` (short-lived).
    pub mode: String,
    /// Bootstrap dials still in progress.
    #[serde(default)]
    pub dials_in_flight: usize,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnnounceReport {
    /// Peers subscribed to the announcement topic when it was sent.
    pub gossip_peers: usize,
    /// Peers that stored the DHT record (besides this node).
    pub dht_peers: usize,
    /// Why the tarball got no provider record (this node serves it all the
    /// same: peers that know the node ask it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_provided: Option<String>,
}

/// What a long-running node did while starting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Started {
    pub status: NodeStatus,
    pub bootstrap: Option<BootstrapReport>,
}

/// What a starting node put in the DHT for its local registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordsPut {
    /// Records stored (on this node at least).
    pub records_put: usize,
    pub local_packages: usize,
    /// Records at least one peer acknowledged too.
    pub on_peers: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BootstrapReport {
    pub dialed: Vec<String>,
    /// Peers connected now that were dialled (or newly connected, for an
    /// address without a peer id): the dialled peers that answered.
    pub reached: Vec<String>,
    /// Every peer connected now, dialled or not.
    pub connected_peers: usize,
    /// The dialled addresses no peer answered at, and why (empty from a
    /// node of an earlier ggen).
    #[serde(default)]
    pub failed: Vec<DialFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DialFailure {
    pub address: String,
    pub error: String,
}

impl BootstrapReport {
    /// ` (addr: why; ...)` for the addresses no peer answered at, if the
    /// node said (one of an earlier ggen does not).
    pub fn failures(&self) -> String {
        if self.failed.is_empty() {
            return String::new();
        }
        let each: Vec<String> = (self.failed.iter())
            .map(|f| format!("{}: {}", f.address, f.error))
            .collect();
        format!(" ({})", each.join("; "))
    }
}

/// Unix seconds now (peer statistics and the P2P policy measure age in them).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `Send`: a search asks the network on a thread of its own while the
/// registry answers on the caller's.
pub trait Network: Send {
    /// Why the network is unusable right now (then commands work offline).
    fn offline(&self) -> Option<String>;
    fn status(&mut self) -> Result<NodeStatus>;
    fn peers(&mut self) -> Result<Vec<PeerView>>;
    fn peer(&mut self, peer_id: &str) -> Result<PeerView>;
    fn bootstrap(&mut self, addresses: &[String]) -> Result<BootstrapReport>;
    /// Put the package's record in the DHT and announce it on Gossipsub.
    fn announce(&mut self, package: &PackageVersion) -> Result<AnnounceReport>;
    /// Discovered packages matching `query`, plus DHT lookups of `names`.
    fn search(&mut self, query: &Query, names: &[String]) -> Result<NetworkSearch>;
    /// The peers providing a package's tarball, with what this node knows of them.
    fn providers(&mut self, package: &PackageVersion) -> Result<Vec<PeerView>>;
    /// Download a package's tarball into `dest` (verified), trying the peers
    /// in `order` until one delivers; returns its PeerId.
    fn fetch(&mut self, package: &PackageVersion, order: &[String], dest: &Path) -> Result<String>;
}

/// A network that cannot be used now (a running node that holds this
/// GGEN_HOME but does not answer): searches and installs go on offline with
/// local data, as they do without peers; what needs the node fails, saying why.
pub struct Unreachable(pub String);

impl Unreachable {
    fn fail<T>(&self) -> Result<T> {
        Err(super::MarketplaceError::Network(self.0.clone()))
    }
}

impl Network for Unreachable {
    fn offline(&self) -> Option<String> {
        Some(self.0.clone())
    }
    fn status(&mut self) -> Result<NodeStatus> {
        self.fail()
    }
    fn peers(&mut self) -> Result<Vec<PeerView>> {
        self.fail()
    }
    fn peer(&mut self, _: &str) -> Result<PeerView> {
        self.fail()
    }
    fn bootstrap(&mut self, _: &[String]) -> Result<BootstrapReport> {
        self.fail()
    }
    fn announce(&mut self, _: &PackageVersion) -> Result<AnnounceReport> {
        self.fail()
    }
    fn search(&mut self, _: &Query, _: &[String]) -> Result<NetworkSearch> {
        Ok(NetworkSearch::default())
    }
    fn providers(&mut self, _: &PackageVersion) -> Result<Vec<PeerView>> {
        Ok(Vec::new())
    }
    fn fetch(&mut self, _: &PackageVersion, _: &[String], _: &Path) -> Result<String> {
        self.fail()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrap_report_of_an_earlier_node_reads_and_says_no_more() {
        let old = r#"{"dialed": ["/ip4/127.0.0.1/tcp/9"], "reached": [], "connected_peers": 0}"#;
        let report: BootstrapReport = serde_json::from_str(old).unwrap();
        assert_eq!(report.failures(), "");
        let report = BootstrapReport {
            failed: vec![DialFailure {
                address: "/ip4/127.0.0.1/tcp/9".into(),
                error: "Connection refused".into(),
            }],
            ..report
        };
        assert_eq!(
            report.failures(),
            " (/ip4/127.0.0.1/tcp/9: Connection refused)"
        );
    }
}
