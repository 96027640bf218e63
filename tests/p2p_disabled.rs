//! A build without the `p2p` feature (`cargo test -p ggen --no-default-features`):
//! every p2p command says how to enable P2P; everything else works.
#![cfg(not(feature = "p2p"))]

mod support;

use support::Env;

#[test]
fn p2p_commands_explain_how_to_enable_p2p() {
    let env = Env::new();
    for args in [
        vec!["marketplace", "p2p", "start"],
        vec!["marketplace", "p2p", "stop"],
        vec!["marketplace", "p2p", "search", "x"],
        vec!["marketplace", "p2p", "status"],
        vec!["marketplace", "p2p", "peer-list"],
        vec!["marketplace", "p2p", "bootstrap", "/ip4/127.0.0.1/tcp/1"],
        vec![
            "marketplace",
            "p2p",
            "peer-info",
            "12D3KooWEZyhS9abyqGT28vVv2wLdbJ432qHNQvKuyFwTDsVd8aR",
        ],
        vec!["marketplace", "p2p", "publish", "."],
        vec!["marketplace", "install", "x", "--p2p"],
        vec!["marketplace", "search", "x", "--hybrid"],
    ] {
        let err = env.fails(&args);
        assert!(err.contains("without P2P support"), "{args:?}: {err}");
        assert!(err.contains("--features p2p"), "{args:?}: {err}");
    }
    // The rest of the marketplace is unaffected.
    env.publish(serde_json::json!({"name": "still-works", "version": "1.0.0"}));
    env.ok(&["marketplace", "install", "still-works"]);
}
