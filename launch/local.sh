#!/usr/bin/env bash
# Runs `python -m leaf_ssl.train` on this machine and restarts it after each preemption, through
# `python -m leaf_ssl.supervise` (exit 75 with a checkpoint saved: the same command resumes it;
# any other exit code, or Ctrl-C, ends it). MAX_RESTARTS (default 100) bounds the restarts.
#   bash launch/local.sh --config configs/pretrain_leaf.py:random --workdir runs/leaf_random [--config.x=y ...]
set -euo pipefail
cd "$(dirname "$0")/.."
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
exec "${PYTHON:-.venv/bin/python}" -m leaf_ssl.supervise --max_restarts "${MAX_RESTARTS:-100}" -- "$@"
