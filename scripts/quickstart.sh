#!/usr/bin/env bash
# Build ggen, publish the example packages into a fresh registry, search it
# and install one.
# Usage: scripts/quickstart.sh [search words...]   (default: "rust")
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --release --quiet
# Always its own home: the registry below is emptied first, and a GGEN_HOME
# the user exported must never be the one emptied.
export GGEN_HOME="$PWD/target/quickstart-home"
rm -rf "$GGEN_HOME/registry"
ggen="${CARGO_TARGET_DIR:-target}/release/ggen"
for dir in examples/packages/*/; do
  "$ggen" marketplace publish "$dir"
done
echo
echo "\$ ggen marketplace search ${*:-rust}"
"$ggen" marketplace search "${@:-rust}"
echo
echo "\$ ggen marketplace info rust-cli"
"$ggen" marketplace info rust-cli
echo
# Install one with its dependency, rendering their templates (hooks run only
# when approved, as in pnpm).
rm -rf "$GGEN_HOME/demo"
echo "\$ ggen marketplace install rust-cli --target $GGEN_HOME/demo --allow-all-hooks --var project_name=demo"
"$ggen" marketplace install rust-cli --target "$GGEN_HOME/demo" --allow-all-hooks --var project_name=demo
echo
echo "\$ cat $GGEN_HOME/demo/rust-cli/templates/main.rs"
cat "$GGEN_HOME/demo/rust-cli/templates/main.rs"
echo
echo "GGEN_HOME=$GGEN_HOME; try: GGEN_HOME=$GGEN_HOME $ggen marketplace search --category web --json"
