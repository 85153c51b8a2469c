"""The launch scripts: they parse, and the pod and cluster launchers drive training as documented.

Neither a TPU pod nor a SLURM cluster is available here, so their commands are faked on PATH:

* `gcloud` runs each `tpu-vm ssh --command` in a home folder per fake worker (in parallel,
  exiting like gcloud with the first non-zero code in worker order), and `scp` copies there;
* `uv` makes a virtual environment whose `python` runs the real `leaf_ssl.supervise` of the copied
  tree over a fake `python -m leaf_ssl.train`: that records its flags and exits with the next code
  of its worker's plan (or, for "wait", runs until SIGTERM and then exits 75 like a stopped run);
* `srun` records its arguments and exits with a given code (or waits for SIGTERM), `scontrol`
  records its arguments.

So the tests exercise the scripts' own logic (flag checks, copying, detaching, restart on 75,
stop, requeue) but not gcloud, the pod or SLURM themselves.
"""
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAUNCH = REPO / "launch"
TPU_POD = LAUNCH / "tpu_pod.sh"
SLURM = LAUNCH / "slurm_gpu.sbatch"
NUM_WORKERS = 2
TRAIN_FLAGS = ["--config", "configs/tiny.py", "--workdir=gs://bucket/runs/tiny",
               "--config.data.train_shards=gs://bucket/shards/train-*.tfrecord"]

FAKE_GCLOUD = f"""#!{sys.executable} -S
import json, os, shutil, subprocess, sys
from pathlib import Path
root = Path(os.environ["FAKE_ROOT"])
with open(root / "gcloud_calls.jsonl", "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
assert args[:3] == ["compute", "tpus", "tpu-vm"], args
verb, rest = args[3], args[4:]
options = dict(arg.split("=", 1) for arg in rest if arg.startswith("--") and "=" in arg)
positional = [arg for arg in rest if not arg.startswith("--")]
state_file = root / "state"
homes = [root / f"worker{{i}}" for i in range({NUM_WORKERS})]
def workers():
    chosen = options.get("--worker", "0")
    return list(range(len(homes))) if chosen == "all" else [int(chosen)]
if verb == "describe":
    state = state_file.read_text() if state_file.exists() else "NOT_FOUND"
    if state == "NOT_FOUND":
        sys.exit("ERROR: (gcloud.compute.tpus.tpu-vm.describe) NOT_FOUND")
    print(state)
elif verb in ("create", "start"):
    state_file.write_text("READY")
elif verb == "delete":
    state_file.write_text("NOT_FOUND")
elif verb == "scp":
    source, destination = positional
    for i in workers():
        shutil.copy(source, homes[i] / destination.split(":", 1)[1])
elif verb == "ssh":
    processes = [subprocess.Popen(["bash", "-c", options["--command"]],
                                  env=dict(os.environ, HOME=str(homes[i]), TPU_WORKER_ID=str(i)))
                 for i in workers()]
    codes = [process.wait() for process in processes]
    sys.exit(next((code for code in codes if code), 0))
else:
    sys.exit(f"fake gcloud: unexpected {{args}}")
"""

FAKE_UV = """#!/usr/bin/env bash
# uv venv ... DIR: a virtual environment whose python is the fake below; uv pip ...: recorded.
echo "uv $*" >>"$FAKE_ROOT/uv_calls"
if [ "$1" = venv ]; then
  mkdir -p "${@: -1}/bin" && cp "$FAKE_ROOT/fake_python" "${@: -1}/bin/python"
fi
"""

