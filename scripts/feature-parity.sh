#!/usr/bin/env bash
# Lists the crates the build without `p2p` (README's second test command)
# compiles with features the default build never uses. Each one listed, and
# everything above it, is compiled twice in CI: add it to
# host/feature-parity/Cargo.toml ([build-dependencies] when it is a build
# script's or proc-macro's dependency). Prints nothing when the builds agree.
set -euo pipefail
cd "$(dirname "$0")/.."
# One line per compiled unit: name, version, features (host-side units, whose
# features are resolved apart, come as lines of their own).
units() {
    cargo tree "$@" -e normal,build,dev -f '{p} [{f}]' --prefix none --no-dedupe 2>/dev/null |
        sed 's/ (.*)//' | grep -v '^ggen ' | sort -u
}
comm -13 <(units --workspace) <(units -p ggen --no-default-features)
