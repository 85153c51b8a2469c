#!/usr/bin/env bash
# Runs `python -m leaf_ssl.train` on this machine and restarts it after a preemption.
#   bash launch/local.sh --config configs/pretrain_leaf.py:random --workdir runs/leaf_random [--config.x=y ...]
# Exit code 75 (SIGTERM/SIGINT: a checkpoint was saved) starts the same command again, which
# resumes from that checkpoint; any other code ends the loop with it. Ctrl-C twice stops for good.
set -uo pipefail
cd "$(dirname "$0")/.." || exit
source launch/cpu_env.sh  # huge pages for XLA's CPU buffers
PYTHON=${PYTHON:-.venv/bin/python}
EXIT_PREEMPTED=75
MAX_RESTARTS=${MAX_RESTARTS:-100}

for ((attempt = 0; attempt <= MAX_RESTARTS; attempt++)); do
  "$PYTHON" -m leaf_ssl.train "$@"
  code=$?
  [ "$code" -eq "$EXIT_PREEMPTED" ] || exit "$code"
  echo "[local.sh] preempted (exit $code); restarting from the saved checkpoint ($((attempt + 1))/$MAX_RESTARTS)" >&2
  sleep 2  # a second Ctrl-C in this window ends the loop
done
echo "[local.sh] gave up after $MAX_RESTARTS restarts" >&2
exit "$EXIT_PREEMPTED"
