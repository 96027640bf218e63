//! The derived index: one binary file in the cache directory that a search
//! reads instead of parsing index.json, and a call about one package reads
//! that package's entry from (package_table.rs).
//!
//! ```text
//! header   magic "GGSIDX12" | index.json len u64 | mtime secs i64 | mtime nanos u32
//!          | record count u32 | haystack len u64 | blobs len u64
//!          | package count u32 (NO_TABLE: none) | 0 u32 | names len u64  (64 bytes)
//! haystack one record per package (layout in search_scan.rs)
//! blobs    per package: its newest version as wire metadata (postcard) after
//!          its FNV-1a hash (integrity.rs), read, checked and decoded only
//!          for the hits shown
//! table    every index.json key, sorted, and where its entry lies in
//!          index.json (package_table.rs)
//! ```
//!
//! The header records index.json's size and mtime; any change to index.json,
//! by ggen or by hand, makes the index stale: the next search rebuilds it,
//! and lookups read index.json until then. Every read is bounds-checked; a
//! file whose length is not what its header says is rebuilt, and so is one
//! whose package table fails a lookup's check or whose hit fails a search's
//! (damage inside the haystack is not detected: checksumming it would cost
//! a full hash per search).

use std::fs;
use std::io;

use ggen_plugin_sdk::fs::RangeFile;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ggen_plugin_sdk::search::OwnedFields;
use ggen_plugin_sdk::{Error, Query, SearchResults};

use crate::fsutil::write_atomic_with;
use crate::index::IndexFile;
use crate::package_table::{self, Found, Layout};
use crate::registry::FileRegistry;
use crate::search_scan::{Scan, push_record};

const FILE: &str = "search-index.bin";
/// Bumped whenever what the file holds changes, so older files are rebuilt
/// (05: a package's hit is its newest stable version; 08: the package
/// table; 09: sealed blobs; 10: the table points into index.json; 11:
/// slots hash their position).
const MAGIC: &[u8; 8] = b"GGSIDX12";
const HEADER_LEN: usize = 64;
/// The package count of a file without a package table (a length did not
/// fit its format): lookups read index.json.
const NO_TABLE: u32 = u32::MAX;

/// Identity of an index.json version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    secs: i64,
    nanos: u32,
}

impl Fingerprint {
    /// Of a file's metadata (None where the system has no modification time).
    pub fn of(meta: &fs::Metadata) -> Option<Self> {
        Self::new(meta.len(), meta.modified().ok()?)
    }

    /// Of an open file: what it holds however its name moves meanwhile.
    fn of_open(file: &RangeFile) -> Option<Self> {
        Self::new(file.len(), file.modified()?)
    }

    fn new(len: u64, modified: SystemTime) -> Option<Self> {
        let (secs, nanos) = match modified.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => (
                -(e.duration().as_secs() as i64),
                e.duration().subsec_nanos(),
            ),
        };
        Some(Fingerprint { len, secs, nanos })
    }
}

fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    Fingerprint::of(&fs::metadata(path)?).ok_or_else(|| io::ErrorKind::Unsupported.into())
}

pub fn search(reg: &FileRegistry, query: &Query) -> Result<SearchResults, Error> {
    let read_as = fingerprint(&reg.index_path()).ok();
    if let Some(fp) = read_as
        && let Some(results) = search_cached(reg, fp, query)
    {
        return Ok(results);
    }
    // Stale, missing or damaged: rebuild from index.json (which may itself be
    // recovered; that path refreshes the search index too).
    let index = reg.load_index()?;
    let built = match read_as {
        // No index.json when this search began: what it found is not stored
        // under a file a publish may have written since (a recovery that
        // wrote index.json stored its own search index).
        None => build(&index),
        Some(_) => rebuild(reg, &index, read_as).unwrap_or_else(|_| build(&index)),
    };
    drop(index);
    let mut scan = Scan::new(query, built.hay.len());
    scan.feed(&built.hay)
        .and_then(|()| {
            scan.finish(query, |off, len| {
                built
                    .blobs
                    .get(off..off.checked_add(len)?)
                    .map(<[u8]>::to_vec)
            })
        })
        .ok_or_else(|| Error::Internal("search index build failed".into()))
}

/// The sections of a freshly built derived index.
pub struct Built {
    count: u32,
    hay: Vec<u8>,
    blobs: Vec<u8>,
    table: Option<Layout>,
}

/// Build the derived index for `index` and store it. `read_as`: the
/// fingerprint index.json had when `index` was read from it or written to
/// it (None where the system keeps no modification time).
pub fn rebuild(
    reg: &FileRegistry,
    index: &IndexFile,
    read_as: Option<Fingerprint>,
) -> io::Result<Built> {
    let built = build(index);
    // Without index.json (an empty registry) a stored index could never be
    // found fresh: storing it would only cost a write on every search.
    let Ok(fp) = fingerprint(&reg.index_path()) else {
        return Ok(built);
    };
    // Changed since it was read (a publish meanwhile): stored under the new
    // file's fingerprint, this index would hide the publish until the next
    // change. Left for the next search to build.
    if read_as.is_some_and(|before| before != fp) {
        return Ok(built);
    }
    fs::create_dir_all(&reg.cache)?;
    write_atomic_with(&reg.cache.join(FILE), |w| {
        w.write_all(&header(fp, &built))?;
        w.write_all(&built.hay)?;
        w.write_all(&built.blobs)?;
        match built.table {
            Some(_) => package_table::write(w, index.stored()),
            None => Ok(()),
        }
    })?;
    Ok(built)
}

