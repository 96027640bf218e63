//! The install transaction (seeds §3.3, §6.3, §8.3): resolve → fetch → verify
//! → unpack into a staging directory → move into place → write ggen.lock.
//! Any failure before the lockfile is written undoes every move, so the root
//! is left exactly as it was. The staging directory lives inside the install
//! root (same filesystem, so moves are renames) and is removed on every exit.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::fetch::fetch_verified;
use super::hooks::{self, HookOptions, HookReport};
use super::installed::{self, HookOutcome, LockedPackage, Origin};
use super::progress::{Progress, Reading};
use super::registry_source::{Binding, Limits, RegistrySource};
use super::resolve::{Candidate, Resolution, dependency_order, resolve, staying};
use super::transaction::{Transaction, fault, recover};
use super::{MarketplaceError, Registry, Result};
use crate::backend::MAX_TARBALL;
use crate::backend::hook::{HookContext, HookRunner};
use crate::backend::unpack::{UnpackLimits, check_metadata, unpack};

/// `name`, `name@1.2.3`, `name@^1.2`, `name@>=1, <2` or `name@latest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    pub req: semver::VersionReq,
    /// `@latest`: exactly the version that stands for the package (newest
    /// stable), looked up when installing; a bare name takes any version.
    pub latest: bool,
}

pub fn parse_spec(text: &str) -> Result<Spec> {
    let (name, req) = split_spec(text)?;
    let req = req.unwrap_or("*");
    let latest = req == "latest";
    let req = match req {
        "latest" | "*" => semver::VersionReq::STAR,
        exact if semver::Version::parse(exact).is_ok() => {
            semver::VersionReq::parse(&format!("={exact}")).expect("exact versions parse")
        }
        other => semver::VersionReq::parse(other).map_err(|e| {
            MarketplaceError::Validation(format!(
                "`{}`: `{}` is not a version, a semver range or `latest` ({e})",
                super::excerpt(text, 80),
                super::excerpt(other, 64)
            ))
        })?,
    };
    Ok(Spec {
        name: name.to_owned(),
        req,
        latest,
    })
}

/// `NAME[@REQ]` split into a valid package name and what follows `@`
/// (trimmed; never empty).
pub fn split_spec(text: &str) -> Result<(&str, Option<&str>)> {
    let (name, req) = match text.split_once('@') {
        Some((n, r)) => (n, Some(r.trim())),
        None => (text, None),
    };
    if name.is_empty() {
        return Err(MarketplaceError::Validation(format!(
            "`{}`: the package name is missing; write NAME or NAME@VERSION",
            super::excerpt(text, 80)
        )));
    }
    super::manifest::validate_name(name).map_err(MarketplaceError::Validation)?;
    if req == Some("") {
        return Err(MarketplaceError::Validation(format!(
            "`{}`: nothing follows `@`; give a version, a range or `latest`, or drop the `@`",
            super::excerpt(text, 80)
        )));
    }
    Ok((name, req))
}

/// The exact requirement `@latest` stands for: the version search and info
/// show for the package (newest stable, else newest pre-release).
fn latest(registry: &mut dyn Registry, name: &str) -> Result<semver::VersionReq> {
    let package = registry.get_package(name)?;
    let newest = package.newest().ok_or_else(|| {
        MarketplaceError::NotFound(format!(
            "package `{name}` has no versions in {}",
            registry.describe()
        ))
    })?;
    semver::VersionReq::parse(&format!("={}", newest.version)).map_err(|e| {
        MarketplaceError::Validation(format!(
            "the newest version of {name} in {}, `{}`, is not semver ({e})",
            registry.describe(),
            newest.version
        ))
    })
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Reinstall what is installed at the same version, and replace files in
    /// the way that ggen did not install.
    pub force: bool,
    /// Replace installed packages even if their files were edited or added to.
    pub discard_changes: bool,
    pub with_dependencies: bool,
    pub dry_run: bool,
    pub limits: UnpackLimits,
    pub hooks: HookOptions,
    /// Name → the tarball checksum it must have (approve-hooks: consent was
    /// given for the hooks of the bytes that were installed, not for
    /// whatever the registry serves now).
    pub pinned: BTreeMap<String, String>,
    /// Installed packages requested although the user did not name them
    /// (update's bystanders, held at their versions, and everything
    /// `update --all` moves): like the packages not requested at all, one
    /// installed without some of its dependencies stays so (see
    /// `RegistrySource::versions`).
    pub unnamed: BTreeSet<String>,
    /// The named packages are the user's own requests, recorded as such in
    /// ggen.lock (install); update and approve-hooks only move them.
    pub requested: bool,
}

