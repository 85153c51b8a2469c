#!/usr/bin/env bash
# The paper's table as one command: train every frontend variant self-supervised (COLA) and
# supervised, probe each run and each variant's untrained floor on every task, assemble the table.
#
#   bash launch/paper_tables.sh demo    # CPU, about an hour on 2 cores: the demo corpus (built if
#                                       # absent), tiny encoder, short runs, 3 demo tasks
#   bash launch/paper_tables.sh gpu     # one GPU, under 8 minutes: the paper's configs (EfficientNet-B0,
#                                       # batch 256, STEPS steps) on the demo corpus plus PRETRAIN_HOURS
#                                       # hours of packaged game audio; LEAF random- and mel-init and
#                                       # mel, self-supervised only, each next to its untrained floor
#   bash launch/paper_tables.sh paper   # AudioSet: pretraining shards in $AUDIOSET_SHARDS, the labelled
#                                       # AudioSet task folder in $AUDIOSET_LABELLED (supervised rows),
#                                       # TFDS tasks in $TFDS_DATA_DIR
#
# Output under runs/tables_<preset>/ (or $OUT): <variant>_ssl/ and <variant>_supervised/ (checkpoints,
# probes/<task>.json|md), floors in <variant>_untrained/probes/ (initial BatchNorm statistics) and
# <variant>_untrained_bn/probes/ (statistics re-estimated from BN_BATCHES batches of the pretraining
# data), and table.{md,csv}.
# Re-running skips probes whose result exists; training resumes from its newest checkpoint (a
# finished run does no more steps). Variants: mel, sincnet (mel/random init), leaf (mel/random).
# Environment: PYTHON (default .venv/bin/python), OUT, DEMO_CORPUS (default demo_corpus; gpu:
# demo_corpus_hours), SEEDS, BN_BATCHES, VARIANTS (space-separated, in the order to run; default:
# all five; gpu: leaf,random leaf,mel mel), SUPERVISED (1: also the supervised rows; gpu default
# 0), FLOORS (untrained and/or untrained_bn; gpu default untrained), and for gpu STEPS (500),
# BATCH (256), PRETRAIN_HOURS (4), CORPUS_SCALE (small) and EXTRA_FLAGS (more training flags,
# e.g. for a smoke run); for every preset PROBE_FLAGS (more probe flags, e.g. a shorter recipe for
# a smoke run: "--epochs 1 --min_steps 1").
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
PRESET="${1:-demo}"
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-runs/tables_${PRESET}}"
SEEDS="${SEEDS:-3}"
BN_BATCHES="${BN_BATCHES:-50}"
ALL_VARIANTS="mel sincnet,mel sincnet,random leaf,mel leaf,random"
DEFAULT_SUPERVISED=1
DEFAULT_FLOORS="untrained untrained_bn"
TRAIN_FLAGS=()
paper_config() {  # paper_config pretrain|supervised VARIANT
  case "$2" in
    mel) echo "configs/$1_mel.py" ;;
    sincnet,*) echo "configs/$1_sincnet.py:${2#sincnet,}" ;;
    leaf,*) echo "configs/$1_leaf.py:${2#leaf,}" ;;
  esac
}
case "$PRESET" in
  demo)
    CORPUS="${DEMO_CORPUS:-demo_corpus}"
    [[ -f "$CORPUS/corpus.json" ]] || "$PYTHON" -m leaf_ssl.data.demo --out "$CORPUS" --scale small
    TASKS=(keyword instrument language)
    TASK_FLAGS=(--data_dir "$CORPUS")
    ssl_config() { echo "configs/demo.py:$1"; }
    supervised_config() { echo "configs/demo_supervised.py:$1"; }
    # Two CPU cores: 16 pairs per step and COLA's bilinear similarity (not the demo recipe's 128
    # pairs and cosine, 8x the crops) keep 15 runs and 45 probes to about an hour; the frontends
    # are the paper's, the encoder the demo's tiny EfficientNet.
    SIZE_FLAGS=(--config.train.batch_size=16 --config.model.similarity=bilinear --config.train.total_steps=200)
    TRAIN_FLAGS=(--config.data.train_shards="$CORPUS/pretrain" "${SIZE_FLAGS[@]}")
    SUPERVISED_FLAGS=(--config.supervised.task_dir="$CORPUS/tasks/keyword" "${SIZE_FLAGS[@]}")
    ;;
  gpu)
    CORPUS="${DEMO_CORPUS:-demo_corpus_hours}"
    "$PYTHON" -m leaf_ssl.data.demo --out "$CORPUS" --scale "${CORPUS_SCALE:-small}" --pretrain_hours "${PRETRAIN_HOURS:-4}"
    TASKS=(keyword instrument language)
    TASK_FLAGS=(--data_dir "$CORPUS")
    ALL_VARIANTS="leaf,random leaf,mel mel"
    DEFAULT_SUPERVISED=0
    DEFAULT_FLOORS=untrained
    ssl_config() { paper_config pretrain "$1"; }
    # The paper's recipe at one-GPU size: its configs, at batch 256 for STEPS steps, with the
    # warm-up in epochs of this corpus (num_clips=0 counts its records instead of AudioSet's).
    read -r -a EXTRA <<< "${EXTRA_FLAGS:-}"
    TRAIN_FLAGS=(--config.data.train_shards="$CORPUS/pretrain" --config.data.num_clips=0
                 --config.train.batch_size="${BATCH:-256}" --config.train.total_steps="${STEPS:-500}"
                 --config.train.warmup_epochs=5 --config.train.log_every_steps=50
                 --config.train.checkpoint_every_steps=100000 "${EXTRA[@]}")
    ;;
  paper)
    : "${AUDIOSET_SHARDS:?set AUDIOSET_SHARDS to the AudioSet pretraining shards}"
    : "${AUDIOSET_LABELLED:?set AUDIOSET_LABELLED to the labelled AudioSet task folder (python -m leaf_ssl.data.audioset)}"
    : "${TFDS_DATA_DIR:?set TFDS_DATA_DIR to a TFDS data_dir with the tasks prepared (tfds build NAME)}"
    TASKS=(speech_commands crema_d nsynth_instrument nsynth_pitch voxforge voxceleb librispeech_speaker)
    TASK_FLAGS=(--tfds_data_dir "$TFDS_DATA_DIR")
    ssl_config() { paper_config pretrain "$1"; }
    supervised_config() { paper_config supervised "$1"; }
    TRAIN_FLAGS=(--config.data.train_shards="$AUDIOSET_SHARDS")
    SUPERVISED_FLAGS=(--config.supervised.task_dir="$AUDIOSET_LABELLED")
    ;;
  *) echo "usage: $0 demo|gpu|paper" >&2; exit 2 ;;
