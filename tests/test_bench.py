"""The benchmark CLI (`leaf_ssl.bench`) on tiny sizes: what it writes, not how fast anything is."""
import importlib.util
import json
import sys
import types

import jax
import numpy as np
import pytest

from leaf_ssl.cli import bench as bench_command
from leaf_ssl.bench import input_pipeline, peer, suite
from leaf_ssl.bench.host import CpuMeter, pin_process, usable_cores
from leaf_ssl.data.records import list_shards, read_clips, read_record_count
from leaf_ssl.frontends import Leaf

INPUT_ROW_FIELDS = {"what", "case", "reader", "threads", "pinned", "batch", "clip_s", "ms", "crops_per_s",
                    "crops_per_s_per_core", "crops_per_cpu_s", "cores_busy", "cores_waiting"}
FRONTEND_ROW_FIELDS = {"what", "case", "cores", "batch", "n_filters", "ms", "crops_per_s", "crops_per_cpu_s",
                       "cores_busy", "cores_waiting", "gflop", "gb_accessed"}


def run_bench(tmp_path, *flags) -> dict:
    output = tmp_path / "bench.json"
    bench_command.main([*flags, "--json", str(output)])
    return json.loads(output.read_text())


def test_synthetic_shards_hold_the_requested_clips(tmp_path):
    written = input_pipeline.write_synthetic_shards(tmp_path, clips=6, clip_seconds=0.25, num_shards=3)

    shards = list_shards(tmp_path)
    clips = list(read_clips(tmp_path))
    assert written == 6 and len(shards) == 3
    assert [read_record_count(shard) for shard in shards] == [2, 2, 2]
    assert sorted(clip.id for clip in clips) == [f"synthetic-{index:06d}" for index in range(6)]
    assert all(clip.waveform.shape == (4000,) and np.any(clip.waveform != 0) for clip in clips)


def test_synthetic_shards_refuse_empty_shards(tmp_path):
    with pytest.raises(ValueError, match="at least one clip per shard"):
        input_pipeline.write_synthetic_shards(tmp_path, clips=2, clip_seconds=1.0, num_shards=3)


def test_thread_counts_default_to_one_and_every_core():
    assert input_pipeline.thread_counts(None, cores=4) == [1, 4]
    assert input_pipeline.thread_counts(None, cores=1) == [1]
    assert input_pipeline.thread_counts("2,1", cores=4) == [2, 1]
    for bad in ("0", "1,x", ""):
        with pytest.raises(ValueError, match="positive integers"):
            input_pipeline.thread_counts(bad, cores=4)


def test_input_benchmark_writes_its_documented_fields(tmp_path):
    report = run_bench(tmp_path, "--what", "input", "--clips", "8", "--num_shards", "2", "--clip_seconds", "1.5",
                       "--batch", "4", "--shuffle_buffer", "4", "--input_batches", "2", "--repeats", "1")

    assert report["what"] == "input" and report["repeats"] == 1
    assert {"jax", "tensorflow", "cpu_cores", "GLIBC_TUNABLES"} <= set(report["environment"])
    rows = report["rows"]
    counts = input_pipeline.thread_counts(None, len(usable_cores()))
    assert [(row["reader"], row["threads"]) for row in rows] == [
        (reader, threads) for reader in ("tf_data", "in_memory") for threads in counts]
    for row in rows:
        in_memory = row["reader"] == "in_memory"
        assert set(row) == INPUT_ROW_FIELDS | ({"vs_tf_data"} if in_memory else set())
        assert row["what"] == "input" and row["batch"] == 4
        if in_memory:
            [peer] = [other for other in rows if (other["reader"], other["threads"]) == ("tf_data", row["threads"])]
            assert row["vs_tf_data"] == pytest.approx(row["crops_per_s"] / peer["crops_per_s"])
        assert row["clip_s"] == pytest.approx(1.5, rel=0.01)  # estimated from the shard sizes
        assert row["crops_per_s"] > 0 and row["crops_per_cpu_s"] > 0


def test_input_benchmark_unpins_the_process_when_done(tmp_path):
    cores_before = usable_cores()
    run_bench(tmp_path, "--what", "input", "--clips", "4", "--num_shards", "2", "--clip_seconds", "1",
              "--batch", "2", "--shuffle_buffer", "2", "--input_batches", "1", "--repeats", "1", "--threads", "1")
    assert usable_cores() == cores_before


def test_input_benchmark_rejects_an_odd_crop_batch(tmp_path):
    with pytest.raises(ValueError, match="must be even"):
        bench_command.main(["--what", "input", "--clips", "2", "--num_shards", "1", "--clip_seconds", "1", "--batch", "3"])


