#!/usr/bin/env bash
# The README's main command: set up, then `python -m leaf_ssl.grid` over configs/grids/quickstart.py:
# build the demo corpus, pretrain LEAF + a tiny EfficientNet with COLA on it, probe the run, its
# untrained floors and both frontends alone on the three demo tasks, print the table (CPU, about 30
# minutes on 2 cores). Re-running resumes / skips finished work.
#   bash launch/demo.sh [WORKDIR] [--grid.<field>=<value> ...]     (default WORKDIR: runs/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR=runs/demo
if (( $# )) && [[ $1 != -* ]]; then WORKDIR=$1; shift; fi
bash launch/setup.sh
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
exec .venv/bin/python -m leaf_ssl.grid --grid configs/grids/quickstart.py --out "$WORKDIR" "$@"
