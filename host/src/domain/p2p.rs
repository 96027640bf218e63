//! The p2p commands (seeds §9.1 P2PCommand, flows.md P2P flows): publishing
//! to the network, searching local data, discovered packages and the DHT
//! (phases 1–3, merged by package name), peers and status. The network is a
//! `dyn Network`; without a reachable peer everything answers from local data.

use std::collections::BTreeMap;
use std::path::Path;

use ggen_plugin_sdk::search::rank_page;
use serde::Serialize;

use super::publish::{self, Prepared, PublishOptions, PublishReport};
use super::{MarketplaceError, PackageVersion, Query, Registry, Result};
use crate::backend::network::{AnnounceReport, Network, NetworkPackage, PeerView};
use crate::backend::p2p_policy::P2pPolicy;
use crate::backend::ranking::QueryMatcher;

/// Names looked up in the DHT per search.
const MAX_LOOKUPS: usize = 8;

#[derive(Debug, Clone, Serialize)]
pub struct P2pHit {
    #[serde(flatten)]
    pub package: PackageVersion,
    /// `local` or the publishing peer's id.
    pub source: String,
    /// `local`, `gossip` or `dht`.
    pub via: String,
    pub reputation: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct P2pSearchReport {
    pub query: Query,
    pub total: u64,
    pub results: Vec<P2pHit>,
    /// Why the network was not asked (offline mode), if it was not.
    pub offline: Option<String>,
    pub dht_lookups: Vec<String>,
    pub dht_timeouts: Vec<String>,
    /// Matching packages left out because every peer offering them is
    /// under `min_reputation`.
    pub hidden_by_reputation: usize,
    pub min_reputation: f64,
}

/// Every package of the local registry (newest versions) whose tarball is
/// what its metadata says: what a node puts in the DHT and serves, each
/// tarball copied (verified) into `serve_dir`. One that fails the check is
/// left out: its record would send peers after bytes nobody has.
pub fn local_packages(
    registry: &mut dyn Registry,
    serve_dir: &Path,
) -> Result<Vec<PackageVersion>> {
    let mut packages = registry.search(&Query::everything())?.hits;
    let mut failed = 0;
    packages.retain(
        |p| match super::serving::export_tarball(registry, p, serve_dir) {
            Ok(_) => true,
            Err(e) => {
                failed += 1;
                // Each error names its package and path: a lost tarball
                // directory or a full disk would repeat it for every one.
                if failed <= NAMED_FAILURES {
                    tracing::warn!("not serving or announcing {}@{}: {e}", p.name, p.version);
                }
                false
            }
        },
    );
    if let Some(more) = failed.checked_sub(NAMED_FAILURES).filter(|n| *n > 0) {
        tracing::warn!(
            "not serving or announcing {more} more package{} either (their tarballs could not be exported)",
            if more == 1 { "" } else { "s" }
        );
    }
    Ok(packages)
}

/// Export failures warned about one by one; the rest are counted.
const NAMED_FAILURES: usize = 3;

/// The words of a query that could be package names, for DHT lookups.
fn lookup_names(query: &Query) -> Vec<String> {
    let whole = query.text.trim().to_lowercase();
    let mut names = vec![whole.clone()];
    names.extend(whole.split_whitespace().map(str::to_owned));
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| super::manifest::validate_name(n).is_ok() && seen.insert(n.clone()));
    names.truncate(MAX_LOOKUPS);
    names
}

