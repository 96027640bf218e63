//! Updating installed packages to the newest versions the requirements allow.
//!
//! Named packages (or all, with `--all`) move up: one that nothing installed
//! depends on to its newest version, a dependency as high as its dependents'
//! requirements allow; none ever moves down (when nothing fits, the error
//! names what holds it back). What else is installed moves only when their
//! new versions need it (then to the newest version that fits), and
//! otherwise stays at its installed version (as `cargo update -p` does). A package
//! installed with `--no-dependencies` moves without its dependencies under
//! `--all` (the user named nothing); named, it resolves them again, as
//! `install` does. The work is then an ordinary install transaction, from
//! the registry or from peers (the caller's `install`).

use std::path::Path;

use serde::Serialize;

use super::install::{InstallOptions, InstallReport, Spec};
use super::installed::{self, Origin};
use super::transaction::recover;
use super::{MarketplaceError, Result};

/// `install` runs one transaction, from `Origin`, with the root already
/// locked (the lock is not re-entrant, so it must not take it again). With
/// `from_peers`, packages that peers delivered are updated from peers and the
/// rest from the registry, in two transactions; otherwise all come from the
/// registry.
pub fn update<L>(
    root: &Path,
    names: &[String],
    options: &InstallOptions,
    from_peers: bool,
    lock: impl FnOnce() -> Result<L>,
    mut install: impl FnMut(Origin, &[Spec], &InstallOptions) -> Result<InstallReport>,
) -> Result<InstallReport> {
    // Lock and recover before reading ggen.lock: a dead transaction's
    // lockfile must not decide what gets pinned.
    let _guard = lock()?;
    recover(root)?;
    // A name given twice is one name (its note was shown twice).
    let names: Vec<String> = {
        let mut seen = std::collections::BTreeSet::new();
        (names.iter())
            .filter(|n| seen.insert(*n))
            .cloned()
            .collect()
    };
    let names = names.as_slice();
    let locked = installed::read(root)?.packages;
    if locked.is_empty() {
        return Err(MarketplaceError::NotFound(format!(
            "nothing is installed in {}",
            root.display()
        )));
    }
    for name in names {
        if !locked.iter().any(|p| &p.name == name) {
            return Err(MarketplaceError::NotFound(format!(
                "`{name}` is not installed in {}; install it first",
                root.display()
            )));
        }
    }
    let selected = |name: &str| names.is_empty() || names.iter().any(|n| n == name);
    let origin = |source: &str| {
        if from_peers {
            Origin::of(source)
        } else {
            Origin::Registry
        }
    };
    if !from_peers {
        let delivered: Vec<&str> = (locked.iter())
            .filter(|p| selected(&p.name) && Origin::of(&p.source) == Origin::Peers)
            .map(|p| p.name.as_str())
            .collect();
        if !delivered.is_empty() {
            // Their newer versions may exist only on the network.
            tracing::warn!(
                "{} came from peers; only the registry is searched for newer versions unless you pass --p2p",
                delivered.join(", ")
            );
        }
    }
    let options = InstallOptions {
        force: false,
        requested: false,
        ..options.clone()
    };
    let report = InstallReport::per_origin(|from| {
        // Read again: the first transaction may have moved versions.
        let locked = installed::read(root)?.packages;
        if !locked
            .iter()
            .any(|p| selected(&p.name) && origin(&p.source) == from)
        {
            return Ok(None);
        }
        let moves = |p: &installed::LockedPackage| selected(&p.name) && origin(&p.source) == from;
        let needed = dependencies_of(&locked, locked.iter().filter(|p| moves(p)));
        let dependents = dependents_of(&locked, locked.iter().filter(|p| moves(p)));
        let mut specs = Vec::new();
        let mut options = options.clone();
        for p in &locked {
            // A selected package goes as high as its dependents' requirements
            // allow (they stay where they are), never lower. The rest is left
            // to the install, which keeps each installed version unless the
            // new versions need a higher one: what they depend on, now or
            // at their new versions. What comes from elsewhere stays (this
            // transaction cannot fetch it).
            let held = origin(&p.source) != from
                || (dependents.contains(p.name.as_str()) && !needed.contains(p.name.as_str()));
            if !moves(p) && !held {
                continue;
            }
            let op = if moves(p) { ">=" } else { "=" };
            // Under --all the user named nothing.
            if !moves(p) || names.is_empty() {
                options.unnamed.insert(p.name.clone());
            }
            specs.push(Spec {
                name: p.name.clone(),
                req: installed::requirement(op, &p.name, &p.version)?,
                latest: false,
            });
        }
        // Installed packages the plan moves though the selected ones do not
        // need them (one beside them whose dependency they move, as far as
        // a major version) stay where they are; planned again until none.
        // They are not in the report: nothing asked about them. Only one
        // with dependencies can be moved so, so without any, no dry plan.
        let mut kept_aside = std::collections::BTreeSet::new();
        let free = |p: &installed::LockedPackage| !specs.iter().any(|s| s.name == p.name);
        if (locked.iter()).any(|p| free(p) && !p.dependencies.is_empty()) {
            let dry_run = InstallOptions {
                dry_run: true,
                ..options.clone()
            };
            loop {
                let plan = install(from, &specs, &dry_run)?;
                let strays = strays(&plan, &locked, |name| {
                    (locked.iter()).any(|p| p.name == name && moves(p))
                });
                if strays.is_empty() {
                    break;
                }
                for p in strays {
                    kept_aside.insert(p.name.clone());
                    options.unnamed.insert(p.name.clone());
                    specs.push(Spec {
                        name: p.name.clone(),
                        req: installed::requirement("=", &p.name, &p.version)?,
                        latest: false,
                    });
                }
            }
        }
        let mut report = install(from, &specs, &options)?;
        (report.packages).retain(|p| !kept_aside.contains(&p.name));
        Ok(Some(report))
    })?;
    let mut report = report.expect("the packages to update are installed (checked above)");
    // Under --all, the packages installed by name (as cargo notes the direct
    // dependencies it left behind), but not those peers delivered: each
    // explanation of one would ask the network again.
    let explained: Vec<String> = match names.is_empty() {
        false => names.to_vec(),
        true => (locked.iter())
            .filter(|p| p.requested && origin(&p.source) == Origin::Registry)
            .map(|p| p.name.clone())
            .collect(),
    };
    for name in explained.iter().take(MAX_EXPLAINED) {
        let Some(row) = report.packages.iter().find(|p| p.name == *name) else {
            continue;
        };
        let from = (locked.iter())
            .find(|p| p.name == *name)
            .map_or(Origin::Registry, |p| origin(&p.source));
        if let Some(why) = held_back(name, &row.version, from, &options, &mut install) {
            report.held_back.push(HeldBack {
                name: name.clone(),
                version: row.version.clone(),
                why,
            });
        }
    }
    Ok(report)
}

