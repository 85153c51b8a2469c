"""The grid as a plan (runs, their floors and analyses), and its command line without training anything."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leaf_ssl.evaluation import grid as grids
from leaf_ssl.cli import grid as grid_command

REPO = Path(__file__).resolve().parent.parent


def _grid_file(preset):
    spec = importlib.util.spec_from_file_location(f"grid_{preset}", REPO / "configs" / "grids" / f"{preset}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _demo_grid(**fields):
    grid = _grid_file("demo")
    grid.update(fields)
    return grid


def test_the_core_demo_grid_is_every_core_variant_on_two_seeds_with_its_floors():
    runs = grids.plan(_demo_grid(), "out")
    assert [run.name for run in runs] == [f"{variant}_s{seed}_ssl" for seed in (0, 1)
                                          for variant in ("mel", "leaf_mel", "leaf_random")]
    by_name = {run.name: run for run in runs}
    leaf_random = by_name["leaf_random_s1_ssl"]
    assert leaf_random.config == "configs/demo.py:leaf,random" and by_name["mel_s0_ssl"].config == "configs/demo.py:mel"
    assert leaf_random.flags[-1] == "--config.seed=1" and "--config.train.total_steps=120" in leaf_random.flags
    assert [probe.results for probe in leaf_random.probes] == [
        "out/leaf_random_s1_ssl/probes", "out/leaf_random_s1_untrained/probes",
        "out/leaf_random_s1_untrained_bn/probes", "out/leaf_random_s1_untrained_frontend/probes"]
    assert {probe.ckpt for probe in leaf_random.probes[1:]} == {"random:out/leaf_random_s1_ssl"}
    # a frontend initialised from mel does not depend on the seed: its frontend-alone floor is probed once
    assert [probe.results for probe in by_name["leaf_mel_s1_ssl"].probes][-1] == "out/leaf_mel_s1_untrained_bn/probes"
    assert by_name["leaf_mel_s0_ssl"].probes[-1].flags == ("--features", "frontend")


def test_the_full_grid_adds_sincnet_and_the_supervised_baselines_with_the_same_seeds():
    runs = grids.plan(_demo_grid(variants="all", supervised=True), "out")
    assert len(runs) == 2 * 5 * 2
    supervised = next(run for run in runs if run.name == "sincnet_random_s1_supervised")
    assert supervised.config == "configs/demo_supervised.py:sincnet,random"
    assert supervised.flags[-1] == "--config.seed=1" and supervised.workdir == "out/sincnet_random_s1_supervised"


def test_the_quickstart_is_one_leaf_run_probed_with_its_frontend_and_every_floor():
    grid = _grid_file("quickstart")
    (run,) = grids.plan(grid, "out")
    assert run.name == "leaf_mel_s0_ssl" and run.config == "configs/demo.py:leaf,mel"
    assert not any("total_steps" in flag for flag in run.flags), "the recipe's own length"
    assert [(probe.ckpt, probe.results, probe.flags) for probe in run.probes] == [
        ("out/leaf_mel_s0_ssl", "out/leaf_mel_s0_ssl/probes", ("--tensorboard",)),
        ("out/leaf_mel_s0_ssl", "out/leaf_mel_s0_ssl/probes_frontend", ("--features", "frontend")),
        ("random:out/leaf_mel_s0_ssl", "out/leaf_mel_s0_untrained/probes", ()),
        ("random:out/leaf_mel_s0_ssl", "out/leaf_mel_s0_untrained_bn/probes", ("--bn_batches", "50")),
        ("random:out/leaf_mel_s0_ssl", "out/leaf_mel_s0_untrained_frontend/probes", ("--features", "frontend"))]


def test_a_search_grids_own_variants_add_their_flags_and_share_the_floors_of_one_architecture():
    grid = _grid_file("demo_search")
    runs = {run.name: run for run in grids.plan(grid, "out")}
    assert len(runs) == len(grid.variant_flags) and grid.table_rows == "run"
    tiny, tiny_cosine, b0 = runs["tiny_s0_ssl"], runs["tiny_cosine_s0_ssl"], runs["b0_s0_ssl"]
    assert tiny.config == b0.config == "configs/demo.py:leaf,mel"
    # the variant's own flags come after the grid's, so they win: b0's encoder is the base's, tiny's its own
    assert tiny.flags.index("--config.encoder.name=efficientnet_tiny") > tiny.flags.index(
        "--config.encoder.name=efficientnet_b0")
    assert "--config.model.similarity=dot" in tiny_cosine.flags and "--config.model.similarity=dot" not in tiny.flags
    floors = lambda run: [probe.results for probe in run.probes[1:]]
    assert floors(tiny) == floors(tiny_cosine) == ["out/leaf_mel+encoder.name=efficientnet_tiny_s0_untrained/probes",
                                                   "out/leaf_mel+encoder.name=efficientnet_tiny_s0_untrained_bn/probes"]
    assert floors(b0) == ["out/leaf_mel_s0_untrained/probes", "out/leaf_mel_s0_untrained_bn/probes"]


@pytest.mark.parametrize("preset", ["gpu", "paper"])
def test_the_paper_config_files_take_the_init_as_their_argument(preset):
    configs = {run.config for run in grids.plan(_grid_file(preset), "out")}
    assert "configs/pretrain_leaf.py:random" in configs and "configs/pretrain_mel.py" in configs
    for config in configs:
        assert (REPO / config.split(":")[0]).is_file()


@pytest.mark.parametrize("fields, message", [
    ({"variants": "leaf_mel leaf_gabor"}, "unknown variant 'leaf_gabor'"),
    ({"floors": "untrained untrained_best"}, "grid.floors: unknown"),
    ({"seeds": 0}, "grid.seeds must be at least 1"),
    ({"supervised": True, "supervised_config": ""}, "supervised_config is empty"),
    ({"trained_features": "encoder logits"}, "grid.trained_features: unknown"),
    ({"table_rows": "variant"}, "grid.table_rows: unknown"),
    ({"variant_flags": {"mel": "--config.seed=3"}, "variants": "mel"}, "name paper variants"),
    ({"base_variant": "leaf_gabor"}, "unknown variant 'leaf_gabor'"),
])
def test_a_grid_that_cannot_be_planned_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        grids.plan(_demo_grid(**fields), "out")


def test_finished_probes_and_analyses_are_not_run_again(tmp_path):
    grid = _demo_grid()
    run = grids.plan(grid, str(tmp_path))[0]
    (tmp_path / "mel_s0_ssl" / "probes").mkdir(parents=True)
    for task in ("keyword", "instrument"):
        (tmp_path / "mel_s0_ssl" / "probes" / f"{task}.json").write_text("{}")
    (tmp_path / "mel_s0_ssl" / "analysis").mkdir()
    (tmp_path / "mel_s0_ssl" / "analysis" / "analysis.json").write_text("{}")
    commands = grid_command.run_commands("python", grid, run)
    assert commands[0][:3] == ["python", "-m", "leaf_ssl.train"]  # training always runs: it resumes or returns
    own_probe = commands[1]
    assert own_probe[own_probe.index("--ckpt") + 1] == run.workdir
    assert [own_probe[i + 1] for i, arg in enumerate(own_probe) if arg == "--task"] == ["language"]
    assert not any("leaf_ssl.analyze" in command for command in commands)
    assert len(commands) == 1 + 4  # its own probe (one task left) and three floors


@pytest.mark.slow  # a subprocess
def test_the_launcher_runs_the_grid_as_a_dry_run(tmp_path):
    completed = subprocess.run(["bash", str(REPO / "launch" / "paper_tables.sh"), "demo", "--dry_run",
                                f"--out={tmp_path}", "--grid.seeds=1", "--grid.variants=leaf_random",
                                f"--grid.corpus={tmp_path}/corpus"],
                               cwd=REPO, env=dict(os.environ, PYTHON=sys.executable),
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    commands = [line[2:].split() for line in completed.stdout.splitlines() if line.startswith("+ ")]
    # the corpus is absent, so built first
    assert [command[2] for command in commands] == ["leaf_ssl.data.demo", "leaf_ssl.train", *["leaf_ssl.probe"] * 4,
                                                    "leaf_ssl.analyze"]
    assert commands[0][-2:] == ["--out", f"{tmp_path}/corpus"]
    assert commands[1][commands[1].index("--config") + 1] == "configs/demo.py:leaf,random"
    assert not (tmp_path / "table.md").exists()


@pytest.mark.slow  # a subprocess
def test_a_bad_grid_field_is_one_line_and_exit_2(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "leaf_ssl.grid", "--grid", "configs/grids/demo.py",
                                "--grid.sedes=3", "--dry_run"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("error: ") and "sedes" in completed.stderr
