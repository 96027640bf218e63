//! The backend's operations over a registry root and a cache directory.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ggen_plugin_sdk::{Error, Package, PackageVersion, Query, RegistryMetadata, SearchResults};

use crate::fsutil::{copy_atomic, open_failure, write_atomic, write_atomic_with, write_new_with};
use crate::index::{IndexEntry, IndexFile, IndexPackage, tarball_path};
use crate::package_table::Found;
use crate::{recover, search_index, warn};

pub const INDEX_FILE: &str = "index.json";

/// Tarballs larger than this are refused (the host enforces its own limits too).
const MAX_TARBALL: u64 = 4 << 30;

pub struct FileRegistry {
    pub(crate) root: PathBuf,
    pub(crate) cache: PathBuf,
}

impl FileRegistry {
    pub fn new(root: impl Into<PathBuf>, cache: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            cache: cache.into(),
        }
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    /// Read index.json. A missing index is rebuilt from the per-version
    /// manifests if there are any (else empty); a corrupt one is kept as a
    /// backup and rebuilt the same way, with a warning: nothing is lost.
    pub fn load_index(&self) -> Result<IndexFile, Error> {
        match ggen_plugin_sdk::fs::read(&self.index_path()) {
            Ok(bytes) => match IndexFile::parse(&bytes) {
                Ok(mut index) => {
                    index.root = Some(self.root.clone());
                    Ok(index)
                }
                Err(e) => recover::rebuild_corrupt(self, &e.to_string()),
            },
            // A dangling symlink is not a missing index: rebuilding could never write one.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && fs::symlink_metadata(self.index_path()).is_err() =>
            {
                recover::rebuild_missing(self)
            }
            Err(e) => Err(Error::io(format!(
                "cannot read {INDEX_FILE}: {}",
                open_failure(&self.index_path(), &e)
            ))),
        }
    }

    /// Write index.json atomically and refresh the derived search index.
    /// Only writers holding the registry lock (publish, delete) may replace
    /// the index; see [`Self::save_new_index`].
    pub(crate) fn save_index(&self, index: &mut IndexFile) -> Result<(), Error> {
        let written = self.write_index(index)?;
        // Another tool may write index.json while the derived index is
        // built: that file must not get this one's derived index.
        self.refresh_search_index(index, search_index::Fingerprint::of(&written));
        Ok(())
    }

    /// index.json alone, atomically (the search index is refreshed apart);
    /// the metadata of the file written.
    fn write_index(&self, index: &mut IndexFile) -> Result<fs::Metadata, Error> {
        index.repair();
        write_atomic_with(&self.index_path(), |w| index.write_json(w))
            .map_err(|e| Error::io(format!("cannot write {INDEX_FILE}: {e}")))
    }

    /// Write a rebuilt index.json unless one appeared meanwhile (false): a
    /// search rebuilds without the registry lock, and its scan may predate a
    /// publish that has since written the index.
    pub(crate) fn save_new_index(&self, index: &mut IndexFile) -> Result<bool, Error> {
        let written = write_new_with(&self.index_path(), |w| index.write_json(w))
            .map_err(|e| Error::io(format!("cannot write {INDEX_FILE}: {e}")))?;
        let Some(written) = written else {
            return Ok(false);
        };
        // Without the registry lock: a publish may replace it before the
        // search index is stored, which must then not claim its fingerprint.
        let written_as = search_index::Fingerprint::of(&written);
        self.refresh_search_index(index, written_as);
        Ok(true)
    }

    fn refresh_search_index(
        &self,
        index: &IndexFile,
        written_as: Option<search_index::Fingerprint>,
    ) {
        if let Err(e) = search_index::rebuild(self, index, written_as) {
            // The search index is derived data: the next search rebuilds it.
            warn(&format!("could not refresh the search index: {e}"));
        }
    }

    pub fn list_packages(&self) -> Result<Vec<Package>, Error> {
        // One unusable entry (named in a warning) does not hide the rest.
        Ok((self.load_index()?.iter())
            .filter_map(|(name, p)| match p {
                Ok(p) => Some(p.to_wire(name)),
                Err(e) => {
                    crate::warn(&format!("{}; it is left out", e.message()));
                    None
                }
            })
            .collect())
    }

    pub fn search(&self, query: &Query) -> Result<SearchResults, Error> {
        search_index::search(self, query)
    }

    /// The index as far as `name` goes: its entry alone, found through the
    /// derived index while that is fresh, else all of index.json (read, and
    /// recovered if damaged; the next search stores a fresh derived index).
    fn index_for(&self, name: &str) -> Result<IndexFile, Error> {
        if let Some(found) = search_index::lookup(self, name) {
            let value = match found {
                Found::Entry(value) => Some(value),
                Found::Absent => None,
            };
            return Ok(IndexFile::only(self.root.clone(), name, value));
        }
        self.load_index()
    }

