"""The table assembler on fixture probe results."""
import csv
import io
import json
import os

import pytest

from leaf_ssl.cli import tables as tables_command
from leaf_ssl.evaluation import tables
from tests.cli_exits import assert_exits


def _result(frontend, init, training, task, per_seed, metric="accuracy"):
    mean = sum(per_seed) / len(per_seed)
    std = (sum((s - mean) ** 2 for s in per_seed) / (len(per_seed) - 1)) ** 0.5
    return {"model": {"frontend": frontend, "init": init, "training": training, "checkpoint": f"{frontend}-{init}"},
            "task": {"name": task}, "metric": metric, "mean": mean, "std": std, "per_seed": per_seed}


@pytest.fixture()
def results_dir(tmp_path):
    fixtures = [
        _result("leaf", "random", "self-supervised", "keyword", [0.8, 0.9]),
        _result("leaf", "random", "self-supervised", "language", [0.5, 0.7]),
        _result("leaf", "random", "untrained", "keyword", [0.4, 0.4]),
        _result("leaf", "random", "untrained", "language", [0.3, 0.5]),
        _result("mel", "-", "self-supervised", "keyword", [0.6, 0.6]),  # no language result: no average
    ]
    for index, result in enumerate(fixtures):
        folder = tmp_path / f"run{index}" / "probes"
        folder.mkdir(parents=True)
        (folder / f"{result['task']['name']}.json").write_text(json.dumps(result))
    (tmp_path / "run0" / "config.json").write_text(json.dumps({"frontend": {}}))  # not a probe result: ignored
    return tmp_path


def test_table_rows_columns_and_averages(results_dir, tmp_path, capsys):
    tables_command.main([str(results_dir), "--out", str(tmp_path / "out" / "table")])
    lines = (tmp_path / "out" / "table.md").read_text().splitlines()
    assert lines[0] == "| frontend | init | training | keyword (accuracy) | language (accuracy) | average |"
    # mel before leaf; untrained before self-supervised; mean ± sample std in percent
    assert lines[2] == "| mel | - | self-supervised | 60.0 ± 0.0 |  |  |"
    assert lines[3] == "| leaf | random | untrained | 40.0 ± 0.0 | 40.0 ± 14.1 | 40.0 |"
    assert lines[4] == "| leaf | random | self-supervised | 85.0 ± 7.1 | 60.0 ± 14.1 | 72.5 |"
    assert lines[5] == "" and lines[6] == "Cells: mean ± sample std over the probe's head seeds; in percent."
    assert "## Claims" in lines and "72.5" in capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "table.csv").read_text())))
    assert [row["frontend"] for row in rows] == ["mel", "leaf", "leaf"]
    assert float(rows[2]["keyword_mean"]) == pytest.approx(0.85) and float(rows[2]["average"]) == pytest.approx(0.725)
    assert rows[0]["language_mean"] == "" and rows[0]["average"] == ""


def test_newest_result_wins_for_a_duplicate_cell(results_dir):
    newer = results_dir / "rerun" / "keyword.json"
    newer.parent.mkdir()
    newer.write_text(json.dumps(_result("mel", "-", "self-supervised", "keyword", [0.7, 0.7])))
    old = results_dir / "run4" / "probes" / "keyword.json"
    os.utime(old, (old.stat().st_mtime - 100,) * 2)
    task_names, rows = tables.assemble(tables.load_results([results_dir]))
    mel = next(row for row in rows if row["frontend"] == "mel")
    assert mel["results"]["keyword"]["mean"] == pytest.approx(0.7)


def test_no_results_is_an_error(tmp_path, capsys):
    assert_exits(capsys, 2, "no probe result", tables_command.main, [str(tmp_path)])


def test_rows_by_run_keep_apart_two_runs_of_one_frontend(tmp_path, capsys):
    """A recipe search: two runs of leaf/mel and their shared untrained floor, one row each, with
    the mean participation ratio of each row's results."""
    def result(checkpoint, training, task, per_seed, ratio):
        found = _result("leaf", "mel", training, task, per_seed)
        found["model"]["checkpoint"] = checkpoint
        found["embedding"] = {"participation_ratio": ratio}
        return found
    fixtures = {
        "a/probes": [result("/x/runs/cosine/checkpoints/240", "self-supervised", "keyword", [0.5, 0.7], 4.0),
                     result("/x/runs/cosine/checkpoints/240", "self-supervised", "language", [0.3, 0.3], 6.0)],
        "b/probes": [result("/x/runs/bilinear/checkpoints/80", "self-supervised", "keyword", [0.4, 0.4], 2.0)],
        "c/probes": [result("random:runs/cosine:leaf,mel", "untrained", "keyword", [0.9, 0.9], 9.0)],
    }
    for folder, results in fixtures.items():
        (tmp_path / folder).mkdir(parents=True)
        for found in results:
            (tmp_path / folder / f"{found['task']['name']}.json").write_text(json.dumps(found))
    tables_command.main([str(tmp_path), "--rows", "run"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| run | training | keyword (accuracy) | language (accuracy) | average | dims |"
    assert lines[2:5] == ["| bilinear | self-supervised | 40.0 ± 0.0 |  |  | 2.0 |",
                          "| cosine | untrained | 90.0 ± 0.0 |  |  | 9.0 |",
                          "| cosine | self-supervised | 60.0 ± 14.1 | 30.0 ± 0.0 | 45.0 | 5.0 |"]


def test_a_copied_run_is_one_row_by_its_id_and_runs_without_ids_stay_apart():
    def probed(checkpoint, run_id, per_seed, mtime):
        found = _result("leaf", "mel", "self-supervised", "keyword", per_seed)
        found["model"].update(checkpoint=checkpoint, run_id=run_id)
        found["_mtime"] = mtime
        return found
    copies = [probed("/a/runs/cosine/checkpoints/240", "3f2a", [0.5, 0.5], 1),
              probed("/b/backup/cosine_copy/checkpoints/240", "3f2a", [0.6, 0.6], 2)]
    _, rows = tables.assemble(copies, by_run=True)
    assert [(row["run"], row["results"]["keyword"]["mean"]) for row in rows] == [("cosine_copy", 0.6)]
    unrelated = [probed("/a/runs/cosine/checkpoints/240", None, [0.5, 0.5], 1),
                 probed("/b/backup/cosine_copy/checkpoints/240", None, [0.6, 0.6], 2)]
    _, rows = tables.assemble(unrelated, by_run=True)
    assert [row["run"] for row in rows] == ["cosine", "cosine_copy"]


@pytest.mark.parametrize("training", ["untrained", "untrained, BN re-estimated"])
def test_a_variant_is_named_once_whether_or_not_training_also_names_it(training):
    """Results written before the probe's variants became fields carried them in `training` as well."""
    model = {"frontend": "leaf", "init": "mel", "training": training, "batch_norm": "re-estimated: 50 x 64 crops",
             "features": "frontend"}
    assert tables.row_label(model) == "untrained, BN re-estimated, frontend only"