/// The backends an install works with, and where it reports progress.
pub struct Backends<'a> {
    pub registry: &'a mut dyn Registry,
    /// Recorded in ggen.lock as each package's source.
    pub source: &'a str,
    pub hooks: &'a mut dyn HookRunner,
    pub progress: &'a dyn Progress,
}

/// What an install does to one package.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Install,
    /// To a newer version.
    Update,
    /// To an older version.
    Downgrade,
    /// The same version again (--force, or a tree ggen did not install).
    Reinstall,
    Unchanged,
}

impl Action {
    /// The word in reports (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Update => "update",
            Action::Downgrade => "downgrade",
            Action::Reinstall => "reinstall",
            Action::Unchanged => "unchanged",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlannedPackage {
    pub name: String,
    pub version: String,
    pub action: Action,
    /// The version installed before, when this one replaces another version.
    pub previous_version: Option<String>,
    pub dependencies: BTreeMap<String, String>,
    /// What `--force` throws away: files edited or added in the installed
    /// copy this one replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discarded: Option<super::verify::LocalChanges>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub root: PathBuf,
    pub dry_run: bool,
    /// In install order (dependencies first).
    pub packages: Vec<PlannedPackage>,
    /// Post-install hooks that ran or were skipped (not approved).
    pub hooks: Vec<HookReport>,
    /// Why peers could not be asked, when an install meant to use them fell
    /// back to the registry (what peers offer was then not seen).
    pub p2p_fallback: Option<String>,
    /// Packages `update` was asked to move that stay below their newest
    /// version, and why (empty for install).
    pub held_back: Vec<super::update::HeldBack>,
}

impl InstallReport {
    /// Fold in the report of a later transaction on the same root: a
    /// package it changed takes its new row, one it left alone keeps its old.
    pub fn merge(&mut self, next: InstallReport) {
        for p in next.packages {
            match self.packages.iter_mut().find(|q| q.name == p.name) {
                Some(q) if p.action != Action::Unchanged => *q = p,
                Some(_) => {}
                None => self.packages.push(p),
            }
        }
        self.hooks.extend(next.hooks);
        self.p2p_fallback = self.p2p_fallback.take().or(next.p2p_fallback);
    }

