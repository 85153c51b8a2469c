#!/usr/bin/env bash
# The README's main command: set up, build the demo corpus, pretrain LEAF + EfficientNet-B0
# with COLA on it (CPU, about 15 minutes on 2 cores). Re-running resumes / skips finished work.
#   bash launch/demo.sh [WORKDIR]        (default runs/demo_leaf)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR=${1:-runs/demo_leaf}

bash launch/setup.sh
.venv/bin/python -m leaf_ssl.data.demo --out demo_corpus
.venv/bin/python -m leaf_ssl.train --config configs/demo.py --workdir "$WORKDIR" \
  --config.data.train_shards=demo_corpus/pretrain
echo "[demo] checkpoints in $WORKDIR/checkpoints, metrics in $WORKDIR/metrics.jsonl"
