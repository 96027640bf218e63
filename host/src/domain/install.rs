//! The install transaction (seeds §3.3, §6.3, §8.3): resolve → fetch → verify
//! → unpack into a staging directory → move into place → write ggen.lock.
//! Any failure before the lockfile is written undoes every move, so the root
//! is left exactly as it was. The staging directory lives inside the install
//! root (same filesystem, so moves are renames) and is removed on every exit.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::fetch::fetch_verified;
use super::installed::{self, LockedPackage};
use super::resolve::{Candidate, Resolution, VersionSource, resolve};
use super::{MarketplaceError, Registry, Result};
use crate::backend::unpack::{UnpackLimits, unpack};

/// Largest tarball accepted.
const MAX_TARBALL: u64 = 1 << 30;
const STAGING: &str = ".ggen-staging";
/// Written into a transaction before its first move: what to undo after a crash.
const JOURNAL: &str = "journal.json";
/// Written last, after ggen.lock: the transaction is complete (like cargo's .cargo-ok).
const COMMITTED: &str = "committed";

#[derive(Serialize, serde::Deserialize)]
struct Journal {
    /// Packages moved into place, in order.
    moves: Vec<String>,
    /// ggen.lock before the transaction (None: there was none).
    lockfile_before: Option<String>,
}

/// `name`, `name@1.2.3`, `name@^1.2`, `name@>=1, <2` or `name@latest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    pub req: semver::VersionReq,
}

pub fn parse_spec(text: &str) -> Result<Spec> {
    let (name, req) = match text.split_once('@') {
        Some((n, r)) => (n, r.trim()),
        None => (text, "latest"),
    };
    super::manifest::validate_name(name).map_err(MarketplaceError::Validation)?;
    let req = match req {
        "latest" | "*" | "" => semver::VersionReq::STAR,
        exact if semver::Version::parse(exact).is_ok() => semver::VersionReq::parse(&format!("={exact}")).expect("exact versions parse"),
        other => semver::VersionReq::parse(other).map_err(|e| {
            MarketplaceError::Validation(format!("`{text}`: `{other}` is not a version, a semver range or `latest` ({e})"))
        })?,
    };
    Ok(Spec { name: name.to_owned(), req })
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub force: bool,
    pub with_dependencies: bool,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlannedPackage {
    pub name: String,
    pub version: String,
    /// `install`, `reinstall` (--force or a different version) or `unchanged`.
    pub action: &'static str,
    pub dependencies: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub root: PathBuf,
    pub dry_run: bool,
    /// In install order (dependencies first).
    pub packages: Vec<PlannedPackage>,
}

/// Install `specs` into `root` (`root/<name>`, `root/ggen.lock`). `source` is
/// recorded in the lockfile; `lock` serialises installers of one root.
pub fn install<L>(
    registry: &mut dyn Registry,
    source: &str,
    root: &Path,
    specs: &[Spec],
    options: &InstallOptions,
    lock: impl FnOnce() -> Result<L>,
) -> Result<InstallReport> {
    let _guard = if options.dry_run { None } else { Some(lock()?) };
    if !options.dry_run {
        recover(root)?;
    }
    let requests: BTreeMap<_, _> = specs.iter().map(|s| (s.name.clone(), s.req.clone())).collect();
    let resolution = resolve(&mut RegistrySource(registry), &requests, options.with_dependencies)?;
    let mut lockfile = installed::read(root)?;
    let plan = plan(&resolution, &lockfile.packages, root, options.force);
    let report = InstallReport { root: root.to_path_buf(), dry_run: options.dry_run, packages: plan.clone() };
    if options.dry_run || plan.iter().all(|p| p.action == "unchanged") {
        return Ok(report);
    }

    fs::create_dir_all(root.join(STAGING)).map_err(|e| MarketplaceError::storage(format!("cannot create {}", root.display()), e))?;
    let txn = tempfile::Builder::new()
        .prefix("txn-")
        .tempdir_in(root.join(STAGING))
        .map_err(|e| MarketplaceError::storage("cannot create a staging directory", e))?;
    let result = commit(registry, source, root, &plan, txn.path(), &mut lockfile);
    // Success or failure, the staging directory goes (with the replaced copies
    // or the half-staged packages in it).
    drop(txn);
    let _ = fs::remove_dir(root.join(STAGING));
    result.map(|()| report)
}

/// Stage every package, move them into place, write the lockfile; on any
/// error undo the moves.
fn commit(
    registry: &mut dyn Registry,
    source: &str,
    root: &Path,
    plan: &[PlannedPackage],
    txn: &Path,
    lockfile: &mut installed::Lockfile,
) -> Result<()> {
    let mut integrity = BTreeMap::new();
    for p in plan.iter().filter(|p| p.action != "unchanged") {
        let meta = registry.get_package_version(&p.name, &p.version)?;
        let tarball = fetch_verified(registry, &meta, txn, MAX_TARBALL)?;
        fault("fetched")?;
        stage(&p.name, tarball.file, &txn.join("new"))?;
        fault("staged")?;
        integrity.insert(p.name.clone(), meta.checksum);
    }

    let journal = Journal {
        moves: plan.iter().filter(|p| p.action != "unchanged").map(|p| p.name.clone()).collect(),
        lockfile_before: std::fs::read_to_string(root.join(installed::LOCKFILE)).ok(),
    };
    write_synced(&txn.join(JOURNAL), serde_json::to_string(&journal).expect("journals serialise").as_bytes())?;
    let mut moves = Moves::new(root, txn);
    for p in plan.iter().filter(|p| p.action != "unchanged") {
        if let Err(e) = moves.put_in_place(&p.name).and_then(|()| fault("moved")) {
            moves.undo();
            return Err(e);
        }
    }
    if let Err(e) = fault("before-lockfile") {
        moves.undo();
        return Err(e);
    }
    lockfile.packages.retain(|l| !integrity.contains_key(&l.name));
    for p in plan.iter().filter(|p| integrity.contains_key(&p.name)) {
        lockfile.packages.push(LockedPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            source: source.to_owned(),
            integrity: integrity[&p.name].clone(),
            dependencies: p.dependencies.clone(),
        });
    }
    if let Err(e) = installed::write(root, lockfile) {
        moves.undo();
        return Err(e);
    }
    fault("after-lockfile")?;
    write_synced(&txn.join(COMMITTED), b"")?;
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e| MarketplaceError::storage(format!("cannot write {}", path.display()), e);
    let mut f = fs::File::create(path).map_err(fail)?;
    std::io::Write::write_all(&mut f, bytes).map_err(fail)?;
    f.sync_all().map_err(fail)
}

