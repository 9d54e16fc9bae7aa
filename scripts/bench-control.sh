#!/usr/bin/env bash
# Control-plane benchmark: generates a mesh (by default the reference mesh: 10,000 services, 50,000
# endpoints, 3 clusters, 1,000 proxies), loads it into the real control plane, opens one
# discovery stream per proxy over TLS on loopback, and measures the initial and full pushes,
# endpoint changes, VirtualService edits and peak memory against the goals (see
# crates/strait-bench/src/control/mod.rs). Prints a Markdown table for docs/PERFORMANCE.md on
# stdout, progress on stderr. Not a test. Arguments go to bench-control (--scale,
# --full-pushes, --endpoint-changes, --vs-edits, ...; see bench-control --help), e.g.
#   scripts/bench-control.sh --scale 0.1 --full-pushes 3 --endpoint-changes 30 --vs-edits 6
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p strait-bench --bin bench-control
exec target/release/bench-control "$@"
