#!/usr/bin/env bash
# Pretraining on a Cloud TPU VM pod slice, driven from this machine with gcloud: create the slice,
# copy and install this working tree on every worker, run the same training command on all of
# them, restart it after a preemption, stop it, delete the slice. `launch/tpu_pod.sh --help`.
#
# The same file also holds the worker side (the worker-* commands), which the commands above run
# on each worker over ssh after `setup` has copied this tree to ~/leaf_ssl there.
set -uo pipefail  # not -e: the exit codes of gcloud and of training decide what happens next

usage() {
  cat <<'EOF'
Usage: launch/tpu_pod.sh [OPTIONS] COMMAND [ARGS...]

Trains leaf_ssl on a Cloud TPU VM pod slice. Run it from a clone of this repository on a machine
with the Google Cloud CLI (gcloud, logged in) and git. Every worker runs the same
`python -m leaf_ssl.train ... --distributed=on`; the workers join one JAX run through the TPU
metadata. The workdir and the shards must be in Cloud Storage (gs://), where every worker reads
and writes them and where they outlive the slice.

Commands, in the order of a first run:
  create         Create the slice, or reuse it if it is READY. A PREEMPTED or TERMINATED
                 slice is deleted and created again; a STOPPED one is started.
  setup          Copy this working tree (tracked files and untracked files git does not
                 ignore, so uncommitted edits too) to ~/leaf_ssl on every worker, and install
                 it in ~/leaf_ssl/.venv: Python (--python) fetched by uv, then
                 `pip install -c launch/constraints.txt -e ".[tpu]"`. Refused while training runs. Run it again
                 after changing the code; the virtual environment is kept, so it is quick.
  train TRAIN_FLAGS...
                 Start `python -m leaf_ssl.train TRAIN_FLAGS --distributed=on` on every worker,
                 detached (it does not depend on this terminal), then watch it: print worker
                 0's log (the other workers log warnings and errors only) and, when the workers
                 stop with exit code 75 (SIGTERM received, checkpoint saved), start them again;
                 training resumes from the newest checkpoint. Ends with the run's exit code:
                 0 finished, 65 diverged (see the log), 75 stopped by `stop`.
                 TRAIN_FLAGS are train.py's and must hold --config (a path in this repository),
                 --workdir=gs://... and --config.data.train_shards=gs://... (or, for a
                 supervised config, --config.supervised.task_dir=gs://...).
                 Ctrl-C stops watching only. The same command again watches a run that is
                 still going (a run with other flags is refused: `stop` it first).
  logs [WORKER]  Follow a worker's training log (default: worker 0). Ctrl-C to quit.
  status         The slice's state and, on each worker, whether training runs or how it ended.
  stop           Send SIGTERM to the training on every worker: at the next agreed step all of
                 them save a checkpoint and exit 75, and `train` does not restart them. The
                 same train command later resumes from that checkpoint.
  delete         Delete the slice (gcloud asks first). The gs:// workdir is kept.

Options (each can also be set by the environment variable on its right; options win):
  --name NAME         TPU_POD_NAME        the slice's name (required)
  --zone ZONE         TPU_POD_ZONE        default: gcloud's compute/zone property
  --project PROJECT   TPU_POD_PROJECT     default: gcloud's core/project property
  --type TYPE         TPU_POD_TYPE        accelerator type to create (default: v4-32)
  --version VERSION   TPU_POD_VERSION     TPU software version to create (default:
                                          tpu-ubuntu2204-base, for v4 and older; v5e:
                                          v2-alpha-tpuv5-lite; v5p: v2-alpha-tpuv5;
                                          v6e: v2-alpha-tpuv6e)
  --spot              TPU_POD_SPOT=1      create a spot slice (cheaper; it can be preempted
                                          at any time and then must be created again)
  --recreate          TPU_POD_RECREATE=1  train: when the slice was preempted or is gone,
                                          create it again, set it up and resume, unattended
  --python VERSION    TPU_POD_PYTHON      Python for setup (default: 3.11; jax needs >= 3.11
                                          and the TPU images ship 3.10)
  --max-restarts N    TPU_POD_MAX_RESTARTS  restarts train makes before giving up (default: 100)
Environment only:
  TPU_POD_CREATE_FLAGS   more flags for `gcloud compute tpus tpu-vm create`, e.g.
                         '--reserved' or '--service-account=SA_EMAIL'
  TPU_POD_RESTART_DELAY  seconds between a stop and the restart (default: 30)

ssh to several workers at once needs your gcloud key in an ssh agent first:
  ssh-add ~/.ssh/google_compute_engine

Example (a v4-32 slice: 4 workers of 4 chips, 16 JAX devices):
  export TPU_POD_NAME=leaf TPU_POD_ZONE=us-central2-b
  launch/tpu_pod.sh create
  launch/tpu_pod.sh setup
  launch/tpu_pod.sh train --config configs/pretrain_leaf.py:random \
      --workdir gs://BUCKET/runs/leaf_random \
      --config.data.train_shards='gs://BUCKET/audioset/train-*.tfrecord'
  launch/tpu_pod.sh delete
EOF
}

readonly EXIT_PREEMPTED=75    # leaf_ssl.train: stopped by SIGTERM/SIGINT after saving a checkpoint
readonly EXIT_UNREACHABLE=255  # gcloud ssh: a worker could not be reached (remote 255s are reported as 1)
readonly MAX_UNREACHABLE=10   # consecutive lost contacts before train gives up
readonly TRANSITION_WAIT_SECONDS=1800  # how long train waits for a slice that is repairing or starting

# Worker side: where setup puts the code, and where a training run keeps its log and state.
CODE_DIR=$HOME/leaf_ssl
RUN_DIR=$HOME/leaf_ssl_run

log() { echo "[tpu_pod] $*" >&2; }
error() { echo "[tpu_pod] error: $*" >&2; }
usage_error() {
  error "$*"
  echo "Run launch/tpu_pod.sh --help for usage." >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------
# Driver side: runs on your machine.

tpu_vm() {  # tpu_vm VERB ARGS...: `gcloud compute tpus tpu-vm VERB ARGS...` in the slice's zone and project
  gcloud compute tpus tpu-vm "$@" "${LOCATION_FLAGS[@]}"
}

on_workers() {  # on_workers WORKERS COMMAND [ARGS...]: this script's worker-side COMMAND on WORKERS (0, 1-3, all)
  # gcloud's exit code is the first non-zero one in worker order, or 255 when ssh itself failed.
  # Keep-alives: the workers other than 0 print nothing for hours while training runs, and an
  # idle connection may be dropped on the way; a worker that is gone is noticed within minutes.
  tpu_vm ssh "$POD_NAME" --worker="$1" --ssh-flag=-oServerAliveInterval=60 \
    --command="bash ~/leaf_ssl/launch/tpu_pod.sh $(printf '%q ' "${@:2}")"
}

slice_state() {  # prints the slice's state (READY, PREEMPTED, ...), or NOT_FOUND when it cannot be described
  local state
  state=$(tpu_vm describe "$POD_NAME" --format='value(state)' 2>/dev/null) || state=NOT_FOUND
  echo "${state:-NOT_FOUND}"
}

cmd_create() {
  local state
  state=$(slice_state)
  case $state in
    READY)
      log "slice $POD_NAME is READY: reusing it"
      return 0 ;;
    STOPPED)
      log "slice $POD_NAME is STOPPED: starting it"
      tpu_vm start "$POD_NAME"
      return ;;
    PREEMPTED | TERMINATED)
      # Spot and preemptible slices cannot be restarted: only a new slice of the same name will do.
      log "slice $POD_NAME is $state: deleting it to create it again"
      tpu_vm delete "$POD_NAME" --quiet || return ;;
    NOT_FOUND) ;;
    *)
      error "slice $POD_NAME is $state; wait until it is READY (launch/tpu_pod.sh status), then run create again"
      return 1 ;;
  esac
  local create_flags=(--accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"
    # The workers read the shards and write the workdir in Cloud Storage; the scope lets the
    # service account's IAM roles decide what they may do.
    --scopes=https://www.googleapis.com/auth/cloud-platform)
  [ "$SPOT" = 1 ] && create_flags+=(--spot)
  local extra_flags=()
  read -r -a extra_flags <<<"${TPU_POD_CREATE_FLAGS:-}"
  log "creating slice $POD_NAME ($ACCELERATOR_TYPE, $RUNTIME_VERSION); this takes minutes"
  tpu_vm create "$POD_NAME" "${create_flags[@]}" "${extra_flags[@]}"
}

