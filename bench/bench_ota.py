"""The OTA checker: states per CPU-second and bytes per state, against a BFS that stores states.

Run: ``python bench/bench_ota.py [--max-states 200000] [--pairs 3] [--cases default,...]``.

Cases: ``default`` (the default scenario), ``power-cut-3`` (the same with a power-cut budget of
3) and ``real`` (the default scenario on the real flash geometry, 223 pages of 4 KiB). Each case
runs the checker (``check`` with the OTA model, cheapest traces and all properties) and, as the
baseline, a plain BFS written here over the same ``enabled_actions``/``step`` that keeps every
state in a ``set`` (what a checker without compact storage holds), both bounded by the same
number of states. Every run is a fresh subprocess; each pair alternates the order; figures are
medians over pairs. Bytes per state = (peak RSS of the run - peak RSS of a run that only builds
the model and its initial state) / states: everything the search holds, frontier included.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

CASES = {
    "default": {},
    "power-cut-3": {"budget": {"power_cut": 3}},
    "real": {"geometry": "real"},
    "real-power-cut-2": {"geometry": "real", "budget": {"power_cut": 2}},
}


def get_model(case: str) -> Any:
    from otamodel.env import build_scenario, get_scenario
    from otamodel.verify._properties import OtaModel

    base = get_scenario("default")
    spec = dict(base.source)
    spec.setdefault("name", base.name)
    for key, value in CASES[case].items():
        if isinstance(value, dict):
            spec[key] = {**spec.get(key, {}), **value}
        else:
            spec[key] = value
    return OtaModel(build_scenario(spec))


def stored_bfs(model: Any, limit: int) -> tuple[int, int]:
    """The baseline: a ``set`` of every state, a list per level, the always-properties."""
    from otamodel.checker import PropertyKind
    from otamodel.env import enabled_actions, step

    invariants = [p.predicate for p in model.properties() if p.kind is PropertyKind.ALWAYS]
    start = model.init_states()[0]
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
                    for invariant in invariants:
                        invariant(following)
        level = upcoming
    return len(seen), transitions


def run_one(kind: str, case: str, limit: int) -> None:
    """One measured run in this process: prints JSON (states, CPU seconds, peak RSS bytes)."""
    model = get_model(case)
    model.init_states()
    cpu = time.process_time()
    if kind == "floor":
        states = 1
    elif kind == "stored":
        states, _ = stored_bfs(model, limit)
    else:
        from otamodel.checker import check

        report = check(model, max_states=limit, cost=model.get_action_cost)
        states = report.unique_states
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"states": states, "cpu": cpu, "rss": peak}))


def measure(kind: str, case: str, limit: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, "--case", case, "--max-states", str(limit)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-states", type=int, default=200_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--cases", default="default,power-cut-3,real")
    parser.add_argument("--one", choices=("checker", "stored", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--case", default="default", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.case, args.max_states)
        return 0
    print(
        f"OTA checker vs a state-storing BFS; bound {args.max_states:,} states; "
        f"{args.pairs} pairs, alternating order, fresh process per run, medians"
    )
    print(
        f"{'case':12} {'states':>9} {'checker st/CPU-s':>17} {'B/state':>8} "
        f"{'stored st/CPU-s':>16} {'B/state':>8} {'speed ratio':>11}"
    )
    for case in args.cases.split(","):
        floor = measure("floor", case, 1)["rss"]
        runs = []
        for pair in range(args.pairs):
            order = ("checker", "stored") if pair % 2 == 0 else ("stored", "checker")
            runs.append({kind: measure(kind, case, args.max_states) for kind in order})

        def median(kind: str, field: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(r[kind][field] for r in runs)

        states = runs[-1]["checker"]["states"]
        stored_states = runs[-1]["stored"]["states"]
        speed = median("checker", "states") / median("checker", "cpu")
        stored_speed = stored_states / median("stored", "cpu")
        ratio = statistics.median(
            (r["checker"]["states"] / r["checker"]["cpu"])
            / (r["stored"]["states"] / r["stored"]["cpu"])
            for r in runs
        )
        per_state = (median("checker", "rss") - floor) / states
        stored_per_state = (median("stored", "rss") - floor) / stored_states
        print(
            f"{case:12} {states:>9,} {speed:>17,.0f} {per_state:>8,.0f} "
            f"{stored_speed:>16,.0f} {stored_per_state:>8,.0f} {ratio:>10.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
