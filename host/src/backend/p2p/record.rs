//! What travels between nodes: package announcements (Gossipsub) and
//! package records (Kademlia values), one JSON shape, validated before use.

use libp2p::kad::RecordKey;
use libp2p::kad::store::RecordStore;
use serde::{Deserialize, Serialize};

use crate::backend::digest::is_checksum;
use crate::backend::model::{check_texts, validate_name};
use crate::backend::{MAX_TARBALL, PackageVersion};

/// Largest record or announcement accepted (and sent).
/// Fits the largest package publish accepts (`model::check_texts`), with
/// every character JSON-escaped at its longest.
pub const MAX_RECORD_BYTES: usize = 128 << 10;
pub const TOPIC: &str = "/ggen/packages/v1";
const KEY_PREFIX: &str = "/ggen/packages/v1/";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    pub package: PackageVersion,
}

/// The DHT key of a package's record.
pub fn key(name: &str) -> libp2p::kad::RecordKey {
    libp2p::kad::RecordKey::new(&format!("{KEY_PREFIX}{name}"))
}

pub fn encode(package: &PackageVersion) -> Vec<u8> {
    serde_json::to_vec(&Announcement {
        package: package.clone(),
    })
    .expect("announcements serialise")
}

/// Parse and check bytes from a peer; the error says what was wrong.
pub fn decode(bytes: &[u8]) -> Result<PackageVersion, String> {
    if bytes.len() > MAX_RECORD_BYTES {
        return Err(format!(
            "{} bytes, over the {} KiB limit",
            bytes.len(),
            MAX_RECORD_BYTES >> 10
        ));
    }
    let a: Announcement = serde_json::from_slice(bytes).map_err(|e| format!("malformed: {e}"))?;
    check(&a.package)?;
    Ok(a.package)
}

/// The package the record stored under `key` in `store` holds, if any.
pub fn stored(store: &impl RecordStore, key: &RecordKey) -> Option<PackageVersion> {
    decode(&store.get(key)?.value).ok()
}

/// A record stored under `key` must describe the package the key names.
pub fn decode_record(key: &libp2p::kad::RecordKey, bytes: &[u8]) -> Result<PackageVersion, String> {
    let package = decode(bytes)?;
    if key.as_ref() != self::key(&package.name).as_ref() {
        return Err(format!("stored under a key that is not {}", package.name));
    }
    Ok(package)
}

fn check(p: &PackageVersion) -> Result<(), String> {
    validate_name(&p.name)?;
    semver::Version::parse(&p.version)
        .map_err(|e| format!("version `{}` is not semver ({e})", p.version))?;
    if !is_checksum(&p.checksum) {
        return Err(format!("checksum `{}` is not sha256-<64 hex>", p.checksum));
    }
    for (dep, req) in &p.dependencies {
        validate_name(dep)?;
        semver::VersionReq::parse(req)
            .map_err(|e| format!("dependency {dep} `{req}` is not a semver requirement ({e})"))?;
    }
    if p.size > MAX_TARBALL {
        return Err(format!(
            "a {}-byte tarball is over the {} MiB ggen accepts",
            p.size,
            MAX_TARBALL >> 20
        ));
    }
    if p.published_at.len() > 64 || p.published_at.contains(char::is_control) {
        return Err("published_at too long or not printable".into());
    }
    check_texts(
        &p.title,
        &p.description,
        p.license.as_deref().unwrap_or_default(),
        &p.tags,
        &p.categories,
        &p.authors,
        p.dependencies.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::model::{
        MAX_DEPENDENCIES, MAX_DESCRIPTION, MAX_LIST_ENTRIES, MAX_LIST_ENTRY, MAX_TAG, MAX_TITLE,
    };

    fn sample() -> PackageVersion {
        PackageVersion {
            name: "rust-web".into(),
            version: "1.0.0".into(),
            title: "Rust web".into(),
            description: "d".into(),
            categories: vec![],
            tags: vec!["web".into()],
            authors: vec![],
            license: None,
            dependencies: [("base".to_string(), "^1".to_string())].into(),
            checksum: format!("sha256-{}", "a".repeat(64)),
            published_at: "2026-11-21T00:00:00Z".into(),
            size: 10,
        }
    }

    #[test]
    fn valid_announcements_round_trip_and_bad_ones_are_named() {
        let p = sample();
        assert_eq!(decode(&encode(&p)).unwrap(), p);
        assert!(decode_record(&key("rust-web"), &encode(&p)).is_ok());
        assert!(decode_record(&key("other"), &encode(&p)).is_err());
        for (mutate, needle) in [
            (
                Box::new(|p: &mut PackageVersion| p.name = "../x".into())
                    as Box<dyn Fn(&mut PackageVersion)>,
                "must start",
            ),
            (
                Box::new(|p: &mut PackageVersion| p.version = "one".into()),
                "not semver",
            ),
            (
                Box::new(|p: &mut PackageVersion| p.checksum = "md5-x".into()),
                "checksum",
            ),
            (
                Box::new(|p: &mut PackageVersion| p.title = "a\x1b[31m".into()),
                "printable",
            ),
            // Publish refuses these: a peer must too.
            (
                Box::new(|p: &mut PackageVersion| p.tags = vec![" ".into()]),
                "\"tags\": ` ` is blank; each entry must be 1-64 bytes",
            ),
            (
                Box::new(|p: &mut PackageVersion| p.categories = vec!["c".repeat(65)]),
                "\"categories\"",
            ),
            (
                Box::new(|p: &mut PackageVersion| p.size = MAX_TARBALL + 1),
                "over the 1024 MiB",
            ),
        ] {
            let mut bad = sample();
            mutate(&mut bad);
            let err = decode(&encode(&bad)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        assert!(decode(b"{not json").unwrap_err().contains("malformed"));
        // The largest package publish accepts still makes a record peers accept.
        let mut max = sample();
        let entries = |c: char, len| vec![c.to_string().repeat(len); MAX_LIST_ENTRIES];
        max.name = "n".repeat(64);
        max.title = "t".repeat(MAX_TITLE);
        max.description = "\u{1}".repeat(MAX_DESCRIPTION); // escaped as 6 bytes each in JSON
        (max.tags, max.categories) = (entries('a', MAX_TAG), entries('b', MAX_TAG));
        max.authors = entries('c', MAX_LIST_ENTRY);
        max.license = Some("l".repeat(128));
        max.dependencies = (0..MAX_DEPENDENCIES)
            .map(|i| (format!("{i:0>64}"), format!("^{}", u64::MAX)))
            .collect();
        assert_eq!(decode(&encode(&max)).unwrap(), max);
        assert!(
            decode(&vec![b' '; MAX_RECORD_BYTES + 1])
                .unwrap_err()
                .contains("limit")
        );
    }
}