/// The stored derived index, if it was built from index.json as it is now
/// (`fp`), with its header.
fn open_fresh(reg: &FileRegistry, fp: Fingerprint) -> Option<(RangeFile, Header)> {
    let file = RangeFile::open(&reg.cache.join(FILE)).ok()?;
    let header: [u8; HEADER_LEN] = file.read_at(0, HEADER_LEN).ok()?.try_into().ok()?;
    let header = parse_header(&header)?;
    // Cut short or run on (a damaged count or length): rebuilt, not read.
    let table = match header.packages {
        NO_TABLE => Some(0),
        count => package_table::stored_len(count, header.names_len),
    };
    let whole = header.table_at()?.checked_add(table?)?;
    (header.fp == fp && whole == file.len()).then_some((file, header))
}

/// What index.json holds under `name`, found through the derived index if
/// that is fresh and undamaged; `None` sends the caller to parse index.json.
pub fn lookup(reg: &FileRegistry, name: &str) -> Option<Found> {
    // Read from the very file the table was checked against, even if a
    // publish renames another over it meanwhile.
    let index = RangeFile::open(&reg.index_path()).ok()?;
    let (file, header) = open_fresh(reg, Fingerprint::of_open(&index)?)?;
    if header.packages == NO_TABLE {
        return None;
    }
    let found = package_table::find(&file, header.table_at()?, header.packages, name, &index);
    if found.is_none() {
        // Damaged where a search does not read, or index.json changed
        // without its size or mtime moving: removed, so that the next search
        // builds it anew instead of every lookup parsing index.json.
        let _ = fs::remove_file(reg.cache.join(FILE));
    }
    found
}

fn search_cached(reg: &FileRegistry, fp: Fingerprint, query: &Query) -> Option<SearchResults> {
    let (file, header) = open_fresh(reg, fp)?;
    let (hay_len, blobs_len) = (header.hay_len, header.blobs_len);
    let mut scan = Scan::new(query, usize::try_from(hay_len).ok()?);
    file.read_chunks(HEADER_LEN as u64, hay_len, |piece| {
        scan.feed(piece)
            .ok_or_else(|| io::Error::other("damaged search index"))
    })
    .ok()?;
    let blob_base = HEADER_LEN as u64 + hay_len;
    scan.finish(query, |off, len| {
        // Within the blobs: the package table follows them.
        if off.checked_add(len)? as u64 > blobs_len {
            return None;
        }
        file.read_at(blob_base + off as u64, len).ok()
    })
}

/// A stored derived index's header.
struct Header {
    fp: Fingerprint,
    hay_len: u64,
    blobs_len: u64,
    packages: u32,
    names_len: u64,
}

impl Header {
    /// Where the package table starts: after the header, haystack and blobs
    /// (`None` if damaged lengths overflow).
    fn table_at(&self) -> Option<u64> {
        (HEADER_LEN as u64)
            .checked_add(self.hay_len)?
            .checked_add(self.blobs_len)
    }
}

fn parse_header(h: &[u8; HEADER_LEN]) -> Option<Header> {
    if &h[..8] != MAGIC {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap());
    let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
    Some(Header {
        fp: Fingerprint {
            len: u64_at(8),
            secs: u64_at(16) as i64,
            nanos: u32_at(24),
        },
        hay_len: u64_at(32),
        blobs_len: u64_at(40),
        packages: u32_at(48),
        names_len: u64_at(56),
    })
}

fn header(fp: Fingerprint, built: &Built) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&fp.len.to_le_bytes());
    out[16..24].copy_from_slice(&fp.secs.to_le_bytes());
    out[24..28].copy_from_slice(&fp.nanos.to_le_bytes());
    out[28..32].copy_from_slice(&built.count.to_le_bytes());
    out[32..40].copy_from_slice(&(built.hay.len() as u64).to_le_bytes());
    out[40..48].copy_from_slice(&(built.blobs.len() as u64).to_le_bytes());
    let packages = built.table.map_or(NO_TABLE, |t| t.count);
    out[48..52].copy_from_slice(&packages.to_le_bytes());
    let names_len = built.table.map_or(0, |t| t.names_len);
    out[56..64].copy_from_slice(&names_len.to_le_bytes());
    out
}

fn build(index: &IndexFile) -> Built {
    let mut hay = Vec::new();
    let mut blobs = Vec::new();
    let mut count = 0u32;
    for (name, package) in index.iter() {
        let package = match package {
            Ok(p) => p,
            Err(e) => {
                crate::warn(&format!(
                    "{}; it is left out of search results",
                    e.message()
                ));
                continue;
            }
        };
        let Some(newest) = package.newest() else {
            continue;
        };
        let hit = newest.to_wire(name);
        // Sealed: a damaged blob would show another checksum or version.
        let blob = crate::integrity::sealed(
            &postcard::to_allocvec(&hit).expect("package metadata serialises"),
        );
        let fields = OwnedFields::new(
            name,
            &hit.title,
            &hit.tags,
            &hit.description,
            &hit.categories,
        );
        if push_record(&mut hay, (blobs.len(), blob.len()), &fields).is_none() {
            crate::warn(&format!(
                "{name} is too large for the search index; it is left out of search results"
            ));
            continue;
        }
        blobs.extend_from_slice(&blob);
        count += 1;
    }
    // A count of NO_TABLE would read as no table: one key fewer than
    // u32::MAX is far past any index.json a plugin could hold anyway.
    let table = package_table::layout(index.stored()).filter(|t| t.count != NO_TABLE);
    Built {
        count,
        hay,
        blobs,
        table,
    }
}
