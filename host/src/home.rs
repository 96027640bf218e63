//! `$GGEN_HOME` (default `~/.ggen`): where everything lives, and config.toml.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::backend::{MarketplaceError, Result};

#[derive(Debug, Clone)]
pub struct GgenHome {
    root: PathBuf,
}

impl GgenHome {
    /// `GGEN_HOME`, else `~/.ggen`.
    pub fn from_env() -> Result<Self> {
        if let Some(dir) = std::env::var_os("GGEN_HOME").filter(|v| !v.is_empty()) {
            return Ok(Self::at(PathBuf::from(dir)));
        }
        std::env::home_dir()
            .map(|h| Self::at(h.join(".ggen")))
            .ok_or_else(|| {
                MarketplaceError::Config("cannot find a home directory; set GGEN_HOME".into())
            })
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn registry(&self) -> PathBuf {
        self.root.join("registry")
    }
    pub fn packages(&self) -> PathBuf {
        self.root.join("packages")
    }
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// config.toml, or the defaults when there is none.
    pub fn config(&self) -> Result<Config> {
        let path = self.config_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                let first = e.to_string().lines().next().unwrap_or_default().to_owned();
                MarketplaceError::Config(format!("{}: {first}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(MarketplaceError::storage(
                format!("cannot read {}", path.display()),
                e,
            )),
        }
    }
}

/// config.toml (seeds §13.2). Unknown keys are ignored so newer files still load.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    pub marketplace: MarketplaceConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MarketplaceConfig {
    pub registry_path: Option<PathBuf>,
    pub packages_path: Option<PathBuf>,
    pub plugins: PluginConfig,
    pub install: InstallConfig,
}

/// Bounds on what unpacking one package may produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct InstallConfig {
    pub max_entries: u64,
    pub max_unpacked_mib: u64,
    pub max_path: usize,
}

impl Default for InstallConfig {
    fn default() -> Self {
        let d = crate::backend::unpack::UnpackLimits::default();
        Self {
            max_entries: d.max_entries,
            max_unpacked_mib: d.max_bytes >> 20,
            max_path: d.max_path,
        }
    }
}

impl InstallConfig {
    pub fn limits(&self) -> crate::backend::unpack::UnpackLimits {
        crate::backend::unpack::UnpackLimits {
            max_entries: self.max_entries,
            max_bytes: self.max_unpacked_mib.saturating_mul(1 << 20),
            max_path: self.max_path,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PluginConfig {
    /// Deadline for one plugin call, in milliseconds.
    pub timeout_ms: u64,
    /// Memory cap per plugin instance, in MiB.
    pub memory_mib: u64,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 5_000,
            memory_mib: 256,
        }
    }
}

impl PluginConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn memory_bytes(&self) -> usize {
        (self.memory_mib as usize).saturating_mul(1 << 20)
    }
}

/// Expand a leading `~/` (config values are written that way in the seeds).
pub fn expand_tilde(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}