cmd_setup() {
  local archive status
  archive=$(mktemp "${TMPDIR:-/tmp}/leaf_ssl_code.XXXXXX") || return
  pack_working_tree "$archive" || { rm -f "$archive"; error "could not pack the working tree of $REPO_DIR"; return 1; }
  log "copying the working tree ($(du -h "$archive" | cut -f1)) to every worker of $POD_NAME"
  tpu_vm scp "$archive" "$POD_NAME:leaf_ssl_code.tar.gz" --worker=all
  status=$?
  rm -f "$archive"
  [ "$status" -eq 0 ] || return "$status"
  # Unpacked next to the installed tree; the new tree's own worker-setup then takes its place.
  tpu_vm ssh "$POD_NAME" --worker=all --command="rm -rf ~/leaf_ssl.new && mkdir ~/leaf_ssl.new \
&& tar -xzf ~/leaf_ssl_code.tar.gz -C ~/leaf_ssl.new && rm ~/leaf_ssl_code.tar.gz \
&& bash ~/leaf_ssl.new/launch/tpu_pod.sh worker-setup $(printf '%q' "$PYTHON_VERSION")"
}

pack_working_tree() {  # pack_working_tree ARCHIVE: the files git tracks or would track, as a .tar.gz
  command -v git >/dev/null || { error "setup needs git: it copies the files of this git checkout"; return 1; }
  (
    cd "$REPO_DIR" || exit 1
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' path; do
      [ -e "$path" ] && printf '%s\0' "$path"  # tracked files deleted in the working tree are left out
    done | COPYFILE_DISABLE=1 tar -czf "$1" --null -T -  # COPYFILE_DISABLE: no macOS ._ files
  )
}

