"""The OTA checker with 2 worker processes against 1: wall-clock speed-up and identical results.

Run: ``python bench/bench_parallel.py [--case default] [--max-states N] [--pairs 3]``.

Each run is a fresh subprocess doing what ``otamodel check`` does (``check(model,
findings=True)``: search, verdicts, cheapest traces, findings). Pairs alternate the order (one
worker first, then two workers first); the speed-up is the median over pairs of the ratio of
wall times. Every run also reports its states, transitions, verdicts and finding IDs with
their traces; the bench fails if the two worker counts disagree on any of them. Cases are
those of ``bench_ota.py`` (``default``, ``power-cut-3``, ``real``); ``--max-states`` bounds
both runs alike (e.g. ``--case power-cut-3 --max-states 1000000`` for a run of a million
states). On a shared machine, read the per-pair lines too: other processes inflate the wall
time of whichever run they overlap.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run_one(case: str, workers: int, limit: int | None) -> None:
    sys.path.insert(0, str(HERE))
    from bench_ota import get_model

    from otamodel.checker import check

    model = get_model(case)
    model.init_states()
    started = time.perf_counter()
    report = check(model, workers=workers, max_states=limit, findings=True)
    wall = time.perf_counter() - started
    summary = {
        "states": report.unique_states,
        "transitions": report.transitions,
        "verdicts": [str(result.verdict) for result in report.results],
        "findings": [
            [f.id, [str(a) for a in f.trace.actions] if f.trace is not None else None]
            for f in report.findings
        ],
    }
    print(json.dumps({"wall": wall, "summary": summary}))


def measure(case: str, workers: int, limit: int | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", str(workers), "--case", case]
    if limit is not None:
        command += ["--max-states", str(limit)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="default")
    parser.add_argument("--max-states", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.case, args.one, args.max_states)
        return 0
    ratios = []
    walls: dict[int, list[float]] = {1: [], 2: []}
    for pair in range(args.pairs):
        order = (1, 2) if pair % 2 == 0 else (2, 1)
        runs = {workers: measure(args.case, workers, args.max_states) for workers in order}
        one, two = runs[1]["summary"], runs[2]["summary"]
        if args.max_states is not None:
            # CHK-14: a state bound keeps the same states; only the transitions may differ.
            one.pop("transitions")
            two.pop("transitions")
        differ = [field for field in one if one[field] != two[field]]
        if differ:
            print(f"results differ between 1 and 2 workers: {differ}", file=sys.stderr)
            for field in differ:
                print(f"  1 worker:  {one[field]}\n  2 workers: {two[field]}", file=sys.stderr)
            return 1
        ratios.append(runs[1]["wall"] / runs[2]["wall"])
        for workers in (1, 2):
            walls[workers].append(runs[workers]["wall"])
        print(
            f"pair {pair + 1}: 1 worker {runs[1]['wall']:.1f} s, 2 workers "
            f"{runs[2]['wall']:.1f} s, {ratios[-1]:.2f}x",
            flush=True,
        )
    states = runs[1]["summary"]["states"]
    print(
        f"{args.case}: {states:,} states, identical results; median wall 1 worker "
        f"{statistics.median(walls[1]):.1f} s, 2 workers {statistics.median(walls[2]):.1f} s; "
        f"speed-up (median of pairs) {statistics.median(ratios):.2f}x (goal >= 1.6x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
