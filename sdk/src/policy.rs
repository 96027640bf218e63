//! The P2P policy trait and its export glue.

use std::marker::PhantomData;

use crate::PackageVersion;
use crate::bindings::policy::exports::ggen::marketplace::p2p_policy as wit;
use crate::search::preference;

pub use wit::PeerStats;

/// How the host's node judges peers and merges results. Every method has the
/// default ggen ships (`plugins/p2p-policy` only exports these), so a custom
/// policy overrides what it wants to change.
pub trait P2pPolicy: 'static {
    /// [`default_reputation`].
    fn reputation(stats: PeerStats, now: u64) -> f64 {
        let _ = now;
        default_reputation(stats.successes, stats.failures)
    }

    /// Best reputation first, then lower latency, then peer id; peers under
    /// `min_reputation` left out.
    fn rank_providers(providers: Vec<PeerStats>, min_reputation: f64, now: u64) -> Vec<String> {
        let mut scored: Vec<(f64, PeerStats)> = providers
            .into_iter()
            .map(|p| (Self::reputation(p.clone(), now), p))
            .filter(|(r, _)| *r >= min_reputation)
            .collect();
        scored.sort_by(|(ra, a), (rb, b)| {
            rb.total_cmp(ra)
                .then(latency(a).cmp(&latency(b)))
                .then(a.peer_id.cmp(&b.peer_id))
        });
        scored.into_iter().map(|(_, p)| p.peer_id).collect()
    }

    /// One entry per package name: the newest stable version, else the
    /// newest pre-release ([`crate::search::preference`]; the earliest source
    /// wins a tie), sorted by name, at most `limit`.
    fn merge_results(sources: Vec<Vec<PackageVersion>>, limit: u32) -> Vec<PackageVersion> {
        let mut merged: std::collections::BTreeMap<String, PackageVersion> = Default::default();
        for version in sources.into_iter().flatten() {
            let newer = match merged.get(&version.name) {
                Some(old) => preference(&version.version) > preference(&old.version),
                None => true,
            };
            if newer {
                merged.insert(version.name.clone(), version);
            }
        }
        merged.into_values().take(limit as usize).collect()
    }
}

/// Laplace-smoothed success ratio: an unknown peer is 0.5. (The host also
/// uses it natively to prune its peer table.)
pub fn default_reputation(successes: u32, failures: u32) -> f64 {
    (successes as f64 + 1.0) / (successes as f64 + failures as f64 + 2.0)
}

/// Unknown latency (0) sorts after every measured one.
fn latency(p: &PeerStats) -> u32 {
    if p.avg_latency_ms == 0 {
        u32::MAX
    } else {
        p.avg_latency_ms
    }
}

/// Adapts a [`P2pPolicy`] to the generated bindings; used by [`crate::export_p2p_policy!`].
#[doc(hidden)]
pub struct Export<T>(PhantomData<T>);

impl<T: P2pPolicy> wit::Guest for Export<T> {
    fn reputation(stats: PeerStats, now: u64) -> f64 {
        T::reputation(stats, now)
    }
    fn rank_providers(providers: Vec<PeerStats>, min_reputation: f64, now: u64) -> Vec<String> {
        T::rank_providers(providers, min_reputation, now)
    }
    fn merge_results(sources: Vec<Vec<PackageVersion>>, limit: u32) -> Vec<PackageVersion> {
        T::merge_results(sources, limit)
    }
}

/// Export a [`P2pPolicy`] implementation and stamp the contract version.
#[macro_export]
macro_rules! export_p2p_policy {
    ($policy:ty) => {
        type __GgenPolicyExport = $crate::policy::Export<$policy>;
        $crate::bindings::policy::__export_policy_world!(__GgenPolicyExport with_types_in $crate::bindings::policy);

        const __GGEN_STAMP_LEN: usize = $crate::POLICY_STAMP.len();
        #[used]
        #[unsafe(link_section = "ggen:contract")]
        static __GGEN_CONTRACT_STAMP: [u8; __GGEN_STAMP_LEN] = $crate::POLICY_STAMP;
    };
}
