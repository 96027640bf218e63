//! The default P2P policy: the SDK's defaults (ADR-004): reputation is the
//! Laplace-smoothed share of intact deliveries, providers are tried best
//! reputation first (then lowest latency), merged results keep the newest
//! version of each package.

struct DefaultPolicy;

impl ggen_plugin_sdk::P2pPolicy for DefaultPolicy {}

ggen_plugin_sdk::export_p2p_policy!(DefaultPolicy);