    /// `run` once per origin (a package is fetched again from where it came
    /// from, so each origin is a transaction of its own), the reports
    /// merged; `None` when no origin had anything to do.
    pub fn per_origin(
        mut run: impl FnMut(Origin) -> Result<Option<InstallReport>>,
    ) -> Result<Option<InstallReport>> {
        let mut report: Option<InstallReport> = None;
        for origin in [Origin::Registry, Origin::Peers] {
            match (&mut report, run(origin)?) {
                (_, None) => {}
                (Some(r), Some(done)) => r.merge(done),
                (None, done) => report = done,
            }
        }
        Ok(report)
    }
}

/// Install `specs` into `root` (`root/<name>`, `root/ggen.lock`); `lock`
/// serialises installers of one root.
pub fn install<L>(
    backends: Backends<'_>,
    root: &Path,
    specs: &[Spec],
    options: &InstallOptions,
    lock: impl FnOnce() -> Result<L>,
) -> Result<InstallReport> {
    let _guard = if options.dry_run { None } else { Some(lock()?) };
    if !options.dry_run {
        recover(root)?;
    }
    let mut requests = BTreeMap::new();
    for s in specs {
        let req = match s.latest {
            true => latest(&mut *backends.registry, &s.name)?,
            false => s.req.clone(),
        };
        if let Some(first) = requests.insert(s.name.clone(), req) {
            return Err(MarketplaceError::Validation(format!(
                "`{}` is named twice (`{first}` and `{}`); name each package once",
                s.name, s.req
            )));
        }
    }
    let mut lockfile = installed::read(root)?;
    // A pinned package (approve-hooks) is reinstalled as it is installed:
    // not if another process removed or replaced it since it was listed.
    for (name, integrity) in &options.pinned {
        if !(lockfile.packages.iter()).any(|l| l.name == *name && l.integrity == *integrity) {
            return Err(MarketplaceError::NotFound(format!(
                "{name} is no longer installed in {} as it was listed (another ggen command changed it since); nothing was done, run the command again",
                root.display()
            )));
        }
    }
    // What is installed stays, so its requirements must keep holding.
    let installed = installed_candidates(&lockfile.packages)?;
    let installed_versions = installed
        .iter()
        .map(|(name, c)| (name.clone(), c.version.clone()))
        .collect();
    // With --no-dependencies only those that may require a request can
    // object (asking the registry about every installed package cost a
    // lookup each, a DHT query each with --p2p): what ggen.lock records, or
    // the installed package.json, says so.
    let may_depend = |name: &str| {
        installed[name]
            .dependencies
            .keys()
            .any(|d| requests.contains_key(d))
            || super::registry_source::installed_requirements(&root.join(name))
                .is_none_or(|reqs| reqs.keys().any(|d| requests.contains_key(d)))
    };
    let named: BTreeSet<String> = (requests.keys())
        .filter(|n| !options.unnamed.contains(*n))
        .cloned()
        .collect();
    // A package installed without some of its dependencies binds those
    // that go in (see `registry_source`): resolve again, seeing only the
    // versions that fit, while a resolution puts one in that does not.
    let reach = (installed.iter())
        .map(|(name, c)| {
            let held = || staying(&c.version, options.with_dependencies);
            (
                name.clone(),
                requests.get(name).cloned().unwrap_or_else(held),
            )
        })
        .collect();
    let (mut limits, mut listings) = (Limits::new(), BTreeMap::new());
    let (resolution, bound) = loop {
        let mut source = RegistrySource::new(
            &mut *backends.registry,
            root,
            &installed,
            &reach,
            &named,
            &limits,
            &mut listings,
        );
        let resolution = resolve(
            &mut source,
            &requests,
            &installed_versions,
            options.with_dependencies,
            may_depend,
        )
        .map_err(|e| held_back(e, &limits, &installed))?;
        let unfit = source.unfit(&resolution);
        if unfit.is_empty() {
            let bound = source.bound(&resolution);
            break (resolution, bound);
        }
        for (name, bindings) in unfit {
            let known = limits.entry(name).or_default();
            for b in bindings {
                // A binding is exact, so the next resolution fits it: the
                // same one again would loop for ever.
                if known.iter().any(|k| k.by == b.by) {
                    return Err(MarketplaceError::Dependency(format!(
                        "resolution keeps putting in a version that {} does not accept; install it with its dependencies (`ggen marketplace install {}`)",
                        b.by, b.by
                    )));
                }
                known.push(b);
            }
        }
    };
    let mut plan = plan(&resolution, &requests, &lockfile.packages, root, options)?;
    // A package moving without its dependencies records those that fit.
    for p in &mut plan {
        if let Some(fitting) = bound.get(&p.name) {
            p.dependencies.extend(fitting.clone());
        }
    }
    let recorded: Vec<_> = (lockfile.packages.iter())
        .map(|l| (l.dependencies.clone(), l.requested))
        .collect();
    record_dependencies(&mut lockfile, &resolution, &bound, &installed, options);
    let asked: BTreeSet<String> = match options.requested {
        true => named.clone(),
        false => BTreeSet::new(),
    };
    for l in lockfile
        .packages
        .iter_mut()
        .filter(|l| asked.contains(&l.name))
    {
        l.requested = true;
    }
    check_acyclic(&lockfile, &plan)?;
    let report = InstallReport {
        root: root.to_path_buf(),
        dry_run: options.dry_run,
        packages: plan.clone(),
        hooks: Vec::new(),
        p2p_fallback: None,
        held_back: Vec::new(),
    };
    if options.dry_run {
        return Ok(report);
    }
    if plan.iter().all(|p| p.action == Action::Unchanged) {
        let same = (lockfile.packages.iter())
            .zip(&recorded)
            .all(|(l, (deps, requested))| l.dependencies == *deps && l.requested == *requested);
        if !same {
            installed::write(root, &lockfile)?;
        }
        return Ok(report);
    }
    let hooks = commit(backends, root, &plan, options, &asked, &mut lockfile)?;
    Ok(InstallReport { hooks, ..report })
}

/// What each installed package depends on once `resolution` is in: a
/// package that stays may now depend on a version that moved, or on one
/// that went in and binds it (`bound`).
fn record_dependencies(
    lockfile: &mut installed::Lockfile,
    resolution: &Resolution,
    bound: &BTreeMap<String, BTreeMap<String, String>>,
    installed: &BTreeMap<String, Candidate>,
    options: &InstallOptions,
) {
    for l in &mut lockfile.packages {
        if let Some(r) = resolution.packages.get(&l.name) {
            let resolved = (r.dependencies.iter()).map(|(d, v)| (d.clone(), v.to_string()));
            if options.with_dependencies {
                // A dependency removed with --force stays recorded (verify
                // names it missing) unless it comes back.
                let missing = (l.dependencies.iter())
                    .filter(|(d, _)| !installed.contains_key(*d))
                    .map(|(d, v)| (d.clone(), v.clone()));
                l.dependencies = missing.chain(resolved).collect();
            } else {
                // Only what is there anyway: the rest stays as recorded.
                l.dependencies.extend(resolved);
            }
        }
        for (dep, version) in &mut l.dependencies {
            if let Some(r) = resolution.packages.get(dep) {
                *version = r.version.to_string();
            }
        }
        if let Some(fitting) = bound.get(&l.name) {
            l.dependencies.extend(fitting.clone());
        }
    }
}

/// What a package installed without its dependencies records may close a
/// cycle (it was recorded, and then refused every later install).
fn check_acyclic(lockfile: &installed::Lockfile, plan: &[PlannedPackage]) -> Result<()> {
    let changing: Vec<&PlannedPackage> = (plan.iter())
        .filter(|p| p.action != Action::Unchanged)
        .collect();
    let moving: BTreeSet<&str> = changing.iter().map(|p| p.name.as_str()).collect();
    let after = (lockfile.packages.iter())
        .filter(|l| !moving.contains(l.name.as_str()))
        .map(|l| (l.name.as_str(), l.dependencies.keys()))
        .chain(
            changing
                .iter()
                .map(|p| (p.name.as_str(), p.dependencies.keys())),
        );
    dependency_order(after).map(drop)
}

/// A resolution that failed with `limits` in force says which versions
/// they held back, and why.
fn held_back(
    e: MarketplaceError,
    limits: &Limits,
    installed: &BTreeMap<String, Candidate>,
) -> MarketplaceError {
    let MarketplaceError::Dependency(why) = e else {
        return e;
    };
    let held: Vec<String> = (limits.iter())
        .flat_map(|(name, bindings)| {
            bindings
                .iter()
                .map(move |b| held_by(name, b, &installed[&b.by].version))
        })
        .collect();
    if held.is_empty() {
        return MarketplaceError::Dependency(why);
    }
    MarketplaceError::Dependency(format!(
        "{why}; only versions that fit were considered: {}",
        held.join(", ")
    ))
}

/// What binding `b` let through of `name`: `` `base` ^1 (required by
/// app@1.0.0, which is installed without it) ``, or when the versions `b.by`
/// may move to differ, each requirement with those versions.
fn held_by(name: &str, b: &Binding, now: &semver::Version) -> String {
    let mut by_req: Vec<(String, Vec<String>)> = Vec::new();
    for (version, req) in &b.at {
        let req = req.as_ref().map_or("any version".into(), |r| r.to_string());
        match by_req.iter_mut().find(|(r, _)| *r == req) {
            Some((_, versions)) => versions.push(version.to_string()),
            None => by_req.push((req, vec![version.to_string()])),
        }
    }
    let by = &b.by;
    match by_req.as_slice() {
        [(req, _)] => {
            format!("`{name}` {req} (required by {by}@{now}, which is installed without it)")
        }
        _ => {
            let each: Vec<String> = (by_req.iter())
                .map(|(req, versions)| format!("{req} for {by} {}", versions.join(", ")))
                .collect();
            format!(
                "`{name}` {} ({by}@{now} is installed without it)",
                each.join("; ")
            )
        }
    }
}

/// Stage every package, run its hooks, move them into place, write the
/// lockfile. Returning early drops the transaction, which undoes whatever it
/// moved.
fn commit(
    backends: Backends<'_>,
    root: &Path,
    plan: &[PlannedPackage],
    options: &InstallOptions,
    asked: &BTreeSet<String>,
    lockfile: &mut installed::Lockfile,
) -> Result<Vec<HookReport>> {
    let Backends {
        registry,
        source,
        hooks: runner,
        progress,
    } = backends;
    let limits = &options.limits;
    let changed: Vec<&PlannedPackage> = plan
        .iter()
        .filter(|p| p.action != Action::Unchanged)
        .collect();
    let mut tx = Transaction::begin(root)?;
    let mut verified = BTreeMap::new();
    let mut reports = Vec::new();
    for p in &changed {
        let meta = registry
            .get_package_version(&p.name, &p.version)
            .map_err(|e| match e {
                // Installed, so resolution could keep it; gone from the
                // registry, so it cannot be fetched again.
                MarketplaceError::NotFound(why) if p.action == Action::Reinstall => {
                    MarketplaceError::NotFound(format!(
                        "{why}, so the installed copy cannot be fetched again to reinstall it; it stays as installed"
                    ))
                }
                e => e,
            })?;
        if meta.name != p.name || meta.version != p.version {
            return Err(MarketplaceError::Security(format!(
                "the registry answered {}@{} when asked for {}@{}",
                meta.name, meta.version, p.name, p.version
            )));
        }
        if let Some(pin) = options.pinned.get(&p.name)
            && *pin != meta.checksum
        {
            return Err(MarketplaceError::Security(format!(
                "{}@{} in the registry is not what was installed (ggen.lock has {pin}, the registry {}), so its hooks may not be the ones listed; review it and reinstall with `ggen marketplace install {}@={} --force`",
                p.name, p.version, meta.checksum, p.name, p.version
            )));
        }
        fault("fetching")?;
        let mut tarball = fetch_verified(registry, &meta, tx.path(), MAX_TARBALL, progress)?;
        let size = tarball.size;
        fault("fetched")?;
        check_metadata(std::io::BufReader::new(&tarball.file))
            .map_err(|e| MarketplaceError::Security(format!("refusing {}: {e}", p.name)))?;
        std::io::Seek::rewind(&mut tarball.file)
            .map_err(|e| MarketplaceError::storage("temporary file", e))?;
        progress.start(&format!("unpack {}@{}", p.name, p.version), tarball.size);
        let files = stage(
            &p.name,
            Reading {
                inner: tarball.file,
                progress,
            },
            &tx.staged(&p.name),
            limits,
        );
        progress.finish();
        let files = files?;
        check_identity(&tx.staged(&p.name), &p.name, &p.version)?;
        fault("staged")?;
        verified.insert(p.name.clone(), (meta.checksum, size, files));
    }
    // Hooks run once everything is staged (dependencies first), before
    // anything moves: a failing hook leaves the root untouched.
    let mut hooked = BTreeMap::new();
    for p in &changed {
        let (_, _, files) = verified.get_mut(&p.name).expect("staged above");
        let kept = (lockfile.packages.iter())
            .find(|l| l.name == p.name)
            .map(|l| l.variables.clone())
            .unwrap_or_default();
        let variables = hooks::variables_for(&kept, &options.hooks.variables);
        let context = HookContext {
            package: p.name.clone(),
            version: p.version.clone(),
            dependencies: p.dependencies.clone(),
            variables: variables.clone().into_iter().collect(),
        };
        let result = hooks::run_for_package(
            runner,
            &tx.staged(&p.name),
            &context,
            std::mem::take(files),
            &options.hooks,
            limits,
            progress,
        )?;
        *files = result.files;
        let ran = (result.records.iter()).any(|r| r.outcome == HookOutcome::Ran);
        // What the hooks ran with; when they did not run, what they last did.
        let variables = if ran {
            hooks::variables_to_keep(variables)
        } else {
            kept
        };
        reports.extend(result.reports);
        hooked.insert(p.name.clone(), (result.records, result.changes, variables));
        fault("hooks-ran")?;
    }
    tx.write_journal(&changed.iter().map(|p| p.name.clone()).collect::<Vec<_>>())?;
    for p in &changed {
        tx.put_in_place(&p.name)?;
        fault("moved")?;
    }
    fault("before-lockfile")?;
    // A package asked for before stays so at its new version.
    let requested: BTreeSet<String> = (lockfile.packages.iter())
        .filter(|l| l.requested)
        .map(|l| l.name.clone())
        .chain(asked.iter().cloned())
        .collect();
    lockfile
        .packages
        .retain(|l| !verified.contains_key(&l.name));
    for p in changed {
        let (integrity, size, files) = verified.remove(&p.name).expect("staged above");
        let (hooks, hook_changes, variables) = hooked.remove(&p.name).expect("hooks ran above");
        lockfile.packages.push(LockedPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            source: registry
                .resolved_source(&p.name)
                .unwrap_or_else(|| source.to_owned()),
            integrity,
            size,
            dependencies: p.dependencies.clone(),
            files,
            hooks,
            hook_changes,
            variables,
            requested: requested.contains(&p.name),
        });
    }
    tx.commit(lockfile)?;
    Ok(reports)
}

