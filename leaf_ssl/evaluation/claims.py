"""The paper's three claims, judged on a table's rows by one fixed rule (docs/results.md, "The
claims' verdicts").

A comparison "A beats B" takes each row's value per training seed (a task's probe mean; a seed's
average over tasks). Its difference is A's mean minus B's; its spread is the larger of the two
rows' ranges over their training seeds. On the average: holds when the difference exceeds the
spread, reversed when it is below minus the spread, else within the spread at this scale; with
one training seed in either row there is no spread and no verdict.

Claim 3 reads filter analyses (`analysis.json` written by `python -m leaf_ssl.analyze`): the
median relative shift of the centre frequencies from mel, and the band coverage.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from leaf_ssl.evaluation.tables import seed_values

HOLDS, REVERSED, WITHIN, ONE_SEED = "holds", "reversed", "within the spread at this scale", "no verdict (one training seed)"
SELF_SUPERVISED, SUPERVISED = "self-supervised", "supervised"
FRONTEND_FLOOR = "untrained, frontend only"
LEARNABLE = (("sincnet", "mel"), ("sincnet", "random"), ("leaf", "mel"), ("leaf", "random"))


@dataclasses.dataclass(frozen=True)
class Comparison:
    difference: float | None  # None: a row lacks the value
    spread: float | None      # None: a row has one training seed
    verdict: str


def compare(better: list[float], worse: list[float], worse_is_seed_free: bool = False) -> Comparison:
    """The rule, on the values of A (claimed better) and B per training seed. `worse_is_seed_free`: B
    does not depend on the training seed (a floor of a frontend whose init has no randomness, probed
    once), so one value of it has no training-seed spread to miss."""
    if not better or not worse:
        return Comparison(None, None, "not measured")
    difference = sum(better) / len(better) - sum(worse) / len(worse)
    if len(better) < 2 or (len(worse) < 2 and not worse_is_seed_free):
        return Comparison(difference, None, ONE_SEED)
    spread = max(max(better) - min(better), max(worse) - min(worse))
    verdict = HOLDS if difference > spread else REVERSED if difference < -spread else WITHIN
    return Comparison(difference, spread, verdict)


def _row(rows: list[dict], frontend: str, init: str, training: str) -> dict | None:
    return next((row for row in rows if (row["frontend"], row["init"], row["training"]) == (frontend, init, training)),
                None)


def _name(frontend: str, init: str) -> str:
    return frontend if frontend == "mel" else f"{frontend} ({init} init)"


def _points(comparison: Comparison, scale: float = 100.0, digits: int = 1) -> str:
    """'+3.1 (2.0)': the difference and the spread, times `scale`."""
    if comparison.difference is None:
        return ""
    difference = f"{scale * comparison.difference:+.{digits}f}"
    return difference if comparison.spread is None else f"{difference} ({scale * comparison.spread:.{digits}f})"


def _probe_table(title: str, pairs: list[tuple], task_names: list[str]) -> list[str]:
    """One comparison per line, for pairs (label, row A, row B, B does not depend on the seed): the
    difference (spread) per task and on the average, and the verdict."""
    lines = [f"### {title}", "", "| A − B | " + " | ".join(task_names) + " | average | verdict |",
             "|" + "---|" * (len(task_names) + 3)]
    for label, better, worse, seed_free in pairs:
        if better is None or worse is None:
            lines.append(f"| {label} | " + " | " * len(task_names) + " | not measured: a row is missing |")
            continue
        a, b = seed_values(better, task_names), seed_values(worse, task_names)
        compared = {key: compare(a[key], b[key], seed_free) for key in (*task_names, "average")}
        lines.append(f"| {label} | " + " | ".join(_points(compared[key]) for key in (*task_names, "average"))
                     + f" | {compared['average'].verdict} |")
    return lines + [""]


def probe_claims(rows: list[dict], task_names: list[str]) -> list[str]:
    """Claims 1 and 2, and each self-supervised row against its floors, as markdown lines."""
    present = [(frontend, init) for frontend, init in LEARNABLE if _row(rows, frontend, init, SELF_SUPERVISED)]
    mel = _row(rows, "mel", "-", SELF_SUPERVISED)
    claim_1 = [(f"{_name(f, i)} − mel, self-supervised", _row(rows, f, i, SELF_SUPERVISED), mel, False)
               for f, i in present]
    claim_2 = [(f"{frontend} random − mel init, self-supervised", _row(rows, frontend, "random", SELF_SUPERVISED),
                _row(rows, frontend, "mel", SELF_SUPERVISED), False)
               for frontend in ("sincnet", "leaf") if (frontend, "random") in present or (frontend, "mel") in present]
    # The frontend alone of a mel or mel-initialised frontend is the same for every seed (probed once).
    floors = [(f"{_name(f, i)}: self-supervised − {floor}", _row(rows, f, i, SELF_SUPERVISED), _row(rows, f, i, floor),
               floor == FRONTEND_FLOOR and i != "random")
              for f, i in [("mel", "-"), *LEARNABLE] if _row(rows, f, i, SELF_SUPERVISED)
              for floor in ("untrained", "untrained, BN re-estimated", FRONTEND_FLOOR) if _row(rows, f, i, floor)]
    return (_probe_table("Claim 1: self-supervised learnable frontends beat mel", claim_1, task_names)
            + _probe_table("Claim 2: under self-supervision, random init beats mel init", claim_2, task_names)
            + _probe_table("Does each self-supervised row beat its untrained floors?", floors, task_names))


def load_analyses(paths: list[str | Path]) -> list[dict]:
    """Every checkpoint entry of the `analysis.json` files among `paths` (folders searched recursively)."""
    entries = []
    for path in map(Path, paths):
        for candidate in sorted(path.rglob("analysis.json")) if path.is_dir() else [path]:
            try:
                report = json.loads(candidate.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(report, dict):
                entries += [entry for entry in report.get("checkpoints", []) if "summary" in entry and "model" in entry]
    return entries


def filter_claim(analyses: list[dict]) -> list[str]:
    """Claim 3 as markdown lines: per learnable frontend and init, the self-supervised runs' shift
    from mel and band coverage against the supervised runs'."""
    lines = ["### Claim 3: self-supervised filters move further from mel and cover more of the band than "
             "supervised ones", "",
             "| frontend | self-supervised shift / coverage | supervised shift / coverage | shift: A − B | "
             "coverage: A − B | verdict |", "|---|---|---|---|---|---|"]
    for frontend, init in LEARNABLE:
        found = {training: [entry["summary"] for entry in analyses
                            if (entry["model"]["frontend"], entry["model"].get("init"), entry["model"]["training"])
                            == (frontend, init, training)]
                 for training in (SELF_SUPERVISED, SUPERVISED)}
        ssl, supervised = found[SELF_SUPERVISED], found[SUPERVISED]
        if not ssl:
            continue
        described = {training: " / ".join(
            [f"{sum(s['median_shift'] for s in summaries) / len(summaries):.3f}",
             f"{sum(s['coverage'] for s in summaries) / len(summaries):.3f}"]) if summaries else ""
            for training, summaries in found.items()}
        if not supervised:
            lines.append(f"| {_name(frontend, init)} | {described[SELF_SUPERVISED]} | | | | "
                         "not measured: no supervised run |")
            continue
        shift = compare([s["median_shift"] for s in ssl], [s["median_shift"] for s in supervised])
        coverage = compare([s["coverage"] for s in ssl], [s["coverage"] for s in supervised])
        verdicts = {shift.verdict, coverage.verdict}
        verdict = (HOLDS if verdicts == {HOLDS} else REVERSED if verdicts == {REVERSED}
                   else ONE_SEED if ONE_SEED in verdicts else WITHIN)
        lines.append(f"| {_name(frontend, init)} | {described[SELF_SUPERVISED]} | {described[SUPERVISED]} | "
                     f"{_points(shift, 1.0, 3)} | {_points(coverage, 1.0, 3)} | {verdict} |")
    if len(lines) == 4:
        lines.append("| not measured: no filter analysis (analysis.json) of a learnable frontend | | | | | |")
    mel_coverage = next((entry["summary"]["mel_coverage"] for entry in analyses), None)
    if mel_coverage is not None:
        lines.append(f"\nShift: median |centre − mel centre| / mel centre; coverage: fraction of 0 .. sample_rate/2 "
                     f"that the half-amplitude bands cover (the mel filterbank's: {mel_coverage:.2f}).")
    return lines + [""]


def claims_markdown(rows: list[dict], task_names: list[str], analyses: list[dict]) -> str:
    """The claims section of a table (rows by frontend x init x training)."""
    rule = ("Each cell: A's mean minus B's over training seeds, in points, and (in brackets) the spread, the "
            "larger of the two rows' ranges over their training seeds. Verdict on the average: holds when the "
            "difference exceeds the spread, reversed when it is below minus the spread, otherwise within the spread "
            "at this scale (docs/results.md, \"The claims' verdicts\").")
    return "\n".join(["## Claims", "", rule, "", *probe_claims(rows, task_names), *filter_claim(analyses)])
