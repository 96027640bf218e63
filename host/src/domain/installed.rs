//! Installed packages, as recorded in `<packages>/ggen.lock`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{MarketplaceError, Result};
use crate::backend::small_file::read_if_present;

pub const LOCKFILE: &str = "ggen.lock";
/// Room for every file digest of a very large install root.
pub const MAX_LOCKFILE_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Lockfile {
    pub version: u32,
    #[serde(default)]
    pub packages: Vec<LockedPackage>,
}

/// Where an installed package came from, by its ggen.lock `source`; a
/// package is fetched again (hooks, updates) from where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Registry,
    Peers,
}

impl Origin {
    pub fn of(source: &str) -> Origin {
        if source.starts_with(super::p2p_install::SOURCE_PREFIX) {
            Origin::Peers
        } else {
            Origin::Registry
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    /// Where it came from, e.g. `registry+file:///home/me/.ggen/registry`.
    pub source: String,
    /// `sha256-<hex>` of the tarball.
    pub integrity: String,
    /// The tarball's size in bytes, for reference (0 in lockfiles written
    /// before it was recorded). Fetching by `integrity` asks the provider.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    /// Every installed file, path (relative to the package directory) →
    /// `sha256-<hex>`, as it was when the install committed (after hooks).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The package's post-install hooks, in the order they were declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRecord>,
    /// Files the approved hooks created, modified or removed (relative to
    /// what the tarball held): `verify` tells these apart from later tampering.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hook_changes: BTreeMap<String, FileChange>,
    /// The `--var` values its hooks last ran with: a later run of them (an
    /// update, `approve-hooks`, a reinstall) gets them again, under what
    /// that command's `--var` sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Installed because someone asked for it, not only as another's
    /// dependency (`"requested": false`): `remove` takes dependencies that
    /// nothing needs any more along. Lockfiles from before it was recorded
    /// count everything as asked for, so nothing goes unasked.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub requested: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRecord {
    /// As declared in package.json: `builtin:<name>` or a path in the package.
    pub hook: String,
    /// `sha256-<hex>` of the hook component.
    pub digest: String,
    pub outcome: HookOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookOutcome {
    /// Ran and succeeded.
    Ran,
    /// Not approved, so not run (`approve-hooks` runs it later).
    Skipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileChange {
    Created,
    Modified,
    Removed,
}

pub const LOCKFILE_VERSION: u32 = 1;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The installed packages under `packages_dir` (none if nothing was installed).
pub fn list(packages_dir: &Path) -> Result<Vec<LockedPackage>> {
    let mut packages = read(packages_dir)?.packages;
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

/// `op` and a version ggen.lock holds for `name` as a requirement (`=1.2.0`
/// holds it there, `>=1.2.0` lets it move up).
pub fn requirement(op: &str, name: &str, version: &str) -> Result<semver::VersionReq> {
    semver::VersionReq::parse(&format!("{op}{version}")).map_err(|e| {
        MarketplaceError::Storage(format!("ggen.lock has an invalid version for {name}: {e}"))
    })
}

/// `<packages_dir>/ggen.lock`, or an empty lockfile if there is none.
pub fn read(packages_dir: &Path) -> Result<Lockfile> {
    let path = packages_dir.join(LOCKFILE);
    let text = match read_if_present(&path, MAX_LOCKFILE_BYTES) {
        Ok(Some(text)) => text,
        Ok(None) => {
            return Ok(Lockfile {
                version: LOCKFILE_VERSION,
                packages: Vec::new(),
            });
        }
        Err(e) => {
            return Err(MarketplaceError::storage(
                format!("cannot read {}", path.display()),
                e,
            ));
        }
    };
    let lock: Lockfile = serde_json::from_str(&text).map_err(|e| {
        MarketplaceError::Storage(format!(
            "{} is not a valid lockfile ({e}); restore it from a backup, or move it away and install again",
            path.display()
        ))
    })?;
    // Another format (a newer ggen's) is not read as this one and rewritten.
    if lock.version != LOCKFILE_VERSION {
        return Err(MarketplaceError::Unsupported(format!(
            "{} is lockfile format {}; this ggen reads format {LOCKFILE_VERSION} (use the ggen that wrote it)",
            path.display(),
            lock.version
        )));
    }
    check_entries(&lock).map_err(|e| {
        MarketplaceError::Storage(format!(
            "{} is not a valid lockfile ({}); restore it from a backup, or move it away and install again",
            path.display(),
            e
        ))
    })?;
    Ok(lock)
}

/// What a hand-edited or damaged ggen.lock may not hold: names become
/// directories and versions are compared, so each must be what ggen writes.
fn check_entries(lock: &Lockfile) -> std::result::Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for p in &lock.packages {
        let entry = || format!("entry `{}`", super::excerpt(&p.name, 64));
        super::manifest::validate_name(&p.name).map_err(|e| format!("{}: {e}", entry()))?;
        if !seen.insert(p.name.as_str()) {
            return Err(format!("{} appears twice", entry()));
        }
        semver::Version::parse(&p.version).map_err(|e| {
            format!(
                "{}: version `{}` is not a semver version ({e})",
                entry(),
                super::excerpt(&p.version, 64)
            )
        })?;
        for (dep, version) in &p.dependencies {
            super::manifest::validate_name(dep)
                .map_err(|e| format!("{}: dependency {e}", entry()))?;
            semver::Version::parse(version).map_err(|e| {
                format!(
                    "{}: dependency `{dep}` has version `{}`, not a semver version ({e})",
                    entry(),
                    super::excerpt(version, 64)
                )
            })?;
        }
        if let Some(name) =
            (p.variables.keys()).find(|n| !ggen_plugin_sdk::names::is_variable_name(n))
        {
            return Err(format!(
                "{}: variable `{}` is not a variable name (1-64 letters, digits, `_`, `-`, `.`)",
                entry(),
                super::excerpt(&name.escape_debug().to_string(), 64)
            ));
        }
        let paths = p.files.keys().chain(p.hook_changes.keys());
        if let Some(file) = paths.into_iter().find(|f| !is_plain_relative(f)) {
            return Err(format!(
                "{}: file `{}` is not a plain path inside the package",
                entry(),
                super::excerpt(file, 64)
            ));
        }
    }
    Ok(())
}

fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Replace `<packages_dir>/ggen.lock` atomically: a temporary file beside it
/// is written and synced, renamed over the old one, and the directory synced,
/// so a crash leaves either the old or the new lockfile, never a mix.
pub fn write(packages_dir: &Path, lock: &Lockfile) -> Result<()> {
    write_via(packages_dir, lock, packages_dir)
}

/// [`write`], with the temporary file in `tmp_dir` (same filesystem).
pub fn write_via(packages_dir: &Path, lock: &Lockfile, tmp_dir: &Path) -> Result<()> {
    let mut sorted = lock.clone();
    sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
    let mut text = serde_json::to_string_pretty(&sorted).expect("lockfiles serialise");
    text.push('\n');
    write_raw_via(packages_dir, text.as_bytes(), tmp_dir)
}

/// Atomically replace ggen.lock with exactly `bytes`.
pub fn write_raw_via(packages_dir: &Path, bytes: &[u8], tmp_dir: &Path) -> Result<()> {
    let fail = |e: std::io::Error| {
        MarketplaceError::storage(
            format!("cannot write {}", packages_dir.join(LOCKFILE).display()),
            e,
        )
    };
    std::fs::create_dir_all(packages_dir).map_err(fail)?;
    crate::backend::atomic::write_file(&packages_dir.join(LOCKFILE), bytes, tmp_dir)
        .map_err(fail)?;
    #[cfg(unix)]
    std::fs::File::open(packages_dir)
        .and_then(|d| d.sync_all())
        .map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockfiles_round_trip_sorted_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().packages.is_empty());
        let entry = |name: &str| LockedPackage {
            name: name.into(),
            version: "1.0.0".into(),
            source: "registry+file:///r".into(),
            integrity: "sha256-00".into(),
            size: 12,
            dependencies: BTreeMap::from([("x".to_string(), "1.0.0".to_string())]),
            files: BTreeMap::from([("a.txt".to_string(), "sha256-00".to_string())]),
            hooks: Vec::new(),
            hook_changes: BTreeMap::new(),
            variables: BTreeMap::from([("who".to_string(), name.to_string())]),
            requested: name == "alpha",
        };
        let lock = Lockfile {
            version: LOCKFILE_VERSION,
            packages: vec![entry("zeta"), entry("alpha")],
        };
        write(dir.path(), &lock).unwrap();
        let first = std::fs::read(dir.path().join(LOCKFILE)).unwrap();
        let back = read(dir.path()).unwrap();
        assert_eq!(
            back.packages
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["alpha", "zeta"]
        );
        // Only a dependency says so; an entry without it was asked for.
        let text = String::from_utf8(std::fs::read(dir.path().join(LOCKFILE)).unwrap()).unwrap();
        assert_eq!(text.matches("\"requested\": false").count(), 1, "{text}");
        assert_eq!(
            (back.packages[0].requested, back.packages[1].requested),
            (true, false)
        );
        // Same content, same bytes; no temporary files left behind.
        write(dir.path(), &back).unwrap();
        assert_eq!(std::fs::read(dir.path().join(LOCKFILE)).unwrap(), first);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn hand_edited_entries_are_refused_naming_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let good = serde_json::json!({"name": "app", "version": "1.0.0", "source": "s",
            "integrity": "sha256-00", "dependencies": {"base": "1.0.0"}, "files": {"a/b.txt": "sha256-00"}});
        let cases = [
            (
                "name",
                serde_json::json!("../evil"),
                "entry `../evil`: package name `../evil` must start",
            ),
            (
                "version",
                serde_json::json!("latest"),
                "entry `app`: version `latest` is not a semver version",
            ),
            (
                "dependencies",
                serde_json::json!({"base": "^1"}),
                "dependency `base` has version `^1`",
            ),
            (
                "dependencies",
                serde_json::json!({"Base": "1.0.0"}),
                "entry `app`: dependency package name `Base`",
            ),
            (
                "files",
                serde_json::json!({"../../x": "sha256-00"}),
                "file `../../x` is not a plain path",
            ),
            (
                "files",
                serde_json::json!({"/etc/passwd": "sha256-00"}),
                "file `/etc/passwd`",
            ),
            (
                "variables",
                serde_json::json!({"a b": "x"}),
                "entry `app`: variable `a b` is not a variable name",
            ),
        ];
        for (field, value, expected) in cases {
            let mut entry = good.clone();
            entry[field] = value;
            let text = serde_json::json!({"version": 1, "packages": [entry]}).to_string();
            std::fs::write(dir.path().join(LOCKFILE), text).unwrap();
            let err = read(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains(expected) && !err.contains('\n'),
                "{field}: {err}"
            );
        }
        let twice = serde_json::json!({"version": 1, "packages": [good.clone(), good]}).to_string();
        std::fs::write(dir.path().join(LOCKFILE), twice).unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("entry `app` appears twice"), "{err}");
    }
}
