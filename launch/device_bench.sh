#!/usr/bin/env bash
# Every row of docs/performance.md's device table, the PyTorch peers in the same process, in one
# call: markdown tables on stdout, every row as JSON in $OUT/device_bench.json (or ./ without $OUT).
#
#   bash launch/device_bench.sh           # on the accelerator (about 5 minutes on one GPU)
#   bash launch/device_bench.sh --smoke   # tiny shapes: the CPU check that the device call runs
#
# The peers need torch (and SpeechBrain for the frontend's and the LEAF step's): without them their
# rows are skipped with the reason. Environment: PYTHON (default .venv/bin/python, else python3);
# WHEELS, a folder of wheels to install first, without network, for this run only (an offline
# machine: `launch/device_wheels.sh` downloads the ones it lacks).
set -euo pipefail
[[ -z "${WHEELS:-}" ]] || WHEELS="$(cd "$WHEELS" && pwd)"  # given from anywhere; the run starts at the root
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}"
# Allocate on demand: jax's default (most of the device up front) leaves the torch peer no memory,
# and makes peak_bytes_in_use the preallocation rather than the step's need.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
if [[ -n "${WHEELS:-}" ]]; then
  site="$(mktemp -d)"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$WHEELS"/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
exec "$PYTHON" -m leaf_ssl.cli.device_bench --json "${OUT:-.}/device_bench.json" "$@"
