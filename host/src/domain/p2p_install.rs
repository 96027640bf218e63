//! Installing from peers (seeds §14.1 "P2P Package Download", flows.md
//! "Error Handling and Fallback Flow"): the network, seen as a read-only
//! `Registry` (metadata from DHT records, tarballs from providers, verified
//! while streaming), drives the unchanged install transaction. Any P2P
//! failure falls back to the file registry with a warning.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use super::install::{Backends, InstallOptions, InstallReport, Spec, install};
use super::installed::Origin;
use super::{
    MarketplaceError, Package, PackageVersion, Query, Registry, RegistryMetadata, Result,
    SearchResults,
};
use crate::backend::download_dir::DownloadDir;
use crate::backend::network::{Network, PeerView};
use crate::backend::p2p_policy::P2pPolicy;

/// How ggen.lock's `source` starts for a package delivered by a peer.
pub const SOURCE_PREFIX: &str = "p2p+";

/// A registry-only install of `specs` that found a package missing: when
/// ggen.lock says peers delivered some of them, the error says where to look.
pub fn hint_peers(e: MarketplaceError, root: &Path, specs: &[Spec]) -> MarketplaceError {
    let MarketplaceError::NotFound(why) = e else {
        return e;
    };
    let locked = super::installed::read(root)
        .map(|l| l.packages)
        .unwrap_or_default();
    let delivered: Vec<&str> = (locked.iter())
        .filter(|l| {
            Origin::of(&l.source) == Origin::Peers && specs.iter().any(|s| s.name == l.name)
        })
        .map(|l| l.name.as_str())
        .collect();
    if delivered.is_empty() {
        return MarketplaceError::NotFound(why);
    }
    MarketplaceError::NotFound(format!(
        "{why}; {} came from peers (ggen.lock): add --p2p to fetch from them",
        delivered.join(", ")
    ))
}

/// The P2P network as an install source.
pub struct P2pSource<'a> {
    network: &'a mut dyn Network,
    policy: &'a mut dyn P2pPolicy,
    min_reputation: f64,
    downloads: DownloadDir,
    /// What the network answered for each name (None: nothing), so that
    /// each costs one DHT query per install.
    known: HashMap<String, Option<PackageVersion>>,
    /// Packages pinned to what ggen.lock records: fetched by that record,
    /// never by the DHT's (see [`locked_metadata`]).
    locked: HashMap<String, PackageVersion>,
    delivered_by: HashMap<String, String>,
}

impl<'a> P2pSource<'a> {
    pub fn new(
        network: &'a mut dyn Network,
        policy: &'a mut dyn P2pPolicy,
        min_reputation: f64,
        downloads_in: &Path,
    ) -> Result<Self> {
        Ok(Self {
            network,
            policy,
            min_reputation,
            downloads: DownloadDir::create(downloads_in).map_err(|e| {
                MarketplaceError::storage(
                    format!(
                        "cannot create a download directory in {}",
                        downloads_in.display()
                    ),
                    e,
                )
            })?,
            known: HashMap::new(),
            locked: HashMap::new(),
            delivered_by: HashMap::new(),
        })
    }

    fn lookup(&mut self, name: &str) -> Result<Option<PackageVersion>> {
        if let Some(p) = self.locked.get(name) {
            return Ok(Some(p.clone()));
        }
        if let Some(known) = self.known.get(name) {
            return Ok(known.clone());
        }
        let query = Query {
            text: name.to_owned(),
            categories: Vec::new(),
            tags: Vec::new(),
            limit: 10,
            offset: 0,
        };
        let found = self.network.search(&query, &[name.to_owned()])?;
        let best = found
            .hits
            .into_iter()
            .filter(|h| h.package.name == name)
            .max_by_key(|h| h.package.preference())
            .map(|h| h.package);
        self.known.insert(name.to_owned(), best.clone());
        Ok(best)
    }