def test_input_benchmark_rejects_more_threads_than_cores(tmp_path):
    too_many = str(len(usable_cores()) + 1)
    with pytest.raises(ValueError, match="may use only"):
        bench_command.main(["--what", "input", "--clips", "2", "--num_shards", "1", "--clip_seconds", "1",
                    "--threads", too_many])


def test_cpu_meter_counts_cpu_time_of_a_busy_loop():
    with CpuMeter() as meter:
        total = 0
        for value in range(200_000):
            total += value
    assert meter.usage.wall_s > 0 and meter.usage.cpu_s > 0
    assert meter.usage.wait_s is None or meter.usage.wait_s >= 0


def test_pinning_moves_the_process_and_back():
    cores = set(usable_cores())
    try:
        if not pin_process({min(cores)}):
            # Only an OS without sched_setaffinity may refuse; on Linux (CI, every supported host) it must work.
            assert not sys.platform.startswith("linux"), "pinning failed on Linux"
            pytest.skip("no per-thread CPU affinity on this OS")
        assert usable_cores() == [min(cores)]
    finally:
        pin_process(cores)
    assert set(usable_cores()) == cores


def test_frontend_benchmark_writes_its_documented_fields(tmp_path):
    cores_before = usable_cores()
    report = run_bench(tmp_path, "--what", "frontend", "--cases", "mel", "--batch", "2", "--repeats", "2",
                       "--threads", "1")

    [row] = report["rows"]
    assert set(row) == FRONTEND_ROW_FIELDS
    assert row["case"] == "mel" and row["cores"] == 1 and row["batch"] == 2 and row["crops_per_s"] > 0
    assert usable_cores() == cores_before  # unpinned when done


def test_floor_benchmark_adds_the_transforms_and_the_passes_against_the_whole_path(tmp_path):
    from leaf_ssl.bench.floor import FULL_RATE_PASSES
    report = run_bench(tmp_path, "--what", "floor", "--batch", "2", "--n_filters", "4", "--repeats", "1")

    rows = {row["case"]: row for row in report["rows"]}
    assert list(rows) == ["leaf_fft", "transforms", "full_rate_pass", "floor"]
    assert rows["leaf_fft"]["vs_leaf_fft"] == 1.0
    assert rows["floor"]["ms"] == pytest.approx(rows["transforms"]["ms"] + FULL_RATE_PASSES * rows["full_rate_pass"]["ms"])
    for row in rows.values():
        assert row["crops_per_s"] == pytest.approx(2 / (row["ms"] / 1e3))
        assert row["vs_leaf_fft"] == pytest.approx(rows["leaf_fft"]["ms"] / row["ms"])


def test_frontend_benchmark_takes_one_thread_count():
    with pytest.raises(ValueError, match="one thread count"):
        bench_command.main(["--what", "frontend", "--cases", "mel", "--threads", "1,2"])


def test_frontend_benchmark_rejects_unknown_cases():
    with pytest.raises(ValueError, match="unknown"):
        bench_command.main(["--what", "frontend", "--cases", "leaf_fft,nope"])


def test_step_benchmark_rejects_a_pooling_path_for_a_frontend_without_lowpass():
    with pytest.raises(ValueError, match="unknown field 'pooling_impl' for frontend 'mel'"):
        bench_command.main(["--what", "step", "--frontend", "mel", "--pooling_impl", "matmul"])


def test_stages_precede_each_leaf_case():
    cases = suite._selected_cases("mel,leaf_fft", n_filters=4, stages=True)
    assert list(cases) == ["mel", "leaf_fft/modulus", "leaf_fft/pooling", "leaf_fft"]


def test_leaf_prefix_computes_the_square_of_leafs_pooled_energies():
    waveform = jax.random.normal(jax.random.PRNGKey(0), (2, 1600))
    leaf = Leaf(n_filters=4, filterbank_impl="fft")
    prefix = suite.LeafPrefix(n_filters=4, filterbank_impl="fft", last_stage="pooling")
    leaf_variables = leaf.init(jax.random.PRNGKey(1), waveform)
    prefix_variables = prefix.init(jax.random.PRNGKey(1), waveform)

    # Same parameter names, so Leaf's parameters drive the prefix unchanged.
    shared_params = {name: leaf_variables["params"][name] for name in ("filterbank", "pooling")}
    pooled_squared = prefix.apply({"params": shared_params}, waveform)
    _, state = leaf.apply(leaf_variables, waveform, capture_intermediates=True)
    assert set(prefix_variables["params"]) == {"filterbank", "pooling"}
    np.testing.assert_allclose(pooled_squared, np.square(state["intermediates"]["pooling"]["__call__"][0]), rtol=1e-5)