    pub fn get_package(&self, name: &str) -> Result<Package, Error> {
        let index = self.index_for(name)?;
        let package = (index.package(name)?)
            .filter(|p| !p.versions.is_empty())
            .ok_or_else(|| not_found(name, None))?;
        Ok(package.to_wire(name))
    }

    pub fn get_package_version(&self, name: &str, version: &str) -> Result<PackageVersion, Error> {
        let index = self.index_for(name)?;
        find_entry(&index, name, version).map(|e| e.to_wire(name))
    }

    pub fn metadata(&self) -> Result<RegistryMetadata, Error> {
        let index = self.load_index()?;
        let mut version_count = 0;
        for (_, package) in index.iter() {
            version_count += package.map_or(0, |p| p.versions.len() as u64);
        }
        Ok(RegistryMetadata {
            name: "file registry".into(),
            description: "index.json with per-version package directories".into(),
            package_count: index.stored().len() as u64,
            version_count,
            writable: true,
        })
    }

    pub fn publish(
        &self,
        meta: &PackageVersion,
        manifest: &str,
        tarball: &mut dyn Read,
        force: bool,
    ) -> Result<(), Error> {
        check_path_safe(&meta.name, &meta.version)?;
        let mut index = self.load_index()?;
        let published = find_entry(&index, &meta.name, &meta.version).ok();
        if !force && published.is_some() {
            return Err(Error::AlreadyExists(format!(
                "{}@{} is already published; use --force to replace it",
                meta.name, meta.version
            )));
        }

        let rel = tarball_path(&meta.name, &meta.version);
        let dir = self.root.join(&meta.name).join(&meta.version);
        // index.json is also written outside the lock (recovery during a
        // search): only old temporary files there are leftovers for sure.
        remove_stale_temps(&self.root, Duration::from_secs(600));
        remove_stale_temps(&dir, Duration::ZERO);
        if let Some(old) = published {
            return self.replace(&dir, &rel, meta, manifest, tarball, index, &old.tarball);
        }
        fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create {}: {e}", dir.display())))?;
        let indexed = self.store_tarball(&rel, meta, tarball).and_then(|()| {
            set_version(&mut index, meta, rel.clone())?;
            self.write_index(&mut index)
        });
        if indexed.is_err() {
            // Not published: its tarball and the directories go again.
            let _ = fs::remove_file(self.root.join(&rel));
            let _ = fs::remove_dir(&dir);
            let _ = fs::remove_dir(self.root.join(&meta.name));
        }
        let written = indexed?;
        // package.json after the index: it is what a rebuild of a lost index
        // lists, so only versions the index held are listed, never one a
        // publish (killed, or still under way beside a search) had not
        // indexed yet. Right after it, before the search index, to keep the
        // window where a kill leaves the index without it short.
        if let Err(e) = write_atomic(&dir.join("package.json"), manifest.as_bytes()) {
            // Published all the same (the index holds it); only the copy a
            // rebuild reads is missing.
            manifest_not_written(meta, &e);
        }
        self.remove_unlisted_versions(&meta.name, &index);
        self.refresh_search_index(&index, search_index::Fingerprint::of(&written));
        Ok(())
    }

