//! What an install resolves against: the registry's versions, plus each
//! installed version the registry no longer lists (so that what is
//! installed can always stay); and what binds a package installed without
//! some of its dependencies (`--no-dependencies`).
//!
//! Such a package ("partial") keeps needing only what is there: an
//! unrelated command must neither install the rest nor fail for want of
//! it. What is there must fit it, though: an installed dependency that fits
//! its requirement may not move out of it, and one that goes in later must
//! fit too, and is recorded as its dependency (so `remove` refuses it).
//! PubGrub has no "if present" requirement: once a resolution puts a
//! package in outside such a requirement ([`RegistrySource::unfit`]), the
//! next one sees only the versions of it that some version the partial
//! package may end up at accepts, each bound to those versions
//! ([`Candidate::binds`]): the partial package may move to fit it, as any
//! installed package moves for a newer dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use semver::{Version, VersionReq};

use super::resolve::{Candidate, Resolution, VersionSource};
use super::{MarketplaceError, Registry, Result};

/// Package not installed → the partial packages it must fit if it goes in.
pub type Limits = BTreeMap<String, Vec<Binding>>;

/// A partial package's requirement on a package that is not installed.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The partial package.
    pub by: String,
    /// Each version it may end up at → its requirement then, if any.
    pub at: BTreeMap<Version, Option<VersionReq>>,
}

impl Binding {
    /// The versions of `by` that a version `v` of the package fits.
    fn accepting(&self, v: &Version) -> Vec<Version> {
        (self.at.iter())
            .filter(|(_, req)| req.as_ref().is_none_or(|r| r.matches(v)))
            .map(|(at, _)| at.clone())
            .collect()
    }
}

pub struct RegistrySource<'a> {
    pub registry: &'a mut dyn Registry,
    /// The install root: an installed package's own package.json says what
    /// it requires when the registry no longer lists its version.
    root: &'a Path,
    pub installed: &'a BTreeMap<String, Candidate>,
    /// The versions each installed package may end up at.
    reach: &'a BTreeMap<String, VersionReq>,
    /// What the user asked to install or update: a partial package named
    /// resolves all its dependencies again.
    pub named: &'a BTreeSet<String>,
    /// Packages not installed → the partial packages' requirements on
    /// them that a version must meet to be seen.
    pub limits: &'a Limits,
    /// What the registry listed, kept across the resolutions of one
    /// install (each round would list every package again).
    listings: &'a mut BTreeMap<String, Vec<Candidate>>,
    /// Each partial package's versions with every requirement they list.
    partial: BTreeMap<String, BTreeMap<Version, BTreeMap<String, VersionReq>>>,
}

impl<'a> RegistrySource<'a> {
    pub fn new(
        registry: &'a mut dyn Registry,
        root: &'a Path,
        installed: &'a BTreeMap<String, Candidate>,
        reach: &'a BTreeMap<String, VersionReq>,
        named: &'a BTreeSet<String>,
        limits: &'a Limits,
        listings: &'a mut BTreeMap<String, Vec<Candidate>>,
    ) -> Self {
        Self {
            registry,
            root,
            installed,
            reach,
            named,
            limits,
            listings,
            partial: BTreeMap::new(),
        }
    }

    /// The version `name` has once `resolution` is installed, if any.
    fn after<'r>(&'r self, resolution: &'r Resolution, name: &str) -> Option<&'r Version> {
        (resolution.packages.get(name).map(|r| &r.version))
            .or_else(|| self.installed.get(name).map(|c| &c.version))
    }

