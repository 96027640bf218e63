//! Where a command works: the roots, the registry backend and its sandbox,
//! resolved from flags, config.toml and `$GGEN_HOME` (in that order). This
//! is where concrete backends (wasm plugins, the libp2p node) are built and
//! handed to the domain as traits; the CLI calls it, the domain never does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::created_dir::CreatedDir;
use crate::backend::dir_check::not_a_directory;
use crate::backend::hook::Writes;
use crate::backend::lock::{DirLock, lock_exclusive};
pub use crate::backend::plugin::inspect::Inspection;
use crate::backend::plugin::{
    Limits, PluginEngine, Policy, WasmHookRunner, WasmRegistry, WasmSource, embedded, inspect,
};
use crate::backend::{MarketplaceError, Registry, Result};
use crate::config::{Config, expand_tilde, mib_to_bytes};
use crate::domain::hooks::HookOptions;
use crate::home::GgenHome;

/// The largest memory cap: a 32-bit WebAssembly instance addresses 4 GiB.
const MAX_MEMORY_MIB: u64 = 4096;

/// What the user asked for on the command line; `None` falls back to config.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub registry: Option<PathBuf>,
    pub registry_plugin: Option<PathBuf>,
    pub plugin_timeout: Option<Duration>,
    pub plugin_memory_mib: Option<u64>,
    pub p2p_policy_plugin: Option<PathBuf>,
}

#[derive(Clone)]
pub struct Session {
    pub home: GgenHome,
    pub config: Config,
    pub registry_root: PathBuf,
    /// Chosen with --registry or config.toml rather than the default.
    registry_chosen: bool,
    /// GGEN_HOME named a directory that did not exist when the command began.
    home_missing: bool,
    pub packages_dir: PathBuf,
    registry_plugin: Option<PathBuf>,
    p2p_policy_plugin: Option<PathBuf>,
    limits: Limits,
}

const REGISTRY_LOCK: &str = ".ggen-registry.lock";
const INSTALL_LOCK: &str = ".ggen-install.lock";