/// A named package that stays below its newest version.
#[derive(Debug, Clone, Serialize)]
pub struct HeldBack {
    pub name: String,
    /// The version it stays at.
    pub version: String,
    /// Why the newest is not taken: the error installing it gives, or what
    /// else it would move.
    pub why: String,
}

/// Named packages explained at most (each costs a resolution).
const MAX_EXPLAINED: usize = 10;

/// Why `name` stays at `version` rather than its newest (as cargo notes
/// what it held back: `update x` said only "nothing to do"), from a dry run
/// of `install name@latest`; None when it is at its newest.
fn held_back(
    name: &str,
    version: &str,
    from: Origin,
    options: &InstallOptions,
    install: &mut impl FnMut(Origin, &[Spec], &InstallOptions) -> Result<InstallReport>,
) -> Option<String> {
    let spec = Spec {
        name: name.to_owned(),
        req: semver::VersionReq::STAR,
        latest: true,
    };
    let options = InstallOptions {
        dry_run: true,
        unnamed: Default::default(),
        pinned: Default::default(),
        ..options.clone()
    };
    let plan = match install(from, &[spec], &options) {
        Ok(plan) => plan,
        Err(e) => {
            // A conflict speaks for itself without its "dependency error" label.
            let why = match e {
                MarketplaceError::Dependency(why) => why,
                e => e.to_string(),
            };
            return Some(format!("its newest version cannot be installed: {why}"));
        }
    };
    let newest = plan.packages.iter().find(|p| p.name == name)?;
    let newer = match (
        semver::Version::parse(&newest.version),
        semver::Version::parse(version),
    ) {
        (Ok(newest), Ok(current)) => newest > current,
        _ => false,
    };
    if !newer {
        return None;
    }
    use super::install::Action;
    let others = (plan.packages.iter()).filter(|p| p.name != name);
    let moved: Vec<String> = (others.clone())
        .filter(|p| !matches!(p.action, Action::Unchanged | Action::Install))
        .map(|p| format!("{} to {}", p.name, p.version))
        .collect();
    let added: Vec<String> = (others.clone())
        .filter(|p| p.action == Action::Install)
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect();
    let would: Vec<String> = [("move", moved), ("install", added)]
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(verb, names)| format!("{verb} {}", names.join(", ")))
        .collect();
    Some(match would.is_empty() {
        true => format!(
            "update keeps what {name}@{} needs where it is; `install {name}@latest` takes it",
            newest.version
        ),
        false => format!(
            "{name}@{} would also {}; `install {name}@latest` does that",
            newest.version,
            would.join(" and ")
        ),
    })
}

