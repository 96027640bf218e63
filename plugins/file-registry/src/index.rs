//! index.json, the seeds' format:
//!
//! ```json
//! {"version": "1", "updated_at": "...",
//!  "packages": {"<name>": {"name": "<name>", "versions": [<entry>, ...]}}}
//! ```
//!
//! An entry holds version, title, description, categories, tags, authors,
//! license, dependencies ({name: requirement}), checksum, tarball (relative to
//! the root), published_at and size. Missing optional fields default, so an
//! index written by hand or by another tool is read as is.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use ggen_plugin_sdk::{Dependency, Error, Package, PackageVersion};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const INDEX_FORMAT_VERSION: &str = "1";

/// index.json with each package kept as raw JSON: an operation parses only the
/// packages it touches, so memory stays near the file's size even at 100k packages.
#[derive(Debug)]
pub struct IndexFile {
    pub version: String,
    pub updated_at: String,
    /// Required in the file: an index without it (`{}`, `[]`: a truncating
    /// tool, a bad merge) is damage to recover from, not an empty registry.
    packages: BTreeMap<String, Stored>,
    /// The registry root, where an entry that does not parse is read back
    /// from its package.json files (set by `FileRegistry::load_index`).
    pub root: Option<PathBuf>,
    /// Entries already read back from their package.json files.
    recovered: RefCell<BTreeMap<String, IndexPackage>>,
}

/// A package's entry as index.json holds it.
#[derive(Debug)]
pub struct Stored {
    pub raw: Box<RawValue>,
    /// Where the entry starts in the index.json it was read from or written
    /// to (the derived index points lookups there); None once changed.
    pub at: Option<u64>,
}

impl Default for IndexFile {
    fn default() -> Self {
        Self {
            version: format_version(),
            updated_at: String::new(),
            packages: BTreeMap::new(),
            root: None,
            recovered: RefCell::default(),
        }
    }
}

fn format_version() -> String {
    INDEX_FORMAT_VERSION.to_owned()
}

