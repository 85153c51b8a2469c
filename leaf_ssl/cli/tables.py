"""`python -m leaf_ssl.tables`: probe results -> the paper's tables (`evaluation.tables`).

    python -m leaf_ssl.tables runs/*/probes probes/ --out results/table

Arguments are probe result JSON files or folders searched recursively for them (and for the
filter analyses, `analysis.json`, that claim 3 reads, and for the runs' `metrics.jsonl`). Writes
`<out>.md` (the table, the claims section: `leaf_ssl.evaluation.claims`, and each trained run's
throughput) and `<out>.csv` when --out is given; prints the
markdown either way.
"""
import argparse
from pathlib import Path

from leaf_ssl.cli import exits, quiet
from leaf_ssl.evaluation.claims import claims_markdown, load_analyses
from leaf_ssl.evaluation.tables import assemble, load_results, to_csv, to_markdown
from leaf_ssl.evaluation.throughput import run_throughputs, throughput_markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.tables", description=__doc__.split("\n\n")[0])
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("results", nargs="+", help="probe result JSON files or folders holding them")
    parser.add_argument("--out", help="write <out>.md and <out>.csv")
    parser.add_argument("--rows", choices=("frontend", "run"), default="frontend",
                        help="a row per frontend x init x training (the paper's tables), or per run x training")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    if not results:
        exits.usage_error(f"no probe result JSON found in {args.results}")
    task_names, rows = assemble(results, by_run=args.rows == "run")
    markdown = to_markdown(task_names, rows)
    if args.rows == "frontend":
        markdown += "\n" + claims_markdown(rows, task_names, load_analyses(args.results))
    if throughputs := run_throughputs(args.results):
        markdown += "\n" + throughput_markdown(throughputs)
    print(markdown)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(markdown)
        out.with_suffix(".csv").write_text(to_csv(task_names, rows))


if __name__ == "__main__":
    main()
