#!/usr/bin/env bash
# Renders a Helm chart with Helm's own template engine, as `helm template` does, and prints the
# manifests as one YAML stream in template-file order.
#
#   scripts/helm-template.sh CHART_DIR ['{"value": ...}']
#
# No registry this project installs from ships a helm binary for Linux (PyPI, npm, Debian's
# packages; Debian's Go is too old to build one), so this uses helm-python-sdk from PyPI, which
# wraps Helm's Go SDK (the code `helm template` runs) in a shared library. It is installed, once,
# into a venv under the target directory, as .ci/run installs kubernetes-validate; creating
# the venv needs python3-venv. crates/strait/tests/packaging.rs runs this script and fails,
# never skips, when it cannot.
set -euo pipefail
chart="${1:?usage: helm-template.sh CHART_DIR [VALUES_JSON]}"
values="${2:-{\}}"
venv="${CARGO_TARGET_DIR:-target}/helm-venv"
mkdir -p "$(dirname "$venv")"
# Tests run this script in parallel: one of them installs, the others wait for it.
exec 9>"$venv.lock"
flock 9
if ! "$venv/bin/python" -c 'import helm_python' >/dev/null 2>&1; then
    echo "--- installing helm-python-sdk into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'helm-python-sdk==0.2.2' >&2
fi
flock -u 9
exec "$venv/bin/python" - "$chart" "$values" <<'PY'
import json
import sys

import helm_python as helm

chart, values = sys.argv[1], json.loads(sys.argv[2])
try:
    with helm.Chart.load(chart) as c:
        rendered = c.render(values, name="strait", namespace="istio-system")
except Exception as e:  # Helm's errors (a failed `fail`, a template error) name the file
    print(f"helm template: {e}", file=sys.stderr)
    sys.exit(1)
for name in sorted(rendered):
    text = rendered[name].strip()
    if name.endswith(".tpl") or not text or all(
        line.startswith("#") for line in text.splitlines()
    ):
        continue
    sys.stdout.write(f"---\n# Source: {name}\n{text}\n")
PY
