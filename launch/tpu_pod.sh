#!/usr/bin/env bash
# Pretraining on a Cloud TPU VM pod slice from this machine (gcloud, logged in, and git needed).
#
#   export TPU_POD_NAME=leaf TPU_POD_ZONE=us-central2-b        # TPU_POD_PROJECT too if not gcloud's
#   bash launch/tpu_pod.sh create [--spot] [--type v4-32] [--version tpu-ubuntu2204-base]
#   bash launch/tpu_pod.sh setup        # copy this working tree to every worker and install it
#   bash launch/tpu_pod.sh train --config configs/pretrain_leaf.py:random --workdir gs://BUCKET/runs/leaf \
#       --config.data.train_shards='gs://BUCKET/audioset/train-*.tfrecord'
#   bash launch/tpu_pod.sh logs [WORKER] | status | stop | delete
#
# `train` is one gcloud command, run on every worker at once (printed before it runs):
#   gcloud compute tpus tpu-vm ssh $TPU_POD_NAME --worker=all --command="cd ~/leaf_ssl && { setsid nohup \
#     .venv/bin/python -m leaf_ssl.supervise --stop_file ~/leaf_ssl_stop -- TRAIN_FLAGS --distributed=on \
#     >> ~/leaf_ssl_train.log 2>&1 < /dev/null & }"
# The workers join one JAX run through the TPU metadata. The workdir and shards must be in gs://:
# every worker reads and writes there, and it outlives the slice. `leaf_ssl.supervise` restarts
# training after each exit 75 (a stop agreed by all processes after one was signalled; a
# checkpoint was saved) and resumes it from that checkpoint; it does not restart after `stop`
# (which saves first) or when its own worker is being shut down. After a preempted spot slice or a
# worker's maintenance: `create`, `setup`, then the same `train` command; it resumes from the
# newest checkpoint in the workdir. Re-running `setup` after a code change is quick (the virtual
# environment is kept); it is refused while training runs.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${TPU_POD_NAME:?set TPU_POD_NAME to the slice name}
LOCATION=(${TPU_POD_ZONE:+--zone="$TPU_POD_ZONE"} ${TPU_POD_PROJECT:+--project="$TPU_POD_PROJECT"})
TYPE=v4-32 VERSION=tpu-ubuntu2204-base SPOT=()
# On a worker: does the training this script started still run (its pid's command line says so)?
# shellcheck disable=SC2016  # expanded by the worker's shell
RUNNING='grep -qs leaf_ssl.supervise /proc/$(cat ~/leaf_ssl_pid 2>/dev/null || echo none)/cmdline'

tpu_vm() { gcloud compute tpus tpu-vm "$@" "${LOCATION[@]}"; }
on_all() { tpu_vm ssh "$NAME" --worker=all --command="$1"; }
fail() { echo "[tpu_pod] error: $*" >&2; exit 2; }

