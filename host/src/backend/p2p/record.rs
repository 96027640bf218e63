//! What travels between nodes: package announcements (Gossipsub) and
//! package records (Kademlia values), one JSON shape, validated before use.

use serde::{Deserialize, Serialize};

use crate::backend::PackageVersion;
use crate::backend::digest::is_checksum;
use crate::backend::model::validate_name;

/// Largest record or announcement accepted (and sent).
pub const MAX_RECORD_BYTES: usize = 64 << 10;
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
    let short = |s: &str, max: usize| s.len() <= max && !s.contains(char::is_control);
    if !short(&p.title, 256) || !short(&p.published_at, 64) || p.description.len() > 8192 {
        return Err("title, description or published_at too long or not printable".into());
    }
    for list in [&p.tags, &p.categories, &p.authors] {
        if list.len() > 64 || list.iter().any(|t| !short(t, 128)) {
            return Err("too many or too long tags, categories or authors".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            let mut bad = sample();
            mutate(&mut bad);
            let err = decode(&encode(&bad)).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        assert!(decode(b"{not json").unwrap_err().contains("malformed"));
        assert!(
            decode(&vec![b' '; MAX_RECORD_BYTES + 1])
                .unwrap_err()
                .contains("limit")
        );
    }
}