/// Clean up after installs that died (killed, power loss) in this root: a
/// committed transaction only needs its leftovers removed; one that was
/// moving packages is undone from its journal, ggen.lock included; one that
/// was still staging is just removed. Runs under the install lock, so no live
/// transaction can be mistaken for a dead one.
pub fn recover(root: &Path) -> Result<usize> {
    let staging = root.join(STAGING);
    let Ok(entries) = fs::read_dir(&staging) else { return Ok(0) };
    let mut recovered = 0;
    for entry in entries.flatten() {
        let txn = entry.path();
        if !txn.is_dir() {
            continue;
        }
        if !txn.join(COMMITTED).exists() {
            if let Ok(text) = fs::read_to_string(txn.join(JOURNAL)) {
                let journal: Journal = serde_json::from_str(&text).map_err(|e| {
                    MarketplaceError::Storage(format!("interrupted install in {} has an unreadable journal ({e}); remove that directory by hand", txn.display()))
                })?;
                for name in journal.moves.iter().rev() {
                    // Moved in if its staged copy is gone: take it out again.
                    if !txn.join("new").join(name).exists() {
                        let _ = fs::remove_dir_all(root.join(name));
                    }
                    let old = txn.join("old").join(name);
                    if old.exists() {
                        fs::rename(&old, root.join(name))
                            .map_err(|e| MarketplaceError::storage(format!("cannot restore {name} from an interrupted install"), e))?;
                    }
                }
                match journal.lockfile_before {
                    Some(before) => write_synced(&root.join(installed::LOCKFILE), before.as_bytes())?,
                    None => {
                        let _ = fs::remove_file(root.join(installed::LOCKFILE));
                    }
                }
                tracing::warn!("rolled back an interrupted install in {}", root.display());
            }
        }
        fs::remove_dir_all(&txn).map_err(|e| MarketplaceError::storage(format!("cannot remove {}", txn.display()), e))?;
        recovered += 1;
    }
    let _ = fs::remove_dir(&staging);
    Ok(recovered)
}