    /// Each partial package's requirements at the version it ends up with.
    fn requirements<'r>(
        &'r self,
        resolution: &'r Resolution,
    ) -> impl Iterator<Item = (&'r String, &'r BTreeMap<String, VersionReq>)> {
        (self.partial.iter()).filter_map(move |(name, versions)| {
            self.after(resolution, name)
                .and_then(|v| versions.get(v))
                .map(|reqs| (name, reqs))
        })
    }

    /// The requirements of partial packages that `resolution` puts a
    /// package in outside of, as [`Limits`] to resolve again with.
    pub fn unfit(&self, resolution: &Resolution) -> Limits {
        let mut out = Limits::new();
        for (name, reqs) in self.requirements(resolution) {
            for (dep, req) in reqs {
                if !self.installed.contains_key(dep)
                    && (resolution.packages.get(dep)).is_some_and(|r| !req.matches(&r.version))
                {
                    let versions = &self.partial[name];
                    let reach = &self.reach[name];
                    let at = (versions.iter())
                        .filter(|(v, _)| reach.matches(v))
                        .map(|(v, reqs)| (v.clone(), reqs.get(dep).cloned()))
                        .collect();
                    let by = name.clone();
                    out.entry(dep.clone()).or_default().push(Binding { by, at });
                }
            }
        }
        out
    }

    /// For each partial package, the dependencies it requires that are
    /// there once `resolution` is installed and fit it: name → dependency →
    /// version (what its ggen.lock entry records).
    pub fn bound(&self, resolution: &Resolution) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for (name, reqs) in self.requirements(resolution) {
            let fitting: BTreeMap<String, String> = (reqs.iter())
                .filter_map(|(dep, req)| {
                    (self.after(resolution, dep))
                        .filter(|v| req.matches(v))
                        .map(|v| (dep.clone(), v.to_string()))
                })
                .collect();
            out.insert(name.clone(), fitting);
        }
        out
    }

    fn listed(&mut self, name: &str) -> Result<Vec<Candidate>> {
        if let Some(listed) = self.listings.get(name) {
            return Ok(listed.clone());
        }
        let listed = self.list(name)?;
        self.listings.insert(name.to_owned(), listed.clone());
        Ok(listed)
    }

    fn list(&mut self, name: &str) -> Result<Vec<Candidate>> {
        let versions = match self.registry.list_versions(name) {
            Ok(v) => v,
            Err(MarketplaceError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for v in versions {
            // Names become directories under the install root: a registry
            // (an untrusted plugin) must not be able to name `../x`.
            if v.name != name
                || v.dependencies
                    .keys()
                    .any(|d| super::manifest::validate_name(d).is_err())
            {
                tracing::warn!(
                    "ignoring {}@{} from the registry: it carries an invalid package name",
                    name,
                    v.version
                );
                continue;
            }
            let parsed = Version::parse(&v.version).ok().and_then(|version| {
                let deps: Option<BTreeMap<_, _>> = v
                    .dependencies
                    .iter()
                    .map(|(d, r)| VersionReq::parse(r).ok().map(|r| (d.clone(), r)))
                    .collect();
                deps.map(|dependencies| Candidate::new(version, dependencies))
            });
            match parsed {
                Some(c) => out.push(c),
                None => tracing::warn!(
                    "ignoring {}@{}: its version or dependency requirements do not parse",
                    v.name,
                    v.version
                ),
            }
        }
        Ok(out)
    }
}

impl VersionSource for RegistrySource<'_> {
    fn describe(&self) -> String {
        self.registry.describe()
    }

    fn search_command(&self) -> &'static str {
        self.registry.search_command()
    }

    fn held_back(&self, name: &str) -> bool {
        self.limits.contains_key(name)
    }

    fn asked_for(&self, name: &str) -> bool {
        self.named.contains(name)
    }

    fn versions(&mut self, name: &str) -> Result<Vec<Candidate>> {
        let mut out = self.listed(name)?;
        let Some(kept) = self.installed.get(name) else {
            for binding in self.limits.get(name).into_iter().flatten() {
                out.retain_mut(|c| {
                    let accepting = binding.accepting(&c.version);
                    let fits = !accepting.is_empty();
                    if fits && accepting.len() < binding.at.len() {
                        c.binds.insert(binding.by.clone(), accepting);
                    }
                    fits
                });
            }
            return Ok(out);
        };
        // Partial: what it requires (as listed, or as its installed
        // package.json says when its version is no longer listed) is more
        // than ggen.lock records (which holds every requirement that
        // something installed fits), or no longer installed (`remove --force`).
        let installed = self.installed;
        let requires = match out.iter().find(|c| c.version == kept.version) {
            Some(c) => Some(c.dependencies.clone()),
            None => installed_requirements(&self.root.join(name)),
        };
        let partial = requires.as_ref().is_some_and(|reqs| {
            (reqs.keys()).any(|d| !kept.dependencies.contains_key(d) || !installed.contains_key(d))
        });
        if partial && !self.named.contains(name) {
            let versions = self.partial.entry(name.to_owned()).or_default();
            // It may have gone in beside an installed version that does not
            // fit it: that one it goes on doing without, as what is not
            // installed. The rest of what is installed binds it, at any
            // version it may move to (moving it must not break it).
            let unfit: BTreeSet<&String> = (requires.iter().flatten())
                .filter(|(d, req)| installed.get(*d).is_some_and(|i| !req.matches(&i.version)))
                .map(|(d, _)| d)
                .collect();
            for c in &mut out {
                versions.insert(c.version.clone(), c.dependencies.clone());
                c.dependencies.retain(|d, req| {
                    installed.get(d).is_some_and(|i| {
                        req.matches(&i.version) || (c.version != kept.version && !unfit.contains(d))
                    })
                });
            }
            if let Some(reqs) = requires {
                versions.entry(kept.version.clone()).or_insert(reqs);
            }
        }
        if !out.iter().any(|c| c.version == kept.version) {
            // What ggen.lock records for it, less what `remove --force` took
            // away (it stays recorded, but nothing may put it back).
            let mut kept = kept.clone();
            kept.dependencies.retain(|d, _| installed.contains_key(d));
            out.push(kept);
        }
        Ok(out)
    }
}

/// The requirements in the package.json of the package installed in `dir`,
/// if it can be read (unreadable, it counts as requiring what ggen.lock says).
pub fn installed_requirements(dir: &Path) -> Option<BTreeMap<String, VersionReq>> {
    super::manifest::load(dir).ok().map(|m| m.dependencies)
}