impl IndexFile {
    /// Parse index.json's bytes, noting where each entry lies in them.
    pub fn parse(bytes: &[u8]) -> serde_json::Result<Self> {
        #[derive(Deserialize)]
        struct Read<'a> {
            #[serde(default = "format_version")]
            version: String,
            #[serde(default)]
            updated_at: String,
            #[serde(borrow)]
            packages: BTreeMap<String, &'a RawValue>,
        }
        let read: Read = serde_json::from_slice(bytes)?;
        let base = bytes.as_ptr() as usize;
        let packages = (read.packages.into_iter())
            .map(|(name, raw)| {
                // Borrowed: the entry's own bytes within `bytes`.
                let at = (raw.get().as_ptr() as usize).checked_sub(base);
                let at = at.map(|at| at as u64);
                (
                    name,
                    Stored {
                        raw: raw.to_owned(),
                        at,
                    },
                )
            })
            .collect();
        Ok(Self {
            version: read.version,
            updated_at: read.updated_at,
            packages,
            ..Self::default()
        })
    }

    /// Write as index.json (compact, as serde_json writes it), noting where
    /// each entry lands.
    pub fn write_json(&mut self, w: &mut dyn Write) -> io::Result<()> {
        let mut w = Counted {
            inner: w,
            written: 0,
        };
        w.write_all(b"{\"version\":")?;
        serde_json::to_writer(&mut w, &self.version)?;
        w.write_all(b",\"updated_at\":")?;
        serde_json::to_writer(&mut w, &self.updated_at)?;
        w.write_all(b",\"packages\":{")?;
        for (i, (name, stored)) in self.packages.iter_mut().enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut w, name)?;
            w.write_all(b":")?;
            stored.at = Some(w.written);
            w.write_all(stored.raw.get().as_bytes())?;
        }
        w.write_all(b"}}")
    }

    /// The index of a registry at `root` as far as one key goes: `value` is
    /// what index.json holds under `name` (found through the derived
    /// index), if anything.
    pub fn only(root: PathBuf, name: &str, value: Option<Box<RawValue>>) -> Self {
        let stored = value.map(|raw| Stored { raw, at: None });
        Self {
            packages: stored.map(|s| (name.to_owned(), s)).into_iter().collect(),
            root: Some(root),
            ..Self::default()
        }
    }

    /// Every key with its entry as stored, in key order.
    pub fn stored(&self) -> &BTreeMap<String, Stored> {
        &self.packages
    }

    /// One package, parsed.
    pub fn package(&self, name: &str) -> Result<Option<IndexPackage>, Error> {
        self.packages
            .get(name)
            .map(|stored| self.usable_package(name, &stored.raw))
            .transpose()
    }

    /// Every package, parsed one at a time.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Result<IndexPackage, Error>)> {
        self.packages
            .iter()
            .map(|(name, stored)| (name.as_str(), self.usable_package(name, &stored.raw)))
    }

    /// [`Self::parse_package`] without what nothing could install (search
    /// showed it, and install then said "not in the registry"): a key that
    /// is no package name, versions that are not semver.
    fn usable_package(&self, name: &str, raw: &RawValue) -> Result<IndexPackage, Error> {
        if !crate::registry::is_package_name(name) {
            return Err(Error::Invalid(format!(
                "index.json has an entry `{}`, which is not a package name; fix or remove that entry",
                excerpt(name)
            )));
        }
        let mut package = self.parse_package(name, raw)?;
        let mut ignored = Vec::new();
        package.versions.retain(|e| {
            let usable = semver::Version::parse(&e.version).is_ok();
            if !usable {
                ignored.push(format!("`{}`", excerpt(&e.version)));
            }
            usable
        });
        if !ignored.is_empty() {
            let why = format!(
                "index.json entry for `{name}` has versions that are not semver ({}); fix or remove them",
                ignored.join(", ")
            );
            // With none left the package is not there; a write (publish,
            // delete) drops them.
            warn_once(name, raw, &format!("{why} (they are ignored)"));
        }
        Ok(package)
    }

    /// Whether an entry's tarball is `path` (relative to the root) or lies
    /// under it, paths compared component by component (`c//1.0.0/x` and
    /// `c/./1.0.0/x` name `c/1.0.0/x`): what a clean-up must leave alone.
    /// Only the package `path` starts with (its entries without a tarball
    /// lie at `<name>/<version>/`) and those whose text holds `path`'s last
    /// name (or an escape that may spell it) are parsed; one that does not
    /// parse holds it.
    pub fn names_tarball_within(&self, path: &Path) -> bool {
        #[derive(Deserialize)]
        struct Located {
            #[serde(default)]
            versions: Vec<Where>,
        }
        #[derive(Deserialize)]
        struct Where {
            version: String,
            #[serde(default)]
            tarball: String,
        }
        let path = plain(path);
        let (Some(first), Some(last)) = (
            path.iter().next().and_then(|n| n.to_str()),
            path.file_name().and_then(|n| n.to_str()),
        ) else {
            return true;
        };
        self.packages.iter().any(|(name, stored)| {
            let raw = stored.raw.get();
            if name != first && !raw.contains(last) && !raw.contains('\\') {
                return false;
            }
            let Ok(located) = serde_json::from_str::<Located>(raw) else {
                return true;
            };
            located.versions.iter().any(|e| {
                let tarball = match e.tarball.is_empty() {
                    true => tarball_path(name, &e.version),
                    false => e.tarball.clone(),
                };
                plain(Path::new(&tarball)).starts_with(&path)
            })
        })
    }

    pub fn set_package(&mut self, name: &str, package: &IndexPackage) {
        let raw = serde_json::value::to_raw_value(package).expect("index packages serialise");
        self.packages
            .insert(name.to_owned(), Stored { raw, at: None });
        self.recovered.get_mut().remove(name);
    }

    /// Drop a package (its last version was deleted), recovered copy included.
    pub fn remove_package(&mut self, name: &str) {
        self.packages.remove(name);
        self.recovered.get_mut().remove(name);
    }

    /// Write back the entries read from package.json files instead (before
    /// a write; only those met so far: checking every entry would cost a
    /// publish to a large registry a second parse of the whole index).
    pub fn repair(&mut self) {
        let recovered = std::mem::take(self.recovered.get_mut());
        for (name, package) in recovered {
            self.set_package(&name, &package);
        }
    }

    /// An entry that does not parse (a hand edit, another tool) keeps the
    /// versions that still can be read: its own version entries that parse
    /// one by one, then those only its package.json files hold. Done once per
    /// index, with a warning; with nothing readable it is an error naming it.
    fn parse_package(&self, name: &str, raw: &RawValue) -> Result<IndexPackage, Error> {
        let why = match serde_json::from_str(raw.get()) {
            Ok(package) => return Ok(package),
            Err(e) => format!("index.json entry for `{name}` is malformed: {e}"),
        };
        if let Some(package) = self.recovered.borrow().get(name) {
            return Ok(package.clone());
        }
        let mut package = IndexPackage {
            name: name.to_owned(),
            versions: Vec::new(),
        };
        for entry in readable_versions(raw) {
            package.add_if_new(entry);
        }
        let from_entry = package.versions.len();
        // The key names a directory to read: only a package name may.
        if let (Some(root), true) = (&self.root, crate::registry::is_package_name(name))
            && let Ok(Some(found)) = crate::recover::package_from_manifests(root, name)
        {
            for entry in found.versions {
                package.add_if_new(entry);
            }
        }
        if package.versions.is_empty() {
            return Err(Error::Invalid(format!(
                "{why} (and no version of it can be read elsewhere); fix or remove that entry in index.json"
            )));
        }
        package.sort_newest_first();
        warn_once(
            name,
            raw,
            &format!(
                "{why}; kept the {} version(s) still readable ({from_entry} from the entry, {} from its package.json files); publishing a version of it rewrites the entry",
                package.versions.len(),
                package.versions.len() - from_entry
            ),
        );
        (self.recovered.borrow_mut()).insert(name.to_owned(), package.clone());
        Ok(package)
    }
}