/// Test-only failure points: with `GGEN_FAULT=<point>` a debug build fails
/// there, with `GGEN_CRASH=<point>` it dies on the spot (abort, like a kill),
/// so tests can check that every step rolls back or recovers. Release builds
/// compile this to nothing.
fn fault(point: &str) -> Result<()> {
    if cfg!(debug_assertions) {
        if std::env::var("GGEN_CRASH").is_ok_and(|p| p == point) {
            std::process::abort();
        }
        if std::env::var("GGEN_FAULT").is_ok_and(|p| p == point) {
            return Err(MarketplaceError::Storage(format!("injected fault at `{point}`")));
        }
    }
    Ok(())
}

fn plan(resolution: &Resolution, locked: &[LockedPackage], root: &Path, force: bool) -> Vec<PlannedPackage> {
    resolution
        .order
        .iter()
        .map(|name| {
            let resolved = &resolution.packages[name];
            let version = resolved.version.to_string();
            let current = locked.iter().find(|l| &l.name == name);
            let action = match current {
                Some(l) if l.version == version && !force && root.join(name).is_dir() => "unchanged",
                Some(_) => "reinstall",
                None if root.join(name).exists() => "reinstall",
                None => "install",
            };
            let dependencies = resolved.dependencies.iter().map(|(d, v)| (d.clone(), v.to_string())).collect();
            PlannedPackage { name: name.clone(), version, action, dependencies }
        })
        .collect()
}

/// Unpack a verified tarball into `<staging>/<name>`.
fn stage(name: &str, tarball: fs::File, staging: &Path) -> Result<()> {
    let dir = staging.join(name);
    fs::create_dir_all(&dir).map_err(|e| MarketplaceError::storage(format!("cannot create {}", dir.display()), e))?;
    let handle = cap_std::fs::Dir::open_ambient_dir(&dir, cap_std::ambient_authority())
        .map_err(|e| MarketplaceError::storage(format!("cannot open {}", dir.display()), e))?;
    unpack(std::io::BufReader::new(tarball), &handle, &UnpackLimits::default()).map_err(|e| match e {
        crate::backend::unpack::UnpackError::Write { .. } => MarketplaceError::Storage(format!("unpacking {name}: {e}")),
        other => MarketplaceError::Security(format!("refusing {name}: {other}")),
    })?;
    Ok(())
}

/// The renames of a commit, remembered so they can be undone.
struct Moves<'a> {
    root: &'a Path,
    txn: &'a Path,
    done: Vec<(String, bool)>,
}

impl<'a> Moves<'a> {
    fn new(root: &'a Path, txn: &'a Path) -> Self {
        Self { root, txn, done: Vec::new() }
    }

    /// Move the current copy (if any) aside into the transaction, then the staged one in.
    fn put_in_place(&mut self, name: &str) -> Result<()> {
        let live = self.root.join(name);
        let old = self.txn.join("old").join(name);
        let fail = |e: std::io::Error| MarketplaceError::storage(format!("cannot move {name} into {}", self.root.display()), e);
        let had_old = live.exists();
        if had_old {
            fs::create_dir_all(self.txn.join("old")).map_err(fail)?;
            fs::rename(&live, &old).map_err(fail)?;
        }
        if let Err(e) = fs::rename(self.txn.join("new").join(name), &live) {
            if had_old {
                let _ = fs::rename(&old, &live);
            }
            return Err(fail(e));
        }
        self.done.push((name.to_owned(), had_old));
        Ok(())
    }

    /// Put everything back as it was, newest move first.
    fn undo(&mut self) {
        while let Some((name, had_old)) = self.done.pop() {
            let live = self.root.join(&name);
            let _ = fs::remove_dir_all(&live);
            if had_old {
                let _ = fs::rename(self.txn.join("old").join(&name), &live);
            }
        }
    }
}

/// The registry as the resolver sees it.
struct RegistrySource<'a>(&'a mut dyn Registry);

impl VersionSource for RegistrySource<'_> {
    fn versions(&mut self, name: &str) -> Result<Vec<Candidate>> {
        let versions = match self.0.list_versions(name) {
            Ok(v) => v,
            Err(MarketplaceError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for v in versions {
            let parsed = semver::Version::parse(&v.version).ok().and_then(|version| {
                let deps: Option<BTreeMap<_, _>> = v
                    .dependencies
                    .iter()
                    .map(|(d, r)| semver::VersionReq::parse(r).ok().map(|r| (d.clone(), r)))
                    .collect();
                deps.map(|dependencies| Candidate { version, dependencies })
            });
            match parsed {
                Some(c) => out.push(c),
                None => tracing::warn!("ignoring {}@{}: its version or dependency requirements do not parse", v.name, v.version),
            }
        }
        Ok(out)
    }
}
