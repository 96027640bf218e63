//! The capability policy: what each plugin role may touch. This is the one
//! place that decides it; the sandbox only enforces what is written here.
//!
//! | role        | preopened directories                                   | limits (default)       |
//! |-------------|---------------------------------------------------------|------------------------|
//! | registry    | `/registry` = registry root (rw), `/cache` = its private cache (rw) | 5 s per call, 256 MiB |
//! | p2p policy  | none                                                    | 5 s per call, 256 MiB  |
//! | hook        | `/package` = the staged package directory (rw)         | 10 s, 128 MiB          |
//!
//! Every role imports only `ggen:marketplace/host` (log, byte-source) and WASI
//! with: no environment variables, no arguments, stdin closed, stdout/stderr
//! captured (bounded) and shown through the log, clocks and random allowed,
//! sockets and name lookup denied, and no filesystem beyond the preopens.

use std::path::PathBuf;
use std::time::Duration;

/// Bytes of stdout+stderr kept per plugin instance; a plugin writing more is stopped.
pub const OUTPUT_CAP: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
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

#[derive(Debug, Clone)]
pub struct Policy {
    pub preopens: Vec<Preopen>,
    pub limits: Limits,
}

impl Policy {
    /// A registry backend sees its registry root and a cache directory of its own.
    pub fn registry(root: PathBuf, cache: PathBuf, limits: Limits) -> Self {
        Self {
            preopens: vec![
                Preopen {
                    host: root,
                    guest: "/registry",
                    access: Access::ReadWrite,
                },
                Preopen {
                    host: cache,
                    guest: "/cache",
                    access: Access::ReadWrite,
                },
            ],
            limits,
        }
    }

    /// A P2P policy sees no files at all.
    pub fn p2p_policy(limits: Limits) -> Self {
        Self {
            preopens: Vec::new(),
            limits,
        }
    }

    /// A post-install hook sees the staged package and nothing else.
    pub fn hook(package_dir: PathBuf, limits: Limits) -> Self {
        Self {
            preopens: vec![Preopen {
                host: package_dir,
                guest: "/package",
                access: Access::ReadWrite,
            }],
            limits,
        }
    }
}
