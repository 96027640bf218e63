//! The plugin contract: which WIT package version and world a component was
//! built for, read from the stamp the SDK writes (custom section
//! `ggen:contract`, text `ggen:marketplace@<version> <world>`), and whether
//! this host accepts it.

/// The contract this host implements.
pub const PACKAGE: &str = "ggen:marketplace";
pub const VERSION: semver::Version = semver::Version::new(0, 1, 0);
pub const SECTION: &str = "ggen:contract";

/// The plugin kinds, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    Registry,
    P2pPolicy,
    PostInstallHook,
}

impl World {
    pub fn wit_name(self) -> &'static str {
        match self {
            World::Registry => "registry-plugin",
            World::P2pPolicy => "p2p-policy-plugin",
            World::PostInstallHook => "post-install-hook",
        }
    }

    /// The interface the world exports, as it appears in a component's exports.
    pub fn export_interface(self) -> &'static str {
        match self {
            World::Registry => "registry",
            World::P2pPolicy => "p2p-policy",
            World::PostInstallHook => "post-install",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub version: semver::Version,
    pub world: String,
}

/// This host's contract, as users see it: `ggen:marketplace@0.1.x`.
pub fn supported() -> String {
    if VERSION.major == 0 {
        format!("{PACKAGE}@0.{}.x", VERSION.minor)
    } else {
        format!("{PACKAGE}@{}.x (up to {VERSION})", VERSION.major)
    }
}

/// Whether a plugin built for `v` runs here: same major (same minor while at
/// 0.x), and not newer than this host. Older minors stay accepted.
pub fn compatible(v: &semver::Version) -> bool {
    if v.major != VERSION.major {
        return false;
    }
    if VERSION.major == 0 {
        v.minor == VERSION.minor
    } else {
        v.minor <= VERSION.minor
    }
}

/// Check the bytes are a component built for `world` on a compatible
/// contract. A component without a stamp is left to the export check that
/// follows compilation.
pub fn check(bytes: &[u8], world: World, label: &str) -> Result<Option<Stamp>, String> {
    if !wasmparser::Parser::is_component(bytes) {
        return Err(if wasmparser::Parser::is_core_wasm(bytes) {
            format!(
                "{label} is a core WebAssembly module, not a component; build it with `cargo build --target wasm32-wasip2`"
            )
        } else {
            format!("{label} is not a WebAssembly component (bad magic bytes)")
        });
    }
    let Some(stamp) = read_stamp(bytes)
        .map_err(|e| format!("{label} is not a valid WebAssembly component ({e})"))?
    else {
        return Ok(None);
    };
    if !compatible(&stamp.version) {
        return Err(format!(
            "{label} was built for contract {PACKAGE}@{}, but this ggen supports {}; rebuild it with a matching ggen-plugin-sdk",
            stamp.version,
            supported()
        ));
    }
    if stamp.world != world.wit_name() {
        return Err(format!(
            "{label} is built for the {} world, not {}",
            stamp.world,
            world.wit_name()
        ));
    }
    Ok(Some(stamp))
}

fn read_stamp(bytes: &[u8]) -> Result<Option<Stamp>, String> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        if let wasmparser::Payload::CustomSection(section) = payload
            && section.name() == SECTION
        {
            return parse_stamp(section.data()).map(Some);
        }
    }
    Ok(None)
}

pub fn parse_stamp(data: &[u8]) -> Result<Stamp, String> {
    let text = std::str::from_utf8(data).map_err(|_| "contract stamp is not UTF-8".to_string())?;
    let (package_at_version, world) = text.split_once(' ').ok_or("malformed contract stamp")?;
    let (package, version) = package_at_version
        .split_once('@')
        .ok_or("malformed contract stamp")?;
    if package != PACKAGE {
        return Err(format!("stamped for unknown contract `{package}`"));
    }
    let version = semver::Version::parse(version)
        .map_err(|e| format!("bad contract version in stamp: {e}"))?;
    Ok(Stamp {
        version,
        world: world.to_owned(),
    })
}

/// After compilation: the component must export this world's interface at a
/// compatible version. Catches components built without the SDK's stamp.
pub fn check_exports<'a>(
    exports: impl Iterator<Item = &'a str>,
    world: World,
    label: &str,
) -> Result<(), String> {
    let prefix = format!("{PACKAGE}/{}@", world.export_interface());
    let mut found = Vec::new();
    for name in exports {
        if let Some(v) = name.strip_prefix(&prefix) {
            match semver::Version::parse(v) {
                Ok(v) if compatible(&v) => return Ok(()),
                _ => found.push(v.to_owned()),
            }
        }
    }
    Err(match found.first() {
        Some(v) => format!(
            "{label} was built for contract {PACKAGE}@{v}, but this ggen supports {}; rebuild it with a matching ggen-plugin-sdk",
            supported()
        ),
        None => format!(
            "{label} does not export {PACKAGE}/{}; it is not a {}",
            world.export_interface(),
            world.wit_name()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compatibility() {
        assert!(compatible(&semver::Version::new(0, 1, 0)));
        assert!(compatible(&semver::Version::new(0, 1, 7)));
        assert!(!compatible(&semver::Version::new(0, 2, 0)));
        assert!(!compatible(&semver::Version::new(1, 1, 0)));
    }

    #[test]
    fn stamps_parse() {
        let s = parse_stamp(b"ggen:marketplace@0.1.0 registry-plugin").unwrap();
        assert_eq!(s.world, "registry-plugin");
        assert!(parse_stamp(b"other:pkg@0.1.0 x").is_err());
        assert!(parse_stamp(b"garbage").is_err());
    }

    #[test]
    fn non_components_are_named() {
        assert!(
            check(b"\0asm\x01\0\0\0", World::Registry, "x.wasm")
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(
            check(b"hello", World::Registry, "x.wasm")
                .unwrap_err()
                .contains("not a WebAssembly component")
        );
    }
}
