#!/usr/bin/env bash
# Renders `strait install` for the seed meshes' clusters and validates every object against
# Kubernetes' own OpenAPI schemas with kubernetes-validate (PyPI), strictly (an unknown field
# is an error). Istio's custom resources (Gateway, VirtualService) are left out here: Kubernetes
# has no schema for them; strait-kube's tests check them against the CRDs strait generates.
#
#   scripts/validate-install.sh              # builds strait with cargo
#   STRAIT=path/to/strait scripts/validate-install.sh
#
# Environment: STRAIT (the binary), KUBERNETES_VALIDATE (the validator; default: on PATH),
# KUBERNETES_VERSION (default: the validator's newest). Exit 0 when every object is valid.
set -euo pipefail
cd "$(dirname "$0")/.."

validator="${KUBERNETES_VALIDATE:-kubernetes-validate}"
if ! command -v "$validator" >/dev/null 2>&1; then
    echo "kubernetes-validate not found: python3 -m pip install kubernetes-validate" \
        "(in a venv on PEP 668 systems; .ci/run does this)" >&2
    exit 1
fi
strait="${STRAIT:-}"
if [ -z "$strait" ]; then
    cargo build --quiet -p strait --bin strait
    strait="${CARGO_TARGET_DIR:-target}/debug/strait"
fi
version_args=()
[ -z "${KUBERNETES_VERSION:-}" ] || version_args=(-k "$KUBERNETES_VERSION")

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# One file per object, Istio's custom resources apart.
split() {
    awk -v dir="$out/$1" '
        function flush() { if (doc != "" && !istio) { n++; f = sprintf("%s-%03d.yaml", dir, n); printf "%s", doc > f; close(f) } doc = ""; istio = 0 }
        /^---$/ { flush(); next }
        /^apiVersion: [a-z.]*istio\.io\// { istio = 1 }
        { doc = doc $0 "\n" }
        END { flush() }'
}

render() {
    local name=$1
    shift
    echo "--- $name: strait install --dry-run $*"
    "$strait" install --dry-run "$@" | split "$name"
}

render multicluster-cluster1 --mesh examples/multicluster --cluster cluster1
render multicluster-cluster2 --mesh examples/multicluster --cluster cluster2
render primary-remote-cluster1 --mesh examples/primary-remote --cluster cluster1
render primary-remote-cluster2 --mesh examples/primary-remote --cluster cluster2 --primary-address 203.0.113.7
render primary-remote-cluster2-dns --mesh examples/primary-remote --cluster cluster2 --primary-address eastwest.example.com

count=$(find "$out" -name '*.yaml' | wc -l)
echo "--- kubernetes-validate --strict: $count objects"
"$validator" --strict --quiet "${version_args[@]}" "$out"/*.yaml
echo "all $count objects are valid"
