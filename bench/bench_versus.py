"""States per CPU-second of this tree's checker against an older tree (the pre-issue-10 code).

Run::

    git worktree add --detach /tmp/otamodel-old 345c19d   # the commit before issue 10's work
    python bench/bench_versus.py --old /tmp/otamodel-old [--pairs 5] [--scenario default]

Each run is a fresh subprocess whose ``PYTHONPATH`` points at one tree; it builds the scenario's
``OtaModel`` (not timed) and runs ``check(model, cost=model.get_action_cost)`` — the search and
the verdicts with cheapest traces, what ``otamodel check`` does before classifying findings —
timed in CPU seconds of that process. Pairs alternate the order (old first, then new first); the
figures are medians over pairs. The two trees may count different states (later properties
record more ghost history), so the comparison is of states per CPU-second, each tree on its own
states; the new tree's state count is printed so it can be compared with the pinned one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent

SNIPPET = r"""
import json, resource, sys, time
from otamodel.checker import check
from otamodel.verify._properties import OtaModel
name = sys.argv[1]
try:
    from otamodel.env import get_scenario
    model = OtaModel(get_scenario(name))
except Exception:
    model = OtaModel(name)
model.init_states()
cpu = time.process_time()
report = check(model, cost=model.get_action_cost)
cpu = time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"states": report.unique_states, "transitions": report.transitions,
                  "cpu": cpu, "rss": peak}))
"""


def measure(tree: Path, scenario: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET, scenario],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the older tree (a worktree)")
    parser.add_argument("--new", type=Path, default=HERE, help="this tree by default")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--scenario", default="default")
    args = parser.parse_args(argv)
    runs = []
    for pair in range(args.pairs):
        order = ("old", "new") if pair % 2 == 0 else ("new", "old")
        run = {
            kind: measure(args.old if kind == "old" else args.new, args.scenario) for kind in order
        }
        runs.append(run)
        print(
            f"pair {pair + 1}: old {run['old']['states']:,} states {run['old']['cpu']:.2f} CPU-s, "
            f"new {run['new']['states']:,} states {run['new']['cpu']:.2f} CPU-s",
            flush=True,
        )

    def speed(run: dict[str, Any]) -> float:
        return float(run["states"] / run["cpu"])

    old = statistics.median(speed(r["old"]) for r in runs)
    new = statistics.median(speed(r["new"]) for r in runs)
    ratio = statistics.median(speed(r["new"]) / speed(r["old"]) for r in runs)
    print(f"scenario {args.scenario}; {args.pairs} pairs, alternating order, medians")
    print(f"  old {args.old}: {runs[-1]['old']['states']:,} states, {old:,.0f} states/CPU-s")
    print(f"  new {args.new}: {runs[-1]['new']['states']:,} states, {new:,.0f} states/CPU-s")
    print(f"  ratio new/old (median of pairs): {ratio:.2f}x (goal >= 3x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
