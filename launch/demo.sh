#!/usr/bin/env bash
# The README's main command: set up, build the demo corpus, pretrain LEAF + a tiny EfficientNet with
# COLA on it, then probe the run and its untrained floors (and both frontends alone) on the three
# demo tasks and print the table (CPU, about 40 minutes on 2 cores). Re-running resumes / skips
# finished work.
#   bash launch/demo.sh [WORKDIR]        (default runs/demo_leaf)
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
WORKDIR=${1:-runs/demo_leaf}
TASKS=(keyword instrument language)

bash launch/setup.sh
.venv/bin/python -m leaf_ssl.data.demo --out demo_corpus
.venv/bin/python -m leaf_ssl.train --config configs/demo.py --workdir "$WORKDIR" \
  --config.data.train_shards=demo_corpus/pretrain
probe() {  # probe CKPT RESULTS_DIR [more probe flags]: the tasks without a result, in one call
  local missing=()
  for task in "${TASKS[@]}"; do [[ -f "$2/$task.json" ]] || missing+=(--task "$task"); done
  (( ${#missing[@]} )) || return 0
  .venv/bin/python -m leaf_ssl.probe --ckpt "$1" --workdir "$2" "${missing[@]}" --data_dir demo_corpus "${@:3}"
}
probe "$WORKDIR" "$WORKDIR/probes" --tensorboard
# the untrained floor, with its initial BatchNorm statistics and with statistics of the data
probe "random:$WORKDIR" "$WORKDIR/probes_untrained"
probe "random:$WORKDIR" "$WORKDIR/probes_untrained_bn" --bn_batches 50
# the frontends alone (pooled over time, no encoder): what the encoders add to them
probe "$WORKDIR" "$WORKDIR/probes_frontend" --features frontend
probe "random:$WORKDIR" "$WORKDIR/probes_untrained_frontend" --features frontend
.venv/bin/python -m leaf_ssl.tables "$WORKDIR"/probes "$WORKDIR"/probes_{untrained,untrained_bn,frontend,untrained_frontend} \
  --out "$WORKDIR/table"
echo "[demo] checkpoints in $WORKDIR/checkpoints, metrics in $WORKDIR/metrics.jsonl, table in $WORKDIR/table.md"
