"""The checker on two-phase commit against an independent plain-tuple BFS written here.

Run: ``python bench/bench_checker.py [--rms 7] [--pairs 5] [--workers 2]``.

The baseline shares nothing with the project: states are plain tuples ``(rm states, tm
state, prepared bit mask, message bit mask)`` of small ints, the visited set is a ``set`` and
the frontier a list per level; it evaluates the same three properties (``consistent`` on
every new state, the two agreements until witnessed) and keeps nothing for traces. The
checker runs ``check(TwoPhaseCommit(n))`` from ``otamodel.checker._examples`` with everything
it does normally (compact storage, parent links, property bookkeeping).

Every run is a fresh subprocess (no warm caches, its own CPU clock); each pair runs the two
in alternating order, and the report is the median over pairs of
``baseline CPU / checker CPU`` (goal: >= 0.8). ``--workers 2`` also times the parallel
checker against the 1-worker one (wall clock, same alternation).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

# ---------------------------------------------------------------- the independent baseline

WORKING, PREPARED, COMMITTED, ABORTED = 0, 1, 2, 3
TM_INIT, TM_COMMITTED, TM_ABORTED = 0, 1, 2


TM_RCV_PREPARED, TM_COMMIT, TM_ABORT, RM_PREPARE, RM_ABORT, RM_COMMIT = range(6)


def plain_actions(n: int, state: tuple[Any, ...]) -> list[tuple[int, int]]:
    """The enabled actions ``(kind, rm)`` of a plain-tuple 2PC state."""
    rms, tm, prepared, msgs = state
    out = []
    if tm == TM_INIT:
        if prepared == (1 << n) - 1:
            out.append((TM_COMMIT, -1))
        out.append((TM_ABORT, -1))
    for rm in range(n):
        if tm == TM_INIT and msgs & (1 << rm):
            out.append((TM_RCV_PREPARED, rm))
        if rms[rm] == WORKING:
            out.append((RM_PREPARE, rm))
            out.append((RM_ABORT, rm))
        if msgs & (1 << n):
            out.append((RM_COMMIT, rm))
        if msgs & (1 << (n + 1)):
            out.append((RM_ABORT, rm))
    return out


def plain_next(n: int, state: tuple[Any, ...], action: tuple[int, int]) -> tuple[Any, ...]:
    """The successor of a plain-tuple 2PC state."""
    rms, tm, prepared, msgs = state
    kind, rm = action
    if kind == TM_RCV_PREPARED:
        return (rms, tm, prepared | 1 << rm, msgs)
    if kind == TM_COMMIT:
        return (rms, TM_COMMITTED, prepared, msgs | 1 << n)
    if kind == TM_ABORT:
        return (rms, TM_ABORTED, prepared, msgs | 1 << (n + 1))
    if kind == RM_PREPARE:
        return ((*rms[:rm], PREPARED, *rms[rm + 1 :]), tm, prepared, msgs | 1 << rm)
    value = COMMITTED if kind == RM_COMMIT else ABORTED
    return ((*rms[:rm], value, *rms[rm + 1 :]), tm, prepared, msgs)


def plain_bfs(n: int) -> tuple[int, int, dict[str, bool]]:
    """Two-phase commit (Gray & Lamport) with ``n`` RMs over plain tuples: a ``set`` of
    visited states, a list per level, the same properties; nothing kept for traces."""
    start = ((WORKING,) * n, TM_INIT, 0, 0)
    seen = {start}
    level = [start]
    transitions = 0
    found = {"consistent": True, "abort agreement": False, "commit agreement": False}

    def judge(state: tuple[Any, ...]) -> None:
        rms = state[0]
        if ABORTED in rms and COMMITTED in rms:
            found["consistent"] = False
        if not found["abort agreement"] and all(r == ABORTED for r in rms):
            found["abort agreement"] = True
        if not found["commit agreement"] and all(r == COMMITTED for r in rms):
            found["commit agreement"] = True

    judge(start)
    while level:
        upcoming = []
        for state in level:
            for action in plain_actions(n, state):
                following = plain_next(n, state, action)
                transitions += 1
                if following not in seen:
                    seen.add(following)
                    upcoming.append(following)
                    judge(following)
        level = upcoming
    return len(seen), transitions, found


def run_checker(n: int, workers: int) -> tuple[int, int, dict[str, bool]]:
    from otamodel.checker import Verdict, check
    from otamodel.checker._examples import TwoPhaseCommit

    report = check(TwoPhaseCommit(n), workers=workers)
    found = {r.name: r.verdict in (Verdict.HOLDS, Verdict.WITNESSED) for r in report.results}
    return report.unique_states, report.transitions, found


def run_one(kind: str, n: int) -> None:
    """One measured run (in its own process): prints JSON with CPU and wall seconds."""
    if kind != "plain":
        import otamodel.checker._examples  # noqa: F401  (imports are not timed)
    cpu, wall = time.process_time(), time.perf_counter()
    if kind == "plain":
        states, transitions, found = plain_bfs(n)
    else:
        states, transitions, found = run_checker(n, 2 if kind == "parallel" else 1)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    if kind == "parallel":  # the workers' CPU is not in this process's clock
        cpu = wall
    print(
        json.dumps(
            {"states": states, "transitions": transitions, "found": found, "cpu": cpu, "wall": wall}
        )
    )


def measure(kind: str, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", kind, "--rms", str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def compare(first: str, second: str, n: int, pairs: int, clock: str) -> tuple[float, list[Any]]:
    """Median over pairs of ``first time / second time``, order alternating per pair."""
    ratios = []
    runs = []
    for pair in range(pairs):
        order = (first, second) if pair % 2 == 0 else (second, first)
        result = {kind: measure(kind, n) for kind in order}
        runs.append(result)
        ratios.append(result[first][clock] / result[second][clock])
    return statistics.median(ratios), runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rms", type=int, default=7, help="resource managers (7: 296,448 states)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="2: also time the parallel checker")
    parser.add_argument("--one", choices=("plain", "checker", "parallel"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.rms)
        return 0
    ratio, runs = compare("plain", "checker", args.rms, args.pairs, "cpu")
    last = runs[-1]
    if (last["plain"]["states"], last["plain"]["transitions"], last["plain"]["found"]) != (
        last["checker"]["states"],
        last["checker"]["transitions"],
        last["checker"]["found"],
    ):
        print(f"MISMATCH: {last}", file=sys.stderr)
        return 1
    plain_cpu = statistics.median(r["plain"]["cpu"] for r in runs)
    checker_cpu = statistics.median(r["checker"]["cpu"] for r in runs)
    states = last["plain"]["states"]
    print(
        f"2PC with {args.rms} RMs: {states:,} states, {last['plain']['transitions']:,} "
        f"transitions; {args.pairs} pairs, alternating order, fresh process per run"
    )
    print(f"plain-tuple BFS   {plain_cpu:7.3f} CPU-s  {states / plain_cpu:10,.0f} states/CPU-s")
    print(f"checker           {checker_cpu:7.3f} CPU-s  {states / checker_cpu:10,.0f} states/CPU-s")
    print(f"median speed checker / baseline: {ratio:.2f}x (goal >= 0.8x)")
    status = 0 if ratio >= 0.8 else 1
    if args.workers > 1:
        speedup, par_runs = compare("checker", "parallel", args.rms, args.pairs, "wall")
        same = all(r["checker"]["states"] == r["parallel"]["states"] for r in par_runs)
        print(f"parallel x2 speed-up (wall, median): {speedup:.2f}x; same counts: {same}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
