#!/usr/bin/env bash
# The README's main command: set up, build the demo corpus, pretrain LEAF + EfficientNet-B0 with
# COLA on it, then probe the run and its untrained floors (and both frontends alone) on the three
# demo tasks and print the table (CPU, about 45 minutes on 2 cores). Re-running resumes / skips
# finished work.
#   bash launch/demo.sh [WORKDIR]        (default runs/demo_leaf)
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR=${1:-runs/demo_leaf}
TASKS=(keyword instrument language)

bash launch/setup.sh
.venv/bin/python -m leaf_ssl.data.demo --out demo_corpus
.venv/bin/python -m leaf_ssl.train --config configs/demo.py --workdir "$WORKDIR" \
  --config.data.train_shards=demo_corpus/pretrain
probe() {  # probe CKPT RESULTS_DIR TASK [more probe flags]: skipped when its result exists
  [[ -f "$2/$3.json" ]] && return
  .venv/bin/python -m leaf_ssl.probe --ckpt "$1" --workdir "$2" --task "$3" --data_dir demo_corpus "${@:4}"
}
for task in "${TASKS[@]}"; do
  probe "$WORKDIR" "$WORKDIR/probes" "$task"
  # the untrained floor, with its initial BatchNorm statistics and with statistics of the data
  probe "random:$WORKDIR" "$WORKDIR/probes_untrained" "$task"
  probe "random:$WORKDIR" "$WORKDIR/probes_untrained_bn" "$task" --bn_batches 50
  # the frontends alone (pooled over time, no encoder): what the encoders add to them
  probe "$WORKDIR" "$WORKDIR/probes_frontend" "$task" --features frontend
  probe "random:$WORKDIR" "$WORKDIR/probes_untrained_frontend" "$task" --features frontend
done
.venv/bin/python -m leaf_ssl.tables "$WORKDIR"/probes "$WORKDIR"/probes_{untrained,untrained_bn,frontend,untrained_frontend} \
  --out "$WORKDIR/table"
echo "[demo] checkpoints in $WORKDIR/checkpoints, metrics in $WORKDIR/metrics.jsonl, table in $WORKDIR/table.md"