/// What happens to each package the request needs, and to each installed
/// package whose version the resolution moved (the rest is left out).
fn plan(
    resolution: &Resolution,
    requests: &BTreeMap<String, semver::VersionReq>,
    locked: &[LockedPackage],
    root: &Path,
    options: &InstallOptions,
) -> Result<Vec<PlannedPackage>> {
    let force = options.force;
    // What was asked for and what it needs; and what an installed package
    // that moves needs at its new version (it went into ggen.lock without
    // being installed).
    let was: std::collections::HashMap<&str, &str> = (locked.iter())
        .map(|l| (l.name.as_str(), l.version.as_str()))
        .collect();
    let moves = |name: &str| {
        was.get(name)
            .is_some_and(|v| *v != resolution.packages[name].version.to_string())
    };
    let mut needed: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    let mut stack: Vec<&str> = (requests.keys().map(String::as_str))
        .chain(
            resolution
                .packages
                .keys()
                .map(String::as_str)
                .filter(|n| moves(n)),
        )
        .collect();
    while let Some(name) = stack.pop() {
        if needed.insert(name)
            && let Some(r) = resolution.packages.get(name)
        {
            stack.extend(r.dependencies.keys().map(String::as_str));
        }
    }
    resolution
        .order
        .iter()
        .filter(|name| needed.contains(name.as_str()))
        .map(|name| {
            let resolved = &resolution.packages[name];
            let version = resolved.version.to_string();
            let current = locked.iter().find(|l| &l.name == name);
            let mut discarded = None;
            let action = match current {
                Some(l) if l.version == version && !force && root.join(name).is_dir() => {
                    Action::Unchanged
                }
                Some(l) => {
                    if options.discard_changes {
                        // Only a report: a tree --force replaces because it
                        // cannot be read must not stop the replacing.
                        match super::verify::local_changes(root, l) {
                            Ok(changes) => discarded = (!changes.is_empty()).then_some(changes),
                            Err(e) => tracing::warn!(
                                "cannot tell what --force discards in {name}: {e}"
                            ),
                        }
                    } else {
                        // It may move only for another package's sake: say to what.
                        let doing = format!("replacing it with {name}@{version}");
                        super::verify::refuse_local_changes(root, l, &doing)?;
                    }
                    version_move(&l.version, &resolved.version)
                }
                // Not ggen's: the user's own files, replaced only when asked.
                None if root.join(name).symlink_metadata().is_ok() => {
                    if !force {
                        return Err(MarketplaceError::AlreadyExists(format!(
                            "{} exists and is not a package ggen installed (ggen.lock does not list it); move it away, or pass --force to replace it",
                            root.join(name).display()
                        )));
                    }
                    Action::Reinstall
                }
                None => Action::Install,
            };
            // Without dependency resolution (--no-dependencies) a reinstall of
            // the same version keeps the dependency versions ggen.lock knows.
            let dependencies = match current {
                Some(l) if resolved.dependencies.is_empty() && l.version == version => {
                    l.dependencies.clone()
                }
                _ => resolved
                    .dependencies
                    .iter()
                    .map(|(d, v)| (d.clone(), v.to_string()))
                    .collect(),
            };
            Ok(PlannedPackage {
                name: name.clone(),
                previous_version: current
                    .filter(|l| l.version != version)
                    .map(|l| l.version.clone()),
                version,
                action,
                dependencies,
                discarded,
            })
        })
        .collect()
}

