//! Scoring the search index's haystack as it streams past in chunks.
//!
//! ```text
//! record: blob offset u32 | blob len u32 | name end u32 | title end u32 | tags end u32
//!         | text len u32 | categories len u32 | signature of the text (32 bytes;
//!         60 bytes of head in all), then the text (name, title, tags,
//!         description back to back: sdk `search::Fields`) and the categories,
//!         lowercase, lists joined by LIST_SEP
//! ```
//!
//! Chunks keep memory flat however large the registry, and keep the bytes in
//! cache between the read that brings them and the scan that reads them.

use ggen_plugin_sdk::search::{Fields, Matcher, OwnedFields, rank_page};
use ggen_plugin_sdk::{PackageVersion, Query, SearchResults};

use crate::signature::{self, Signature};

const WORDS: usize = 7;
const RECORD_HEAD: usize = WORDS * 4 + signature::LEN;

/// A byte range: offset and length.
type Span = (usize, usize);

/// Append one package's record to a haystack; `None` if a length does not
/// fit the format (over 4 GiB).
pub fn push_record(hay: &mut Vec<u8>, blob: Span, fields: &OwnedFields) -> Option<()> {
    let words = [
        blob.0,
        blob.1,
        fields.ends[0],
        fields.ends[1],
        fields.ends[2],
        fields.text.len(),
        fields.categories.len(),
    ];
    if words.iter().any(|&w| u32::try_from(w).is_err()) {
        return None;
    }
    for w in words {
        hay.extend_from_slice(&(w as u32).to_le_bytes());
    }
    hay.extend_from_slice(&Signature::of_text(&fields.text).to_bytes());
    hay.extend_from_slice(&fields.text);
    hay.extend_from_slice(&fields.categories);
    Some(())
}

/// The matches so far.
#[derive(Default)]
struct Matches {
    /// Their names, back to back (one allocation, not one per match).
    names: Vec<u8>,
    /// Score, name (offset and length in `names`), blob (offset and length).
    scored: Vec<(u32, Span, Span)>,
}

impl Matches {
    fn score(&mut self, matcher: &Matcher, record: Record<'_>) {
        if let Some(score) = matcher.score(record.fields) {
            let name = record.fields.name();
            self.scored
                .push((score, (self.names.len(), name.len()), record.blob));
            self.names.extend_from_slice(name);
        }
    }
}

/// One search over a haystack fed in any number of chunks.
pub struct Scan {
    matcher: Matcher,
    /// What a record's signature must cover to be worth scoring.
    wanted: Signature,
    /// A record cut by the end of the previous chunk.
    carry: Vec<u8>,
    /// The longest record the haystack can hold (anything longer is damage).
    max_record: usize,
    matches: Matches,
}

impl Scan {
    pub fn new(query: &Query, hay_len: usize) -> Self {
        let matcher = Matcher::new(query);
        Self {
            wanted: Signature::of_terms(matcher.terms()),
            matcher,
            carry: Vec::new(),
            max_record: hay_len,
            matches: Matches::default(),
        }
    }

