//! A p2p-policy-plugin component as the domain's [`P2pPolicy`]: no files at
//! all, a deadline per call, a memory cap; a trap stops the instance.

use wasmtime::Store;
use wasmtime::component::HasSelf;

use super::bindings::policy::exports::ggen::marketplace::p2p_policy::{Guest, PeerStats};
use super::bindings::policy::{P2pPolicyPlugin, P2pPolicyPluginPre};
use super::contract::World;
use super::registry_plugin::{from_wit_version, to_wit_version};
use super::sandbox::{self, PluginState};
use super::{Limits, PluginEngine, Policy, WasmSource};
use crate::backend::network::PeerView;
use crate::backend::p2p_policy::P2pPolicy;
use crate::backend::{MarketplaceError, PackageVersion, Result};

pub struct WasmP2pPolicy {
    store: Store<PluginState>,
    plugin: P2pPolicyPlugin,
    calls: sandbox::Calls,
}

impl WasmP2pPolicy {
    pub fn load(engine: &PluginEngine, source: &WasmSource, limits: Limits) -> Result<Self> {
        let pre = sandbox::prepare(
            engine,
            source,
            World::P2pPolicy,
            |l| P2pPolicyPlugin::add_to_linker::<_, HasSelf<PluginState>>(l, |s| s),
            P2pPolicyPluginPre::new,
        )?;
        let policy = Policy::p2p_policy(limits);
        let (store, plugin) =
            sandbox::instantiate(engine, &policy, &source.label, |s| pre.instantiate(s))?;
        Ok(Self {
            store,
            plugin,
            calls: sandbox::Calls::new(&source.label, limits),
        })
    }

    fn call<T>(
        &mut self,
        func: &str,
        f: impl FnOnce(&Guest, &mut Store<PluginState>) -> wasmtime::Result<T>,
    ) -> Result<T> {
        let plugin = &self.plugin;
        self.calls.run(&mut self.store, func, |store| {
            f(plugin.ggen_marketplace_p2p_policy(), store)
        })
    }
}

fn stats(p: &PeerView) -> PeerStats {
    PeerStats {
        peer_id: p.peer_id.clone(),
        successes: p.successes,
        failures: p.failures,
        avg_latency_ms: p.avg_latency_ms,
        last_seen: p.last_seen,
    }
}

impl P2pPolicy for WasmP2pPolicy {
    fn reputation(&mut self, peer: &PeerView, now: u64) -> Result<f64> {
        let s = stats(peer);
        let r = self.call("reputation", |g, st| g.call_reputation(st, &s, now))?;
        if !(0.0..=1.0).contains(&r) {
            return Err(MarketplaceError::Plugin(format!(
                "{} returned reputation {r}, outside 0.0-1.0",
                self.calls.label
            )));
        }
        Ok(r)
    }

    fn rank_providers(
        &mut self,
        providers: &[PeerView],
        min: f64,
        now: u64,
    ) -> Result<Vec<String>> {
        let s: Vec<PeerStats> = providers.iter().map(stats).collect();
        let ranked = self.call("rank-providers", |g, st| {
            g.call_rank_providers(st, &s, min, now)
        })?;
        // Only peers that were offered, each once: a policy cannot invent providers.
        let mut seen = std::collections::HashSet::new();
        Ok(ranked
            .into_iter()
            .filter(|id| providers.iter().any(|p| &p.peer_id == id) && seen.insert(id.clone()))
            .collect())
    }

    fn merge_results(
        &mut self,
        sources: Vec<Vec<PackageVersion>>,
        limit: u32,
    ) -> Result<Vec<PackageVersion>> {
        let offered: Vec<Vec<_>> = sources
            .iter()
            .map(|list| list.iter().map(to_wit_version).collect())
            .collect();
        let merged = self.call("merge-results", |g, st| {
            g.call_merge_results(st, &offered, limit)
        })?;
        // Only versions that were offered: a policy cannot invent packages.
        Ok(merged
            .into_iter()
            .map(from_wit_version)
            .filter(|v| sources.iter().flatten().any(|o| o == v))
            .take(limit as usize)
            .collect())
    }
}