pub fn search(
    registry: &mut dyn Registry,
    network: &mut dyn Network,
    policy: &mut dyn P2pPolicy,
    query: &Query,
    min_reputation: f64,
) -> Result<P2pSearchReport> {
    // Phase 1 (the local registry) on this thread while phase 2 (discovered
    // packages and DHT lookups) runs on another; offline, the network side
    // answers from what the node already knows.
    let everything = Query {
        limit: u32::MAX,
        offset: 0,
        ..query.clone()
    };
    let offline = network.offline();
    // Offline there is no one to ask.
    let names = match offline {
        Some(_) => Vec::new(),
        None => lookup_names(query),
    };
    let (local, found) = std::thread::scope(|scope| {
        let remote = scope.spawn(|| network.search(&everything, &names));
        let local = registry.search(&everything);
        (
            local,
            remote.join().expect("the network search does not panic"),
        )
    });
    let (local, found) = (local?, found?);
    // The policy judges publishers and merges (phase 3: one entry per package).
    let now = now();
    let mut reputation = BTreeMap::new();
    for peer in &found.publishers {
        reputation.insert(peer.peer_id.clone(), policy.reputation(peer, now)?);
    }
    let matcher = QueryMatcher::new(query);
    let (remote, distrusted): (Vec<NetworkPackage>, Vec<NetworkPackage>) = found
        .hits
        .into_iter()
        .filter(|h| matcher.score(&h.package).is_some())
        .partition(|h| reputation.get(&h.publisher).copied().unwrap_or(0.0) >= min_reputation);
    // Said, not silently dropped: "no packages match" while peers offered
    // some sent users looking elsewhere.
    let shown = |name: &str| {
        remote.iter().any(|h| h.package.name == name) || local.hits.iter().any(|p| p.name == name)
    };
    let mut hidden: Vec<&str> = distrusted
        .iter()
        .map(|h| h.package.name.as_str())
        .filter(|n| !shown(n))
        .collect();
    hidden.sort_unstable();
    hidden.dedup();
    let hidden_by_reputation = hidden.len();
    let merged = policy.merge_results(
        vec![
            local.hits.clone(),
            remote.iter().map(|h| h.package.clone()).collect(),
        ],
        u32::MAX,
    )?;
    let merged: Vec<P2pHit> = merged
        .into_iter()
        .map(|package| {
            if local.hits.contains(&package) {
                return P2pHit {
                    package,
                    source: "local".into(),
                    via: "local".into(),
                    reputation: 1.0,
                };
            }
            let from = remote
                .iter()
                .find(|h| h.package == package)
                .expect("merged versions come from the sources");
            P2pHit {
                source: from.publisher.clone(),
                via: from.via.clone(),
                reputation: reputation.get(&from.publisher).copied().unwrap_or(0.0),
                package,
            }
        })
        .collect();
    let scored: Vec<(u32, P2pHit)> = merged
        .into_iter()
        .filter_map(|h| matcher.score(&h.package).map(|s| (s, h)))
        .collect();
    let (total, results) = rank_page(
        scored,
        |h| h.package.name.as_str(),
        query.offset,
        query.limit,
    );
    Ok(P2pSearchReport {
        query: query.clone(),
        total,
        results,
        offline,
        dht_lookups: found.dht_lookups,
        dht_timeouts: found.dht_timeouts,
        hidden_by_reputation,
        min_reputation,
    })
}

/// Unix seconds, for the policy's notion of age.
pub use crate::backend::network::unix_now as now;

/// Known peers with the policy's reputation, those under `min` left out.
pub fn peers(
    network: &mut dyn Network,
    policy: &mut dyn P2pPolicy,
    min: f64,
) -> Result<Vec<PeerView>> {
    let now = now();
    let mut peers = Vec::new();
    for mut peer in network.peers()? {
        peer.reputation = policy.reputation(&peer, now)?;
        if peer.reputation >= min {
            peers.push(peer);
        }
    }
    peers.sort_by(|a, b| {
        b.reputation
            .total_cmp(&a.reputation)
            .then(a.peer_id.cmp(&b.peer_id))
    });
    Ok(peers)
}

/// One peer with the policy's reputation.
pub fn peer(network: &mut dyn Network, policy: &mut dyn P2pPolicy, id: &str) -> Result<PeerView> {
    let mut peer = network.peer(id)?;
    peer.reputation = policy.reputation(&peer, now())?;
    Ok(peer)
}

