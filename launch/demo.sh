#!/usr/bin/env bash
# The README's main command: set up, build the demo corpus, pretrain LEAF + EfficientNet-B0 with
# COLA on it, then probe the run and its untrained floor on the three demo tasks and print the
# table (CPU, about 25 minutes on 2 cores). Re-running resumes / skips finished work.
#   bash launch/demo.sh [WORKDIR]        (default runs/demo_leaf)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR=${1:-runs/demo_leaf}
TASKS=(keyword instrument language)

bash launch/setup.sh
.venv/bin/python -m leaf_ssl.data.demo --out demo_corpus
.venv/bin/python -m leaf_ssl.train --config configs/demo.py --workdir "$WORKDIR" \
  --config.data.train_shards=demo_corpus/pretrain
for task in "${TASKS[@]}"; do
  for ckpt in "$WORKDIR" "random:$WORKDIR"; do
    results="$WORKDIR/probes"
    [[ "$ckpt" == random:* ]] && results="$WORKDIR/probes_untrained"
    [[ -f "$results/$task.json" ]] && continue
    .venv/bin/python -m leaf_ssl.probe --ckpt "$ckpt" --task "$task" --data_dir demo_corpus --workdir "$results"
  done
done
.venv/bin/python -m leaf_ssl.tables "$WORKDIR/probes" "$WORKDIR/probes_untrained" --out "$WORKDIR/table"
echo "[demo] checkpoints in $WORKDIR/checkpoints, metrics in $WORKDIR/metrics.jsonl, table in $WORKDIR/table.md"
