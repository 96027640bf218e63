//! Dependency resolution (seeds §3.3 step 3): the highest versions that
//! satisfy every requirement (semver crate semantics), found with PubGrub so
//! that a conflict is explained in one readable sentence; then cycles are
//! reported with their whole chain and an install order is derived
//! (dependencies first).
//!
//! Pre-release versions are chosen only for packages where some requirement
//! names a pre-release (as `=1.0.0-beta.1` or `>=1.0.0-rc.1`).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::ops::Bound;

use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyProvider, PackageResolutionStatistics,
    PubGrubError, Ranges, Reporter,
};
use semver::{Comparator, Op, Version, VersionReq};

use super::{MarketplaceError, Result};

/// One installable version and what it requires.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub version: Version,
    pub dependencies: BTreeMap<String, VersionReq>,
    /// Installed packages this version may go in beside only at these
    /// versions of theirs (it does not depend on them: they require it if
    /// it is there, see `registry_source`).
    pub binds: BTreeMap<String, Vec<Version>>,
}

impl Candidate {
    pub fn new(version: Version, dependencies: BTreeMap<String, VersionReq>) -> Self {
        Self {
            version,
            dependencies,
            binds: BTreeMap::new(),
        }
    }
}

/// Where versions come from (a registry, in practice).
pub trait VersionSource {
    /// Every version of `name`; empty when the package does not exist, or
    /// when all its versions are [`Self::held_back`].
    fn versions(&mut self, name: &str) -> Result<Vec<Candidate>>;
    /// Some of `name`'s versions are left out on purpose: none left is a
    /// conflict to back out of, not a missing package.
    fn held_back(&self, _name: &str) -> bool {
        false
    }
    /// The user asked for `name` (a request that is not is an installed
    /// package `update` holds or moves: errors say so, not "your request").
    fn asked_for(&self, _name: &str) -> bool {
        true
    }
    /// Where the versions are, for "package `x` is not in ...".
    fn describe(&self) -> String {
        "the registry".into()
    }
    /// The command that finds its packages by words.
    fn search_command(&self) -> &'static str {
        crate::backend::registry::SEARCH_COMMAND
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub version: Version,
    /// The resolved version of each dependency.
    pub dependencies: BTreeMap<String, Version>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub packages: BTreeMap<String, Resolved>,
    /// Every package once, each after all of its dependencies.
    pub order: Vec<String>,
}