esac
read -r -a VARIANTS <<< "${VARIANTS:-$ALL_VARIANTS}"
SUPERVISED="${SUPERVISED:-$DEFAULT_SUPERVISED}"
FLOORS=" ${FLOORS:-$DEFAULT_FLOORS} "

read -r -a PROBE_EXTRA <<< "${PROBE_FLAGS:-}"
probe_all() {  # probe_all CKPT RESULTS_DIR [more probe flags]: the tasks without a result, in one call
  local missing=()
  for task in "${TASKS[@]}"; do [[ -f "$2/$task.json" ]] || missing+=(--task "$task"); done
  if (( ! ${#missing[@]} )); then echo "== $1: probed already"; return; fi
  echo "== probing $1"
  "$PYTHON" -m leaf_ssl.probe --ckpt "$1" "${missing[@]}" "${TASK_FLAGS[@]}" --workdir "$2" --seeds "$SEEDS" \
    "${PROBE_EXTRA[@]}" "${@:3}"
}

started=$SECONDS
for variant in "${VARIANTS[@]}"; do
  name="${variant/,/_}"
  echo "== $name: self-supervised ($(ssl_config "$variant"))"
  "$PYTHON" -m leaf_ssl.train --config "$(ssl_config "$variant")" --workdir "$OUT/${name}_ssl" "${TRAIN_FLAGS[@]}"
  probe_all "$OUT/${name}_ssl" "$OUT/${name}_ssl/probes" --tensorboard
  # The floor: the untrained model, exactly as the self-supervised run started; and the same
  # weights with BatchNorm statistics of the training data (their initial ones are identities).
  if [[ "$FLOORS" == *" untrained "* ]]; then
    probe_all "random:$OUT/${name}_ssl" "$OUT/${name}_untrained/probes"
  fi
  if [[ "$FLOORS" == *" untrained_bn "* ]]; then
    probe_all "random:$OUT/${name}_ssl" "$OUT/${name}_untrained_bn/probes" --bn_batches "$BN_BATCHES"
  fi
  [[ "$SUPERVISED" == 1 ]] || continue
  echo "== $name: supervised ($(supervised_config "$variant"))"
  "$PYTHON" -m leaf_ssl.train --config "$(supervised_config "$variant")" --workdir "$OUT/${name}_supervised" \
    "${SUPERVISED_FLAGS[@]}"
  probe_all "$OUT/${name}_supervised" "$OUT/${name}_supervised/probes" --tensorboard
done
"$PYTHON" -m leaf_ssl.tables "$OUT" --out "$OUT/table"
echo "table: $OUT/table.md ($(( (SECONDS - started) / 60 )) min)"
