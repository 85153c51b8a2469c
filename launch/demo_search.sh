#!/usr/bin/env bash
# The demo recipe search (docs/results.md): each variant of configs/demo.py trains on the demo
# corpus, then is probed on the three demo tasks next to the untrained floors of its architecture
# (initial BatchNorm statistics, and statistics re-estimated from 50 batches); one table of all.
#
#   bash launch/demo_search.sh [VARIANT ...]     (default: every variant below, in order)
#
# Output under runs/demo_search/ (or $OUT): <variant>/ (checkpoints, metrics.jsonl, probes/),
# floor_<architecture>/ (the floors, shared by the variants whose frontend, encoder and seed
# match), table.{md,csv} (one row per run x training, `dims` = participation ratio). Re-running
# skips finished training and probes. Environment: PYTHON, OUT, DEMO_CORPUS, SEEDS.
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-runs/demo_search}"
CORPUS="${DEMO_CORPUS:-demo_corpus}"
SEEDS="${SEEDS:-3}"
TASKS=(keyword instrument language)

# Every variant starts from the demo recipe the search began with (EfficientNet-B0, COLA's bilinear
# similarity, 16 pairs per step), spelled out so the table stays reproducible as configs/demo.py
# changes (it now holds the search's winner, tiny_cosine_batch_128).
BASE=(--config.encoder.name=efficientnet_b0 --config.model.similarity=bilinear --config.train.batch_size=16)
TINY=(--config.encoder.name=efficientnet_tiny)
COSINE=(--config.model.similarity=dot)
NO_MASKS=(--config.model.freq_masks=0 --config.model.time_masks=0)
declare -A VARIANT_FLAGS=(
  # the starting recipe (EfficientNet-B0, bilinear, 240 steps of 16 pairs)
  [b0]=""
  [tiny]="${TINY[*]}"
  [tiny_cosine]="${TINY[*]} ${COSINE[*]}"
  [tiny_cosine_no_masks]="${TINY[*]} ${COSINE[*]} ${NO_MASKS[*]}"
  [tiny_cosine_narrow_masks]="${TINY[*]} ${COSINE[*]} --config.model.freq_mask_width=4 --config.model.time_mask_width=4"
  [tiny_cosine_no_drop_path]="${TINY[*]} ${COSINE[*]} --config.encoder.drop_path_rate=0"
  [tiny_cosine_temperature_0.3]="${TINY[*]} ${COSINE[*]} --config.model.temperature=0.3"
  [tiny_cosine_avg_pool]="${TINY[*]} ${COSINE[*]} --config.encoder.pooling=avg"
  [tiny_cosine_lr_x4]="${TINY[*]} ${COSINE[*]} --config.train.base_learning_rate=0.032"
  [tiny_cosine_batch_64]="${TINY[*]} ${COSINE[*]} --config.train.batch_size=64"
  [tiny_cosine_batch_64_again]="${TINY[*]} ${COSINE[*]} --config.train.batch_size=64"
  [tiny_cosine_batch_128]="${TINY[*]} ${COSINE[*]} --config.train.batch_size=128"
  [tiny_cosine_batch_128_mlp_head]="${TINY[*]} ${COSINE[*]} --config.train.batch_size=128 --config.model.projection_head=mlp"
  [tiny_cosine_batch_128_avg_pool]="${TINY[*]} ${COSINE[*]} --config.train.batch_size=128 --config.encoder.pooling=avg"
  [tiny_cosine_batch_256]="${TINY[*]} ${COSINE[*]} --config.train.batch_size=256"
  [tiny_cosine_960_steps]="${TINY[*]} ${COSINE[*]} --config.train.total_steps=960 --config.train.checkpoint_every_steps=320"
  [b0_cosine]="${COSINE[*]}"
)
ORDER=(tiny tiny_cosine tiny_cosine_no_masks tiny_cosine_narrow_masks tiny_cosine_no_drop_path
       tiny_cosine_temperature_0.3 tiny_cosine_avg_pool tiny_cosine_lr_x4 tiny_cosine_batch_64
       tiny_cosine_960_steps tiny_cosine_batch_128 tiny_cosine_batch_128_mlp_head tiny_cosine_batch_128_avg_pool
       tiny_cosine_batch_256 b0 b0_cosine)
if (( $# )); then ORDER=("$@"); fi
for variant in "${ORDER[@]}"; do
  [[ -v "VARIANT_FLAGS[$variant]" ]] || { echo "unknown variant $variant; known: ${!VARIANT_FLAGS[*]}" >&2; exit 2; }
done

[[ -f "$CORPUS/corpus.json" ]] || "$PYTHON" -m leaf_ssl.data.demo --out "$CORPUS"
probe_all() {  # probe_all CKPT RESULTS_DIR [more probe flags]: the tasks without a result, in one call
  local missing=()
  for task in "${TASKS[@]}"; do [[ -f "$2/$task.json" ]] || missing+=(--task "$task"); done
  (( ${#missing[@]} )) || return 0
  "$PYTHON" -m leaf_ssl.probe --ckpt "$1" "${missing[@]}" --data_dir "$CORPUS" --workdir "$2" --seeds "$SEEDS" "${@:3}"
}
started=$SECONDS
for variant in "${ORDER[@]}"; do
  read -r -a flags <<< "${VARIANT_FLAGS[$variant]}"
  run="$OUT/$variant"
  echo "== $variant: ${flags[*]:-(the demo recipe)} ($(( (SECONDS - started) / 60 )) min so far)"
  "$PYTHON" -m leaf_ssl.train --config configs/demo.py --workdir "$run" \
    --config.data.train_shards="$CORPUS/pretrain" "${BASE[@]}" "${flags[@]}"
  probe_all "$run" "$run/probes"
  # The floors depend on the weights' architecture and seed only: one per distinct set of those flags.
  architecture=$(printf '%s\n' "${flags[@]}" | grep -E -- '--config\.(encoder|frontend)\.|--config\.seed=' | sed 's/^--config\.//' | sort | tr -c 'A-Za-z0-9.=\n' _ | tr '\n' '+' || true)
  floor="$OUT/floor_${architecture:-default}"
  probe_all "random:$run" "$floor/probes_untrained"
  probe_all "random:$run" "$floor/probes_untrained_bn" --bn_batches 50
done
"$PYTHON" -m leaf_ssl.tables "$OUT" --rows run --out "$OUT/table"
echo "[search] $(( (SECONDS - started) / 60 )) min; table in $OUT/table.md"
