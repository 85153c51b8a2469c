r"""`python -m leaf_ssl.grid`: the paper's table as one command (`leaf_ssl.evaluation.grid`).

    python -m leaf_ssl.grid --grid configs/grids/demo.py --out runs/tables_demo
    python -m leaf_ssl.grid --grid configs/grids/demo.py --grid.variants=all --grid.supervised=True
    python -m leaf_ssl.grid --grid configs/grids/gpu.py --dry_run

Builds the demo corpus when the grid names one that is absent, then run by run: trains it (a
finished run does no more steps, an interrupted one resumes), probes it and its floors on every task
that has no result yet, analyses its filters; finally writes `<out>/table.{md,csv}` with the claims
section (`python -m leaf_ssl.tables`). A run or probe that fails is reported and the grid goes on;
the exit status is then 1 and the last lines name what failed. Every `--grid.<field>=<value>` of
`leaf_ssl.evaluation.grid.grid_config` can be set from the command line.
"""
import shlex
import subprocess
import sys
from pathlib import Path

from absl import app, flags
from ml_collections import config_flags

from leaf_ssl.cli import config_overrides, exits, quiet, tables
from leaf_ssl.evaluation import grid as grids
from leaf_ssl.progress import ProgressLine, format_duration

_GRID = config_flags.DEFINE_config_file("grid", None, "Grid config file, e.g. configs/grids/demo.py.")
_OUT = flags.DEFINE_string("out", None, "Folder of the grid's runs, floors and table (default runs/tables_<grid name>).")
_PYTHON = flags.DEFINE_string("python", sys.executable, "Python that runs the training, probe and analyze tools.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the commands the grid would run, run none.")
quiet.define_absl_verbose_flag()


def tool(python: str, name: str, *arguments: str) -> list[str]:
    return [python, "-m", f"leaf_ssl.{name}", *arguments]


def probe_command(python: str, grid, probe: grids.Probe) -> list[str] | None:
    """The probe of the tasks without a result in `probe.results`, in one call; None if all have one."""
    missing = [task for task in grid.tasks.split() if not (Path(probe.results) / f"{task}.json").is_file()]
    if not missing:
        return None
    return tool(python, "probe", "--ckpt", probe.ckpt, "--workdir", probe.results,
                *(argument for task in missing for argument in ("--task", task)), *grids.flags(grid, "task_flags"),
                "--seeds", str(grid.probe_seeds), *grids.flags(grid, "probe_flags"), *probe.flags)


def run_commands(python: str, grid, run: grids.Run) -> list[list[str]]:
    """Training, then each probe still to do, then the filter analysis if it is not written yet."""
    commands = [tool(python, "train", "--config", run.config, "--workdir", run.workdir, *run.flags)]
    commands += [command for probe in run.probes if (command := probe_command(python, grid, probe))]
    analysis = Path(run.workdir) / "analysis"
    if run.analyze and not (analysis / "analysis.json").is_file():
        commands.append(tool(python, "analyze", "--ckpt", run.workdir, "--out", str(analysis)))
    return commands


def corpus_command(python: str, grid) -> list[str] | None:
    if not grid.corpus or (Path(grid.corpus) / "corpus.json").is_file():
        return None
    return tool(python, "data.demo", "--out", grid.corpus, *shlex.split(grid.corpus_flags))


def describe(command: list[str]) -> str:
    """E.g. 'probe into runs/x/leaf_mel_s0_untrained/probes': the tool and where it writes."""
    target = next((command[i + 1] for i, arg in enumerate(command[:-1]) if arg in ("--workdir", "--out")), "")
    return f"{command[2].removeprefix('leaf_ssl.')} into {target}"


def execute(command: list[str], dry_run: bool) -> bool:
    print("+ " + shlex.join(command), flush=True)
    return dry_run or subprocess.run(command).returncode == 0


def main(argv):
    if len(argv) > 1:
        exits.usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
    grid = _GRID.value
    out = _OUT.value or f"runs/tables_{Path(config_flags.get_config_filename(flags.FLAGS['grid'])).stem}"
    try:
        runs = grids.plan(grid, out)
    except ValueError as error:
        exits.usage_error(str(error))
    python, dry_run = _PYTHON.value, _DRY_RUN.value
    print(f"[grid] {len(runs)} runs in {out}: {', '.join(run.name for run in runs)}", flush=True)
    failed = []
    command = corpus_command(python, grid)
    if command and not execute(command, dry_run):
        exits.failure(f"building the corpus {grid.corpus} failed: nothing was trained")
    progress = ProgressLine("grid", len(runs), "runs", every_seconds=0)
    progress.update(0)
    for done, run in enumerate(runs, start=1):
        print(f"[grid] {run.name} ({run.config})", flush=True)
        commands = run_commands(python, grid, run)
        # Without a trained run there is nothing to probe or analyse but its floors.
        if not execute(commands[0], dry_run):
            failed.append(describe(commands[0]))
            commands = [command for command in commands[1:] if "random:" in " ".join(command)]
        else:
            commands = commands[1:]
        failed += [describe(command) for command in commands if not execute(command, dry_run)]
        progress.update(done)
    if not dry_run:
        tables.main([out, "--out", f"{out}/table", "--rows", grid.table_rows])
    progress.finish(len(runs), f"table in {out}/table.md")
    if failed:
        exits.failure(f"{len(failed)} step(s) of the grid failed ({format_duration(progress.elapsed)}): "
                      + "; ".join(failed))


def run_command_line() -> None:
    """`python -m leaf_ssl.grid` and the `leaf-ssl-grid` script."""
    sys.modules["__main__"].__doc__ = __doc__
    flags.mark_flags_as_required(["grid"])
    app.run(main, flags_parser=lambda argv: config_overrides.parse_absl_flags(argv, _GRID))


if __name__ == "__main__":
    run_command_line()
