#!/usr/bin/env bash
# Installs jaxmlp with every runtime dependency at the floor pyproject.toml declares, in a
# fresh virtual environment, and runs the fast tests there (see docs/design.md, "Dependencies,
# and why"). Usage: scripts/check_floors.sh [VENV_DIR] [pytest arguments...]
# VENV_DIR defaults to /tmp/jaxmlp-floor-venv and is recreated; pytest arguments default to
# -q -m "not slow". Needs python3.11+ and PyPI; downloads about 150 MB.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-/tmp/jaxmlp-floor-venv}"
shift || true
[ "$#" -gt 0 ] || set -- -q -m "not slow"

# Keep in step with [project] dependencies in pyproject.toml.
floors=(
    "jax==0.10.1" "jaxlib==0.10.1"
    "optax==0.2.4"
    "typer==0.28.0"
    "rich==13.8.0"
    "numpy==2.0.0"
    "pillow==10.1.0"
)

rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q -e "$repo[test]" "${floors[@]}"
"$venv/bin/pip" list 2>/dev/null | grep -iE '^(jax|jaxlib|optax|typer|rich|numpy|pillow) '
cd "$repo"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$@"
