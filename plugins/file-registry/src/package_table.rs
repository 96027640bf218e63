//! The derived index's package table: every index.json key, sorted, with
//! where its entry lies in index.json, so that a call about one package
//! (info, install's resolution, a tarball export) reads that entry alone
//! instead of parsing the whole index.json: at 100k packages a lookup was a
//! 37 MB parse, and a node exporting every package paid it once per package.
//!
//! ```text
//! slot   name offset u64 | name len u32 | entry len u32 | entry offset in index.json u64
//!        | FNV-1a of the slot's position and name u64 | FNV-1a of the name and entry u64
//!        (40 bytes; sorted by name)
//! names  every name, back to back
//! ```
//!
//! Every name a lookup compares is checked against its hash (integrity.rs):
//! a flipped bit would steer the search to another package, and a slot
//! moved or copied elsewhere (its position is hashed too) would hide one
//! from it. The entry read
//! from index.json is checked against the other hash, which also catches an
//! index.json rewritten in place with its size and mtime unchanged. A
//! mismatch sends the caller to index.json.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{self, Write};

use ggen_plugin_sdk::fs::RangeFile;
use serde_json::value::RawValue;

use crate::index::Stored;
use crate::integrity::fnv1a;

const SLOT: u64 = 40;

/// The table's size, known before it is written.
#[derive(Clone, Copy)]
pub struct Layout {
    pub count: u32,
    pub names_len: u64,
}

/// The bytes of a table of `count` slots and `names_len` bytes of names
/// (as a damaged header may claim: checked).
pub fn stored_len(count: u32, names_len: u64) -> Option<u64> {
    (u64::from(count) * SLOT).checked_add(names_len)
}

/// The layout of `packages`' table; `None` if an entry's place in
/// index.json is unknown or a length does not fit the format.
pub fn layout(packages: &BTreeMap<String, Stored>) -> Option<Layout> {
    let mut names_len = 0u64;
    for (name, stored) in packages {
        stored.at?;
        u32::try_from(name.len()).ok()?;
        u32::try_from(stored.raw.get().len()).ok()?;
        names_len += name.len() as u64;
    }
    Some(Layout {
        count: u32::try_from(packages.len()).ok()?,
        names_len,
    })
}

/// Write the table of `packages` (which [`layout`] accepted; a BTreeMap:
/// already in the order lookups search).
pub fn write(w: &mut dyn Write, packages: &BTreeMap<String, Stored>) -> io::Result<()> {
    let mut name_at = 0u64;
    for (position, (name, stored)) in (0u64..).zip(packages) {
        let entry = stored.raw.get().as_bytes();
        let entry_at = stored
            .at
            .ok_or_else(|| io::Error::other("entry not in index.json"))?;
        w.write_all(&name_at.to_le_bytes())?;
        w.write_all(&(name.len() as u32).to_le_bytes())?;
        w.write_all(&(entry.len() as u32).to_le_bytes())?;
        w.write_all(&entry_at.to_le_bytes())?;
        let name_hash = fnv1a(&[&position.to_le_bytes(), name.as_bytes()]);
        w.write_all(&name_hash.to_le_bytes())?;
        w.write_all(&fnv1a(&[name.as_bytes(), entry]).to_le_bytes())?;
        name_at += name.len() as u64;
    }
    for name in packages.keys() {
        w.write_all(name.as_bytes())?;
    }
    Ok(())
}

/// What the table says about one name.
pub enum Found {
    /// Its entry, as index.json holds it.
    Entry(Box<RawValue>),
    /// index.json has no such key.
    Absent,
}

/// Look `name` up in the table of `count` slots at `at` in `file`, reading
/// its entry from `index` (index.json, as fresh as the table); `None` if
/// either is damaged (a read out of bounds, a name or entry that fails its
/// hash, an entry that is no JSON), and the caller parses index.json.
pub fn find(file: &RangeFile, at: u64, count: u32, name: &str, index: &RangeFile) -> Option<Found> {
    let names_at = at.checked_add(u64::from(count) * SLOT)?;
    let read = |file: &RangeFile, offset: u64, len: u64| {
        // A damaged length reads nothing.
        if offset.checked_add(len)? > file.len() {
            return None;
        }
        file.read_at(offset, usize::try_from(len).ok()?).ok()
    };
    let (mut low, mut high) = (0, u64::from(count));
    while low < high {
        let mid = low + (high - low) / 2;
        let slot = read(file, at + mid * SLOT, SLOT)?;
        let u64_at = |i: usize| u64::from_le_bytes(slot[i..i + 8].try_into().unwrap());
        let u32_at = |i: usize| u32::from_le_bytes(slot[i..i + 4].try_into().unwrap());
        let probe = read(file, names_at.checked_add(u64_at(0))?, u32_at(8).into())?;
        if fnv1a(&[&mid.to_le_bytes(), &probe]) != u64_at(24) {
            return None;
        }
        match probe[..].cmp(name.as_bytes()) {
            Ordering::Less => low = mid + 1,
            Ordering::Greater => high = mid,
            Ordering::Equal => {
                let entry = read(index, u64_at(16), u32_at(12).into())?;
                if fnv1a(&[&probe, &entry]) != u64_at(32) {
                    return None;
                }
                let entry = String::from_utf8(entry).ok()?;
                return RawValue::from_string(entry).ok().map(Found::Entry);
            }
        }
    }
    Some(Found::Absent)
}
