"""The claims section: the fixed rule on rows of several training seeds, and claim 3 on filter analyses."""
import json

import pytest

from leaf_ssl.cli import tables as tables_command
from leaf_ssl.evaluation import claims, tables

TASKS = ("keyword", "language")


def _result(frontend, init, training, task, mean, seed, **model):
    return {"model": {"frontend": frontend, "init": init, "training": training, "seed": seed,
                      "checkpoint": f"runs/{frontend}_{init}_s{seed}", **model},
            "task": {"name": task}, "metric": "accuracy", "mean": mean, "std": 0.01, "per_seed": [mean] * 3}


def _row_results(frontend, init, training, values_per_seed, **model):
    """values_per_seed: {seed: (keyword, language)}."""
    return [_result(frontend, init, training, task, value, seed, **model)
            for seed, values in values_per_seed.items() for task, value in zip(TASKS, values)]


@pytest.mark.parametrize("better, worse, verdict", [
    ([0.60, 0.70], [0.40, 0.45], claims.HOLDS),     # difference 0.225 > spread 0.10
    ([0.40, 0.45], [0.60, 0.70], claims.REVERSED),
    ([0.50, 0.70], [0.45, 0.55], claims.WITHIN),    # difference 0.10 < spread 0.20
    ([0.70], [0.40, 0.45], claims.ONE_SEED),
])
def test_the_rule(better, worse, verdict):
    compared = claims.compare(better, worse)
    assert compared.verdict == verdict
    assert compared.difference == pytest.approx(sum(better) / len(better) - sum(worse) / len(worse))
    if verdict != claims.ONE_SEED:
        assert compared.spread == pytest.approx(max(max(better) - min(better), max(worse) - min(worse)))


def test_a_floor_that_does_not_depend_on_the_seed_needs_no_second_seed():
    compared = claims.compare([0.60, 0.70], [0.40], worse_is_seed_free=True)
    assert compared.verdict == claims.HOLDS and compared.spread == pytest.approx(0.10)
    assert claims.compare([0.60, 0.70], [0.40]).verdict == claims.ONE_SEED


def test_a_difference_beyond_the_spread_means_every_seed_of_one_beats_every_seed_of_the_other():
    rng = __import__("random").Random(0)
    for _ in range(2000):
        a, b = [rng.random() for _ in range(2)], [rng.random() for _ in range(2)]
        if claims.compare(a, b).verdict == claims.HOLDS:
            assert min(a) > max(b)


def test_training_seeds_make_one_cell_with_their_spread(tmp_path):
    results = _row_results("mel", "-", "self-supervised", {0: (0.50, 0.30), 1: (0.60, 0.40)})
    task_names, rows = tables.assemble(results)
    (row,) = rows
    assert row["results"]["keyword"]["mean"] == pytest.approx(0.55)
    assert row["results"]["keyword"]["std"] == pytest.approx(0.1 / 2 ** 0.5)  # sample std of 0.5, 0.6
    assert row["results"]["keyword"]["spread"] == "training seeds"
    assert tables.seed_values(row, task_names) == {"keyword": [0.5, 0.6], "language": [0.3, 0.4],
                                                   "average": pytest.approx([0.4, 0.5])}
    markdown = tables.to_markdown(task_names, rows)
    assert markdown.splitlines()[0].endswith("| average | training seeds |")
    assert markdown.splitlines()[2] == "| mel | - | self-supervised | 55.0 ± 7.1 | 35.0 ± 7.1 | 45.0 | 2 |"
    assert "over the training seeds" in markdown


def test_claims_section_from_the_tables_command(tmp_path, capsys):
    results = (_row_results("mel", "-", "self-supervised", {0: (0.50, 0.30), 1: (0.52, 0.32)})
               + _row_results("leaf", "mel", "self-supervised", {0: (0.70, 0.50), 1: (0.72, 0.52)})
               + _row_results("leaf", "random", "self-supervised", {0: (0.40, 0.60), 1: (0.80, 0.20)})
               + _row_results("leaf", "mel", "untrained", {0: (0.71, 0.51), 1: (0.73, 0.53)})
               + _row_results("leaf", "mel", "untrained", {0: (0.60, 0.40)}, features="frontend")
               + _row_results("leaf", "random", "untrained", {0: (0.60, 0.40)}, features="frontend"))
    for index, result in enumerate(results):
        (tmp_path / f"{index}.json").write_text(json.dumps(result))
    analyses = {"checkpoints": [
        {"model": {"frontend": "leaf", "init": "mel", "training": training, "seed": seed},
         "summary": {"median_shift": shift, "coverage": coverage, "mel_coverage": 0.9}}
        for training, seed, shift, coverage in [("self-supervised", 0, 0.30, 0.95), ("self-supervised", 1, 0.32, 0.96),
                                                ("supervised", 0, 0.10, 0.90), ("supervised", 1, 0.11, 0.91)]]}
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "analysis.json").write_text(json.dumps(analyses))
    tables_command.main([str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    # claim 1: leaf mel-init +20 points on each task, spread 2 -> holds; random init: mean 0.5 both, spread 0.4
    assert "| leaf (mel init) − mel, self-supervised | +20.0 (2.0) | +20.0 (2.0) | +20.0 (2.0) | holds |" in lines
    # random init: its seeds differ by 40 points per task, but both average 0.50 (mel's: 0.40, 0.42), so the
    # verdict, on the average, holds
    assert "| leaf (random init) − mel, self-supervised | +9.0 (40.0) | +9.0 (40.0) | +9.0 (2.0) | holds |" in lines
    assert any(line.startswith("| leaf random − mel init, self-supervised |") for line in lines)
    assert "| leaf (mel init): self-supervised − untrained | -1.0 (2.0) | -1.0 (2.0) | -1.0 (2.0) | " \
           "within the spread at this scale |" in lines
    # the frontend alone: mel-initialised, seed-free (one probe serves every seed); random init is not
    assert "| leaf (mel init): self-supervised − untrained, frontend only | +11.0 (2.0) | +11.0 (2.0) | +11.0 (2.0) " \
           "| holds |" in lines
    assert any(line.startswith("| leaf (random init): self-supervised − untrained, frontend only |")
               and line.endswith(f"| {claims.ONE_SEED} |") for line in lines)
    assert "| leaf (mel init) | 0.310 / 0.955 | 0.105 / 0.905 | +0.205 (0.020) | +0.050 (0.010) | holds |" in lines
    assert "| leaf (random init) |" not in " ".join(lines)  # no analysis of it: no line
