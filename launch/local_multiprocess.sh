#!/usr/bin/env bash
# Runs N processes of one command on this machine, joined into one JAX run through a
# coordinator on 127.0.0.1: the multi-host code paths (per-process shards, global batches,
# collectives across processes, checkpoints written together) without a cluster.
#
#   launch/local_multiprocess.sh N COMMAND [ARGS...]
#   launch/local_multiprocess.sh 2 .venv/bin/python -m leaf_ssl.train --config configs/tiny.py \
#       --workdir runs/two_processes --config.data.train_shards=demo_corpus/pretrain
#
# Each process gets `--coordinator 127.0.0.1:PORT --num_processes N --process_id I` appended,
# runs on CPU with DEVICES_PER_PROCESS fake devices (default 2), and its output is prefixed
# with [pI]. Environment: PORT (default: a free one), DEVICES_PER_PROCESS.
# Exit status: the first non-zero status of any process (the others are then stopped), else 0.
set -euo pipefail

if [ $# -lt 2 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 NUM_PROCESSES COMMAND [ARGS...]" >&2
  exit 2
fi
num_processes=$1
shift
devices=${DEVICES_PER_PROCESS:-2}
port=${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

pids=()
signal_all() {  # signal_all SIGNAL: to each process's command (the children of its subshell)
  for pid in "${pids[@]}"; do pkill "-$1" -P "$pid" 2>/dev/null || true; done
}
# Ctrl-C / TERM: every process gets TERM, so they agree on a step, save it and exit 75.
trap 'signal_all TERM; wait; exit 143' INT TERM

for ((i = 0; i < num_processes; i++)); do
  (
    export JAX_PLATFORMS=cpu
    export XLA_FLAGS="--xla_force_host_platform_device_count=$devices ${XLA_FLAGS:-}"
    "$@" --coordinator "127.0.0.1:$port" --num_processes "$num_processes" --process_id "$i" 2>&1 \
      | sed -u "s/^/[p$i] /"
    exit "${PIPESTATUS[0]}"
  ) &
  pids+=($!)
done

status=0
for _ in "${pids[@]}"; do
  # Whichever process ends next; after a failure the others would wait in a collective for
  # the dead one until the coordinator's heartbeat timeout, so they are killed at once.
  code=0
  wait -n || code=$?
  if [ "$code" -ne 0 ] && [ "$status" -eq 0 ]; then
    status=$code
    [ "$code" -eq 75 ] || signal_all KILL  # 75: all are stopping together after a checkpoint
  fi
done
exit "$status"