FAKE_PYTHON = f"""#!/usr/bin/env bash
# -c CODE: setup's version line. -m leaf_ssl.supervise: the real one (from the copied tree, the
# working folder) driving this fake as its python. -m leaf_ssl.train FLAGS: records its arguments,
# then exits with the first code of $HOME/exit_plan (removing it), or for "wait" waits for SIGTERM.
if [ "$1" = -c ]; then echo "jax fake"; exit 0; fi
if [ "$2" = leaf_ssl.supervise ]; then
  shift 2
  exec {sys.executable} -m leaf_ssl.supervise --delay 0 --python "$0" "$@"
fi
printf '%s\\n' "$*" >>"$HOME/train_calls"
echo "fake training on worker $TPU_WORKER_ID: step 1/4 | loss 2.7"
plan=$(head -n 1 "$HOME/exit_plan")
sed -i 1d "$HOME/exit_plan"
if [ "$plan" = wait ]; then
  trap 'echo "fake training: SIGTERM, saved a checkpoint"; exit 75' TERM
  while :; do sleep 0.05; done
fi
exit "$plan"
"""


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def pod(tmp_path):
    """A fake pod: gcloud, uv and python fakes on PATH, one home folder per worker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _write_executable(bin_dir / "gcloud", FAKE_GCLOUD)
    _write_executable(bin_dir / "uv", FAKE_UV)
    _write_executable(tmp_path / "fake_python", FAKE_PYTHON)
    for i in range(NUM_WORKERS):
        (tmp_path / f"worker{i}").mkdir()
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_ROOT=str(tmp_path), TPU_POD_NAME="leaf",
               TPU_POD_ZONE="us-central2-b")
    yield tmp_path, env
    # Training the fake pod left running (a test that failed before `stop`) is stopped with its session.
    for i in range(NUM_WORKERS):
        pid_file = tmp_path / f"worker{i}" / "leaf_ssl_pid"
        if pid_file.is_file():
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def tpu_pod(env, *args):
    return subprocess.run(["bash", str(TPU_POD), *args], env=env, capture_output=True, text=True, timeout=30)


def gcloud_calls(root: Path) -> list[list[str]]:
    path = root / "gcloud_calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def set_exit_plans(root: Path, *codes: str) -> None:
    for i in range(NUM_WORKERS):
        (root / f"worker{i}" / "exit_plan").write_text("".join(f"{code}\n" for code in codes))


def train_calls(root: Path, worker: int) -> list[str]:
    path = root / f"worker{worker}" / "train_calls"
    return path.read_text().splitlines() if path.exists() else []


def test_every_launch_script_parses():
    scripts = sorted(LAUNCH.glob("*.sh")) + [SLURM]
    assert TPU_POD in scripts and len(scripts) >= 7
    for script in scripts:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


HUGE_PAGES_PROBE = """
import jax, jax.numpy as jnp
jax.jit(lambda: jnp.ones((16 * 2 ** 20,), jnp.float32) * 2)().block_until_ready()
print(sum(int(line.split()[1]) for line in open('/proc/self/smaps') if line.startswith('AnonHugePages')))
"""


def _thp_mode() -> str:
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "absent"
    return text.split("[", 1)[1].split("]", 1)[0]


@pytest.mark.parametrize("existing", ["", "glibc.malloc.arena_max=2"])
def test_cpu_env_adds_the_huge_page_tunable_and_keeps_others(existing):
    env = {**os.environ, "GLIBC_TUNABLES": existing}
    script = f"source {LAUNCH / 'cpu_env.sh'}; source {LAUNCH / 'cpu_env.sh'}; echo \"$GLIBC_TUNABLES\""
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, check=True)
    tunables = result.stdout.strip().split(":")
    assert tunables.count("glibc.malloc.hugetlb=1") == 1  # sourced twice, added once
    assert [t for t in tunables if t != "glibc.malloc.hugetlb=1"] == ([existing] if existing else [])


@pytest.mark.skipif(_thp_mode() != "madvise", reason="needs transparent huge pages in 'madvise' mode "
                                                      "(with 'always' every process gets them, with 'never' none)")
def test_cpu_env_puts_xla_buffers_on_huge_pages():
    # glibc >= 2.35 reads the tunable at start-up; in 'madvise' mode only it makes XLA's buffers huge.
    env = {key: value for key, value in os.environ.items() if key != "GLIBC_TUNABLES"}
    plain = subprocess.run([sys.executable, "-c", HUGE_PAGES_PROBE], env=env, capture_output=True, text=True,
                           check=True)
    sourced = subprocess.run(["bash", "-c", f"source {LAUNCH / 'cpu_env.sh'}; exec {sys.executable} -c \"$0\"",
                              HUGE_PAGES_PROBE], env=env, capture_output=True, text=True, check=True)
    assert int(plain.stdout.split()[-1]) == 0
    assert int(sourced.stdout.split()[-1]) >= 16 * 1024  # kB: the 64 MB buffer, mostly on 2 MB pages


def test_pod_and_cluster_launchers_are_shellcheck_clean():
    result = subprocess.run(["shellcheck", str(TPU_POD), str(SLURM)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_tpu_pod_usage(pod):
    _, env = pod
    unknown = tpu_pod(env, "run")
    assert unknown.returncode == 2 and "create, setup, train, logs, status, stop or delete" in unknown.stderr
    unnamed = tpu_pod({**env, "TPU_POD_NAME": ""}, "status")
    assert unnamed.returncode != 0 and "set TPU_POD_NAME" in unnamed.stderr


@pytest.mark.parametrize("flags, problem", [
    (["--config", "configs/tiny.py", "--workdir", "runs/tiny"], "--workdir=gs://"),
    (["--workdir=gs://b/run", "--config.data.train_shards=gs://b/s"], "needs --config"),
    ([*TRAIN_FLAGS, "--distributed=off"], "passes --distributed=on itself"),
])
def test_train_refuses_flags_a_pod_cannot_run_before_calling_gcloud(pod, flags, problem):
    root, env = pod
    result = tpu_pod(env, "train", *flags)
    assert result.returncode == 2 and problem in result.stderr
    assert gcloud_calls(root) == []


def _wait_for(condition, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _log(root: Path, worker: int) -> str:
    return (root / f"worker{worker}" / "leaf_ssl_train.log").read_text()


def test_setup_then_one_train_command_restarts_every_worker_after_a_preemption(pod):
    root, env = pod
    assert tpu_pod(env, "create", "--spot").returncode == 0
    setup = tpu_pod(env, "setup")
    assert setup.returncode == 0, setup.stderr
    for i in range(NUM_WORKERS):  # the working tree, installed; the copy is gone
        home = root / f"worker{i}"
        assert (home / "leaf_ssl" / "launch" / "tpu_pod.sh").is_file()
        assert (home / "leaf_ssl" / "leaf_ssl" / "supervise.py").is_file() and (home / "leaf_ssl" / ".venv").is_dir()
        assert not (home / "leaf_ssl_code.tar.gz").exists()
    assert "pip install --quiet --python .venv/bin/python -c launch/constraints.txt -e .[tpu]" in (root / "uv_calls").read_text()
    (root / "worker0" / "leaf_ssl" / ".venv" / "kept").touch()
    assert tpu_pod(env, "setup").returncode == 0  # a code update keeps the virtual environment
    assert (root / "worker0" / "leaf_ssl" / ".venv" / "kept").exists()
    assert (root / "uv_calls").read_text().count("uv venv") == NUM_WORKERS
    create = next(call for call in gcloud_calls(root) if call[3] == "create")
    assert {"leaf", "--accelerator-type=v4-32", "--version=tpu-ubuntu2204-base", "--zone=us-central2-b",
            "--spot"} <= set(create)

    set_exit_plans(root, 75, 0)  # preempted once, then finished
    train = tpu_pod(env, "train", *TRAIN_FLAGS)
    assert train.returncode == 0, train.stderr
    assert "--worker=all" in train.stdout and "leaf_ssl.supervise" in train.stdout  # the command, printed
    command = " ".join(["-m leaf_ssl.train", *TRAIN_FLAGS, "--distributed=on"])
    for i in range(NUM_WORKERS):  # detached: it goes on after the ssh call returned
        _wait_for(lambda: len(train_calls(root, i)) == 2 and "fake training" in _log(root, i).split("restarting")[-1],
                  f"worker {i} trained twice")
        assert train_calls(root, i) == [command] * 2
        assert "preempted (exit 75, checkpoint saved); restarting" in _log(root, i)


def test_stop_saves_and_is_not_restarted_and_another_run_is_refused_meanwhile(pod):
    root, env = pod
    assert tpu_pod(env, "create").returncode == 0 and tpu_pod(env, "setup").returncode == 0
    set_exit_plans(root, "wait", 0)
    assert tpu_pod(env, "train", *TRAIN_FLAGS).returncode == 0
    for i in range(NUM_WORKERS):
        _wait_for(lambda: train_calls(root, i), f"training did not start on worker {i}")
    other = tpu_pod(env, "train", *TRAIN_FLAGS[:-1], "--config.data.train_shards=gs://bucket/other")
    assert other.returncode == 2 and "training runs already" in other.stderr
    assert tpu_pod(env, "status").stdout.count("training runs") == NUM_WORKERS
    refused = tpu_pod(env, "setup")
    assert refused.returncode == 2 and "stop it first" in refused.stderr

    assert tpu_pod(env, "stop").returncode == 0
    for i in range(NUM_WORKERS):
        _wait_for(lambda: "stopped by signal SIGTERM" in _log(root, i), f"worker {i} did not stop")
        assert "fake training: SIGTERM, saved a checkpoint" in _log(root, i)
        assert len(train_calls(root, i)) == 1  # saved and stopped, not restarted
    assert tpu_pod(env, "status").stdout.count("no training") == NUM_WORKERS


@pytest.fixture
def cluster(tmp_path):
    """Fake srun and scontrol on PATH, and the environment sbatch gives a 2-node job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _write_executable(bin_dir / "srun", """#!/usr/bin/env bash
printf '%s\\n' "$@" >"$FAKE_ROOT/srun_args"
env | grep -E '^(JAX_LOCAL_DEVICE_IDS|PYTHONUNBUFFERED)=' | sort >"$FAKE_ROOT/srun_env"
if [ "$FAKE_SRUN_EXIT" = wait ]; then
  trap 'exit 75' TERM
  touch "$FAKE_ROOT/srun_started"
  while :; do sleep 0.05; done
fi
exit "$FAKE_SRUN_EXIT"
""")
    _write_executable(bin_dir / "scontrol", """#!/usr/bin/env bash
if [ "$1" = show ]; then
  echo "JobId=$3 JobName=leaf_ssl JobState=$FAKE_JOB_STATE Reason=None"
else
  echo "$*" >>"$FAKE_ROOT/scontrol_calls"
fi
""")
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_ROOT=str(tmp_path), SLURM_JOB_ID="4242",
               SLURM_SUBMIT_DIR=str(REPO), SLURM_NNODES="2", SLURM_NTASKS="16", SLURM_NTASKS_PER_NODE="8",
               SLURM_RESTART_COUNT="0", CUDA_VISIBLE_DEVICES="0,1,2,3,4,5,6,7", FAKE_SRUN_EXIT="0",
               FAKE_JOB_STATE="RUNNING")
    for inherited in ("JAX_LOCAL_DEVICE_IDS", "SLURM_GPUS_ON_NODE", "REPO", "PYTHON", "MAX_REQUEUES"):
        env.pop(inherited, None)
    return tmp_path, env


