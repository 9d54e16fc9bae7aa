#!/usr/bin/env bash
# Analysis benchmark, in two parts. Not a test: the figures go to docs/PERFORMANCE.md.
#
# 1. `strait analyze` on a generated mesh (default 10,000 resources over 3 clusters): each
#    run's wall time and peak RSS, then the median.
# 2. Input size: one ~50 MB file (the generated mesh concatenated, `DUMP_MB` to change) and a
#    300-byte alias bomb, each with peak RSS against the goals (peak RSS under 5x the input
#    plus 50 MB; a 50 MB dump in under 2 s). `DUMP_MB=0` skips this part.
set -euo pipefail
cd "$(dirname "$0")/.."
resources=${1:-10000}
clusters=${2:-3}
runs=${RUNS:-7}
dump_mb=${DUMP_MB:-50}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p strait -p strait-bench
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$target/release/gen-mesh" "$dir/mesh" "$resources" "$clusters"
echo "input: $(du -sh "$dir/mesh" | cut -f1) of YAML, $(grep -rh '^kind: ' "$dir/mesh" | wc -l) resources"
times=()
for _ in $(seq "$runs"); do
    line=$( { /usr/bin/time -f '%e %M' "$target/release/strait" analyze "$dir/mesh" -q -o json > /dev/null || true; } 2>&1 | tail -1 )
    echo "run: ${line% *} s, ${line#* } KB peak RSS"
    times+=("${line% *}")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p")
echo "median: ${median} s over $runs runs"

[ "$dump_mb" -gt 0 ] || exit 0

# Peak RSS and time of one `strait analyze FILE`, against the goals for its size.
measure() {
    local name=$1 file=$2 bytes line secs kb
    bytes=$(wc -c < "$file")
    line=$( { /usr/bin/time -f '%e %M' "$target/release/strait" analyze "$file" -q -o json > "$dir/out.json" || true; } 2>&1 | tail -1 )
    secs=${line% *}
    kb=${line#* }
    awk -v n="$name" -v b="$bytes" -v s="$secs" -v kb="$kb" 'BEGIN {
        rss = kb * 1024; goal = 5 * b + 50 * 1048576; tgoal = 2 * b / (50 * 1048576)
        if (tgoal < 0.1) tgoal = 0.1
        printf "%s: %.1f MB input, %s s (goal %.1f s: %s), peak RSS %.0f MB = %.1fx input (goal %.0f MB: %s)\n",
            n, b / 1048576, s, tgoal, (s <= tgoal ? "met" : "MISSED"),
            rss / 1048576, rss / b, goal / 1048576, (rss <= goal ? "met" : "MISSED")
    }'
}

# The generated mesh's resources, one cluster, as one multi-document file.
per_mb=2800
rm -rf "$dir/mesh"
"$target/release/gen-mesh" "$dir/mesh" $(( dump_mb * per_mb )) 1 2> /dev/null
for f in "$dir"/mesh/*/*.yaml; do cat "$f"; echo '---'; done > "$dir/dump.yaml"
rm -rf "$dir/mesh"
for _ in $(seq "${DUMP_RUNS:-3}"); do measure "dump" "$dir/dump.yaml"; done

# Nine levels of nine aliases: 9^9 scalars once expanded. It must be refused (exit 2 with a
# syntax finding at the alias), in a few megabytes.
{
    echo 'a: &a [x, x, x, x, x, x, x, x, x]'
    prev=a
    for n in b c d e f g h i; do
        echo "$n: &$n [$(printf "*$prev, %.0s" 1 2 3 4 5 6 7 8)*$prev]"
        prev=$n
    done
} > "$dir/bomb.yaml"
measure "alias bomb" "$dir/bomb.yaml"
grep -o '"message": "[^"]*"' "$dir/out.json" | head -1