/// The staged package.json, when there is one, must name the package and
/// version being installed: a record (a peer's, a registry plugin's) or a
/// lockfile pointing at another version's tarball would install those bytes
/// under the wrong version, and verify could not tell.
fn check_identity(dir: &Path, name: &str, version: &str) -> Result<()> {
    let refuse =
        |why: String| MarketplaceError::Security(format!("refusing {name}@{version}: {why}"));
    let Some(manifest) =
        super::manifest::read_staged(dir).map_err(|e| refuse(format!("package.json {e}")))?
    else {
        return Ok(());
    };
    let said = |field: &str| manifest.get(field).and_then(|v| v.as_str()).unwrap_or("");
    let same_version =
        semver::Version::parse(said("version")).ok() == semver::Version::parse(version).ok();
    if said("name") != name || !same_version {
        return Err(refuse(format!(
            "its tarball's package.json says `{}@{}`; the source points at the wrong tarball",
            super::excerpt(said("name"), 64),
            super::excerpt(said("version"), 64)
        )));
    }
    Ok(())
}

/// Unpack a verified tarball into `dir`; returns each file's digest.
fn stage(
    name: &str,
    tarball: impl std::io::Read,
    dir: &Path,
    limits: &UnpackLimits,
) -> Result<BTreeMap<String, String>> {
    fs::create_dir_all(dir)
        .map_err(|e| MarketplaceError::storage(format!("cannot create {}", dir.display()), e))?;
    let handle = cap_std::fs::Dir::open_ambient_dir(dir, cap_std::ambient_authority())
        .map_err(|e| MarketplaceError::storage(format!("cannot open {}", dir.display()), e))?;
    let done = unpack(std::io::BufReader::new(tarball), &handle, limits).map_err(|e| match e {
        crate::backend::unpack::UnpackError::Write { .. } => {
            MarketplaceError::Storage(format!("unpacking {name}: {e}"))
        }
        other => MarketplaceError::Security(format!("refusing {name}: {other}")),
    })?;
    Ok(done.digests)
}