command=${1:-}
(( $# )) && shift
case $command in
  create)
    while (( $# )); do
      case $1 in
        --spot) SPOT=(--spot) ;;
        --type) TYPE=$2; shift ;;
        --version) VERSION=$2; shift ;;
        *) fail "create: unknown option $1 (--spot, --type TYPE, --version VERSION)" ;;
      esac
      shift
    done
    read -r -a extra <<< "${TPU_POD_CREATE_FLAGS:-}"  # e.g. '--reserved' or '--service-account=SA'
    state=$(tpu_vm describe "$NAME" --format='value(state)' 2>/dev/null || echo NOT_FOUND)
    case $state in
      READY) echo "[tpu_pod] $NAME is READY: reusing it" ;;
      STOPPED) tpu_vm start "$NAME" ;;
      PREEMPTED | TERMINATED | NOT_FOUND | "")
        # A preempted spot slice cannot be restarted: only a new one of the same name will do.
        [[ $state == PREEMPTED || $state == TERMINATED ]] && tpu_vm delete "$NAME" --quiet
        # The scope lets the service account's IAM roles decide what the workers may do in gs://.
        tpu_vm create "$NAME" --accelerator-type="$TYPE" --version="$VERSION" "${SPOT[@]}" \
          --scopes=https://www.googleapis.com/auth/cloud-platform "${extra[@]}" ;;
      *) fail "$NAME is $state; wait until it is READY (launch/tpu_pod.sh status), then create again" ;;
    esac ;;
  setup)
    archive=$(mktemp "${TMPDIR:-/tmp}/leaf_ssl_code.XXXXXX")
    trap 'rm -f "$archive"' EXIT
    # The files git tracks or would track (uncommitted edits too, not .venv or runs/), that exist.
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' path; do
      [ -e "$path" ] && printf '%s\0' "$path"
    done | COPYFILE_DISABLE=1 tar -czf "$archive" --null -T -
    tpu_vm scp "$archive" "$NAME:leaf_ssl_code.tar.gz" --worker=all
    # The new tree replaces the old one, keeping its virtual environment (same path, so its
    # scripts stay valid); uv fetches the Python jax needs (the TPU images ship 3.10).
    on_all "if $RUNNING; then echo 'training runs here: stop it first' >&2; exit 2; fi
      set -e; mkdir -p ~/leaf_ssl && mv ~/leaf_ssl/.venv ~/leaf_ssl_venv 2>/dev/null || true
      rm -rf ~/leaf_ssl && mkdir ~/leaf_ssl && tar -xzf ~/leaf_ssl_code.tar.gz -C ~/leaf_ssl && rm ~/leaf_ssl_code.tar.gz
      [ -d ~/leaf_ssl_venv ] && mv ~/leaf_ssl_venv ~/leaf_ssl/.venv; cd ~/leaf_ssl
      command -v uv > /dev/null || [ -x ~/.local/bin/uv ] || python3 -m pip install --quiet --user uv
      UV=\$(command -v uv || echo ~/.local/bin/uv)
      [ -x .venv/bin/python ] || \$UV venv --quiet --python ${TPU_POD_PYTHON:-3.11} .venv
      \$UV pip install --quiet --python .venv/bin/python -c launch/constraints.txt -e '.[tpu]'
      echo \"[worker \$(hostname)] ready: \$(.venv/bin/python -c 'import jax; print(\"jax\", jax.__version__)')\"" ;;
  train)
    flags=" $* "
    [[ $flags =~ \ --config[=\ ] ]] || fail "train needs --config, e.g. --config configs/pretrain_leaf.py:random"
    [[ $flags =~ --workdir[=\ ]gs:// ]] || fail "train needs --workdir=gs://...: every worker writes the checkpoints there"
    [[ $flags == *" --distributed"* ]] && fail "tpu_pod.sh passes --distributed=on itself"
    run="cd ~/leaf_ssl && rm -f ~/leaf_ssl_stop && { setsid nohup .venv/bin/python -m leaf_ssl.supervise \
--stop_file ~/leaf_ssl_stop -- $(printf '%q ' "$@")--distributed=on >> ~/leaf_ssl_train.log 2>&1 < /dev/null & }"
    # Only the supervisor in the background, its output in the log: ssh then returns. setsid does not
    # fork here (a background job leads no process group), so $! is the supervisor.
    echo "+ gcloud compute tpus tpu-vm ssh $NAME --worker=all --command=\"$run\""
    on_all "if $RUNNING; then echo 'training runs already: stop it first' >&2; exit 2; fi
      [ -x ~/leaf_ssl/.venv/bin/python ] || { echo \"\$(hostname): not set up: run setup first\" >&2; exit 2; }
      $run && echo \$! > ~/leaf_ssl_pid"
    echo "[tpu_pod] started on every worker; follow it: launch/tpu_pod.sh logs" ;;
  logs) tpu_vm ssh "$NAME" --worker="${1:-0}" --command="tail -n 200 -F ~/leaf_ssl_train.log" ;;
  status)
    tpu_vm describe "$NAME" --format='table(state,acceleratorType,runtimeVersion,health)'
    on_all "if $RUNNING; then echo \"\$(hostname): training runs\"; else echo \"\$(hostname): no training\"; fi; \
tail -n 1 ~/leaf_ssl_train.log 2>/dev/null || true" ;;
  stop)  # saved at the next step all processes agree on, then exit 75, not restarted
    on_all "touch ~/leaf_ssl_stop; if $RUNNING; then kill -TERM \$(cat ~/leaf_ssl_pid); else echo \"\$(hostname): no training\"; fi" ;;
  delete) tpu_vm delete "$NAME" ;;
  *) fail "unknown command '$command': create, setup, train, logs, status, stop or delete (header of $0)" ;;
esac
