#!/usr/bin/env bash
# Analysis benchmark: `strait analyze` on a generated mesh (default 10,000 resources over 3
# clusters). Prints each run's wall time and peak RSS, then the median. Not a test: the
# figures go to docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
resources=${1:-10000}
clusters=${2:-3}
runs=${RUNS:-7}
cargo build --release -q -p strait -p strait-bench
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
./target/release/gen-mesh "$dir/mesh" "$resources" "$clusters"
echo "input: $(du -sh "$dir/mesh" | cut -f1) of YAML, $(grep -rh '^kind: ' "$dir/mesh" | wc -l) resources"
times=()
for _ in $(seq "$runs"); do
    line=$( { /usr/bin/time -f '%e %M' ./target/release/strait analyze "$dir/mesh" -q -o json > /dev/null || true; } 2>&1 | tail -1 )
    echo "run: ${line% *} s, ${line#* } KB peak RSS"
    times+=("${line% *}")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
echo "median: ${median} s over $runs runs"