SLURM_FLAGS = ["--config", "configs/pretrain_leaf.py:random", "--workdir", "/shared/runs/leaf",
               "--config.data.train_shards=/shared/audioset/train-*.tfrecord"]


def sbatch(env, *args):
    return subprocess.run(["bash", str(SLURM), *args], env=env, capture_output=True, text=True, timeout=30)


def test_slurm_script_runs_one_srun_step_with_distributed_on(cluster):
    root, env = cluster
    result = sbatch(env, *SLURM_FLAGS)
    assert result.returncode == 0, result.stderr
    srun_args = (root / "srun_args").read_text().splitlines()
    assert srun_args[srun_args.index("-m"):] == ["-m", "leaf_ssl.train", *SLURM_FLAGS, "--distributed=on"]
    assert srun_args[srun_args.index("-m") - 1] == str(REPO / ".venv" / "bin" / "python")
    assert "JAX_LOCAL_DEVICE_IDS" not in (root / "srun_env").read_text()  # one process per GPU: JAX's default
    assert not (root / "scontrol_calls").exists()


def test_slurm_script_requeues_after_a_preemption_until_its_limit(cluster):
    root, env = cluster
    env["FAKE_SRUN_EXIT"] = "75"
    result = sbatch(env, *SLURM_FLAGS)
    assert result.returncode == 0 and "requeued" in result.stderr
    assert (root / "scontrol_calls").read_text() == "requeue 4242\n"

    exhausted = sbatch({**env, "SLURM_RESTART_COUNT": "3", "MAX_REQUEUES": "3"}, *SLURM_FLAGS)
    assert exhausted.returncode == 75 and "not requeued again" in exhausted.stderr
    assert (root / "scontrol_calls").read_text() == "requeue 4242\n"

    cancelled = sbatch({**env, "FAKE_JOB_STATE": "CANCELLED"}, *SLURM_FLAGS)
    assert cancelled.returncode == 75 and "cancelled (scancel), so it is not requeued" in cancelled.stderr

    diverged = sbatch({**env, "FAKE_SRUN_EXIT": "65"}, *SLURM_FLAGS)
    assert diverged.returncode == 65
    assert (root / "scontrol_calls").read_text() == "requeue 4242\n"  # still only the first run's


