#!/usr/bin/env bash
# Lists the shared crates whose features differ between the default build and
# the build without `p2p` (README's second test command). Each one listed, and
# everything above it, is compiled twice in CI: add it to
# host/feature-parity/Cargo.toml. Prints nothing when the two builds agree.
set -euo pipefail
cd "$(dirname "$0")/.."
tree() { cargo tree "$@" -e normal,build,dev -f '{p} [{f}]' --prefix none --no-dedupe 2>/dev/null | sort -u; }
python3 - <(tree --workspace) <(tree -p ggen --no-default-features) <<'PY'
import re, sys
def load(path):
    out = {}
    for line in open(path):
        m = re.match(r'(\S+) (v\S+)(?: \(.*?\))? \[(.*)\]', line.strip())
        if m:
            out.setdefault((m[1], m[2]), set()).update(f for f in m[3].split(',') if f)
    return out
full, without = load(sys.argv[1]), load(sys.argv[2])
for key in sorted(without):
    if key[0] != 'ggen' and key in full and full[key] != without[key]:
        print(f'{key[0]} {key[1]}: without p2p lacks {sorted(full[key] - without[key])}')
PY