/// Resolve `requests` (name → requirement). `installed` are the packages
/// already in the install root that are not requested: they stay, so their
/// requirements hold too; each keeps its version unless something needs a
/// newer one, and is never lowered (nor is an installed package requested
/// with a requirement its version fits). With `with_dependencies` false, only the
/// requested packages are chosen (`--no-dependencies`), and the installed
/// ones stay exactly as they are, their requirements on the requested ones
/// still holding (a dependent is never broken): only those `may_depend`
/// names are held (the others cannot object, and asking a source about each
/// costs a lookup).
pub fn resolve(
    source: &mut dyn VersionSource,
    requests: &BTreeMap<String, VersionReq>,
    installed: &BTreeMap<String, Version>,
    with_dependencies: bool,
    may_depend: impl Fn(&str) -> bool,
) -> Result<Resolution> {
    let kept: BTreeMap<String, Version> = installed
        .iter()
        .filter(|(name, _)| !requests.contains_key(*name))
        .filter(|(name, _)| with_dependencies || may_depend(name))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let mut roots = requests.clone();
    // A request that the installed version fits (a name alone, say) goes as
    // high as it can, but not below it (as `update`): a downgrade is asked
    // for by a requirement that leaves the installed version out.
    let mut not_lowered = HashSet::new();
    for (name, req) in &mut roots {
        let Some(version) = installed.get(name) else {
            continue;
        };
        let at_least = staying(version, true);
        if (*req == VersionReq::STAR || req.matches(version))
            && !to_ranges(req).subset_of(&to_ranges(&at_least))
        {
            req.comparators.extend(at_least.comparators);
            not_lowered.insert(name.clone());
        }
    }
    for (name, version) in &kept {
        roots.insert(name.clone(), staying(version, with_dependencies));
    }
    let provider = Provider {
        source: RefCell::new(source),
        cache: RefCell::new(HashMap::new()),
        prerelease_ok: RefCell::new(HashSet::new()),
        failure: RefCell::new(None),
        left_out: RefCell::new(Vec::new()),
        installed: kept,
        requests: roots,
        not_lowered,
        with_dependencies,
    };
    for (name, req) in &provider.requests {
        provider.note_prereleases(name, req);
    }
    // A package asked for by name alone that has only pre-releases gets its
    // newest one (npm's `latest`), as search and info show it; refusing it
    // while showing it helped nobody. Dependencies still need a pre-release
    // requirement, as in cargo.
    for (name, req) in requests {
        if *req == VersionReq::STAR
            && let Ok(list) = provider.candidates(name)
            && !list.is_empty()
            && list.iter().all(|c| !c.version.pre.is_empty())
        {
            for c in &list {
                provider.prerelease_ok.borrow_mut().insert((
                    name.clone(),
                    c.version.major,
                    c.version.minor,
                    c.version.patch,
                ));
            }
        }
    }
    let solution = match pubgrub::resolve(&provider, Pkg::Root, Version::new(0, 0, 0)) {
        Ok(solution) => solution,
        Err(PubGrubError::NoSolution(tree)) => {
            let summary = report::explain(&tree, &provider);
            let left_out = provider.left_out.take();
            if let Some(first) = left_out.first() {
                // Versions were left out for a missing dependency: without a
                // conflict to name, that is the reason (as before backing
                // out of them).
                let Some(summary) = summary else {
                    return Err(MarketplaceError::NotFound(format!(
                        "missing dependency: {}",
                        first.why
                    )));
                };
                let why: Vec<&str> = left_out.iter().map(|l| l.short.as_str()).collect();
                return Err(MarketplaceError::Dependency(format!(
                    "no versions satisfy the requirements: {summary}; left out: {}",
                    why.join("; ")
                )));
            }
            let mut proof = tree;
            proof.collapse_no_versions();
            // The root is a virtual package; its placeholder version means nothing to users.
            let proof = DefaultStringReporter::report(&proof)
                .replace("your request 0.0.0", "your request")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            tracing::debug!("dependency resolution failed: {proof}");
            return Err(MarketplaceError::Dependency(format!(
                "no versions satisfy the requirements: {}",
                summary.unwrap_or(proof)
            )));
        }
        Err(_) => {
            return Err(provider.failure.borrow_mut().take().unwrap_or_else(|| {
                MarketplaceError::Dependency("dependency resolution failed".into())
            }));
        }
    };

    let solution: HashMap<Pkg, Version> = solution.into_iter().collect();
    for l in provider.left_out.take() {
        if (solution.get(&Pkg::Named(l.name.clone()))).is_some_and(|v| *v < l.version) {
            tracing::warn!("left out {}", l.short);
        }
    }
    let mut packages = BTreeMap::new();
    for (pkg, version) in &solution {
        let Pkg::Named(name) = pkg else { continue };
        if !with_dependencies && !requests.contains_key(name) {
            // Installed, only held to: nothing to install.
            continue;
        }
        let candidate = provider
            .candidate(name, version)
            .expect("the solver only picks listed versions");
        let mut dependencies = BTreeMap::new();
        for (dep, req) in &candidate.dependencies {
            let chosen = solution.get(&Pkg::Named(dep.clone()));
            if with_dependencies {
                let chosen = chosen.expect("dependencies are part of the solution");
                debug_assert!(req.matches(chosen) || !chosen.pre.is_empty());
                dependencies.insert(dep.clone(), chosen.clone());
            } else if let Some(v) = chosen.or_else(|| installed.get(dep))
                && req.matches(v)
            {
                // --no-dependencies: a dependency that is there anyway is
                // still recorded, so remove and verify know of it.
                dependencies.insert(dep.clone(), v.clone());
            }
        }
        packages.insert(
            name.clone(),
            Resolved {
                version: version.clone(),
                dependencies,
            },
        );
    }
    let order = install_order(&packages)?;
    Ok(Resolution { packages, order })
}

