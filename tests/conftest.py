"""Test session set-up: 8 fake CPU devices, so data-parallel code runs as on an 8-chip host.

The device count is fixed when jax first initialises its backend, so the flag is set here,
before any test module imports jax.
"""
import fcntl
import os

# Backend optimisation level 0 compiles the tiny test models about 30% faster; tests run
# small inputs, so the slower generated code costs less than it saves.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Several tests (and the CLI subprocesses they start) compile identical train steps; a
# persistent compilation cache turns the repeats into cache hits, in this session and the next ones
# (JAX keys each entry by the program, its compile options, jax and XLA versions and the backend).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                   "leaf_ssl", "jax_compilation_cache_tests"))
# Every program, however quick to compile: a checkpoint save alone compiles hundreds of tiny ones.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import pytest  # noqa: E402  (after the environment set-up above)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """The demo corpus at 'tiny' scale (real espeak-ng, fluidsynth and Asterisk audio), built once per
    pytest run: the first worker that needs it builds it in the folder all workers share, under a lock;
    tests only read it."""
    from leaf_ssl.data.demo import build_demo_corpus, MANIFEST
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base folder sits in the run's common one
        shared = shared.parent
    out = shared / "tiny_corpus"
    with open(shared / "tiny_corpus.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / MANIFEST).is_file():
            build_demo_corpus(out, scale="tiny", progress=False)
    return out


# The longest files of the suite, longest first (each over 2 minutes on 2 busy cores: README, "Tests").
LONGEST_FILES = ("test_multiprocess.py", "test_fault_injection.py", "test_cloud_storage.py", "test_reliability.py",
                 "test_device_bench.py")


def pytest_collection_modifyitems(config, items):
    """The longest files first, then the other files with slow tests, then the quick ones: with
    `--dist loadfile` each worker starts on a long, subprocess-heavy file and the quick files fill
    in around them, instead of one long file running alone at the end while the other worker idles."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item):
        longest = LONGEST_FILES.index(item.path.name) if item.path.name in LONGEST_FILES else len(LONGEST_FILES)
        return longest, item.path not in slow_files

    items.sort(key=rank)  # stable: the order is kept otherwise
