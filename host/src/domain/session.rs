//! Where a command works: the roots, the registry backend and its sandbox,
//! resolved from flags, config.toml and `$GGEN_HOME` (in that order).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::backend::lock::{DirLock, lock_exclusive};
use crate::backend::plugin::{
    Limits, PluginEngine, Policy, WasmHookRunner, WasmRegistry, WasmSource, embedded,
};
use crate::backend::{MarketplaceError, Registry, Result};
use crate::domain::hooks::HookOptions;
use crate::home::{Config, GgenHome, expand_tilde};

/// What the user asked for on the command line; `None` falls back to config.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub registry: Option<PathBuf>,
    pub registry_plugin: Option<PathBuf>,
    pub plugin_timeout: Option<Duration>,
    pub plugin_memory_mib: Option<u64>,
}

pub struct Session {
    pub home: GgenHome,
    pub config: Config,
    pub registry_root: PathBuf,
    pub packages_dir: PathBuf,
    registry_plugin: Option<PathBuf>,
    limits: Limits,
}

const REGISTRY_LOCK: &str = ".ggen-registry.lock";
const INSTALL_LOCK: &str = ".ggen-install.lock";

impl Session {
    pub fn new(home: GgenHome, overrides: Overrides) -> Result<Self> {
        let config = home.config()?;
        let registry_root = overrides
            .registry
            .or_else(|| {
                config
                    .marketplace
                    .registry_path
                    .as_deref()
                    .map(expand_tilde)
            })
            .unwrap_or_else(|| home.registry());
        let packages_dir = config
            .marketplace
            .packages_path
            .as_deref()
            .map(expand_tilde)
            .unwrap_or_else(|| home.packages());
        let plugins = &config.marketplace.plugins;
        let limits = Limits {
            deadline: overrides
                .plugin_timeout
                .unwrap_or_else(|| plugins.timeout()),
            memory_bytes: overrides
                .plugin_memory_mib
                .map(|m| (m as usize) << 20)
                .unwrap_or_else(|| plugins.memory_bytes()),
        };
        if limits.deadline.is_zero() || limits.memory_bytes == 0 {
            return Err(MarketplaceError::Config(
                "plugin timeout and memory cap must be greater than zero".into(),
            ));
        }
        Ok(Self {
            home,
            config,
            registry_root: absolute(&registry_root),
            packages_dir,
            registry_plugin: overrides.registry_plugin,
            limits,
        })
    }

    /// The registry backend: the built-in file registry, or `--registry-plugin`,
    /// sandboxed to the registry root and a cache directory of its own.
    pub fn open_registry(&self) -> Result<Box<dyn Registry>> {
        let source = match &self.registry_plugin {
            Some(path) => WasmSource::from_file(path)?,
            None => WasmSource::embedded(&embedded::FILE_REGISTRY),
        };
        let engine = PluginEngine::new(self.home.cache())?;
        let root_key =
            hex::encode(&Sha256::digest(self.registry_root.as_os_str().as_encoded_bytes())[..8]);
        let data = self
            .home
            .cache()
            .join("data")
            .join(format!("{}-{root_key}", source.name));
        let policy = Policy::registry(self.registry_root.clone(), data, self.limits);
        Ok(Box::new(WasmRegistry::load(&engine, &source, &policy)?))
    }

    /// Serialise writers of the registry across processes.
    pub fn lock_registry(&self) -> Result<DirLock> {
        let root = self.registry_root.clone();
        lock_exclusive(&root, REGISTRY_LOCK, || {
            tracing::warn!(
                "waiting for another ggen process to release the registry at {}",
                root.display()
            )
        })
        .map_err(|e| {
            MarketplaceError::storage(format!("cannot lock the registry at {}", root.display()), e)
        })
    }
}

impl Session {
    /// Runs post-install hooks with the `[hooks]` limits of config.toml.
    pub fn hook_runner(&self) -> Result<WasmHookRunner> {
        let hooks = &self.config.hooks;
        let limits = Limits {
            deadline: Duration::from_millis(hooks.timeout_ms),
            memory_bytes: (hooks.memory_mib as usize).saturating_mul(1 << 20),
        };
        if limits.deadline.is_zero() || limits.memory_bytes == 0 {
            return Err(MarketplaceError::Config(
                "[hooks] timeout_ms and memory_mib must be greater than zero".into(),
            ));
        }
        Ok(WasmHookRunner::new(
            PluginEngine::new(self.home.cache())?,
            limits,
        ))
    }

    /// Hook consent: the command's `--allow-hooks`/`--allow-all-hooks` plus
    /// `[hooks] allow` from config.toml, and the `--var` values.
    pub fn hook_options(
        &self,
        allow: &[String],
        allow_all: bool,
        variables: Vec<(String, String)>,
    ) -> HookOptions {
        HookOptions {
            allow_all,
            allowed: allow
                .iter()
                .chain(&self.config.hooks.allow)
                .cloned()
                .collect(),
            variables,
        }
    }

    /// How installed packages record where they came from.
    pub fn source_id(&self) -> String {
        match &self.registry_plugin {
            Some(plugin) => format!(
                "plugin+{}#{}",
                absolute(plugin).display(),
                self.registry_root.display()
            ),
            None => format!("registry+file://{}", self.registry_root.display()),
        }
    }

    /// Serialise installers of one root across processes.
    pub fn lock_install_root(&self, root: &Path) -> Result<DirLock> {
        let shown = root.display().to_string();
        lock_exclusive(root, INSTALL_LOCK, || {
            tracing::warn!("waiting for another ggen process to finish installing into {shown}")
        })
        .map_err(|e| MarketplaceError::storage(format!("cannot lock {shown}"), e))
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