check_train_flags() {  # the flags every pod run needs; returns 1 with a message if one is missing
  local config="" workdir="" shards="" task_dir="" previous="" arg
  for arg in "$@"; do
    case $previous in  # the "--flag value" spelling
      --config) config=$arg ;;
      --workdir) workdir=$arg ;;
      --config.data.train_shards) shards=$arg ;;
      --config.supervised.task_dir) task_dir=$arg ;;
    esac
    case $arg in  # the "--flag=value" spelling
      --config=*) config=${arg#*=} ;;
      --workdir=*) workdir=${arg#*=} ;;
      --config.data.train_shards=*) shards=${arg#*=} ;;
      --config.supervised.task_dir=*) task_dir=${arg#*=} ;;
      --distributed | --distributed=* | --coordinator* | --num_processes* | --process_id*)
        error "$arg: tpu_pod.sh passes --distributed=on itself (the workers find each other through the TPU metadata)"
        return 1 ;;
      --recreate | --spot | --name* | --zone* | --project* | --type* | --version* | --python* | --max-restarts*)
        error "$arg is an option of tpu_pod.sh, not of train.py: put it before the command (tpu_pod.sh $arg train ...)"
        return 1 ;;
    esac
    previous=$arg
  done
  if [ -z "$config" ]; then
    error "train needs --config, e.g. --config configs/pretrain_leaf.py:random"
    return 1
  fi
  if [ ! -f "$REPO_DIR/${config%%:*}" ]; then  # the part before ':' is the file; after it, its argument
    error "--config $config: no file ${config%%:*} in $REPO_DIR (on the workers it is read from the copy setup made)"
    return 1
  fi
  if [[ $workdir != gs://* ]]; then
    error "train needs --workdir=gs://BUCKET/...: all workers write the checkpoints there, and it must outlive the slice (got '$workdir')"
    return 1
  fi
  if [[ $shards != gs://* && $task_dir != gs://* ]]; then
    error "train needs --config.data.train_shards=gs://BUCKET/... (or --config.supervised.task_dir=gs://...): every worker reads its own shards from there (got '$shards$task_dir')"
    return 1
  fi
}

ensure_ready() {  # waits for or (with --recreate) recreates the slice until it is READY; sets SLICE_RECREATED
  local waited=0 state
  SLICE_RECREATED=0
  while :; do
    state=$(slice_state)
    case $state in
      READY) return 0 ;;
      CREATING | STARTING | RESTARTING | REPAIRING | REIMAGING | UNHIDING)
        if [ "$waited" -ge "$TRANSITION_WAIT_SECONDS" ]; then
          error "slice $POD_NAME is still $state after $((waited / 60)) minutes"
          return 1
        fi
        log "slice $POD_NAME is $state; checking again in a minute"
        sleep 60
        waited=$((waited + 60)) ;;
      PREEMPTED | TERMINATED | STOPPED | NOT_FOUND)
        if [ "$RECREATE" != 1 ]; then
          error "slice $POD_NAME is $state. To resume: launch/tpu_pod.sh create && launch/tpu_pod.sh setup, then this" \
            "train command again (or pass --recreate to train to do this unattended)"
          return 1
        fi
        log "slice $POD_NAME is $state: creating it again, then resuming"
        cmd_create && cmd_setup || return 1
        SLICE_RECREATED=1 ;;
      *)
        error "slice $POD_NAME is $state; see launch/tpu_pod.sh status"
        return 1 ;;
    esac
  done
}

