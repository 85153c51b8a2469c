#!/usr/bin/env bash
# Learning parity with an independent PyTorch COLA (docs/results.md): train SEEDS runs of the demo
# recipe with the mel frontend, then `python -m leaf_ssl.bench --what learning --peer torch`
# trains the peer on each run's own batches and probes both encoders on the three demo tasks.
#
#   bash launch/learning_parity.sh [OUT]     (default runs/learning_parity)
#
# The setting is configs/learning_parity.py (the one measured in docs/results.md). Environment:
# PYTHON (default .venv/bin/python), DEMO_CORPUS (default demo_corpus), SEEDS (default "0 1"),
# CONFIG (default configs/learning_parity.py; configs/demo.py:mel for the demo recipe itself),
# TRAIN_FLAGS (more training flags). Needs torch (`pip install torch`).
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="${1:-runs/learning_parity}"
CORPUS="${DEMO_CORPUS:-demo_corpus}"
read -r -a SEED_LIST <<< "${SEEDS:-0 1}"
read -r -a EXTRA <<< "${TRAIN_FLAGS:-}"
[[ -f "$CORPUS/corpus.json" ]] || "$PYTHON" -m leaf_ssl.data.demo --out "$CORPUS"
runs=()
for seed in "${SEED_LIST[@]}"; do
  "$PYTHON" -m leaf_ssl.train --config "${CONFIG:-configs/learning_parity.py}" --workdir "$OUT/seed$seed" --config.seed="$seed" \
    --config.data.train_shards="$CORPUS/pretrain" "${EXTRA[@]}"
  runs+=(--run "$OUT/seed$seed")
done
"$PYTHON" -m leaf_ssl.bench --what learning --peer torch "${runs[@]}" --data_dir "$CORPUS" --json "$OUT/parity.json"