    /// `--force` over a published version. The index never points at a
    /// tarball while it is overwritten: the new one is stored under a name
    /// of its own and indexed there, then copied into place and indexed
    /// again. Killed at any moment, every index entry matches its file, and
    /// package.json's checksum that of a file in the version's directory.
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        dir: &Path,
        rel: &str,
        meta: &PackageVersion,
        manifest: &str,
        tarball: &mut dyn Read,
        mut index: IndexFile,
        indexed: &str,
    ) -> Result<(), Error> {
        let file_name = format!("{}-{}.tar.gz", meta.name, meta.version);
        remove_replacements(dir, &file_name, indexed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let side = format!("{rel}.{REPLACING}{nanos}");
        self.store_tarball(&side, meta, tarball)?;
        set_version(&mut index, meta, side.clone())?;
        self.save_index(&mut index)?;
        // package.json names the new bytes before they take the usual name:
        // killed in between, a rebuild finds them in the side file (see
        // `recover`); the other way round, nothing held the bytes it named.
        if let Err(e) = write_atomic(&dir.join("package.json"), manifest.as_bytes()) {
            // Published all the same, served from the side file the index
            // names; moving it into place would leave package.json stale.
            manifest_not_written(meta, &e);
            return Ok(());
        }
        let mut copy = fs::File::open(self.root.join(&side))?;
        self.store_tarball(rel, meta, &mut copy)?;
        set_version(&mut index, meta, rel.to_owned())?;
        self.save_index(&mut index)?;
        // Ours, and one an earlier killed replacement had indexed.
        remove_replacements(dir, &file_name, rel);
        Ok(())
    }

    /// Stream a tarball of its announced size to `rel` atomically.
    fn store_tarball(
        &self,
        rel: &str,
        meta: &PackageVersion,
        tarball: &mut dyn Read,
    ) -> Result<(), Error> {
        if meta.size > MAX_TARBALL {
            return Err(Error::Invalid(format!(
                "the tarball is {} bytes; this registry stores at most {MAX_TARBALL}",
                meta.size
            )));
        }
        copy_atomic(&self.root.join(rel), tarball, meta.size).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => Error::Invalid(e.to_string()),
            _ => Error::io(format!("cannot store the tarball: {e}")),
        })
    }

    pub fn delete(&self, name: &str, version: &str) -> Result<(), Error> {
        check_path_safe(name, version)?;
        let mut index = self.load_index()?;
        let entry = find_entry(&index, name, version)?;
        let mut package = index.package(name)?.expect("found above");
        package.versions.retain(|e| e.version != version);
        if package.versions.is_empty() {
            index.remove_package(name);
        } else {
            index.set_package(name, &package);
        }
        // package.json first, so that a rebuild of a lost index never brings
        // the version back; the tarball last, so that a crash never leaves
        // an index entry pointing at nothing.
        let dir = self.root.join(name).join(version);
        let manifest = dir.join("package.json");
        let kept = fs::read(&manifest).ok();
        if let Err(e) = fs::remove_file(&manifest)
            && e.kind() != io::ErrorKind::NotFound
        {
            return Err(Error::io(format!("cannot remove package.json: {e}")));
        }
        if let Err(e) = self.save_index(&mut index) {
            // Still published: its package.json goes back.
            if let Some(bytes) = kept {
                let _ = write_atomic(&manifest, &bytes);
            }
            return Err(e);
        }
        // An index written by hand may keep another version's tarball in
        // this directory: then only this version's own file goes.
        let own = tarball_path(name, version);
        if !index.names_tarball_within(&Path::new(name).join(version)) {
            let _ = fs::remove_dir_all(&dir);
        } else if !index.names_tarball_within(Path::new(&own)) {
            let _ = fs::remove_file(self.root.join(own));
        }
        self.remove_tarball_elsewhere(&entry, &index);
        self.remove_unlisted_versions(name, &index);
        Ok(())
    }

    /// A deleted version's tarball kept outside its directory (where an
    /// index another tool wrote may put it), unless an entry still names
    /// it, and only if it holds that version's bytes.
    fn remove_tarball_elsewhere(&self, entry: &IndexEntry, index: &IndexFile) {
        let rel = Path::new(&entry.tarball);
        if entry.tarball.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_)))
        {
            return;
        }
        if index.names_tarball_within(rel) {
            return;
        }
        let path = self.root.join(rel);
        let file = path.symlink_metadata().is_ok_and(|m| m.is_file());
        if file && recover::sha256_file(&path).is_ok_and(|sum| sum == entry.checksum) {
            let _ = fs::remove_file(&path);
        }
    }

    /// The version directories of `name` that neither the index lists nor
    /// a package.json marks as published: what a publish or delete killed
    /// midway left (ggen holds the registry lock around both, so none is
    /// under way). The package's directory goes when it is empty.
    fn remove_unlisted_versions(&self, name: &str, index: &IndexFile) {
        let listed: Vec<String> = match index.package(name) {
            Ok(Some(package)) => package.versions.into_iter().map(|e| e.version).collect(),
            Ok(None) => Vec::new(),
            Err(_) => return,
        };
        let package_dir = self.root.join(name);
        for entry in fs::read_dir(&package_dir).into_iter().flatten().flatten() {
            let Some(version) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let unlisted = semver::Version::parse(&version).is_ok()
                && !listed.contains(&version)
                && entry.file_type().is_ok_and(|t| t.is_dir())
                && !entry.path().join("package.json").exists()
                && !index.names_tarball_within(&Path::new(name).join(&version));
            if unlisted {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let _ = fs::remove_dir(&package_dir);
    }

    pub fn open_tarball(&self, name: &str, version: &str) -> Result<Box<dyn Read>, Error> {
        let entry = find_entry(&self.index_for(name)?, name, version)?;
        match self.open_entry(name, version, &entry) {
            // A `publish --force` moved the bytes between reading the index
            // and opening them: the index now says where they are.
            Err((e, io::ErrorKind::NotFound)) => {
                let now = find_entry(&self.index_for(name)?, name, version)?;
                if (&now.tarball, &now.checksum) == (&entry.tarball, &entry.checksum) {
                    return Err(e);
                }
                self.open_entry(name, version, &now).map_err(|(e, _)| e)
            }
            opened => opened.map_err(|(e, _)| e),
        }
    }

    fn open_entry(
        &self,
        name: &str,
        version: &str,
        entry: &IndexEntry,
    ) -> Result<Box<dyn Read>, (Error, io::ErrorKind)> {
        let rel = if entry.tarball.is_empty() {
            tarball_path(name, version)
        } else {
            entry.tarball.clone()
        };
        let path = Path::new(&rel);
        if !path.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err((
                Error::Security(format!(
                    "index.json points {name}@{version} at `{rel}`, outside the registry"
                )),
                io::ErrorKind::InvalidData,
            ));
        }
        let full = self.root.join(path);
        // A directory opens, then fails every read: refused here, as one.
        let file = fs::File::open(&full)
            .and_then(|file| match file.metadata()?.is_dir() {
                true => Err(io::ErrorKind::IsADirectory.into()),
                false => Ok(file),
            })
            .map_err(|e| {
                let message = format!(
                    "cannot open the tarball of {name}@{version} ({rel}): {}",
                    open_failure(&full, &e)
                );
                (Error::io(message), e.kind())
            })?;
        Ok(Box::new(file))
    }
}

