#!/usr/bin/env bash
# The paper's table as one command: `python -m leaf_ssl.grid` over configs/grids/<preset>.py.
#
#   bash launch/paper_tables.sh demo    # CPU: the core grid (mel, LEAF mel- and random-init) x 2
#                                       # training seeds on the demo corpus, about 75 minutes on 2 cores
#   bash launch/paper_tables.sh demo --grid.variants=all --grid.supervised=True   # the full grid
#   bash launch/paper_tables.sh gpu     # one GPU: the paper's configs at batch 256 on the demo corpus
#                                       # plus 4 packaged hours
#   bash launch/paper_tables.sh paper --grid.train_flags=... (configs/grids/paper.py says which)
#
# Further arguments go to the grid: --out DIR (default runs/tables_<preset>), --dry_run, and any
# --grid.<field>=<value> (leaf_ssl/evaluation/grid.py documents every field).
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
PRESET="${1:-demo}"
(( $# )) && shift
exec "${PYTHON:-.venv/bin/python}" -m leaf_ssl.grid --grid "configs/grids/$PRESET.py" "$@"
