//! The capability policy: what each plugin role may touch. This is the one
//! place that decides it; the sandbox only enforces what is written here and
//! `plugin inspect` prints it.
//!
//! | role (world)        | preopened directories                                        | limits (default)      |
//! |---------------------|--------------------------------------------------------------|-----------------------|
//! | `registry-plugin`   | `/registry` = registry root (rw), `/cache` = its private cache (rw, if it can be made) | 5 s per call, 256 MiB |
//! | `p2p-policy-plugin` | none                                                         | 5 s per call, 256 MiB |
//! | `post-install-hook` | `/package` = the staged package directory (rw)              | 10 s, 128 MiB, writes within the install limits |
//!
//! Every role imports only [`IMPORTS`]: `ggen:marketplace/host` (log,
//! byte-source) and WASI with no environment variables, no arguments, stdin
//! closed, stdout/stderr captured (bounded), clocks and random allowed,
//! sockets and name lookup linked but denied, and no filesystem beyond the
//! preopens. Anything else fails to link.

use std::path::PathBuf;
use std::time::Duration;

use super::contract::World;

/// Bytes of stdout+stderr kept per plugin instance; a plugin writing more is stopped.
pub const OUTPUT_CAP: usize = 1 << 20;

/// Interfaces (by prefix) the host links for every role, with what each allows.
pub const IMPORTS: &[(&str, &str)] = &[
    (
        "ggen:marketplace/host@0.1",
        "log lines, byte streams from the host",
    ),
    ("ggen:marketplace/types@0.1", "shared types"),
    ("wasi:filesystem/", "only the role's preopened directories"),
    (
        "wasi:cli/",
        "no environment or arguments; stdin closed; stdout/stderr captured (1 MiB)",
    ),
    ("wasi:io/", "streams and polling"),
    ("wasi:clocks/", "wall and monotonic clocks"),
    ("wasi:random/", "random bytes"),
    ("wasi:sockets/", "linked, every operation denied"),
];

/// Whether an import of a component is one the host provides.
pub fn provides(import: &str) -> bool {
    IMPORTS.iter().any(|(prefix, _)| {
        import.starts_with(prefix) && (!prefix.starts_with("wasi:") || import.contains("@0.2."))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
    /// Read-write if the directory can be made (a read-only GGEN_HOME
    /// cannot hold it); otherwise left out, and the plugin does without.
    Cache,
}

#[derive(Debug, Clone)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: &'static str,
    pub access: Access,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget of one call into the plugin; past it the call traps.
    pub deadline: Duration,
    /// Linear memory cap for the instance.
    pub memory_bytes: usize,
}

/// A role's grants, as users read them (`plugin inspect`).
pub struct RoleGrants {
    /// (guest path, what it is, access)
    pub preopens: &'static [(&'static str, &'static str, Access)],
    /// Where users change the limits.
    pub configured_in: LimitSettings,
}

pub use crate::backend::hook::{WriteQuota, Writes};

/// Where users raise what hooks may write (the install limits), per limit.
pub struct WriteSettings {
    pub bytes: &'static str,
    pub entries: &'static str,
    /// Both, for `plugin inspect`.
    pub summary: &'static str,
}

pub const WRITE_SETTINGS: WriteSettings = WriteSettings {
    bytes: "[marketplace.install] max_unpacked_mib in config.toml",
    entries: "[marketplace.install] max_entries in config.toml",
    summary: "[marketplace.install] max_unpacked_mib / max_entries in config.toml",
};

/// Where users change a role's limits, per limit: an error names only the
/// setting that raises the limit that was hit.
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    pub deadline: &'static str,
    pub memory: &'static str,
    /// Both, for `plugin inspect`.
    pub summary: &'static str,
}

pub const PLUGIN_LIMITS: Limits = Limits {
    deadline: Duration::from_secs(5),
    memory_bytes: 256 << 20,
};

pub const HOOK_LIMITS: Limits = Limits {
    deadline: Duration::from_secs(10),
    memory_bytes: 128 << 20,
};

const PLUGIN_SETTINGS: LimitSettings = LimitSettings {
    deadline: "--plugin-timeout, or [marketplace.plugins] timeout_ms in config.toml",
    memory: "--plugin-memory, or [marketplace.plugins] memory_mib in config.toml",
    summary: "[marketplace.plugins] timeout_ms / memory_mib in config.toml, or --plugin-timeout / --plugin-memory",
};

const HOOK_SETTINGS: LimitSettings = LimitSettings {
    deadline: "[hooks] timeout_ms in config.toml",
    memory: "[hooks] memory_mib in config.toml",
    summary: "[hooks] timeout_ms / memory_mib in config.toml",
};

pub fn grants(world: World) -> RoleGrants {
    match world {
        World::Registry => RoleGrants {
            preopens: &[
                ("/registry", "the registry root", Access::ReadWrite),
                (
                    "/cache",
                    "a cache directory private to this plugin and root",
                    Access::Cache,
                ),
            ],
            configured_in: PLUGIN_SETTINGS,
        },
        World::P2pPolicy => RoleGrants {
            preopens: &[],
            configured_in: PLUGIN_SETTINGS,
        },
        World::PostInstallHook => RoleGrants {
            preopens: &[(
                "/package",
                "the staged package directory",
                Access::ReadWrite,
            )],
            configured_in: HOOK_SETTINGS,
        },
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub preopens: Vec<Preopen>,
    pub limits: Limits,
    /// Where users raise the limits (for error messages).
    pub configured_in: LimitSettings,
    /// Bounds on writing, for roles that write into someone else's files.
    pub writes: Option<WriteQuota>,
}

impl Policy {
    /// Bind a role's preopens (in [`grants`] order) to host directories.
    fn for_role(world: World, hosts: Vec<PathBuf>, limits: Limits) -> Self {
        let grants = grants(world);
        assert_eq!(
            grants.preopens.len(),
            hosts.len(),
            "one host directory per preopen"
        );
        Self {
            preopens: grants
                .preopens
                .iter()
                .zip(hosts)
                .map(|(&(guest, _, access), host)| Preopen {
                    host,
                    guest,
                    access,
                })
                .collect(),
            limits,
            configured_in: grants.configured_in,
            writes: None,
        }
    }

    /// A registry backend sees its registry root and a cache directory of its own.
    pub fn registry(root: PathBuf, cache: PathBuf, limits: Limits) -> Self {
        Self::for_role(World::Registry, vec![root, cache], limits)
    }

    /// A P2P policy sees no files at all.
    pub fn p2p_policy(limits: Limits) -> Self {
        Self::for_role(World::P2pPolicy, Vec::new(), limits)
    }

    /// A post-install hook sees the staged package and nothing else, and
    /// writes into it no more than `writes`.
    pub fn hook(package_dir: PathBuf, limits: Limits, writes: WriteQuota) -> Self {
        Self {
            writes: Some(writes),
            ..Self::for_role(World::PostInstallHook, vec![package_dir], limits)
        }
    }
}
