#!/usr/bin/env bash
# Wire-format benchmark: compiles every proxy of the control-plane benchmark's mesh (by default
# a tenth of the reference mesh: 1,000 services, 100 proxies) and measures the discovery
# stream's resources in their typed protobuf form against JSON of the same values: bytes,
# encoding (the control plane's side) and decoding and applying (the proxy's side), rounds
# alternating. Prints a Markdown table for docs/PERFORMANCE.md on stdout, progress on stderr.
# Not a test. Arguments go to bench-wire (--scale, --rounds), e.g.
#   scripts/bench-wire.sh --scale 0.1 --rounds 7
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p strait-bench --bin bench-wire
exec target/release/bench-wire "$@"
