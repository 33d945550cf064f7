"""The default scenario's speed now against the code before issue 9 (machines as the spec).

Run: ``python bench/bench_machines.py [--baseline REV] [--max-states 150000] [--pairs 3]``.

Issue 9 made the ``transitions`` machines the source of truth (``step`` runs a table
compiled from the Machine objects, events between machines, nested sub-states, typed
seams) and asks that the default scenario's states per second stay at least 0.8x what they
were before. The baseline is the code at ``--baseline`` (default: the last commit before
issue 9's first one, the layering commit 345c19d), extracted with ``git archive`` into a
temporary folder under /tmp and imported from there (``PYTHONPATH``) by its own
subprocesses; the current code is this checkout's. Two measures, each a fresh subprocess,
the two codes alternating first and second, the figure the median of the per-pair ratios
of states per CPU-second:

- ``model``: the model alone: a breadth-first search written here over
  ``otamodel.env.enabled_actions``/``step`` (the API both codes share) that keeps every
  state in a ``set``, bounded by ``--max-states``;
- ``check``: ``otamodel.check(otamodel.OtaModel("default"), max_states=...)``, what
  ``otamodel check`` runs: the checker with every property of each code's version (the
  current code checks more properties than the baseline did) and cheapest traces.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASELINE = "011dd1fa8e74096ebcb0f5352e64b1e7b4f1c5e8"
"""The parent of 345c19d, the first commit of issue 9."""

REPO = Path(__file__).resolve().parent.parent


def run_model(limit: int) -> tuple[int, int]:
    """The model alone: BFS over ``enabled_actions``/``step``, every state in a ``set``."""
    from otamodel.env import enabled_actions, get_scenario, initial_world, step

    start = initial_world(get_scenario("default"))
    seen = {start}
    level = [start]
    transitions = 0
    while level and len(seen) < limit:
        upcoming = []
        for world in level:
            for action in enabled_actions(world):
                result = step(world, action)
                if result.is_refused:
                    continue
                transitions += 1
                following = result.world
                if following not in seen and len(seen) < limit:
                    seen.add(following)
                    upcoming.append(following)
        level = upcoming
    return len(seen), transitions


def run_check(limit: int) -> tuple[int, int]:
    import otamodel

    report = otamodel.check(otamodel.OtaModel("default"), max_states=limit)
    return report.unique_states, report.transitions


def run_one(kind: str, limit: int) -> None:
    """One measured run in this process: prints JSON (states, transitions, CPU seconds)."""
    import otamodel

    # import (and build the machines) before the clock starts
    from otamodel.env import get_scenario

    get_scenario("default")
    cpu = time.process_time()
    states, transitions = run_model(limit) if kind == "model" else run_check(limit)
    cpu = time.process_time() - cpu
    where = str(Path(otamodel.__file__).resolve().parent.parent)
    print(json.dumps({"states": states, "transitions": transitions, "cpu": cpu, "code": where}))


def measure(kind: str, root: Path, limit: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0"}
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, "--max-states", str(limit)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    if Path(result["code"]) != root.resolve():
        raise SystemExit(f"the run imported otamodel from {result['code']}, not {root}")
    return result


def extract(rev: str, folder: Path) -> Path:
    """The package at ``rev`` (``git archive``: the repository itself is not changed)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", rev, "otamodel"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="the commit to compare with")
    parser.add_argument("--max-states", type=int, default=150_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--kinds", default="model,check")
    parser.add_argument("--one", choices=("model", "check"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.max_states)
        return 0
    print(
        f"default scenario: current code vs {args.baseline[:10]} (before issue 9); bound "
        f"{args.max_states:,} states; {args.pairs} pairs, alternating order, fresh process "
        "per run, medians of states per CPU-second"
    )
    print(
        f"{'measure':8} {'states now':>10} {'now st/CPU-s':>13} {'states then':>11} "
        f"{'then st/CPU-s':>13} {'ratio now/then':>14}"
    )
    with tempfile.TemporaryDirectory(prefix="otamodel-pre9-", dir="/tmp") as tmp:
        roots = {"now": REPO, "then": extract(args.baseline, Path(tmp))}
        for kind in args.kinds.split(","):
            runs = []
            for pair in range(args.pairs):
                order = ("now", "then") if pair % 2 == 0 else ("then", "now")
                runs.append({code: measure(kind, roots[code], args.max_states) for code in order})

            def speed(run: dict[str, Any]) -> float:
                return float(run["states"]) / float(run["cpu"])

            now = statistics.median(speed(r["now"]) for r in runs)
            then = statistics.median(speed(r["then"]) for r in runs)
            ratio = statistics.median(speed(r["now"]) / speed(r["then"]) for r in runs)
            print(
                f"{kind:8} {runs[-1]['now']['states']:>10,} {now:>13,.0f} "
                f"{runs[-1]['then']['states']:>11,} {then:>13,.0f} {ratio:>13.2f}x",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