/// The versions an installed package that is not requested may end up at:
/// its own or higher, or (`--no-dependencies`) its own.
pub fn staying(version: &Version, with_dependencies: bool) -> VersionReq {
    let op = if with_dependencies { ">=" } else { "=" };
    VersionReq::parse(&format!("{op}{version}")).expect("a version makes a requirement")
}

/// Dependencies first; a cycle is an error naming its whole chain.
fn install_order(packages: &BTreeMap<String, Resolved>) -> Result<Vec<String>> {
    // Only what is being installed is ordered (--no-dependencies records
    // dependencies that are installed already).
    dependency_order(
        packages
            .iter()
            .map(|(name, r)| (name.as_str(), r.dependencies.keys())),
    )
}

/// Every package of `graph` (name, what it depends on), each after all of
/// its dependencies among them; a cycle is an error naming its whole chain.
pub fn dependency_order<'a, D>(graph: impl Iterator<Item = (&'a str, D)>) -> Result<Vec<String>>
where
    D: IntoIterator<Item = &'a String>,
{
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut HashMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        match marks.get(name) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Visiting) => {
                let start = path.iter().position(|p| *p == name).unwrap_or(0);
                let mut chain = path[start..].to_vec();
                chain.push(name);
                return Err(MarketplaceError::Dependency(format!(
                    "dependency cycle: {}",
                    chain.join(" → ")
                )));
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        path.push(name);
        for dep in graph[name].iter().filter(|d| graph.contains_key(*d)) {
            visit(dep, graph, marks, path, order)?;
        }
        path.pop();
        marks.insert(name, Mark::Done);
        order.push(name.to_owned());
        Ok(())
    }
    let graph: BTreeMap<&str, Vec<&str>> = graph
        .map(|(name, deps)| (name, deps.into_iter().map(String::as_str).collect()))
        .collect();
    let mut marks = HashMap::new();
    let mut order = Vec::new();
    for name in graph.keys() {
        visit(name, &graph, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Pkg {
    /// What the user asked for.
    Root,
    Named(String),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => write!(f, "your request"),
            Pkg::Named(n) => write!(f, "{n}"),
        }
    }
}

struct Provider<'a> {
    source: RefCell<&'a mut dyn VersionSource>,
    cache: RefCell<HashMap<String, Vec<Candidate>>>,
    /// (name, major, minor, patch) for which pre-releases were asked for.
    prerelease_ok: RefCell<HashSet<(String, u64, u64, u64)>>,
    /// The first error from the source, returned instead of the solver's wrapper.
    failure: RefCell<Option<MarketplaceError>>,
    /// Versions left out because a dependency of theirs is nowhere.
    left_out: RefCell<Vec<LeftOut>>,
    /// What the root depends on: the requests, plus `>=installed` for each
    /// package in `installed`.
    requests: BTreeMap<String, VersionReq>,
    /// Installed, requested with a requirement the installed version fits
    /// (a name alone, say): `>=installed` is added to it in `requests`.
    not_lowered: HashSet<String>,
    /// Installed, not requested: decided after everything else, keeping
    /// their version when it fits (so a request goes as high as it can).
    installed: BTreeMap<String, Version>,
    with_dependencies: bool,
}