def test_all_runs_every_benchmark_and_tags_its_rows(tmp_path, monkeypatch):
    def fake(name):
        return lambda args: [{"case": f"{name}_case", "ms": 1.0}]

    monkeypatch.setattr(suite, "BENCHMARKS", {name: fake(name) for name in ("frontend", "step", "input")})
    report = run_bench(tmp_path, "--what", "all")
    assert [(row["what"], row["case"]) for row in report["rows"]] == [
        ("frontend", "frontend_case"), ("step", "step_case"), ("input", "input_case")]


@pytest.fixture
def without_torch(monkeypatch):
    """Makes `import torch` and `import speechbrain...` fail as they do where neither is installed."""
    for name in ("torch", "speechbrain", "speechbrain.lobes", "speechbrain.lobes.features"):
        monkeypatch.setitem(sys.modules, name, None)


def test_peer_without_torch_says_how_to_install_it(without_torch):
    with pytest.raises(peer.PeerUnavailable, match="pip install torch speechbrain"):
        peer.speechbrain_leaf_step(np.zeros((1, 15360), np.float32), 8, "cpu", threads=1)


def test_step_peer_without_torch_says_how_to_install_it(without_torch):
    with pytest.raises(peer.PeerUnavailable, match="torch cannot be imported.*pip install torch"):
        peer.torch_cola_step(np.zeros((1, 15360), np.float32), np.zeros((1, 15360), np.float32), "mel", 8, "float32",
                             "cpu", threads=1)


def test_step_benchmark_takes_the_torch_peer_only():
    with pytest.raises(SystemExit, match="--what step takes --peer torch, not --peer speechbrain"):
        bench_command.main(["--what", "step", "--peer", "speechbrain"])


def test_frontend_benchmark_skips_a_missing_peer_and_says_why(tmp_path, capsys, without_torch):
    report = run_bench(tmp_path, "--what", "frontend", "--cases", "mel", "--batch", "2", "--repeats", "1",
                       "--peer", "speechbrain")

    assert "peer speechbrain skipped" in capsys.readouterr().err
    assert [row["case"] for row in report["rows"]] == ["mel"]
    assert "vs_peer" not in report["rows"][0]


def test_a_peer_whose_extension_fails_to_load_counts_as_missing(monkeypatch):
    if importlib.util.find_spec("torch") is None:
        # Without torch (as in CI), a bare stand-in lets the import reach speechbrain's.
        monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    else:
        import torch  # noqa: F401  (before the stand-in below: torch's own import walks sys.modules)

    class UnloadableModule(types.ModuleType):
        """Fails on `from ... import Leaf` as a speechbrain whose torchaudio is built for another torch does."""

        def __getattr__(self, name):
            if name == "Leaf":
                raise OSError("libc10_cuda.so: cannot open shared object file")
            raise AttributeError(name)

    monkeypatch.setitem(sys.modules, "speechbrain.lobes.features", UnloadableModule("speechbrain.lobes.features"))
    with pytest.raises(peer.PeerUnavailable, match="OSError"):
        peer.speechbrain_leaf_step(np.zeros((1, 15360), np.float32), 8, "cpu", threads=1)


@pytest.mark.slow  # compiles a whole (tiny) train step
def test_step_benchmark_against_the_torch_peer_reports_the_ratio(tmp_path):
    # The mel peer needs torch only (SpeechBrain's Leaf, the leaf peer, does not load everywhere torch does).
    import torch  # noqa: F401  the peer extra (launch/setup.sh) installs it: missing is a failure, not a skip
    report = run_bench(tmp_path, "--what", "step", "--frontend", "mel", "--n_filters", "8", "--encoder",
                       "efficientnet_tiny", "--pairs_per_device", "1", "--repeats", "1", "--dtypes", "float32",
                       "--peer", "torch")

    rows = {row["case"]: row for row in report["rows"]}
    assert set(rows) == {"step_mel_float32", "peer_torch_mel_float32"}
    ours, theirs = rows["step_mel_float32"], rows["peer_torch_mel_float32"]
    assert ours["batch"] == theirs["batch"] == 2 * jax.device_count()  # both sides step on the same pairs
    assert ours["vs_peer"] == pytest.approx(ours["crops_per_s"] / theirs["crops_per_s"])
    assert theirs["vs_peer"] == 1.0