/// Each installed package as the resolver sees it when the registry no
/// longer lists it: its version, with the exact dependency versions ggen.lock
/// recorded.
fn installed_candidates(locked: &[LockedPackage]) -> Result<BTreeMap<String, Candidate>> {
    let invalid = |name: &str, e: semver::Error| {
        MarketplaceError::Storage(format!("ggen.lock has an invalid version for {name}: {e}"))
    };
    let mut out = BTreeMap::new();
    for p in locked {
        let version = semver::Version::parse(&p.version).map_err(|e| invalid(&p.name, e))?;
        let mut dependencies = BTreeMap::new();
        for (dep, v) in &p.dependencies {
            dependencies.insert(dep.clone(), installed::requirement("=", dep, v)?);
        }
        out.insert(p.name.clone(), Candidate::new(version, dependencies));
    }
    Ok(out)
}

/// The action that replaces installed version `from` by `to`.
fn version_move(from: &str, to: &semver::Version) -> Action {
    match semver::Version::parse(from).map(|from| to.cmp(&from)) {
        Ok(std::cmp::Ordering::Greater) => Action::Update,
        Ok(std::cmp::Ordering::Less) => Action::Downgrade,
        // The same version, or a ggen.lock version that does not parse
        // (it is replaced all the same).
        _ => Action::Reinstall,
    }
}