cmd_train() {
  check_train_flags "$@" || return 2
  local restarts=0 unreachable=0 start=1 code watch_started
  trap 'log "stopped watching; training goes on on the slice. Watch it again: the same command; stop it:" \
    "launch/tpu_pod.sh stop"; exit 130' INT
  while :; do
    ensure_ready || return 1
    [ "$SLICE_RECREATED" = 1 ] && start=1
    if [ "$start" = 1 ]; then
      on_workers all worker-start "$@"
      code=$?
      if [ "$code" -ne 0 ]; then
        error "could not start training on every worker (exit $code); launch/tpu_pod.sh status shows where it runs"
        return "$code"
      fi
      start=0
    fi
    watch_started=$SECONDS
    on_workers all worker-wait
    code=$?
    # Only failures in a row to reach the workers count; a connection that held for minutes did reach them.
    if [ "$code" -ne "$EXIT_UNREACHABLE" ] || [ $((SECONDS - watch_started)) -gt 300 ]; then unreachable=0; fi
    case $code in
      0)
        log "training finished"
        return 0 ;;
      "$EXIT_PREEMPTED")
        if on_workers 0 worker-stopped; then
          log "stopped by launch/tpu_pod.sh stop after saving a checkpoint; the same train command resumes it"
          return "$EXIT_PREEMPTED"
        fi
        restarts=$((restarts + 1))
        if [ "$restarts" -gt "$MAX_RESTARTS" ]; then
          error "preempted again; gave up after $MAX_RESTARTS restarts"
          return "$EXIT_PREEMPTED"
        fi
        log "preempted (exit $EXIT_PREEMPTED, checkpoint saved); restarting in ${RESTART_DELAY} s ($restarts/$MAX_RESTARTS)"
        sleep "$RESTART_DELAY"
        start=1 ;;
      "$EXIT_UNREACHABLE")
        # The slice may have been preempted or be under repair, or the network dropped; a
        # training run that still goes on is watched again, not started twice.
        unreachable=$((unreachable + 1))
        if [ "$unreachable" -gt "$MAX_UNREACHABLE" ]; then
          error "could not reach the workers $MAX_UNREACHABLE times in a row; see launch/tpu_pod.sh status"
          return "$EXIT_UNREACHABLE"
        fi
        log "lost contact with a worker; checking the slice in ${RESTART_DELAY} s"
        sleep "$RESTART_DELAY" ;;
      *)
        error "training failed with exit code $code on the first worker named above (65: the loss diverged);" \
          "its log: launch/tpu_pod.sh logs WORKER"
        return "$code" ;;
    esac
  done
}

