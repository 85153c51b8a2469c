#!/usr/bin/env bash
# The demo recipe search (docs/results.md): `python -m leaf_ssl.grid` over configs/grids/demo_search.py,
# which holds the variants. Output under runs/demo_search/ (or --out DIR): <variant>_s0_ssl/,
# the shared floors, table.{md,csv} with a row per run. Re-running skips finished training and probes.
#   bash launch/demo_search.sh [--grid.variants="tiny tiny_cosine"] [--out DIR] [--grid.<field>=<value> ...]
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
exec "${PYTHON:-.venv/bin/python}" -m leaf_ssl.grid --grid configs/grids/demo_search.py --out runs/demo_search "$@"