impl Session {
    pub fn new(home: GgenHome, overrides: Overrides) -> Result<Self> {
        let config = home.config()?;
        let registry_chosen =
            overrides.registry.is_some() || config.marketplace.registry_path.is_some();
        // A relative path in config.toml is relative to the file (GGEN_HOME),
        // not to wherever ggen happens to run.
        let configured = |p: &Path| home.root().join(expand_tilde(p));
        let registry_root = overrides
            .registry
            .or_else(|| config.marketplace.registry_path.as_deref().map(configured))
            .unwrap_or_else(|| home.registry());
        let packages_dir = config
            .marketplace
            .packages_path
            .as_deref()
            .map(configured)
            .unwrap_or_else(|| home.packages());
        let plugins = &config.marketplace.plugins;
        let limits = Limits {
            deadline: overrides
                .plugin_timeout
                .unwrap_or_else(|| plugins.timeout()),
            memory_bytes: overrides
                .plugin_memory_mib
                .map(mib_to_bytes)
                .unwrap_or_else(|| plugins.memory_bytes()),
        };
        if limits.deadline.is_zero() || limits.memory_bytes == 0 {
            return Err(MarketplaceError::Config(format!(
                "the plugin timeout and memory cap must be greater than zero (--plugin-timeout, --plugin-memory, or timeout_ms and memory_mib under [marketplace.plugins] in {})",
                home.config_file().display()
            )));
        }
        if limits.memory_bytes > mib_to_bytes(MAX_MEMORY_MIB) {
            return Err(MarketplaceError::Config(format!(
                "the plugin memory cap is at most {MAX_MEMORY_MIB} MiB, what a 32-bit WebAssembly plugin can address (--plugin-memory, or memory_mib under [marketplace.plugins] in {})",
                home.config_file().display()
            )));
        }
        for (key, value) in [
            ("registry_path", &config.marketplace.registry_path),
            ("packages_path", &config.marketplace.packages_path),
        ] {
            if value.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(MarketplaceError::Config(format!(
                    "{key} under [marketplace] in {} is empty; name a directory or remove the line",
                    home.config_file().display()
                )));
            }
        }
        Ok(Self {
            home_missing: home.is_missing_explicit(),
            home,
            config,
            registry_root: absolute(&registry_root),
            registry_chosen,
            packages_dir,
            registry_plugin: overrides.registry_plugin,
            p2p_policy_plugin: overrides.p2p_policy_plugin,
            limits,
        })
    }

    /// The registry backend to read from. A registry directory chosen with
    /// --registry or config.toml must exist: a mistyped path is an error, not
    /// an empty registry (and is not created).
    pub fn open_registry(&self) -> Result<Box<dyn Registry>> {
        if self.registry_chosen && !self.registry_root.is_dir() {
            let why = not_a_directory(&self.registry_root)
                .unwrap_or_else(|| format!("{} does not exist", self.registry_root.display()));
            return Err(MarketplaceError::Config(format!(
                "registry {why}; check --registry or registry_path in config.toml (publishing a package creates a new registry)"
            )));
        }
        self.load_registry()
    }

    /// The registry for a command that needs one already there (search,
    /// info, unpublish): GGEN_HOME set to a directory that does not exist
    /// is a mistake (a typo), not an empty registry, and is not created.
    pub fn open_existing_registry(&self) -> Result<Box<dyn Registry>> {
        if self.home_missing && !self.registry_chosen {
            return Err(MarketplaceError::Config(format!(
                "GGEN_HOME is {}, which does not exist; check the path (publishing or installing a package creates it)",
                self.home.root().display()
            )));
        }
        self.open_registry()
    }

    /// The registry to publish into, created if new. The directory goes
    /// again when the returned guard drops and the publish left it empty
    /// (refused, or a dry run).
    pub fn open_registry_to_publish(&self) -> Result<(Box<dyn Registry>, CreatedDir)> {
        if let Some(why) = not_a_directory(&self.registry_root) {
            return Err(MarketplaceError::Config(format!(
                "registry {why}; check --registry or registry_path in config.toml"
            )));
        }
        let created = CreatedDir::create(&self.registry_root).map_err(|e| {
            MarketplaceError::storage(
                format!(
                    "cannot create the registry {}",
                    self.registry_root.display()
                ),
                e,
            )
        })?;
        Ok((self.load_registry()?, created))
    }

    /// The registry backend: the built-in file registry, or `--registry-plugin`,
    /// sandboxed to the registry root and a cache directory of its own.
    fn load_registry(&self) -> Result<Box<dyn Registry>> {
        let source = match &self.registry_plugin {
            Some(path) => WasmSource::from_file(path)?,
            None => WasmSource::embedded(&embedded::FILE_REGISTRY),
        };
        let engine = PluginEngine::new(self.home.cache())?;
        let data = self.registry_data_dir(&source.name);
        let policy = Policy::registry(self.registry_root.clone(), data, self.limits);
        Ok(Box::new(WasmRegistry::load(&engine, &source, &policy)?))
    }

    /// The cache directory a registry plugin named `plugin` gets for this
    /// registry root (its derived search index lives there).
    pub fn registry_data_dir(&self, plugin: &str) -> PathBuf {
        crate::backend::plugin::data_dir(&self.home.cache(), plugin, &self.registry_root)
    }

    /// The P2P policy: the built-in one, or `--p2p-policy-plugin`, sandboxed
    /// with no files at all.
    pub fn open_policy(&self) -> Result<Box<dyn crate::backend::p2p_policy::P2pPolicy>> {
        let source = match &self.p2p_policy_plugin {
            Some(path) => WasmSource::from_file(path)?,
            None => WasmSource::embedded(&embedded::P2P_POLICY),
        };
        let engine = PluginEngine::new(self.home.cache())?;
        Ok(Box::new(crate::backend::plugin::WasmP2pPolicy::load(
            &engine,
            &source,
            self.limits,
        )?))
    }

    /// Serialise writers of the registry across processes.
    pub fn lock_registry(&self) -> Result<DirLock> {
        let root = self.registry_root.clone();
        lock_exclusive(&root, REGISTRY_LOCK, None, || {
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
    pub fn hook_runner(&self) -> Result<Box<dyn crate::domain::HookRunner>> {
        Ok(Box::new(WasmHookRunner::new(
            PluginEngine::new(self.home.cache())?,
            self.hook_limits()?,
        )))
    }

    /// What a package's hooks may write: what the package may hold.
    fn hook_writes(&self) -> Writes {
        Writes::from(&self.config.marketplace.install.limits())
    }

    /// The `[hooks]` limits of config.toml.
    fn hook_limits(&self) -> Result<Limits> {
        let hooks = &self.config.hooks;
        let limits = Limits {
            deadline: Duration::from_millis(hooks.timeout_ms),
            memory_bytes: mib_to_bytes(hooks.memory_mib),
        };
        if limits.deadline.is_zero() || limits.memory_bytes == 0 {
            return Err(MarketplaceError::Config(
                "[hooks] timeout_ms and memory_mib must be greater than zero".into(),
            ));
        }
        if limits.memory_bytes > mib_to_bytes(MAX_MEMORY_MIB) {
            return Err(MarketplaceError::Config(format!(
                "[hooks] memory_mib is at most {MAX_MEMORY_MIB}, what a 32-bit WebAssembly hook can address"
            )));
        }
        Ok(limits)
    }

    /// `plugin inspect`, showing the limits this configuration gives the
    /// component's role.
    pub fn inspect_plugin(&self, path: &Path) -> Result<Inspection> {
        let source = WasmSource::from_file(path)?;
        let label = path.display().to_string();
        let (hooks, writes) = (self.hook_limits()?, self.hook_writes());
        inspect::inspect(&source.bytes, &label, self.limits, hooks, writes)
            .map_err(MarketplaceError::Plugin)
    }

    /// Hook consent: the command's `--allow-hooks`/`--allow-all-hooks` plus
    /// `[hooks] allow` from config.toml, and the `--var` values.
    ///
    /// `--allow-hooks` names and `[hooks] allow` in config.toml must be
    /// package names: a typo would otherwise approve nothing, silently.
    pub fn hook_options(
        &self,
        allow: &[String],
        allow_all: bool,
        variables: Vec<(String, String)>,
    ) -> Result<HookOptions> {
        let config = format!("[hooks] allow in {}", self.home.config_file().display());
        let named = allow.iter().map(|n| (n, "--allow-hooks"));
        for (name, whence) in
            named.chain(self.config.hooks.allow.iter().map(|n| (n, config.as_str())))
        {
            if name == "*" {
                return Err(MarketplaceError::Validation(format!(
                    "{whence}: `*` is not a package name; use --allow-all-hooks to run every package's hooks"
                )));
            }
            crate::domain::manifest::validate_name(name)
                .map_err(|e| MarketplaceError::Validation(format!("{whence}: {e}")))?;
        }
        Ok(HookOptions {
            allow_all,
            allowed: allow
                .iter()
                .chain(&self.config.hooks.allow)
                .cloned()
                .collect(),
            variables,
        })
    }

    /// How installed packages record where they came from.
    pub fn source_id(&self) -> String {
        source_id(self.registry_plugin.as_deref(), &self.registry_root)
    }

    /// Serialise installers of one root across processes.
    pub fn lock_install_root(&self, root: &Path) -> Result<DirLock> {
        if let Some(why) = not_a_directory(root) {
            return Err(self.not_an_install_root(why, root));
        }
        // Packages are directories named like the registry's own: installing
        // into the registry (or it into the root) with --force replaced them.
        let (target, registry) = (resolved(root), resolved(&self.registry_root));
        if target.starts_with(&registry) || registry.starts_with(&target) {
            return Err(MarketplaceError::Validation(format!(
                "{} and the registry {} overlap; install packages into another directory (--target DIR, or packages_path in config.toml)",
                root.display(),
                self.registry_root.display()
            )));
        }
        let shown = root.display().to_string();
        lock_exclusive(
            root,
            INSTALL_LOCK,
            Some(crate::domain::installed::LOCKFILE),
            || tracing::warn!("waiting for another ggen process to finish installing into {shown}"),
        )
        .map_err(|e| MarketplaceError::storage(format!("cannot lock {shown}"), e))
    }

    /// For reading an install root (verify, list): waits for a running
    /// install, update or remove, whose transaction would otherwise look
    /// interrupted, and holds the next one off until dropped.
    pub fn read_lock_install_root(&self, root: &Path) -> Result<Option<std::fs::File>> {
        let shown = root.display().to_string();
        crate::backend::lock::lock_shared_if_present(root, INSTALL_LOCK, || {
            tracing::warn!("waiting for another ggen process to finish installing into {shown}")
        })
        .map_err(|e| MarketplaceError::storage(format!("cannot lock {shown}"), e))
    }

    /// The lock of an install root that must exist already (remove, update):
    /// a mistyped --target is an error, not a new directory.
    pub fn lock_existing_install_root(&self, root: &Path) -> Result<DirLock> {
        if !root.exists() {
            return Err(no_install_root(root));
        }
        self.lock_install_root(root)
    }

    /// `--target DIR`, or `$GGEN_HOME/packages`.
    pub fn install_root(&self, target: Option<&Path>) -> PathBuf {
        match target {
            Some(dir)
                if dir
                    .components()
                    .any(|c| c == std::path::Component::ParentDir) =>
            {
                resolved(dir)
            }
            Some(dir) => dir.to_path_buf(),
            None => self.packages_dir.clone(),
        }
    }

    /// The install root a reading command (list, verify) looks at: a
    /// `--target` that does not exist is a mistake, not an empty root.
    pub fn installed_root(&self, target: Option<&Path>) -> Result<PathBuf> {
        let root = self.install_root(target);
        if let Some(why) = not_a_directory(&root) {
            return Err(self.not_an_install_root(why, &root));
        }
        match target {
            Some(_) if !root.exists() => Err(no_install_root(&root)),
            _ => Ok(root),
        }
    }

    /// `why` (`root` is not a directory), with what to do about it.
    fn not_an_install_root(&self, why: String, root: &Path) -> MarketplaceError {
        MarketplaceError::Validation(if root == self.packages_dir {
            format!(
                "{why}; ggen installs packages into a directory there: move it away, or pass --target DIR"
            )
        } else {
            format!("{why}; --target names the directory packages are installed into")
        })
    }
}

fn no_install_root(root: &Path) -> MarketplaceError {
    MarketplaceError::NotFound(format!(
        "nothing is installed in {} (no such directory); check --target",
        root.display()
    ))
}

/// `path` with symlinks resolved as far as it exists (the rest appended), so
/// two spellings of one directory compare equal.
/// `..` steps out of the real directory, and out of a name that does not
/// exist yet without making it (`--target a/../t` left an empty `a/`).
fn resolved(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in absolute(path).components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => {
                out.push(other);
                if let Ok(real) = out.canonicalize() {
                    out = real;
                }
            }
        }
    }
    out
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// `registry+<root URL>`, or `plugin+<plugin URL>#<root URL>` for a registry
/// plugin: file URLs, percent-encoded, so a `#`, `?` or space in a path (or
/// bytes that are not UTF-8) cannot be read as URL syntax.
fn source_id(plugin: Option<&Path>, root: &Path) -> String {
    let url = |p: &Path| {
        url::Url::from_file_path(absolute(p))
            .map(String::from)
            .unwrap_or_else(|()| p.display().to_string())
    };
    match plugin {
        Some(plugin) => format!("plugin+{}#{}", url(plugin), url(root)),
        None => format!("registry+{}", url(root)),
    }
}

/// P2P flags that override `[marketplace.p2p]`.
#[derive(Debug, Clone, Default)]
pub struct P2pOverrides {
    pub listen: Vec<String>,
    pub bootstrap: Vec<String>,
    /// `--dht-server` (true) or `--dht-client` (false) over dht_server_mode.
    pub dht_server: Option<bool>,
}

/// Why P2P commands cannot run in a build without the `p2p` feature (seeds §6.4).
pub fn p2p_not_compiled() -> MarketplaceError {
    MarketplaceError::Unsupported(
        "this ggen was built without P2P support; rebuild it with the `p2p` feature (on by default): cargo build --release -p ggen --features p2p".into(),
    )
}

impl Session {
    /// Verified tarballs a node serves to peers.
    pub fn serve_dir(&self) -> PathBuf {
        self.home.p2p().join("serve")
    }

    pub fn control_socket(&self) -> PathBuf {
        self.home.p2p().join("control.sock")
    }

    #[cfg(feature = "p2p")]
    fn node_config(
        &self,
        overrides: &P2pOverrides,
        server: bool,
    ) -> Result<crate::backend::p2p::NodeConfig> {
        let p2p = &self.config.marketplace.p2p;
        // Addresses from config.toml are checked here, so that an error
        // names the file and key (a flag's error quotes the flag's value).
        let mut configured = Vec::new();
        if server && overrides.listen.is_empty() {
            configured.push(("listen_address", p2p.listen_address.clone()));
        }
        if overrides.bootstrap.is_empty() {
            let bootstrap = p2p.bootstrap_addresses().into_iter();
            configured.extend(bootstrap.map(|a| ("bootstrap_nodes", a)));
        }
        for (key, address) in configured {
            let parse = match key {
                "listen_address" => crate::backend::p2p::parse_listen_multiaddr,
                _ => crate::backend::p2p::parse_multiaddr,
            };
            parse(&address).map_err(|e| {
                MarketplaceError::Config(format!(
                    "{} [marketplace.p2p] {key}: {e}",
                    self.home.config_file().display()
                ))
            })?;
        }
        for address in &overrides.listen {
            crate::backend::p2p::parse_listen_multiaddr(address)?;
        }
        for address in &overrides.bootstrap {
            crate::backend::p2p::parse_multiaddr(address)?;
        }
        Ok(crate::backend::p2p::NodeConfig {
            keypair: self.home.p2p().join("keypair"),
            listen: if !overrides.listen.is_empty() {
                overrides.listen.clone()
            } else if server {
                vec![p2p.listen_address.clone()]
            } else {
                Vec::new()
            },
            bootstrap: if overrides.bootstrap.is_empty() {
                p2p.bootstrap_addresses()
            } else {
                overrides.bootstrap.clone()
            },
            dht_server: server && overrides.dht_server.unwrap_or(p2p.dht_server_mode),
            bootstrap_timeout: Duration::from_secs(p2p.bootstrap_timeout_secs),
            query_timeout: Duration::from_secs(p2p.query_timeout_secs),
            cache_capacity: p2p.cache_capacity,
            serve_dir: self.serve_dir(),
            peers_file: self.home.p2p().join("peers.json"),
            prune: crate::backend::p2p::Prune {
                threshold: p2p.reputation.prune_threshold,
                after_days: p2p.reputation.prune_after_days,
            },
        })
    }

    /// The running node (through its control socket), else a short-lived
    /// client node bootstrapped from the configured (or given) peers.
    #[cfg(feature = "p2p")]
    pub fn open_network(
        &self,
        overrides: &P2pOverrides,
    ) -> Result<Box<dyn crate::backend::network::Network>> {
        let config = self.node_config(overrides, false)?;
        let answer_within = config.query_timeout * 3 + config.bootstrap_timeout;
        let running =
            crate::backend::p2p::ControlClient::running(&self.control_socket(), answer_within);
        let node = match running {
            // A node holds this home but does not answer: commands go on
            // offline (installs fall back on the registry), not fail.
            Err(MarketplaceError::Network(why)) => {
                return Ok(Box::new(crate::backend::network::Unreachable(why)));
            }
            other => other?,
        };
        if let Some(mut node) = node {
            // The running node has its peers; peers named now are dialled
            // through it (they were silently ignored).
            if !overrides.bootstrap.is_empty() {
                use crate::backend::network::Network;
                let report = node.bootstrap(&overrides.bootstrap)?;
                if report.reached.is_empty() {
                    tracing::warn!(
                        "the running node could not reach any of the {} --bootstrap peer(s){}; going on with the peers it has",
                        overrides.bootstrap.len(),
                        report.failures()
                    );
                }
            }
            return Ok(Box::new(node));
        }
        Ok(Box::new(crate::backend::p2p::LocalNode::start(&config)?))
    }

    /// Check the addresses `open_network` would use, without touching
    /// anything: for a command that writes before it goes online.
    #[cfg(feature = "p2p")]
    pub fn check_network(&self, overrides: &P2pOverrides) -> Result<()> {
        self.node_config(overrides, false).map(drop)
    }

    #[cfg(not(feature = "p2p"))]
    pub fn check_network(&self, _: &P2pOverrides) -> Result<()> {
        Err(p2p_not_compiled())
    }

    #[cfg(not(feature = "p2p"))]
    pub fn open_network(
        &self,
        _: &P2pOverrides,
    ) -> Result<Box<dyn crate::backend::network::Network>> {
        Err(p2p_not_compiled())
    }

    /// Run a node in this process until it is stopped (`p2p start`). Once
    /// it is up it serves the registry's packages (their records put, and
    /// `announced` told how many) and the older copies it served before.
    #[cfg(feature = "p2p")]
    pub fn run_node(
        &self,
        overrides: &P2pOverrides,
        exit_after: Option<Duration>,
        ready: impl FnOnce(&crate::backend::network::Started),
        announced: impl FnOnce(crate::backend::network::RecordsPut) + Send + 'static,
    ) -> Result<()> {
        let config = self.node_config(overrides, true)?;
        let (reader, restorer) = (self.clone(), self.clone());
        let local = crate::backend::p2p::LocalTarballs {
            packages: move || {
                let mut registry = reader.open_registry()?;
                crate::domain::p2p::local_packages(registry.as_mut(), &reader.serve_dir())
            },
            earlier_copies: move |newest| {
                let dir = restorer.serve_dir();
                crate::domain::serving::earlier_copies(&dir, &newest, || restorer.open_registry())
            },
        };
        crate::backend::p2p::run(
            &config,
            self.control_socket(),
            local,
            exit_after,
            ready,
            announced,
        )
    }

    /// Start `args` (this command without --daemon) in the background and
    /// wait for its control socket; its output goes to `$GGEN_HOME/p2p/node.log`.
    #[cfg(feature = "p2p")]
    pub fn spawn_node_daemon(
        &self,
        args: Vec<std::ffi::OsString>,
    ) -> Result<crate::backend::network::Started> {
        let node = crate::backend::p2p::daemon::spawn(
            args,
            &self.home.p2p().join("node.log"),
            &self.control_socket(),
            Duration::from_secs(self.config.marketplace.p2p.bootstrap_timeout_secs + 10),
        )?;
        node.started()
    }

    /// Ask the running node to stop; false if none is running.
    #[cfg(feature = "p2p")]
    pub fn stop_node(&self) -> Result<bool> {
        match crate::backend::p2p::ControlClient::running(
            &self.control_socket(),
            Duration::from_secs(5),
        )? {
            Some(node) => node.stop().map(|()| true),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_percent_encoded_file_urls() {
        let root = Path::new("/srv/my reg #1?");
        assert_eq!(
            source_id(None, root),
            "registry+file:///srv/my%20reg%20%231%3F"
        );
        assert_eq!(
            source_id(Some(Path::new("/p/a#b.wasm")), root),
            "plugin+file:///p/a%23b.wasm#file:///srv/my%20reg%20%231%3F"
        );
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let odd = Path::new(std::ffi::OsStr::from_bytes(b"/r/\xff"));
            assert_eq!(source_id(None, odd), "registry+file:///r/%FF");
        }
    }
}
