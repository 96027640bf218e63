//! The derived search index: one binary file in the cache directory that a
//! search reads instead of parsing index.json.
//!
//! ```text
//! header   magic "GGSIDX01" | index.json len u64 | mtime secs i64 | mtime nanos u32
//!          | record count u32 | haystack section len u64              (40 bytes)
//! haystack per package: blob offset u32 | blob len u32 | name len u16 | title len u16
//!          | description len u32 | tags len u16 | categories len u16 | the five fields,
//!          lowercase (tags and categories joined by LIST_SEP)
//! blobs    per package: JSON of its newest version, read only for the hits shown
//! ```
//!
//! The header records index.json's size and mtime; any change to index.json,
//! by ggen or by hand, makes the index stale and the next search rebuilds it.
//! Every read is bounds-checked; a damaged file is simply rebuilt.

use std::fs;
use std::io;

use ggen_plugin_sdk::fs as sdk_fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

use ggen_plugin_sdk::search::{Fields, Matcher, rank_page};
use ggen_plugin_sdk::{Error, Query, SearchResults};

use crate::fsutil::write_atomic_with;
use crate::index::{IndexEntry, IndexFile};
use crate::registry::FileRegistry;

const FILE: &str = "search-index.bin";
const MAGIC: &[u8; 8] = b"GGSIDX01";
const HEADER_LEN: usize = 40;
const RECORD_HEAD: usize = 20;

/// Identity of an index.json version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    secs: i64,
    nanos: u32,
}

fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    let meta = fs::metadata(path)?;
    let (secs, nanos) = match meta.modified()?.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => (
            -(e.duration().as_secs() as i64),
            e.duration().subsec_nanos(),
        ),
    };
    Ok(Fingerprint {
        len: meta.len(),
        secs,
        nanos,
    })
}

pub fn search(reg: &FileRegistry, query: &Query) -> Result<SearchResults, Error> {
    if let Ok(fp) = fingerprint(&reg.index_path()) {
        if let Some(results) = search_cached(reg, fp, query) {
            return Ok(results);
        }
    }
    // Stale, missing or damaged: rebuild from index.json (which may itself be
    // recovered; that path refreshes the search index too).
    let index = reg.load_index()?;
    let built = match rebuild(reg, &index) {
        Ok(built) => built,
        Err(_) => build(&index),
    };
    drop(index);
    run(&built.hay, query, |off, len| {
        built
            .blobs
            .get(off..off.checked_add(len)?)
            .map(<[u8]>::to_vec)
    })
    .ok_or_else(|| Error::Internal("search index build failed".into()))
}

/// The two sections of a freshly built search index.
pub struct Built {
    count: u32,
    hay: Vec<u8>,
    blobs: Vec<u8>,
}

/// Build the search index for `index` and store it.
pub fn rebuild(reg: &FileRegistry, index: &IndexFile) -> io::Result<Built> {
    let fp = fingerprint(&reg.index_path()).ok();
    let built = build(index);
    fs::create_dir_all(&reg.cache)?;
    write_atomic_with(&reg.cache.join(FILE), |w| {
        w.write_all(&header(fp, built.count, built.hay.len() as u64))?;
        w.write_all(&built.hay)?;
        w.write_all(&built.blobs)
    })?;
    Ok(built)
}

fn search_cached(reg: &FileRegistry, fp: Fingerprint, query: &Query) -> Option<SearchResults> {
    let file = sdk_fs::RangeFile::open(&reg.cache.join(FILE)).ok()?;
    let header: [u8; HEADER_LEN] = file.read_at(0, HEADER_LEN).ok()?.try_into().ok()?;
    let (stored, _count, hay_len) = parse_header(&header)?;
    if stored != Some(fp) {
        return None;
    }
    let hay = file
        .read_at(HEADER_LEN as u64, usize::try_from(hay_len).ok()?)
        .ok()?;
    let blob_base = (HEADER_LEN as u64).checked_add(hay_len)?;
    run(&hay, query, |off, len| {
        file.read_at(blob_base.checked_add(off as u64)?, len).ok()
    })
}

/// Score every record, page the matches, decode only the page's blobs.
/// `None` means the index is damaged.
fn run(
    hay: &[u8],
    query: &Query,
    mut blob: impl FnMut(usize, usize) -> Option<Vec<u8>>,
) -> Option<SearchResults> {
    let matcher = Matcher::new(query);
    let mut scored: Vec<(u32, (&[u8], usize, usize))> = Vec::new();
    // One vectorised pass over the whole haystack for the most selective term
    // finds the only records worth scoring.
    let prefilter = matcher.prefilter();
    let mut next_hit = prefilter.and_then(|f| f.find(hay));
    let mut pos = 0;
    while pos < hay.len() {
        let start = pos;
        let r = parse_record(hay, &mut pos)?;
        if let Some(finder) = prefilter {
            if next_hit.is_some_and(|h| h < start) {
                next_hit = finder.find(&hay[start..]).map(|i| i + start);
            }
            match next_hit {
                None => break,
                Some(h) if h >= pos => continue,
                Some(_) => {}
            }
        }
        if let Some(score) = matcher.score(r.fields) {
            scored.push((score, (r.fields.name, r.blob_off, r.blob_len)));
        }
    }
    let (total, page) = rank_page(scored, |(name, _, _)| *name, query.offset, query.limit);
    let mut hits = Vec::with_capacity(page.len());
    for (_, off, len) in page {
        let entry: IndexEntry = serde_json::from_slice(&blob(off, len)?).ok()?;
        let name = entry.name.clone();
        hits.push(entry.to_wire(&name));
    }
    Some(SearchResults { total, hits })
}