    /// The record of `name`@`version`, as a peer put it.
    fn record(&mut self, name: &str, version: &str) -> Result<PackageVersion> {
        match self.lookup(name)? {
            Some(p) if p.version == version => Ok(p),
            Some(p) => Err(MarketplaceError::NotFound(format!(
                "{name}@{version} is not on the P2P network: peers announce each package's newest version only, now {}",
                p.version
            ))),
            None => Err(MarketplaceError::NotFound(format!(
                "{name}@{version} is not on the P2P network"
            ))),
        }
    }

    /// Why no provider of `meta` is left to download from.
    fn no_usable_provider(
        &mut self,
        meta: &PackageVersion,
        providers: &[PeerView],
        now: u64,
    ) -> MarketplaceError {
        let who = format!("{}@{}", meta.name, meta.version);
        if providers.is_empty() {
            return MarketplaceError::Network(format!("no peer provides the tarball of {who}"));
        }
        let min = self.min_reputation;
        let below = (providers.iter())
            .filter(|p| self.policy.reputation(p, now).is_ok_and(|r| r < min))
            .count();
        let n = providers.len();
        let why = if below == n {
            format!(
                "every provider ({n}) is under the minimum reputation {min} (see `ggen marketplace p2p peer-list`; config.toml [marketplace.p2p.reputation] min_reputation sets it)"
            )
        } else {
            format!(
                "the P2P policy left out every provider ({n}; {below} under the minimum reputation {min})"
            )
        };
        MarketplaceError::Network(format!("no usable peer provides {who}: {why}"))
    }
}

/// A record's size is only its publisher's word (the download uses it as
/// a hint): the install checks the checksum alone.
fn unverified_size(record: PackageVersion) -> PackageVersion {
    PackageVersion { size: 0, ..record }
}

fn read_only(what: &str) -> MarketplaceError {
    MarketplaceError::Unsupported(format!("the P2P network cannot {what} here"))
}

impl Registry for P2pSource<'_> {
    fn describe(&self) -> String {
        "the P2P network's records".into()
    }
    fn search_command(&self) -> &'static str {
        "ggen marketplace p2p search WORDS"
    }
    fn search(&mut self, _: &Query) -> Result<SearchResults> {
        Err(read_only("search through the install source"))
    }
    fn get_package(&mut self, name: &str) -> Result<Package> {
        Ok(Package {
            name: name.to_owned(),
            versions: self.list_versions(name)?,
        })
    }
    fn get_package_version(&mut self, name: &str, version: &str) -> Result<PackageVersion> {
        self.record(name, version).map(unverified_size)
    }

    /// Peers publish one record per package: its newest version.
    fn list_versions(&mut self, name: &str) -> Result<Vec<PackageVersion>> {
        Ok(self
            .lookup(name)?
            .into_iter()
            .map(unverified_size)
            .collect())
    }
    fn publish(
        &mut self,
        _: &PackageVersion,
        _: &str,
        _: Box<dyn Read + Send>,
        _: bool,
    ) -> Result<()> {
        Err(read_only("publish"))
    }
    fn delete(&mut self, _: &str, _: &str) -> Result<()> {
        Err(read_only("delete"))
    }
    fn exists(&mut self, name: &str) -> Result<bool> {
        Ok(self.lookup(name)?.is_some())
    }
    fn metadata(&mut self) -> Result<RegistryMetadata> {
        Err(read_only("describe itself"))
    }
    fn open_tarball<'b>(&'b mut self, name: &str, version: &str) -> Result<Box<dyn Read + 'b>> {
        let meta = self.record(name, version)?;
        let dest = self
            .downloads
            .path()
            .join(format!("{name}-{version}.tar.gz"));
        let providers = self.network.providers(&meta)?;
        let now = super::p2p::now();
        let order = self
            .policy
            .rank_providers(&providers, self.min_reputation, now)?;
        if order.is_empty() {
            return Err(self.no_usable_provider(&meta, &providers, now));
        }
        let peer = self.network.fetch(&meta, &order, &dest)?;
        self.delivered_by.insert(name.to_owned(), peer);
        let file = std::fs::File::open(&dest)
            .map_err(|e| MarketplaceError::storage("cannot read the downloaded tarball", e))?;
        Ok(Box::new(file))
    }
    fn resolved_source(&self, name: &str) -> Option<String> {
        self.delivered_by
            .get(name)
            .map(|peer| format!("{SOURCE_PREFIX}{peer}"))
    }
}

