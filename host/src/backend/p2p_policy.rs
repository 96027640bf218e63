//! The P2P policy as the domain sees it: reputation, provider order and
//! result merging, decided by a (sandboxed) policy plugin.

use super::network::PeerView;
use super::{PackageVersion, Result};

pub trait P2pPolicy {
    /// 0.0 (never use) ..= 1.0 (fully trusted).
    fn reputation(&mut self, peer: &PeerView, now: u64) -> Result<f64>;
    /// Peer ids to download from, best first, those under `min` left out.
    fn rank_providers(&mut self, providers: &[PeerView], min: f64, now: u64)
    -> Result<Vec<String>>;
    /// One entry per package name (the first source is the local registry).
    fn merge_results(
        &mut self,
        sources: Vec<Vec<PackageVersion>>,
        limit: u32,
    ) -> Result<Vec<PackageVersion>>;
}
