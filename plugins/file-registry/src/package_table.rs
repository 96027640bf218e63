//! The derived index's package table: every index.json key with its value
//! as index.json holds it, sorted by name, so that a call about one package
//! (info, install's resolution, a tarball export) reads that entry alone
//! instead of parsing the whole index.json: at 100k packages a lookup was a
//! 37 MB parse, and a node exporting every package paid it once per package.
//!
//! ```text
//! slot   entry offset u64 | name len u32 | value len u32 | FNV-1a of the entry u64
//!        (24 bytes; sorted by name)
//! entry  the name, then its JSON value
//! ```
//!
//! Each entry a lookup reads is checked against its slot's hash
//! (integrity.rs): a flipped bit in a name, a value or an offset would
//! otherwise answer for another package. A mismatch sends the caller to
//! index.json.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{self, Write};

use ggen_plugin_sdk::fs::RangeFile;
use serde_json::value::RawValue;

use crate::integrity::fnv1a;

const SLOT: u64 = 24;

/// The table's size, known before it is written.
#[derive(Clone, Copy)]
pub struct Layout {
    pub count: u32,
    pub entries_len: u64,
}

/// The bytes of a table of `count` slots and `entries_len` bytes of
/// entries (as a damaged header may claim: checked).
pub fn stored_len(count: u32, entries_len: u64) -> Option<u64> {
    (u64::from(count) * SLOT).checked_add(entries_len)
}

/// The layout of `packages`' table; `None` if a length does not fit the
/// format (no index.json a plugin could hold in memory comes near).
pub fn layout(packages: &BTreeMap<String, Box<RawValue>>) -> Option<Layout> {
    let mut entries_len = 0u64;
    for (name, value) in packages {
        u32::try_from(name.len()).ok()?;
        u32::try_from(value.get().len()).ok()?;
        entries_len += (name.len() + value.get().len()) as u64;
    }
    Some(Layout {
        count: u32::try_from(packages.len()).ok()?,
        entries_len,
    })
}

/// Write `packages`' table (a BTreeMap: already in the order lookups
/// search), straight from the index: no copy of it in memory.
pub fn write(w: &mut dyn Write, packages: &BTreeMap<String, Box<RawValue>>) -> io::Result<()> {
    let mut offset = 0u64;
    for (name, value) in packages {
        let value = value.get();
        w.write_all(&offset.to_le_bytes())?;
        w.write_all(&(name.len() as u32).to_le_bytes())?;
        w.write_all(&(value.len() as u32).to_le_bytes())?;
        w.write_all(&fnv1a(&[name.as_bytes(), value.as_bytes()]).to_le_bytes())?;
        offset += (name.len() + value.len()) as u64;
    }
    for (name, value) in packages {
        w.write_all(name.as_bytes())?;
        w.write_all(value.get().as_bytes())?;
    }
    Ok(())
}

/// What the table says about one name.
pub enum Found {
    /// Its value, as index.json holds it.
    Entry(Box<RawValue>),
    /// index.json has no such key.
    Absent,
}

/// Look `name` up in the table of `count` slots at `at` in `file`; `None`
/// if the table is damaged (a read out of bounds, an entry that fails its
/// hash, a value that is no JSON), and the caller reads index.json instead.
pub fn find(file: &RangeFile, at: u64, count: u32, name: &str) -> Option<Found> {
    let entries_at = at.checked_add(u64::from(count) * SLOT)?;
    let read = |offset: u64, len: u64| {
        // A damaged length reads nothing.
        if offset.checked_add(len)? > file.len() {
            return None;
        }
        file.read_at(offset, usize::try_from(len).ok()?).ok()
    };
    let (mut low, mut high) = (0, u64::from(count));
    while low < high {
        let mid = low + (high - low) / 2;
        let slot = read(at + mid * SLOT, SLOT)?;
        let u64_at = |i: usize| u64::from_le_bytes(slot[i..i + 8].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(slot[i..i + 4].try_into().unwrap());
        let name_len = u32_at(8) as usize;
        let entry_len = u64::from(u32_at(8)) + u64::from(u32_at(12));
        let mut entry = read(entries_at.checked_add(u64_at(0))?, entry_len)?;
        if fnv1a(&[&entry]) != u64_at(16) {
            return None;
        }
        match entry[..name_len].cmp(name.as_bytes()) {
            Ordering::Less => low = mid + 1,
            Ordering::Greater => high = mid,
            Ordering::Equal => {
                let value = String::from_utf8(entry.split_off(name_len)).ok()?;
                return RawValue::from_string(value).ok().map(Found::Entry);
            }
        }
    }
    Some(Found::Absent)
}
