//! config.toml's settings (seeds §13.2), each checked as it is read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// config.toml (seeds §13.2). Unknown keys are ignored so newer files still load.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, expecting = "a table of settings")]
pub struct Config {
    pub marketplace: MarketplaceConfig,
    pub hooks: HooksConfig,
}

/// `[hooks]`: which packages' post-install hooks may run, and their limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, expecting = "a table of settings")]
pub struct HooksConfig {
    /// Package names whose hooks are approved (`approve-hooks` adds to it).
    pub allow: Vec<String>,
    /// Deadline for one hook run, in milliseconds.
    pub timeout_ms: u64,
    /// Memory cap per hook, in MiB.
    pub memory_mib: u64,
}

impl Default for HooksConfig {
    fn default() -> Self {
        let d = crate::backend::plugin::policy::HOOK_LIMITS;
        Self {
            allow: Vec::new(),
            timeout_ms: d.deadline.as_millis() as u64,
            memory_mib: (d.memory_bytes >> 20) as u64,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, expecting = "a table of settings")]
pub struct MarketplaceConfig {
    pub registry_path: Option<PathBuf>,
    pub packages_path: Option<PathBuf>,
    pub plugins: PluginConfig,
    pub install: InstallConfig,
    pub p2p: P2pConfig,
}

/// `[marketplace.p2p]` (seeds §13.2); command-line flags override it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, expecting = "a table of settings")]
pub struct P2pConfig {
    pub enabled: bool,
    pub listen_address: String,
    pub dht_server_mode: bool,
    pub bootstrap_nodes: Vec<BootstrapNode>,
    /// Longest wait for a first bootstrap peer.
    #[serde(deserialize_with = "timeout_secs")]
    pub bootstrap_timeout_secs: u64,
    /// Longest wait for one DHT query.
    #[serde(deserialize_with = "timeout_secs")]
    pub query_timeout_secs: u64,
    /// Discovered packages a node keeps in memory.
    #[serde(deserialize_with = "cache_entries")]
    pub cache_capacity: usize,
    pub reputation: ReputationConfig,
}

impl Default for P2pConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen_address: "/ip4/0.0.0.0/tcp/0".into(),
            dht_server_mode: true,
            bootstrap_nodes: Vec::new(),
            bootstrap_timeout_secs: 30,
            query_timeout_secs: 10,
            cache_capacity: 10_000,
            reputation: ReputationConfig::default(),
        }
    }
}

impl P2pConfig {
    /// Bootstrap addresses, by priority (lowest first).
    pub fn bootstrap_addresses(&self) -> Vec<String> {
        let mut nodes: Vec<(u32, &str)> = self
            .bootstrap_nodes
            .iter()
            .map(|n| match n {
                BootstrapNode::Address(a) => (u32::MAX, a.as_str()),
                BootstrapNode::Entry { address, priority } => (*priority, address.as_str()),
            })
            .collect();
        nodes.sort_by_key(|(p, _)| *p);
        nodes.into_iter().map(|(_, a)| a.to_owned()).collect()
    }
}

/// `"/ip4/.../p2p/..."` or `{ address = "...", priority = 1 }` as in the seeds.
/// Untagged, so serde's own message named only the type: `expecting` says
/// what goes there, and a misspelt key is refused by it rather than lost.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    deny_unknown_fields,
    expecting = "a bootstrap_nodes entry is an address string, or a table with `address` (a string) and optionally `priority` (0 to 4294967295), and no other key"
)]
pub enum BootstrapNode {
    Address(String),
    Entry {
        address: String,
        #[serde(default = "lowest_priority")]
        priority: u32,
    },
}

fn lowest_priority() -> u32 {
    u32::MAX
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, expecting = "a table of settings")]
pub struct ReputationConfig {
    /// Results and providers from peers below this are left out.
    #[serde(deserialize_with = "fraction")]
    pub min_reputation: f64,
    #[serde(deserialize_with = "fraction")]
    pub prune_threshold: f64,
    #[serde(deserialize_with = "prune_days")]
    pub prune_after_days: u64,
}

/// A reputation: 0.0 to 1.0 (checked as the file is read, so the error
/// names config.toml and the line).
fn fraction<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "a reputation is between 0.0 and 1.0, not {value}"
        )))
    }
}

/// A whole number within `range`, checked as the file is read so that the
/// error names config.toml and the line; `what` says what it counts.
fn number_within<'de, D, T>(
    d: D,
    range: std::ops::RangeInclusive<T>,
    what: &str,
) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + std::fmt::Display,
{
    let value = T::deserialize(d)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "{what} is between {} and {}, not {value}",
            range.start(),
            range.end()
        )))
    }
}

/// A P2P wait: 1 s to a day (0 timed every query out at once; a huge one
/// overflowed the clock).
fn timeout_secs<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    number_within(d, 1..=86_400, "a timeout in seconds")
}

/// The node's cache is allocated up front: a billion entries took 36 GB.
fn cache_entries<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    number_within(d, 1..=1_000_000, "cache_capacity (packages kept in memory)")
}

/// Days count in seconds inside: at most a century keeps that in range.
fn prune_days<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    number_within(d, 0..=36_500, "prune_after_days")
}

/// A limit of 0 would refuse every package.
fn at_least_one<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + PartialOrd + From<u8> + std::fmt::Display,
{
    let value = T::deserialize(d)?;
    if value >= T::from(1) {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "a limit must be at least 1, not {value}"
        )))
    }
}

impl Default for ReputationConfig {
    fn default() -> Self {
        Self {
            min_reputation: 0.5,
            prune_threshold: 0.2,
            prune_after_days: 7,
        }
    }
}

/// Bounds on what unpacking one package may produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, expecting = "a table of settings")]
pub struct InstallConfig {
    #[serde(deserialize_with = "at_least_one")]
    pub max_entries: u64,
    #[serde(deserialize_with = "at_least_one")]
    pub max_unpacked_mib: u64,
    #[serde(deserialize_with = "at_least_one")]
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
#[serde(default, expecting = "a table of settings")]
pub struct PluginConfig {
    /// Deadline for one plugin call, in milliseconds.
    pub timeout_ms: u64,
    /// Memory cap per plugin instance, in MiB.
    pub memory_mib: u64,
}

impl Default for PluginConfig {
    fn default() -> Self {
        let d = crate::backend::plugin::policy::PLUGIN_LIMITS;
        Self {
            timeout_ms: d.deadline.as_millis() as u64,
            memory_mib: (d.memory_bytes >> 20) as u64,
        }
    }
}

impl PluginConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn memory_bytes(&self) -> usize {
        mib_to_bytes(self.memory_mib)
    }
}

/// `mib` MiB in bytes, at most `usize::MAX` (a shift wrapped huge values
/// round to small caps, or to zero).
pub fn mib_to_bytes(mib: u64) -> usize {
    usize::try_from(mib)
        .unwrap_or(usize::MAX)
        .saturating_mul(1 << 20)
}

/// Expand a leading `~/` (config values are written that way in the seeds).
pub fn expand_tilde(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_memory_caps_saturate_instead_of_wrapping() {
        assert_eq!(mib_to_bytes(256), 256 << 20);
        // 2^44 MiB shifted left by 20 wrapped to 0 ("must be greater than zero").
        assert_eq!(mib_to_bytes(1 << 44), usize::MAX);
        assert_eq!(mib_to_bytes((1 << 44) + 1), usize::MAX);
    }
}
