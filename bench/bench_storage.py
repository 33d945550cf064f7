"""Bytes a stored state costs beyond the frontier: the search against a BFS storing states.

Run: ``python bench/bench_storage.py [--max-states 200000] [--cases default,power-cut-3,real]``.

What the search keeps for every discovered state once its level is expanded (CHK-16): the
visited set, the parent links, the edges and the verdict bytes. Measured with ``tracemalloc``
in a fresh subprocess per run: the memory the search still holds when it returns (its
frontier is gone by then) minus what was allocated before it, plus the fingerprint table's
peak (freed when the search returns; its size is exact: ``Exploration.table_bytes``). The
search is run as ``otamodel check`` runs it (edges, every verdict byte, measures) without
replay starts (``keep_every`` 0), then with them (``keep_every`` 6, findings: those states
are objects, reported on their own line). The baseline is a BFS written here that stores
every state in a ``set`` and its parent link in a ``dict`` (what a checker without compact
storage holds), measured the same way. Cases are those of ``bench_ota.py``.

Model caches (bounded, e.g. parsed DB rows per file system) are held too: a fixed cost that
a small bound spreads over few states. ``marginal`` is what the second half of the states
added per state (the search at the bound against the search at half of it), the figure that
scales; ``own count`` is the search's own accounting (``Exploration.get_storage``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run_checker(case: str, limit: int, keep: int) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from bench_ota import get_model

    from otamodel.checker._search import Plan, explore

    model = get_model(case)
    model.init_states()
    plan = Plan(tuple(model.properties()))
    plan.record_edges = plan.record_hits = plan.record_measures = True
    plan.keep_every, plan.keep_limit = keep, 64_000
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    exploration = explore(
        model, plan, max_depth=None, max_states=limit, deadline=None,
        stop_on_violation=False, progress=None, progress_interval=60.0,
        started=time.perf_counter(),
    )  # fmt: skip
    held = tracemalloc.get_traced_memory()[0] - before + exploration.table_bytes
    tracemalloc.stop()
    return {
        "states": exploration.count,
        "held": held,
        "own": sum(exploration.get_storage().values()),
        "kept": exploration.kept_states,
    }


def run_baseline(case: str, limit: int) -> dict[str, Any]:
    """A plain BFS over ``enabled_actions``/``step``: every state in a set, its parent and
    action in a dict; held memory measured as for the checker."""
    sys.path.insert(0, str(HERE))
    from bench_ota import get_model

    from otamodel.env import enabled_actions, step

    model = get_model(case)
    start = model.init_states()[0]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    seen = {start}
    parent: dict[Any, tuple[Any, Any]] = {}
    level = [start]
    while level and len(seen) < limit:
        upcoming = []
        for world in level:
            for action in enabled_actions(world):
                result = step(world, action)
                if result.is_refused or result.world in seen:
                    continue
                seen.add(result.world)
                parent[result.world] = (world, action)
                upcoming.append(result.world)
                if len(seen) >= limit:
                    break
            if len(seen) >= limit:
                break
        level = upcoming
    del level, upcoming
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"states": len(seen), "held": held}


def measure(kind: str, case: str, limit: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", kind, "--cases", case, "--max-states", str(limit)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-states", type=int, default=200_000)
    parser.add_argument("--cases", default="default,power-cut-3,real")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        if args.one == "baseline":
            result = run_baseline(args.cases, args.max_states)
        else:
            result = run_checker(args.cases, args.max_states, int(args.one))
        print(json.dumps(result))
        return 0
    print(
        f"bytes held per state beyond the frontier (tracemalloc), bound {args.max_states:,} "
        "states, fresh process per run\n"
        f"{'case':<12} {'states':>8} {'search B/st':>11} {'marginal':>8} {'(own count)':>11} "
        f"{'+replay starts':>14} {'kept':>7} {'stored BFS B/st':>15} {'ratio':>6}"
    )
    for case in args.cases.split(","):
        half = measure("0", case, args.max_states // 2)
        lean = measure("0", case, args.max_states)
        kept = measure("6", case, args.max_states)
        base = measure("baseline", case, args.max_states)
        states = lean["states"]
        marginal = (lean["held"] - half["held"]) / max(1, states - half["states"])
        print(
            f"{case:<12} {states:>8,} {lean['held'] / states:>11.0f} {marginal:>8.0f} "
            f"{lean['own'] / states:>11.0f} {kept['held'] / states:>14.0f} "
            f"{kept['kept']:>7,} {base['held'] / base['states']:>15.0f} "
            f"{(lean['held'] / states) / (base['held'] / base['states']):>5.2f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