    /// Score the records in the next chunk. `None` means the index is damaged.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Option<()> {
        if !self.carry.is_empty() {
            // Complete the cut record first: its head, then its body.
            let mut carry = std::mem::take(&mut self.carry);
            let need = |c: &[u8]| record_len(c).unwrap_or(RECORD_HEAD);
            while carry.len() < need(&carry) && !chunk.is_empty() {
                let take = (need(&carry) - carry.len()).min(chunk.len());
                carry.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
            }
            if need(&carry) > self.max_record {
                return None;
            }
            if carry.len() < need(&carry) {
                self.carry = carry;
                return Some(());
            }
            self.consider(&carry)?;
        }
        let used = self.records(chunk)?;
        self.carry.extend_from_slice(&chunk[used..]);
        (self.carry.len() <= self.max_record).then_some(())
    }

    /// Score the whole records at the start of `buf`; how many bytes they span.
    fn records(&mut self, buf: &[u8]) -> Option<usize> {
        let mut pos = 0;
        while let Some(len) = record_len(&buf[pos..]) {
            if len > self.max_record {
                return None;
            }
            let Some(record) = buf.get(pos..pos + len) else {
                break;
            };
            pos += len;
            self.consider(record)?;
        }
        Some(pos)
    }

    /// Score one whole record if its signature allows a match.
    fn consider(&mut self, record: &[u8]) -> Option<()> {
        let sig = record.get(WORDS * 4..RECORD_HEAD)?.try_into().ok()?;
        if Signature::from_bytes(sig).covers(&self.wanted) {
            self.matches.score(&self.matcher, parse(record)?);
        }
        Some(())
    }

    /// Rank, cut the page, and decode its entries from their blobs (read by
    /// `blob(offset, len)`). `None` means the index is damaged.
    pub fn finish(
        self,
        query: &Query,
        blob: impl FnMut(usize, usize) -> Option<Vec<u8>>,
    ) -> Option<SearchResults> {
        if !self.carry.is_empty() {
            return None;
        }
        let names = &self.matches.names;
        let scored: Vec<_> = (self.matches.scored.into_iter())
            .map(|(score, (at, len), blob)| (score, (&names[at..at + len], blob)))
            .collect();
        let (total, page) = rank_page(scored, |(name, _)| *name, query.offset, query.limit);
        let spans: Vec<Span> = page.into_iter().map(|(_, blob)| blob).collect();
        let hits = decode_blobs(&spans, blob)?;
        Some(SearchResults { total, hits })
    }
}

/// A blob this close after the previous one comes in the same read.
const NEAR: usize = 4 << 10;
/// The most one read gathers (what the host serves a plugin in one call).
const MAX_READ: usize = 64 << 10;

/// Decode the page's blobs, in page order. Blobs lie in name order, and the
/// page's ties are ranked by name, so hits are often neighbours: a run of
/// close blobs comes in one read rather than one each.
fn decode_blobs(
    spans: &[Span],
    mut blob: impl FnMut(usize, usize) -> Option<Vec<u8>>,
) -> Option<Vec<PackageVersion>> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_unstable_by_key(|&i| spans[i].0);
    let mut hits: Vec<Option<PackageVersion>> = (0..spans.len()).map(|_| None).collect();
    let mut rest = order.as_slice();
    while let Some(&first) = rest.first() {
        let start = spans[first].0;
        let mut end = start.checked_add(spans[first].1)?;
        let mut run = 1;
        for &i in &rest[1..] {
            let (off, len) = spans[i];
            let this_end = off.checked_add(len)?;
            if off > end.saturating_add(NEAR) || this_end - start > MAX_READ {
                break;
            }
            end = end.max(this_end);
            run += 1;
        }
        let bytes = blob(start, end - start)?;
        for &i in &rest[..run] {
            let (off, len) = spans[i];
            let piece = bytes.get(off - start..off - start + len)?;
            hits[i] = Some(postcard::from_bytes(crate::integrity::unsealed(piece)?).ok()?);
        }
        rest = &rest[run..];
    }
    hits.into_iter().collect()
}

#[derive(Clone, Copy)]
struct Record<'a> {
    blob: Span,
    fields: Fields<'a>,
}

fn words(head: &[u8]) -> [usize; WORDS] {
    std::array::from_fn(|i| u32::from_le_bytes(head[i * 4..i * 4 + 4].try_into().unwrap()) as usize)
}

/// The length of the record starting `buf`, once its head is there.
/// (usize::MAX if it does not even fit the address space: damage).
fn record_len(buf: &[u8]) -> Option<usize> {
    let w = words(buf.get(..RECORD_HEAD)?);
    let len = RECORD_HEAD as u64 + w[5] as u64 + w[6] as u64;
    Some(usize::try_from(len).unwrap_or(usize::MAX))
}

/// One whole record (as `record_len` measured it); `None` if damaged.
fn parse(record: &[u8]) -> Option<Record<'_>> {
    let w = words(record.get(..RECORD_HEAD)?);
    let text = record.get(RECORD_HEAD..RECORD_HEAD + w[5])?;
    let categories = record.get(RECORD_HEAD + w[5]..)?;
    Some(Record {
        blob: (w[0], w[1]),
        fields: Fields::new(text, [w[2], w[3], w[4]], categories)?,
    })
}