/// A version the index serves whose package.json (what a rebuild of a lost
/// index reads) could not be written.
fn manifest_not_written(meta: &PackageVersion, e: &io::Error) {
    warn(&format!(
        "{}@{} is published, but its package.json could not be written ({e}); `publish --force` writes it again",
        meta.name, meta.version
    ));
}

/// Make `meta`, stored at `rel`, the index's entry for its version.
fn set_version(index: &mut IndexFile, meta: &PackageVersion, rel: String) -> Result<(), Error> {
    let mut package = index.package(&meta.name)?.unwrap_or_else(|| IndexPackage {
        name: meta.name.clone(),
        versions: Vec::new(),
    });
    package.versions.retain(|e| e.version != meta.version);
    package.versions.push(IndexEntry::from_wire(meta, rel));
    package.sort_newest_first();
    index.set_package(&meta.name, &package);
    index.updated_at = meta.published_at.clone();
    Ok(())
}

/// Suffix of a replacement tarball while `publish --force` moves it in.
const REPLACING: &str = "replacing-";

/// The replacement tarballs (`<file_name>.replacing-*`, by name, sorted) in
/// a version's directory: a `publish --force` underway, or one killed.
pub fn replacements(dir: &Path, file_name: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let prefix = format!("{file_name}.{REPLACING}");
    let mut found: Vec<String> = (entries.flatten())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with(&prefix))
        .collect();
    found.sort();
    found
}

/// Replacement tarballs a killed `publish --force` left, except the one the
/// index points at (`indexed`, relative to the registry root).
fn remove_replacements(dir: &Path, file_name: &str, indexed: &str) {
    for name in replacements(dir, file_name) {
        if !indexed.ends_with(&format!("/{name}")) {
            let _ = fs::remove_file(dir.join(name));
        }
    }
}

fn find_entry(index: &IndexFile, name: &str, version: &str) -> Result<IndexEntry, Error> {
    index
        .package(name)?
        .and_then(|p| p.versions.into_iter().find(|e| e.version == version))
        .ok_or_else(|| not_found(name, Some(version)))
}

fn not_found(name: &str, version: Option<&str>) -> Error {
    match version {
        Some(v) => Error::NotFound(format!(
            "package `{name}` version {v} is not in this registry"
        )),
        None => Error::NotFound(format!("package `{name}` is not in this registry")),
    }
}

pub use ggen_plugin_sdk::names::is_package_name;

/// Names and versions become directory names: refuse anything that is not a
/// plain, portable path component.
fn check_path_safe(name: &str, version: &str) -> Result<(), Error> {
    if !is_package_name(name) {
        return Err(Error::Invalid(format!("invalid package name `{name}`")));
    }
    if semver::Version::parse(version).is_err() {
        return Err(Error::Invalid(format!(
            "invalid version `{version}` for {name}"
        )));
    }
    Ok(())
}

/// Temporary files (older than `age`) a stopped publish could not clean up
/// (its deadline passed, or the process was killed). ggen holds the registry
/// lock around every publish, so a temporary file a publish would write is
/// such a leftover.
fn remove_stale_temps(dir: &Path, age: Duration) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_temp = name
            .to_str()
            .is_some_and(|n| n.starts_with('.') && n.contains(".tmp-"));
        let old_enough = || {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|elapsed| elapsed >= age)
        };
        if is_temp && old_enough() {
            let _ = fs::remove_file(entry.path());
        }
    }
}