struct Record<'a> {
    blob_off: usize,
    blob_len: usize,
    fields: Fields<'a>,
}

fn parse_record<'a>(hay: &'a [u8], pos: &mut usize) -> Option<Record<'a>> {
    let head = hay.get(*pos..pos.checked_add(RECORD_HEAD)?)?;
    let u32_at = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap()) as usize;
    let u16_at = |i: usize| u16::from_le_bytes(head[i..i + 2].try_into().unwrap()) as usize;
    let (blob_off, blob_len) = (u32_at(0), u32_at(4));
    let lens = [u16_at(8), u16_at(10), u32_at(12), u16_at(16), u16_at(18)];
    *pos += RECORD_HEAD;
    let mut field = |len: usize| -> Option<&'a [u8]> {
        let f = hay.get(*pos..pos.checked_add(len)?)?;
        *pos += len;
        Some(f)
    };
    let fields = Fields {
        name: field(lens[0])?,
        title: field(lens[1])?,
        description: field(lens[2])?,
        tags: field(lens[3])?,
        categories: field(lens[4])?,
    };
    Some(Record {
        blob_off,
        blob_len,
        fields,
    })
}

fn parse_header(h: &[u8; HEADER_LEN]) -> Option<(Option<Fingerprint>, u32, u64)> {
    if &h[..8] != MAGIC {
        return None;
    }
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap());
    let fp = Fingerprint {
        len: u64_at(8),
        secs: u64_at(16) as i64,
        nanos: u32::from_le_bytes(h[24..28].try_into().unwrap()),
    };
    let count = u32::from_le_bytes(h[28..32].try_into().unwrap());
    Some((Some(fp), count, u64_at(32)))
}

fn header(fp: Option<Fingerprint>, count: u32, hay_len: u64) -> [u8; HEADER_LEN] {
    // A build with no fingerprint can never match, so it is rebuilt next time.
    let fp = fp.unwrap_or(Fingerprint {
        len: u64::MAX,
        secs: 0,
        nanos: 0,
    });
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&fp.len.to_le_bytes());
    out[16..24].copy_from_slice(&fp.secs.to_le_bytes());
    out[24..28].copy_from_slice(&fp.nanos.to_le_bytes());
    out[28..32].copy_from_slice(&count.to_le_bytes());
    out[32..40].copy_from_slice(&hay_len.to_le_bytes());
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
                crate::warn(&format!("{e}; it is left out of search results"));
                continue;
            }
        };
        let Some(newest) = package.newest() else {
            continue;
        };
        let mut entry = newest.clone();
        entry.name = name.to_owned();
        let blob = serde_json::to_vec(&entry).expect("index entries serialise");
        let lower = |s: &str| clip(s.to_lowercase().into_bytes(), u16::MAX as usize);
        let join = |v: &[String]| {
            clip(
                ggen_plugin_sdk::search::join_lower(v).into_bytes(),
                u16::MAX as usize,
            )
        };
        let fields = [
            lower(name),
            lower(if entry.title.is_empty() {
                name
            } else {
                &entry.title
            }),
            clip(
                entry.description.to_lowercase().into_bytes(),
                u32::MAX as usize,
            ),
            join(&entry.tags),
            join(&entry.categories),
        ];
        hay.extend_from_slice(&(blobs.len() as u32).to_le_bytes());
        hay.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        hay.extend_from_slice(&(fields[0].len() as u16).to_le_bytes());
        hay.extend_from_slice(&(fields[1].len() as u16).to_le_bytes());
        hay.extend_from_slice(&(fields[2].len() as u32).to_le_bytes());
        hay.extend_from_slice(&(fields[3].len() as u16).to_le_bytes());
        hay.extend_from_slice(&(fields[4].len() as u16).to_le_bytes());
        for f in &fields {
            hay.extend_from_slice(f);
        }
        blobs.extend_from_slice(&blob);
        count += 1;
    }
    Built { count, hay, blobs }
}

/// Searchable text beyond a field's length limit is dropped (at a char boundary).
fn clip(mut bytes: Vec<u8>, max: usize) -> Vec<u8> {
    if bytes.len() > max {
        let mut end = max;
        while end > 0 && (bytes[end] & 0xC0) == 0x80 {
            end -= 1;
        }
        bytes.truncate(end);
    }
    bytes
}