/// The installed packages `plan` moves that no `selected` package needs,
/// directly or not, at the versions planned.
fn strays<'a>(
    plan: &InstallReport,
    locked: &'a [installed::LockedPackage],
    selected: impl Fn(&str) -> bool,
) -> Vec<&'a installed::LockedPackage> {
    let planned = |name: &str| plan.packages.iter().find(|p| p.name == name);
    let mut needed = std::collections::BTreeSet::new();
    let mut stack: Vec<&str> = (plan.packages.iter())
        .filter(|p| selected(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    while let Some(name) = stack.pop() {
        if needed.insert(name)
            && let Some(p) = planned(name)
        {
            stack.extend(p.dependencies.keys().map(String::as_str));
        }
    }
    (locked.iter())
        .filter(|l| !needed.contains(l.name.as_str()))
        .filter(|l| planned(&l.name).is_some_and(|p| p.action != super::install::Action::Unchanged))
        .collect()
}

/// Everything that depends on `on`, directly or not, as ggen.lock records it.
fn dependents_of<'a>(
    locked: &'a [installed::LockedPackage],
    on: impl Iterator<Item = &'a installed::LockedPackage>,
) -> std::collections::BTreeSet<&'a str> {
    let mut found = std::collections::BTreeSet::new();
    let mut stack: Vec<&str> = on.map(|p| p.name.as_str()).collect();
    while let Some(name) = stack.pop() {
        for p in locked.iter().filter(|p| p.dependencies.contains_key(name)) {
            if found.insert(p.name.as_str()) {
                stack.push(&p.name);
            }
        }
    }
    found
}

/// Everything `from` depend on, directly or not, as ggen.lock records it.
fn dependencies_of<'a>(
    locked: &'a [installed::LockedPackage],
    from: impl Iterator<Item = &'a installed::LockedPackage>,
) -> std::collections::BTreeSet<&'a str> {
    let mut found = std::collections::BTreeSet::new();
    let mut stack: Vec<&str> = from
        .flat_map(|p| p.dependencies.keys().map(String::as_str))
        .collect();
    while let Some(name) = stack.pop() {
        if found.insert(name)
            && let Some(p) = locked.iter().find(|p| p.name == name)
        {
            stack.extend(p.dependencies.keys().map(String::as_str));
        }
    }
    found
}