/// A writer that counts what it wrote.
struct Counted<'w> {
    inner: &'w mut dyn Write,
    written: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hand-written text for a one-line message: escaped, at most 64 characters.
fn excerpt(text: &str) -> String {
    text.escape_debug().take(64).collect()
}

/// Warn about a damaged entry once per instance and damage (one command,
/// or a node until the entry changes): the index is loaded per call.
fn warn_once(name: &str, raw: &RawValue, message: &str) {
    static WARNED: std::sync::Mutex<Vec<(String, u64)>> = std::sync::Mutex::new(Vec::new());
    let seen = (name.to_owned(), {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        raw.get().hash(&mut hasher);
        message.hash(&mut hasher);
        hasher.finish()
    });
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned.contains(&seen) {
        warned.push(seen);
        crate::warn(message);
    }
}

/// The version entries of a malformed package entry that parse on their own.
fn readable_versions(raw: &RawValue) -> Vec<IndexEntry> {
    let Ok(serde_json::Value::Object(mut entry)) = serde_json::from_str(raw.get()) else {
        return Vec::new();
    };
    let Some(serde_json::Value::Array(versions)) = entry.remove("versions") else {
        return Vec::new();
    };
    versions
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexPackage {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub versions: Vec<IndexEntry>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Present in package.json files; in index.json the package key names it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub version: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub title: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub description: String,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    #[serde(default)]
    pub checksum: String,
    #[serde(default)]
    pub tarball: String,
    #[serde(default)]
    pub published_at: String,
    #[serde(default)]
    pub size: u64,
}

impl IndexEntry {
    pub fn to_wire(&self, name: &str) -> PackageVersion {
        PackageVersion {
            name: name.to_owned(),
            version: self.version.clone(),
            title: if self.title.is_empty() {
                name.to_owned()
            } else {
                self.title.clone()
            },
            description: self.description.clone(),
            categories: self.categories.clone(),
            tags: self.tags.clone(),
            authors: self.authors.clone(),
            license: self.license.clone(),
            dependencies: self
                .dependencies
                .iter()
                .map(|(name, requirement)| Dependency {
                    name: name.clone(),
                    requirement: requirement.clone(),
                })
                .collect(),
            checksum: self.checksum.clone(),
            published_at: self.published_at.clone(),
            size: self.size,
        }
    }

    pub fn from_wire(meta: &PackageVersion, tarball: String) -> Self {
        IndexEntry {
            name: String::new(),
            version: meta.version.clone(),
            title: meta.title.clone(),
            description: meta.description.clone(),
            categories: meta.categories.clone(),
            tags: meta.tags.clone(),
            authors: meta.authors.clone(),
            license: meta.license.clone(),
            dependencies: meta
                .dependencies
                .iter()
                .map(|d| (d.name.clone(), d.requirement.clone()))
                .collect(),
            checksum: meta.checksum.clone(),
            tarball,
            published_at: meta.published_at.clone(),
            size: meta.size,
        }
    }
}

impl IndexPackage {
    /// The entry search shows: the newest stable version, else the newest
    /// pre-release (the SDK's rule).
    pub fn newest(&self) -> Option<&IndexEntry> {
        self.versions
            .iter()
            .max_by_key(|e| ggen_plugin_sdk::search::preference(&e.version))
    }

    /// Keep `entry` unless a version of that number is already kept.
    pub fn add_if_new(&mut self, entry: IndexEntry) {
        if !self.versions.iter().any(|e| e.version == entry.version) {
            self.versions.push(entry);
        }
    }

    pub fn sort_newest_first(&mut self) {
        self.versions
            .sort_by_key(|e| std::cmp::Reverse(semver::Version::parse(&e.version).ok()));
    }

    pub fn to_wire(&self, name: &str) -> Package {
        let mut package = self.clone();
        package.sort_newest_first();
        Package {
            name: name.to_owned(),
            versions: package.versions.iter().map(|e| e.to_wire(name)).collect(),
        }
    }
}

/// A text field that may be `null` (publish takes it as absent; an index
/// written by hand may have it): empty.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// `path` without `.` components (a leading one is kept by `Path`).
fn plain(path: &Path) -> PathBuf {
    (path.components())
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// The relative tarball path a version is stored under.
pub fn tarball_path(name: &str, version: &str) -> String {
    format!("{name}/{version}/{name}-{version}.tar.gz")
}
