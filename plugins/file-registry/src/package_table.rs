//! The derived index's package table: every index.json key with its value
//! as index.json holds it, sorted by name, so that a call about one package
//! (info, install's resolution, a tarball export) reads that entry alone
//! instead of parsing the whole index.json: at 100k packages a lookup was a
//! 37 MB parse, and a node exporting every package paid it once per package.
//!
//! ```text
//! slot   entry offset u64 | name len u32 | value len u32   (16 bytes; sorted by name)
//! entry  the name, then its JSON value
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;

use ggen_plugin_sdk::fs::RangeFile;
use serde_json::value::RawValue;

const SLOT: u64 = 16;

/// Written as the slots, then the entries (offsets count from the first entry).
pub struct Table {
    pub count: u32,
    pub slots: Vec<u8>,
    pub entries: Vec<u8>,
}

/// The table of `packages` (a BTreeMap: already in the order lookups
/// search); `None` if a length does not fit the format.
pub fn build(packages: &BTreeMap<String, Box<RawValue>>) -> Option<Table> {
    let mut table = Table {
        count: u32::try_from(packages.len()).ok()?,
        slots: Vec::with_capacity(packages.len() * SLOT as usize),
        entries: Vec::new(),
    };
    for (name, value) in packages {
        let value = value.get().as_bytes();
        table
            .slots
            .extend_from_slice(&(table.entries.len() as u64).to_le_bytes());
        table
            .slots
            .extend_from_slice(&u32::try_from(name.len()).ok()?.to_le_bytes());
        table
            .slots
            .extend_from_slice(&u32::try_from(value.len()).ok()?.to_le_bytes());
        table.entries.extend_from_slice(name.as_bytes());
        table.entries.extend_from_slice(value);
    }
    Some(table)
}

/// What the table says about one name.
pub enum Found {
    /// Its value, as index.json holds it.
    Entry(Box<RawValue>),
    /// index.json has no such key.
    Absent,
}

/// Look `name` up in the table of `count` slots at `at` in `file`; `None`
/// if the table is damaged (a read out of bounds, a value that is no JSON),
/// and the caller reads index.json instead.
pub fn find(file: &RangeFile, at: u64, count: u32, name: &str) -> Option<Found> {
    let entries_at = at.checked_add(u64::from(count) * SLOT)?;
    let read = |offset: u64, len: u64| {
        // Bounds first: a damaged length must not size an allocation.
        if offset.checked_add(len)? > file.len() {
            return None;
        }
        file.read_at(offset, usize::try_from(len).ok()?).ok()
    };
    let (mut low, mut high) = (0, u64::from(count));
    while low < high {
        let mid = low + (high - low) / 2;
        let slot = read(at + mid * SLOT, SLOT)?;
        let word = |i: usize| u32::from_le_bytes(slot[i..i + 4].try_into().unwrap());
        let entry = entries_at.checked_add(u64::from_le_bytes(slot[..8].try_into().unwrap()))?;
        let (name_len, value_len) = (u64::from(word(8)), u64::from(word(12)));
        match read(entry, name_len)?.as_slice().cmp(name.as_bytes()) {
            Ordering::Less => low = mid + 1,
            Ordering::Greater => high = mid,
            Ordering::Equal => {
                let value = String::from_utf8(read(entry + name_len, value_len)?).ok()?;
                return RawValue::from_string(value).ok().map(Found::Entry);
            }
        }
    }
    Some(Found::Absent)
}