cmd_logs() {
  tpu_vm ssh "$POD_NAME" --worker="${1:-0}" --command="tail -n 200 -F ~/leaf_ssl_run/train.log"
}

cmd_status() {
  tpu_vm describe "$POD_NAME" --format='table(state,acceleratorType,runtimeVersion,health,healthDescription)' \
    || return
  if [ "$(slice_state)" = READY ]; then on_workers all worker-status; fi
}

cmd_stop() {
  on_workers all worker-stop
}

cmd_delete() {
  tpu_vm delete "$POD_NAME"
}

# ---------------------------------------------------------------------------------------------
# Worker side: runs on each worker, started by the commands above over ssh.

worker_number() {  # this worker's index in the slice (worker 0 runs JAX's coordinator and logs progress)
  if [ -n "${TPU_WORKER_ID:-}" ]; then
    echo "$TPU_WORKER_ID"
  else  # where JAX itself reads it on a TPU VM
    curl -sf -m 10 -H 'Metadata-Flavor: Google' \
      http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number || echo "?"
  fi
}

training_pid() {  # prints the pid of this worker's training wrapper when it runs; fails otherwise
  local pid
  pid=$(cat "$RUN_DIR/pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  # The pid file survives a reboot, after which the number may belong to another program.
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "tpu_pod.sh worker-run" || return 1
  echo "$pid"
}

worker_setup() {  # worker_setup PYTHON_VERSION: run from the freshly unpacked tree ~/leaf_ssl.new
  local python_version=$1 new_tree uv
  new_tree=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if training_pid >/dev/null; then
    error "worker $(worker_number): training runs here; stop it first (launch/tpu_pod.sh stop)"
    rm -rf "$new_tree"
    return 2
  fi
  # The virtual environment moves into the new tree (same final path, so its scripts stay valid):
  # reinstalling after a code change then only refreshes the editable install.
  if [ -d "$CODE_DIR/.venv" ]; then mv "$CODE_DIR/.venv" "$new_tree/.venv" || return 1; fi
  rm -rf "$CODE_DIR" && mv "$new_tree" "$CODE_DIR" && cd "$CODE_DIR" || return 1
  uv=$(find_or_install_uv) || return 1
  if [ "$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$python_version" ]; then
    rm -rf .venv && "$uv" venv --quiet --python "$python_version" .venv || return 1
  fi
  "$uv" pip install --quiet --python .venv/bin/python -c launch/constraints.txt -e ".[tpu]" || return 1
  # Only versions: touching the TPU here would need every worker's process at once.
  echo "[worker $(worker_number)] ready: $(.venv/bin/python -c 'import sys, jax, leaf_ssl
print("Python", sys.version.split()[0], "jax", jax.__version__)')"
}

find_or_install_uv() {  # prints the path of uv, installing it for this user if there is none
  if command -v uv; then return 0; fi
  if [ ! -x "$HOME/.local/bin/uv" ]; then
    python3 -m pip install --quiet --user uv >&2 || { error "could not install uv with python3 -m pip"; return 1; }
  fi
  echo "$HOME/.local/bin/uv"
}

worker_start() {  # worker_start TRAIN_FLAGS...: starts training in the background unless it runs already
  local flags pid
  mkdir -p "$RUN_DIR"
  flags=$(printf '%q ' "$@")
  if pid=$(training_pid); then
    if [ "$flags" = "$(cat "$RUN_DIR/flags")" ]; then
      echo "[worker $(worker_number)] this training runs already (pid $pid): watching it"
      return 0
    fi
    error "worker $(worker_number): another training runs (pid $pid, flags: $(cat "$RUN_DIR/flags")); stop it first"
    return 2
  fi
  [ -x "$CODE_DIR/.venv/bin/python" ] || { error "worker $(worker_number): no $CODE_DIR/.venv; run setup first"; return 1; }
  rm -f "$RUN_DIR/exit_code" "$RUN_DIR/stop_requested"
  printf '%s\n' "$flags" >"$RUN_DIR/flags"
  printf '=== %s: python -m leaf_ssl.train %s--distributed=on\n' "$(date -u '+%F %T UTC')" "$flags" >>"$RUN_DIR/train.log"
  cd "$CODE_DIR" || return 1
  # setsid: a session and process group of its own, so that training outlives this ssh session
  # and `stop` signals the wrapper and python together; nohup: both ignore SIGHUP.
  setsid nohup bash "$CODE_DIR/launch/tpu_pod.sh" worker-run "$@" >>"$RUN_DIR/train.log" 2>&1 </dev/null &
  echo "$!" >"$RUN_DIR/pid"
  echo "[worker $(worker_number)] started training (pid $!)"
}

worker_run() {  # worker_run TRAIN_FLAGS...: the detached wrapper: trains once, records the exit code
  local code
  # A stop (SIGTERM to the process group) or a shutdown (SIGTERM to every process) reaches python
  # itself; the wrapper only has to outlive python to record how it ended. Bash runs this trap
  # once python, a foreground command, has exited.
  trap ':' TERM INT
  PYTHONUNBUFFERED=1 "$CODE_DIR/.venv/bin/python" -m leaf_ssl.train "$@" --distributed=on
  code=$?
  echo "$code" >"$RUN_DIR/exit_code"
  printf '=== %s: exit %d\n' "$(date -u '+%F %T UTC')" "$code"
  return "$code"
}

worker_wait() {  # waits for this worker's training to end, following its log on worker 0; returns its exit code
  local code
  if [ "$(worker_number)" = 0 ]; then
    follow_log_until_training_ends
  else
    while training_pid >/dev/null; do sleep 0.2; done
  fi
  if ! code=$(cat "$RUN_DIR/exit_code" 2>/dev/null); then
    error "worker $(worker_number): training ended without an exit code (the worker restarted?); taking it as preempted"
    return "$EXIT_PREEMPTED"
  fi
  [ "$code" -eq "$EXIT_UNREACHABLE" ] && code=1  # 255 means "unreachable" to the driver
  return "$code"
}

follow_log_until_training_ends() {  # prints the log's last lines, then what is appended, until training ends
  # Polled rather than `tail -F --pid`: the wrapper is no child of this shell, and once it has
  # ended it can stay a zombie, which --pid takes for running, until init reaps it.
  local log=$RUN_DIR/train.log printed size running=1
  printed=$(stat -c %s "$log")
  head -c "$printed" "$log" | tail -n 20
  while [ "$running" = 1 ]; do
    training_pid >/dev/null || running=0  # looked at before reading, so the last lines are printed too
    size=$(stat -c %s "$log")
    if [ "$size" -gt "$printed" ]; then
      tail -c +"$((printed + 1))" "$log" | head -c "$((size - printed))"
      printed=$size
    fi
    if [ "$running" = 1 ]; then sleep 0.2; fi
  done
}

worker_stopped() {  # succeeds when `stop` asked this worker's training to stop
  [ -e "$RUN_DIR/stop_requested" ]
}

worker_stop() {
  local pid
  mkdir -p "$RUN_DIR"
  touch "$RUN_DIR/stop_requested"
  if pid=$(training_pid); then
    kill -TERM -- "-$pid" && echo "[worker $(worker_number)] asked training (pid $pid) to save a checkpoint and stop"
  else
    echo "[worker $(worker_number)] no training runs"
  fi
}

worker_status() {
  local pid last_line
  last_line=$(tail -n 1 "$RUN_DIR/train.log" 2>/dev/null)
  if pid=$(training_pid); then
    echo "worker $(worker_number): training runs (pid $pid); last log line: $last_line"
  elif [ -e "$RUN_DIR/exit_code" ]; then
    echo "worker $(worker_number): training ended with exit code $(cat "$RUN_DIR/exit_code"); last log line: $last_line"
  else
    echo "worker $(worker_number): no training started"
  fi
}

# ---------------------------------------------------------------------------------------------

main() {
  if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 404)); then
    echo "tpu_pod.sh needs bash 4.4 or later (this is $BASH_VERSION; on macOS: brew install bash)" >&2
    exit 2
  fi
  case ${1:-} in
    worker-setup | worker-start | worker-run | worker-wait | worker-stopped | worker-stop | worker-status)
      local command=${1//-/_}
      shift
      "$command" "$@"
      exit ;;
  esac

  POD_NAME=${TPU_POD_NAME:-}
  ZONE=${TPU_POD_ZONE:-}
  PROJECT=${TPU_POD_PROJECT:-}
  ACCELERATOR_TYPE=${TPU_POD_TYPE:-v4-32}
  RUNTIME_VERSION=${TPU_POD_VERSION:-tpu-ubuntu2204-base}
  SPOT=${TPU_POD_SPOT:-0}
  RECREATE=${TPU_POD_RECREATE:-0}
  PYTHON_VERSION=${TPU_POD_PYTHON:-3.11}
  MAX_RESTARTS=${TPU_POD_MAX_RESTARTS:-100}
  RESTART_DELAY=${TPU_POD_RESTART_DELAY:-30}
  while [ $# -gt 0 ]; do
    case $1 in
      -h | --help | help)
        usage
        exit 0 ;;
      --spot) SPOT=1 ;;
      --recreate) RECREATE=1 ;;
      --name | --zone | --project | --type | --version | --python | --max-restarts)
        [ $# -ge 2 ] || usage_error "$1 needs a value"
        set_option "$1" "$2"
        shift ;;
      --*=*) set_option "${1%%=*}" "${1#*=}" ;;
      -*) usage_error "unknown option $1" ;;
      *) break ;;
    esac
    shift
  done
  [ $# -gt 0 ] || usage_error "no command given"
  local command=$1
  shift
  case $command in
    create | setup | train | logs | status | stop | delete) ;;
    *) usage_error "unknown command '$command'" ;;
  esac
  [ -n "$POD_NAME" ] || usage_error "no slice name: pass --name NAME or set TPU_POD_NAME"
  [[ $MAX_RESTARTS =~ ^[0-9]+$ ]] || usage_error "--max-restarts must be a number, got '$MAX_RESTARTS'"
  command -v gcloud >/dev/null || usage_error "gcloud is not on PATH: install the Google Cloud CLI and run gcloud auth login"
  LOCATION_FLAGS=()
  [ -n "$ZONE" ] && LOCATION_FLAGS+=(--zone="$ZONE")
  [ -n "$PROJECT" ] && LOCATION_FLAGS+=(--project="$PROJECT")
  REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  "cmd_$command" "$@"
}

set_option() {  # set_option --OPTION VALUE
  case $1 in
    --name) POD_NAME=$2 ;;
    --zone) ZONE=$2 ;;
    --project) PROJECT=$2 ;;
    --type) ACCELERATOR_TYPE=$2 ;;
    --version) RUNTIME_VERSION=$2 ;;
    --python) PYTHON_VERSION=$2 ;;
    --max-restarts) MAX_RESTARTS=$2 ;;
    *) usage_error "unknown option $1" ;;
  esac
}

main "$@"