/// The `pinned` packages as ggen.lock records them, where it records the
/// pinned bytes. Peers announce only each package's newest version, but
/// providers are found by sha256 and a download needs only that: so an
/// older version a peer delivered (approve-hooks reinstalling it) stays
/// fetchable while some peer still serves it. The size is left unknown
/// (the provider says it, the checksum decides): a lockfile without it, or
/// with a wrong one edited in, must not count against honest providers.
/// The lock holds resolved versions, not requirements: each becomes
/// `^version`.
fn locked_metadata(
    root: &Path,
    pinned: &BTreeMap<String, String>,
) -> Result<HashMap<String, PackageVersion>> {
    if pinned.is_empty() {
        return Ok(HashMap::new());
    }
    let lock = super::installed::read(root)?;
    Ok(lock
        .packages
        .into_iter()
        .filter(|l| pinned.get(&l.name) == Some(&l.integrity))
        .map(|l| {
            let meta = PackageVersion {
                name: l.name.clone(),
                version: l.version,
                title: String::new(),
                description: String::new(),
                categories: Vec::new(),
                tags: Vec::new(),
                authors: Vec::new(),
                license: None,
                dependencies: l.dependencies,
                checksum: l.integrity,
                published_at: String::new(),
                size: 0,
            };
            (l.name, meta)
        })
        .collect())
}

/// The network and how to judge it, for [`install_p2p`].
pub struct Peers<'a> {
    pub network: &'a mut dyn Network,
    pub policy: &'a mut dyn P2pPolicy,
    pub min_reputation: f64,
    /// Where downloads go while they are verified.
    pub downloads: &'a Path,
}

/// Install from peers; on any P2P failure warn and install with `fallback`
/// (the file registry), whose hooks and progress both attempts use.
pub fn install_p2p<L>(
    peers: Peers<'_>,
    fallback: Backends<'_>,
    root: &Path,
    specs: &[Spec],
    options: &InstallOptions,
    lock: impl Fn() -> Result<L>,
) -> Result<InstallReport> {
    let Peers {
        network,
        policy,
        min_reputation,
        downloads,
    } = peers;
    let Backends {
        registry,
        source: registry_source,
        hooks,
        progress,
    } = fallback;
    let why = match network.offline() {
        Some(why) => MarketplaceError::Network(why),
        None => {
            let mut source = P2pSource::new(network, policy, min_reputation, downloads)?;
            source.locked = locked_metadata(root, &options.pinned)?;
            let attempt = install(
                Backends {
                    registry: &mut source,
                    source: "p2p",
                    hooks: &mut *hooks,
                    progress,
                },
                root,
                specs,
                options,
                &lock,
            );
            match attempt {
                // The DHT carries each package's newest version only, so a
                // requirement on an older line may fit only the local registry.
                Err(
                    e @ (MarketplaceError::Network(_)
                    | MarketplaceError::NotFound(_)
                    | MarketplaceError::Dependency(_)),
                ) => e,
                other => return other,
            }
        }
    };
    // The error's own "P2P: " prefix would repeat what the message says.
    let why = match why {
        MarketplaceError::Network(why) => why,
        other => other.to_string(),
    };
    tracing::warn!("P2P failed, using local registry ({why})");
    let fallback = install(
        Backends {
            registry,
            source: registry_source,
            hooks,
            progress,
        },
        root,
        specs,
        options,
        &lock,
    );
    match fallback {
        Err(MarketplaceError::NotFound(local)) => Err(MarketplaceError::NotFound(format!(
            "not installable from the P2P network ({why}) and not in the local registry ({local})"
        ))),
        Ok(mut report) => {
            report.p2p_fallback = Some(why);
            Ok(report)
        }
        other => other,
    }
}
