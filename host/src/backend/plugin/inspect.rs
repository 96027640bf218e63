//! `plugin inspect`: what a component is, read from its bytes without
//! compiling it: contract stamp, world, imports, exports, and the
//! capabilities its role would get.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::contract::{self, World};
use super::policy::{self, Access, Limits, Writes};

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub size: u64,
    pub sha256: String,
    /// The world it was built for (from the SDK's stamp, else its exports).
    pub world: Option<String>,
    /// `ggen:marketplace@<version>` it was built for.
    pub contract: Option<String>,
    /// Whether the SDK's contract stamp is present.
    pub stamped: bool,
    /// Whether this ggen can load it: a known world, a compatible contract
    /// and only imports the host provides.
    pub loadable: bool,
    /// Why it is not loadable (empty when it is).
    pub not_loadable: Vec<String>,
    pub imports: Vec<Import>,
    pub exports: Vec<String>,
    /// What the role grants, from the capability policy.
    pub capabilities: Option<Capabilities>,
}

#[derive(Debug, Serialize)]
pub struct Import {
    pub name: String,
    pub provided: bool,
}

#[derive(Debug, Serialize)]
pub struct Capabilities {
    pub preopens: Vec<PreopenView>,
    pub deadline_ms: u64,
    pub memory_mib: u64,
    pub configured_in: &'static str,
    /// What the role may write into its directories, if bounded.
    pub writes: Option<WritesView>,
    /// Interfaces every role may import, with what each allows.
    pub imports: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Serialize)]
pub struct WritesView {
    pub max_mib: u64,
    pub max_entries: u64,
    pub configured_in: &'static str,
}

#[derive(Debug, Serialize)]
pub struct PreopenView {
    pub guest: &'static str,
    pub what: &'static str,
    pub writable: bool,
}

const WORLDS: [World; 3] = [World::Registry, World::P2pPolicy, World::PostInstallHook];

/// `plugins` and `hooks`: the limits each role runs under here (shown);
/// `hook_writes`: what a hook may write.
pub fn inspect(
    bytes: &[u8],
    label: &str,
    plugins: Limits,
    hooks: Limits,
    hook_writes: Writes,
) -> Result<Inspection, String> {
    if !wasmparser::Parser::is_component(bytes) {
        // The contract check words this for core modules and other files.
        return Err(contract::check(bytes, World::Registry, label)
            .err()
            .unwrap_or_else(|| format!("{label} is not a WebAssembly component")));
    }
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut stamp = None;
    // Nested modules and components have their own sections; only the outer
    // component's imports and exports are its interface.
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("{label} is not a valid component ({e})"))?;
        match payload {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import =
                        import.map_err(|e| format!("{label}: bad import section ({e})"))?;
                    imports.push(Import {
                        name: import.name.name.to_owned(),
                        provided: policy::provides(import.name.name),
                    });
                }
            }
            wasmparser::Payload::ComponentExportSection(section) if depth == 1 => {
                for export in section {
                    let export =
                        export.map_err(|e| format!("{label}: bad export section ({e})"))?;
                    exports.push(export.name.name.to_owned());
                }
            }
            // The SDK's stamp sits in the core module inside the component.
            wasmparser::Payload::CustomSection(section) if section.name() == contract::SECTION => {
                stamp = Some(contract::parse_stamp(section.data())?);
            }
            _ => {}
        }
    }
    let from_exports = WORLDS.iter().find_map(|&w| {
        let prefix = format!("{}/{}@", contract::PACKAGE, w.export_interface());
        exports
            .iter()
            .find_map(|e| e.strip_prefix(&prefix))
            .map(|v| (w, v.to_owned()))
    });
    let (world, version) = match (&stamp, &from_exports) {
        (Some(s), _) => (
            WORLDS.iter().copied().find(|w| w.wit_name() == s.world),
            Some(s.version.to_string()),
        ),
        (None, Some((w, v))) => (Some(*w), Some(v.clone())),
        (None, None) => (None, None),
    };
    let mut not_loadable = Vec::new();
    match (world, &stamp) {
        (Some(_), _) => {}
        (None, Some(s)) => not_loadable.push(format!(
            "it is stamped for world `{}`, which this ggen does not run",
            s.world
        )),
        (None, None) => not_loadable.push(format!(
            "it exports none of {}",
            WORLDS
                .map(|w| format!("{}/{}", contract::PACKAGE, w.export_interface()))
                .join(", ")
        )),
    }
    if let Some(v) = &version
        && !semver::Version::parse(v).is_ok_and(|v| contract::compatible(&v))
    {
        not_loadable.push(format!(
            "it was built for contract {}@{v}, but this ggen supports {}",
            contract::PACKAGE,
            contract::supported()
        ));
    }
    let missing: Vec<&str> = (imports.iter())
        .filter(|i| !i.provided)
        .map(|i| i.name.as_str())
        .collect();
    if !missing.is_empty() {
        not_loadable.push(format!(
            "it imports what ggen does not provide: {}",
            missing.join(", ")
        ));
    }
    Ok(Inspection {
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        world: stamp
            .as_ref()
            .map(|s| s.world.clone())
            .or_else(|| world.map(|w| w.wit_name().to_owned())),
        contract: version.map(|v| format!("{}@{v}", contract::PACKAGE)),
        stamped: stamp.is_some(),
        loadable: not_loadable.is_empty(),
        not_loadable,
        imports,
        exports,
        capabilities: world.map(|w| {
            let (limits, writes) = match w {
                World::Registry | World::P2pPolicy => (plugins, None),
                World::PostInstallHook => (hooks, Some(hook_writes)),
            };
            capabilities(w, limits, writes)
        }),
    })
}

fn capabilities(world: World, limits: Limits, writes: Option<Writes>) -> Capabilities {
    let grants = policy::grants(world);
    Capabilities {
        preopens: grants
            .preopens
            .iter()
            .map(|&(guest, what, access)| PreopenView {
                guest,
                what,
                writable: access != Access::ReadOnly,
            })
            .collect(),
        deadline_ms: limits.deadline.as_millis() as u64,
        memory_mib: (limits.memory_bytes >> 20) as u64,
        configured_in: grants.configured_in.summary,
        writes: writes.map(|w| WritesView {
            max_mib: w.bytes >> 20,
            max_entries: w.entries,
            configured_in: policy::WRITE_SETTINGS.summary,
        }),
        imports: policy::IMPORTS.to_vec(),
    }
}