/// A version resolution backed out of: one of its dependencies does not
/// exist (a newest version that cannot be installed must not stop an
/// install or `update --all` that an older one serves).
struct LeftOut {
    name: String,
    version: Version,
    /// "package `x` (required by y@1.0.0) is not in the registry".
    why: String,
    /// "y@1.0.0 (it requires `x`, which is not in the registry)".
    short: String,
}

/// Why resolution stopped early (the details are kept in `Provider::failure`).
#[derive(Debug, thiserror::Error)]
#[error("resolution aborted")]
struct Aborted;

impl Provider<'_> {
    fn candidates(&self, name: &str) -> std::result::Result<Vec<Candidate>, Aborted> {
        if let Some(c) = self.cache.borrow().get(name) {
            return Ok(c.clone());
        }
        let mut list = self
            .source
            .borrow_mut()
            .versions(name)
            .map_err(|e| self.fail(e))?;
        list.sort_by(|a, b| b.version.cmp(&a.version));
        self.cache
            .borrow_mut()
            .insert(name.to_owned(), list.clone());
        Ok(list)
    }

    fn candidate(&self, name: &str, version: &Version) -> Option<Candidate> {
        self.cache
            .borrow()
            .get(name)?
            .iter()
            .find(|c| &c.version == version)
            .cloned()
    }

    fn fail(&self, e: MarketplaceError) -> Aborted {
        self.failure.borrow_mut().get_or_insert(e);
        Aborted
    }

    fn note_prereleases(&self, name: &str, req: &VersionReq) {
        for c in req.comparators.iter().filter(|c| !c.pre.is_empty()) {
            let key = (
                name.to_owned(),
                c.major,
                c.minor.unwrap_or(0),
                c.patch.unwrap_or(0),
            );
            self.prerelease_ok.borrow_mut().insert(key);
        }
    }

    fn allowed(&self, name: &str, v: &Version) -> bool {
        v.pre.is_empty()
            || self
                .prerelease_ok
                .borrow()
                .contains(&(name.to_owned(), v.major, v.minor, v.patch))
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = Aborted;
    /// (not an installed one, fewest fitting versions).
    type Priority = (bool, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
        _: &PackageResolutionStatistics,
    ) -> Self::Priority {
        // Installed packages last: decided first, each would keep its
        // version and hold a request below its highest fitting version
        // (which one won depended on the names). Otherwise the most
        // constrained first.
        match package {
            Pkg::Root => (true, Reverse(0)),
            Pkg::Named(name) => (
                !self.installed.contains_key(name),
                Reverse(self.cache.borrow().get(name).map_or(usize::MAX, |c| {
                    c.iter().filter(|c| range.contains(&c.version)).count()
                })),
            ),
        }
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> std::result::Result<Option<Version>, Aborted> {
        match package {
            Pkg::Root => Ok(Some(Version::new(0, 0, 0))),
            Pkg::Named(name) => {
                let candidates = self.candidates(name)?;
                let fits = |v: &Version| range.contains(v) && self.allowed(name, v);
                // What is installed stays as it is when it can (as cargo keeps
                // its lockfile); otherwise the highest version that fits.
                let kept = self
                    .installed
                    .get(name)
                    .filter(|v| fits(v) && candidates.iter().any(|c| &c.version == *v));
                Ok(kept
                    .cloned()
                    .or_else(|| candidates.into_iter().map(|c| c.version).find(fits)))
            }
        }
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> std::result::Result<Dependencies<Pkg, Ranges<Version>, String>, Aborted> {
        let Pkg::Named(name) = package else {
            let requests = self.requests.clone().into_iter();
            return self.constraints(package, version, requests, BTreeMap::new());
        };
        let candidate = self
            .candidate(name, version)
            .expect("chosen versions are listed");
        let mut deps = candidate.dependencies;
        if !self.with_dependencies {
            // Without dependencies, a package's requirements on what is
            // requested (and so goes in beside it) are all that count.
            deps.retain(|d, _| self.requests.contains_key(d) && !self.installed.contains_key(d));
        }
        self.constraints(package, version, deps.into_iter(), candidate.binds)
    }
}

impl Provider<'_> {
    /// What `package` at `version` requires, as the solver's ranges; with
    /// `binds` (see [`Candidate::binds`]).
    fn constraints(
        &self,
        package: &Pkg,
        version: &Version,
        deps: impl Iterator<Item = (String, VersionReq)>,
        binds: BTreeMap<String, Vec<Version>>,
    ) -> std::result::Result<Dependencies<Pkg, Ranges<Version>, String>, Aborted> {
        let requirer = match package {
            Pkg::Root => package.to_string(),
            Pkg::Named(name) => format!("{name}@{version}"),
        };
        let mut constraints: BTreeMap<Pkg, Ranges<Version>> = BTreeMap::new();
        for (dep, req) in deps {
            let candidates = self.candidates(&dep)?;
            if candidates.is_empty() && !self.source.borrow().held_back(&dep) {
                let why = format!(
                    "package `{dep}` (required by {requirer}) is not in {}",
                    self.source.borrow().describe()
                );
                let Pkg::Named(name) = package else {
                    let source = self.source.borrow();
                    return Err(self.fail(MarketplaceError::NotFound(match source.asked_for(&dep) {
                        true => format!(
                            "package `{dep}` is not in {}; check the name (`{}` finds packages)",
                            source.describe(),
                            source.search_command()
                        ),
                        false => format!("missing dependency: {why}"),
                    })));
                };
                let short = format!(
                    "{requirer} (it requires `{dep}`, which is not in {})",
                    self.source.borrow().describe()
                );
                self.left_out.borrow_mut().push(LeftOut {
                    name: name.clone(),
                    version: version.clone(),
                    why: why.clone(),
                    short,
                });
                return Ok(Dependencies::Unavailable(why));
            }
            self.note_prereleases(&dep, &req);
            // A pre-release between a range's bounds fits only a requirement
            // naming its version (`^1` never takes 2.0.0-rc.1, which sorts
            // below 2.0.0), as in cargo; a request by name alone for a
            // package with only pre-releases takes them all (see `resolve`).
            let range = to_ranges(&req);
            let latest = *package == Pkg::Root
                && req == VersionReq::STAR
                && candidates.iter().all(|c| !c.version.pre.is_empty());
            // An installed package's floor (`>=` its version) only keeps it
            // from going lower: a pre-release above it that a dependent
            // names is still in reach.
            let floor = *package == Pkg::Root && self.installed.contains_key(&dep);
            let unfit = (candidates.iter())
                .filter(|c| !latest && !floor && !c.version.pre.is_empty())
                .filter(|c| range.contains(&c.version) && !req.matches(&c.version))
                .map(|c| c.version.clone());
            let range = range.intersection(&exactly(unfit).complement());
            constraints.insert(Pkg::Named(dep), range);
        }
        for (other, versions) in binds {
            let range = constraints.remove(&Pkg::Named(other.clone()));
            let at = exactly(versions);
            let at = range.map_or(at.clone(), |r| r.intersection(&at));
            constraints.insert(Pkg::Named(other), at);
        }
        Ok(Dependencies::Available(constraints.into_iter().collect()))
    }
}

/// Exactly `versions`, as one set (built at once: intersecting one
/// singleton at a time costs the square of their number).
fn exactly(versions: impl IntoIterator<Item = Version>) -> Ranges<Version> {
    (versions.into_iter())
        .map(|v| (Bound::Included(v.clone()), Bound::Included(v)))
        .collect()
}

/// A semver requirement as a set of versions (the comparators intersected).
pub fn to_ranges(req: &VersionReq) -> Ranges<Version> {
    req.comparators
        .iter()
        .fold(Ranges::full(), |acc, c| acc.intersection(&comparator(c)))
}

fn comparator(c: &Comparator) -> Ranges<Version> {
    let lower = Version {
        major: c.major,
        minor: c.minor.unwrap_or(0),
        patch: c.patch.unwrap_or(0),
        pre: c.pre.clone(),
        build: Default::default(),
    };
    // The first version past what a partial version like `1.2` covers.
    let past = match (c.minor, c.patch) {
        (Some(mi), Some(p)) => Some(Version {
            pre: Default::default(),
            ..Version::new(c.major, mi, p)
        }),
        (Some(mi), None) => next_minor(c.major, mi),
        (None, _) => next_major(c.major),
    };
    let exact = c.minor.is_some() && c.patch.is_some();
    match c.op {
        Op::Exact | Op::Wildcard if exact => below(lower.clone(), past_build(&lower)),
        Op::Exact | Op::Wildcard => below(lower, past),
        Op::Greater if exact => above(past_build(&lower)),
        Op::Greater => above(past),
        Op::GreaterEq => Ranges::higher_than(lower),
        Op::Less => Ranges::strictly_lower_than(lower),
        Op::LessEq if exact => under(past_build(&lower)),
        Op::LessEq => under(past),
        Op::Tilde => match c.minor {
            Some(mi) => below(lower, next_minor(c.major, mi)),
            None => below(lower, next_major(c.major)),
        },
        Op::Caret => match (c.major, c.minor, c.patch) {
            (0, Some(0), Some(p)) => below(lower, next_patch(0, 0, p)),
            (0, Some(mi), _) => below(lower, next_minor(0, mi)),
            (0, None, _) => below(lower, next_major(0)),
            (major, _, _) => below(lower, next_major(major)),
        },
        _ => Ranges::full(),
    }
}

// The next release up; None past the largest version semver can write
// (a requirement such as `^18446744073709551615` is then open-ended, not a panic).
fn next_major(major: u64) -> Option<Version> {
    Some(Version::new(major.checked_add(1)?, 0, 0))
}

fn next_minor(major: u64, minor: u64) -> Option<Version> {
    match minor.checked_add(1) {
        Some(m) => Some(Version::new(major, m, 0)),
        None => next_major(major),
    }
}

fn next_patch(major: u64, minor: u64, patch: u64) -> Option<Version> {
    match patch.checked_add(1) {
        Some(p) => Some(Version::new(major, minor, p)),
        None => next_minor(major, minor),
    }
}

/// From `lower` up to (not including) `upper`; None: no upper bound.
fn below(lower: Version, upper: Option<Version>) -> Ranges<Version> {
    match upper {
        Some(upper) => Ranges::between(lower, upper),
        None => Ranges::higher_than(lower),
    }
}

/// Everything below `upper`; None: everything.
fn under(upper: Option<Version>) -> Ranges<Version> {
    upper.map_or_else(Ranges::full, Ranges::strictly_lower_than)
}

/// From `lower` (included) on; None: nothing is that high.
fn above(lower: Option<Version>) -> Ranges<Version> {
    lower.map_or_else(Ranges::empty, Ranges::higher_than)
}

/// The first version above `v` with every build metadata (which semver
/// ignores when matching, while `Version`'s order puts `1.0.0+b` after
/// `1.0.0`): `=1.0.0` must take `1.0.0+b` and `>1.0.0` must not.
fn past_build(v: &Version) -> Option<Version> {
    // Appending the lowest identifier, `0`, gives the next pre-release; a
    // release is followed by the next patch's lowest pre-release.
    let pre = match v.pre.as_str() {
        "" => "0".to_owned(),
        pre => format!("{pre}.0"),
    };
    let base = if v.pre.is_empty() {
        next_patch(v.major, v.minor, v.patch)?
    } else {
        Version::new(v.major, v.minor, v.patch)
    };
    Some(Version {
        pre: semver::Prerelease::new(&pre).expect("a valid pre-release plus `.0` is valid"),
        ..base
    })
}

#[path = "resolve_report.rs"]
mod report;

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
