#!/usr/bin/env bash
# Here, with network: what `launch/device_tables.sh` needs on an offline accelerator machine, in one folder
# to carry (at most 60 MiB): the gpu grid's corpus re-encoded as Opus, and the wheels such a machine lacks
# (it has JAX, flax, optax, orbax and torch, not soundfile or ml-collections).
#
#   bash launch/device_prepare.sh            # -> device_payload/{corpus,wheels}
#
# Environment: PAYLOAD (default device_payload); CORPUS, a PCM corpus to pack (default: demo_corpus_hours,
# built as the gpu grid builds it, with HOURS of packaged audio, default 3: what fits at 20 kbit/s);
# PYTHON (default .venv/bin/python); PYTHON_VERSION, the device's Python (default 3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
PAYLOAD="${PAYLOAD:-device_payload}"
PYTHON="${PYTHON:-.venv/bin/python}"
HOURS="${HOURS:-3}"
CORPUS="${CORPUS:-demo_corpus_hours}"
LIMIT=$((60 * 1024 * 1024))
if [[ ! -f "$CORPUS/corpus.json" ]]; then
  "$PYTHON" -m leaf_ssl.data.demo --out "$CORPUS" --scale small --pretrain_hours "$HOURS"
fi
rm -rf "$PAYLOAD/corpus"
"$PYTHON" -m leaf_ssl.data.pack --src "$CORPUS" --out "$PAYLOAD/corpus" --encoding opus
mkdir -p "$PAYLOAD/wheels"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$PAYLOAD/wheels" \
  soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 ml-collections==1.1.0  # launch/constraints.txt's versions
size=$(du -sb "$PAYLOAD" | cut -f1)
echo "[device_prepare] $PAYLOAD: $((size / 1024 / 1024)) MiB (corpus $(du -sh "$PAYLOAD/corpus" | cut -f1), wheels $(du -sh "$PAYLOAD/wheels" | cut -f1))"
if (( size > LIMIT )); then
  echo "error: $PAYLOAD is $size bytes, over the 60 MiB a device call carries: use fewer HOURS" >&2
  exit 1
fi
