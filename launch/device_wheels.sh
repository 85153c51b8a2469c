#!/usr/bin/env bash
# Downloads the wheels `launch/device_bench.sh` needs on an offline accelerator machine that already
# has Python, JAX with its accelerator plugin, flax, optax, orbax, etils, torch and torchaudio (a
# typical CUDA image), but not this package's other dependencies: ml-collections (the step's config)
# and SpeechBrain with what its import needs (the frontend's and the LEAF step's PyTorch peer).
#
#   bash launch/device_wheels.sh [DIR]                        # here, with network: into DIR (default .whl)
#   WHEELS=DIR bash launch/device_bench.sh                    # there: installs DIR's wheels first
#
# Environment: PYTHON (default python3), PYTHON_VERSION (the machine's, default 3.12). The versions
# are those of launch/constraints.txt where it pins them. The device script itself needs no
# TensorFlow: its wheel alone is too large to send to most offline machines.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-.whl}"
PYTHON="${PYTHON:-python3}"
PYTHON_VERSION="${PYTHON_VERSION:-3.12}"
WHEELS=(ml-collections==1.1.0 speechbrain==1.1.2 hyperpyyaml==1.2.3 ruamel.yaml==0.18.17 ruamel.yaml.clib==0.2.15)
mkdir -p "$DIR"
# ruamel.yaml.clib is compiled: the machine's Python and a manylinux tag it accepts.
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$DIR" "${WHEELS[@]}"
echo "[device_wheels] $(find "$DIR" -name '*.whl' | wc -l) wheels in $DIR ($(du -sh "$DIR" | cut -f1))"