#[derive(Debug, Clone, Serialize)]
pub struct P2pPublishReport {
    #[serde(flatten)]
    pub published: PublishReport,
    /// None when offline or when announcing failed (then only the local
    /// registry has it, until a node starts and announces it).
    pub announced: Option<Announced>,
    /// Why it was not announced.
    pub offline: Option<String>,
    /// The local registry held these exact bytes already (a retry after
    /// "Not announced"): only the announcement was left to do.
    pub already_published: bool,
}

/// What went out to the network: the package's newest version, which is
/// not the one published when that was an older line's release.
#[derive(Debug, Clone, Serialize)]
pub struct Announced {
    pub version: String,
    #[serde(flatten)]
    pub report: AnnounceReport,
}

/// Publish into the local registry, then go online (`open_network`), copy
/// the tarball where the node serves it from, put the record in the DHT and
/// the provider record, and announce it (seeds §4.2 "P2P Publish"). Online
/// comes last, so a package that cannot be published never waits for the
/// network or leaves a node's identity behind.
pub fn publish<L>(
    registry: &mut dyn Registry,
    open_network: impl FnOnce() -> Result<Box<dyn Network>>,
    package: Prepared,
    serve_dir: &Path,
    options: &PublishOptions,
    lock: impl FnOnce() -> Result<L>,
) -> Result<P2pPublishReport> {
    let published = publish::publish(registry, &package, options, lock);
    let (published, already_published) = match published {
        Err(MarketplaceError::AlreadyExists(why)) if !options.force => {
            match same_bytes_published(registry, &package)? {
                Some(report) => (report, true),
                None => return Err(MarketplaceError::AlreadyExists(why)),
            }
        }
        other => (other?, false),
    };
    // The package is published whatever happens next: a network that is
    // away or fails now (a node killed mid-request) leaves it unannounced,
    // which the next `p2p start` repairs, not a failed publish to retry.
    let (mut offline, mut announced) = (None, None);
    if !options.dry_run {
        match open_network() {
            Ok(mut network) => {
                offline = network.offline();
                if offline.is_none() {
                    match announce(registry, network.as_mut(), &published.name, serve_dir) {
                        Ok(a) => announced = Some(a),
                        Err(e) => offline = Some(format!("announcing failed: {e}")),
                    }
                }
            }
            Err(e) => offline = Some(format!("cannot go online: {e}")),
        }
    }
    Ok(P2pPublishReport {
        published,
        announced,
        offline,
        already_published,
    })
}

/// `package` packed as publishing would, when the registry holds exactly that
/// tarball for its version already.
fn same_bytes_published(
    registry: &mut dyn Registry,
    package: &Prepared,
) -> Result<Option<PublishReport>> {
    let check = PublishOptions {
        dry_run: true,
        force: true,
    };
    // A dry run takes no lock.
    let mut packed = publish::publish(registry, package, &check, || Ok(()))?;
    let stored = registry.get_package_version(&packed.name, &packed.version)?;
    packed.dry_run = false;
    packed.replaced = false;
    Ok((stored.checksum == packed.checksum).then_some(packed))
}

/// Serve and announce the newest version of `name`: the network holds one
/// record per package, as search shows it, even after a backport.
fn announce(
    registry: &mut dyn Registry,
    network: &mut dyn Network,
    name: &str,
    serve_dir: &Path,
) -> Result<Announced> {
    let package = registry.get_package(name)?;
    let meta = package.newest().cloned().ok_or_else(|| {
        MarketplaceError::NotFound(format!("{name} has no versions after publishing"))
    })?;
    super::serving::export_tarball(registry, &meta, serve_dir)?;
    Ok(Announced {
        report: network.announce(&meta)?,
        version: meta.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_names_are_valid_package_names() {
        let q = |t: &str| Query {
            text: t.into(),
            categories: vec![],
            tags: vec![],
            limit: 10,
            offset: 0,
        };
        assert_eq!(lookup_names(&q("rust-web")), ["rust-web"]);
        assert_eq!(lookup_names(&q("Rust Web")), ["rust", "web"]);
        assert!(lookup_names(&q("../x !!")).is_empty());
        // A repeated word takes one of the few lookups, not two.
        assert_eq!(lookup_names(&q("web rust web")), ["web", "rust"]);
    }
}
