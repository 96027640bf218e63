#!/usr/bin/env bash
# Every test: the whole workspace (default features, P2P included), then the
# host built without the `p2p` feature (its p2p commands must explain how to
# enable P2P, and the rest must work).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
cargo test -p ggen --no-default-features --lib --test p2p_disabled --test cli_marketplace
