#!/usr/bin/env bash
# The one-GPU paper table in one device call: `python -m leaf_ssl.grid` over configs/grids/device.py on the
# carried corpus, without TensorFlow; the table, its claims and each run's throughput in $OUT/device_tables.
#
#   bash launch/device_prepare.sh                    # here: device_payload/ (corpus + wheels), to carry
#   bash launch/device_tables.sh                     # there (one H100: at most 9 minutes, compiles included)
#   bash launch/device_tables.sh --smoke             # tiny shapes on the CPU: the check that the call runs
#
# Further arguments go to the grid (--grid.<field>=<value>). Environment: PAYLOAD (default device_payload),
# OUT (default runs), PYTHON (default .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PAYLOAD="$(cd "${PAYLOAD:-device_payload}" && pwd)"
PYTHON="${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}"
SMOKE=()
if [[ "${1:-}" == "--smoke" ]]; then
  shift
  SMOKE=(--grid.probe_seeds=1 "--grid.probe_flags=--epochs 1 --min_steps 1"
         "--grid.train_flags=--config.data.train_shards={corpus}/pretrain --config.data.num_clips=0
          --config.train.batch_size=8 --config.train.total_steps=2 --config.train.warmup_epochs=0
          --config.train.log_every_steps=1 --config.train.checkpoint_every_steps=100000
          --config.train.tensorboard=False --config.data.reader=in_memory --config.encoder.name=efficientnet_tiny
          --config.data.crop_seconds=0.32 --config.model.embedding_dim=16 --config.model.freq_mask_width=2
          --config.model.time_mask_width=4")
fi
if [[ -d "$PAYLOAD/wheels" ]]; then
  site="$(mktemp -d)"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$PAYLOAD"/wheels/*.whl
  export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
exec "$PYTHON" -m leaf_ssl.grid --grid configs/grids/device.py --grid.corpus="$PAYLOAD/corpus" \
  --out "${OUT:-runs}/device_tables" "${SMOKE[@]}" "$@"