def test_slurm_script_outlives_sigterm_to_record_the_step_and_requeue(cluster):
    root, env = cluster
    env["FAKE_SRUN_EXIT"] = "wait"
    job = subprocess.Popen(["bash", str(SLURM), *SLURM_FLAGS], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not (root / "srun_started").exists():
            assert time.monotonic() < deadline and job.poll() is None, "srun did not start"
            time.sleep(0.05)
        os.killpg(job.pid, signal.SIGTERM)  # as at preemption: to the batch shell and the step's tasks
        _, stderr = job.communicate(timeout=10)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, stderr
    assert (root / "scontrol_calls").read_text() == "requeue 4242\n"


def test_slurm_one_process_per_node_drives_every_local_gpu(cluster):
    root, env = cluster
    result = sbatch({**env, "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1"}, *SLURM_FLAGS)
    assert result.returncode == 0, result.stderr
    assert "JAX_LOCAL_DEVICE_IDS=0,1,2,3,4,5,6,7" in (root / "srun_env").read_text()


def test_slurm_script_refuses_to_run_outside_a_job_or_without_a_workdir(cluster):
    _, env = cluster
    outside = sbatch({key: value for key, value in env.items() if key != "SLURM_JOB_ID"}, *SLURM_FLAGS)
    assert outside.returncode == 2 and "submit it with sbatch" in outside.stderr
    no_workdir = sbatch(env, "--config", "configs/pretrain_leaf.py")
    assert no_workdir.returncode == 2 and "--workdir" in no_workdir.stderr
