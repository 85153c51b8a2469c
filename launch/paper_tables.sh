#!/usr/bin/env bash
# The paper's table as one command: pretrain every frontend variant with COLA, probe each one and
# its untrained floor on every task, assemble the table.
#
#   bash launch/paper_tables.sh demo    # CPU: the demo corpus (built if absent), 3 demo tasks
#   bash launch/paper_tables.sh gpu     # one accelerator: the demo corpus, longer runs, bigger batch
#   bash launch/paper_tables.sh paper   # AudioSet shards in $AUDIOSET_SHARDS, TFDS tasks in $TFDS_DATA_DIR
#
# Output: runs/tables_<preset>/<variant>/ (checkpoints, probes/<task>.json|md), floors in
# runs/tables_<preset>/<variant>_untrained/probes/, and runs/tables_<preset>/table.{md,csv}.
# Re-running skips probes whose result exists; pretraining resumes from its newest checkpoint
# (a finished run does no more steps). Supervised rows are not part of the grid yet.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${1:-demo}"
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="runs/tables_${PRESET}"
VARIANTS=("mel" "sincnet,mel" "sincnet,random" "leaf,mel" "leaf,random")
TRAIN_FLAGS=()
case "$PRESET" in
  demo|gpu)
    CORPUS="${DEMO_CORPUS:-demo_corpus}"
    [[ -f "$CORPUS/corpus.json" ]] || "$PYTHON" -m leaf_ssl.data.demo --out "$CORPUS" --scale small
    TASKS=(keyword instrument language)
    TASK_FLAGS=(--data_dir "$CORPUS")
    config_for() { echo "configs/demo.py:$1"; }
    TRAIN_FLAGS=(--config.data.train_shards="$CORPUS/pretrain")
    if [[ "$PRESET" == gpu ]]; then
      TRAIN_FLAGS+=(--config.train.batch_size=256 --config.train.total_steps=3000 --config.train.checkpoint_every_steps=1000)
    fi
    ;;
  paper)
    : "${AUDIOSET_SHARDS:?set AUDIOSET_SHARDS to the AudioSet pretraining shards}"
    : "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to a TFDS data_dir with the tasks prepared (tfds build NAME)}"
    TASKS=(speech_commands crema_d nsynth_instrument nsynth_pitch voxforge voxceleb librispeech_speaker)
    TASK_FLAGS=(--tfds_data_dir "$TFDS_DATA_DIR")
    config_for() {
      case "$1" in
        mel) echo "configs/pretrain_mel.py" ;;
        sincnet,*) echo "configs/pretrain_sincnet.py:${1#sincnet,}" ;;
        leaf,*) echo "configs/pretrain_leaf.py:${1#leaf,}" ;;
      esac
    }
    TRAIN_FLAGS=(--config.data.train_shards="$AUDIOSET_SHARDS")
    ;;
  *) echo "usage: $0 demo|gpu|paper" >&2; exit 2 ;;
esac

started=$SECONDS
for variant in "${VARIANTS[@]}"; do
  name="${variant/,/_}"
  config="$(config_for "$variant")"
  echo "== $name: pretraining ($config)"
  "$PYTHON" -m leaf_ssl.train --config "$config" --workdir "$OUT/$name" "${TRAIN_FLAGS[@]}"
  for task in "${TASKS[@]}"; do
    for ckpt in "$OUT/$name" "random:$config"; do
      if [[ "$ckpt" == random:* ]]; then workdir="$OUT/${name}_untrained/probes"; else workdir="$OUT/$name/probes"; fi
      if [[ -f "$workdir/$task.json" ]]; then echo "== $task on $ckpt: done already"; continue; fi
      echo "== $task on $ckpt"
      "$PYTHON" -m leaf_ssl.probe --ckpt "$ckpt" --task "$task" "${TASK_FLAGS[@]}" --workdir "$workdir"
    done
  done
done
"$PYTHON" -m leaf_ssl.tables "$OUT" --out "$OUT/table"
echo "table: $OUT/table.md ($(( (SECONDS - started) / 60 )) min)"
