"""Checker overhead against a minimal hand-written BFS over the same model, in one process.

Run: ``python bench/bench_checker.py [--rms 6] [--repeats 3] [--workers 2] [--eventually]``.

Both loops expand the same two-phase-commit model, deduplicate states in a dict, keep a
parent link per state and evaluate the same properties on every new state (``sometimes``
ones until a witness is found). The ratio ``checker / hand-written`` should stay < 1.5.
``--workers 2`` also times the process-parallel checker; ``--eventually`` adds a progress
property so the edge recording and backward reachability are timed too.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from otamodel.checker import CheckReport, Property, PropertyKind, check
from otamodel.checker._examples import TmState, TpcAction, TpcState, TwoPhaseCommit


class TwoPhaseCommitWithProgress(TwoPhaseCommit):
    """2PC plus ``eventually``: the TM can always still decide."""

    def properties(self) -> Sequence[Property[TpcState, TpcAction]]:
        return [*super().properties(), Property.eventually("tm decides", _is_tm_decided)]


def _is_tm_decided(state: TpcState) -> bool:
    return state.tm_state is not TmState.INIT


def hand_bfs(model: Any) -> tuple[int, int, dict[str, bool]]:
    """The baseline: deque + dict visited, parent links, properties per new state."""
    properties = model.properties()
    always = [(p.name, p.predicate) for p in properties if p.kind is PropertyKind.ALWAYS]
    pending = [(p.name, p.predicate) for p in properties if p.kind is PropertyKind.SOMETIMES]
    found: dict[str, bool] = {}
    visited: dict[Any, Any] = {}
    queue: deque[Any] = deque()
    actions = model.actions
    next_state = model.next_state
    transitions = 0

    def judge(state: Any) -> None:
        nonlocal pending
        for name, predicate in always:
            if not predicate(state):
                found.setdefault(name, False)
        for name, predicate in pending:
            if predicate(state):
                found[name] = True
                pending = [entry for entry in pending if entry[0] != name]

    for init in model.init_states():
        if init not in visited:
            visited[init] = None
            queue.append(init)
            judge(init)
    while queue:
        state = queue.popleft()
        for action in actions(state):
            following = next_state(state, action)
            if following is None:
                continue
            transitions += 1
            if following not in visited:
                visited[following] = (state, action)
                queue.append(following)
                for name, predicate in always:
                    if not predicate(following):
                        found.setdefault(name, False)
                for name, predicate in pending:
                    if predicate(following):
                        found[name] = True
                        pending = [entry for entry in pending if entry[0] != name]
    return len(visited), transitions, found


def get_outcome(report: CheckReport[Any, Any]) -> tuple[Any, ...]:
    """Counts, verdicts and trace lengths: what ``workers`` must not change (CHK-14)."""
    lengths = [(r.verdict, None if r.trace is None else len(r.trace)) for r in report.results]
    return report.unique_states, report.transitions, report.max_depth, lengths


def best_of(repeats: int, run: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of ``repeats`` runs (seconds) and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rms", type=int, default=6, help="resource managers (6: 50,816 states)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="also time this many workers")
    parser.add_argument("--eventually", action="store_true", help="add an eventually property")
    args = parser.parse_args(argv)
    model = (TwoPhaseCommitWithProgress if args.eventually else TwoPhaseCommit)(args.rms)

    hand_seconds, (hand_states, hand_transitions, _) = best_of(
        args.repeats, lambda: hand_bfs(model)
    )
    seconds, report = best_of(args.repeats, lambda: check(model))
    if (report.unique_states, report.transitions) != (hand_states, hand_transitions):
        print("MISMATCH between checker and hand-written BFS", file=sys.stderr)
        return 1
    print(
        f"2PC with {args.rms} RMs: {report.unique_states:,} states, "
        f"{report.transitions:,} transitions, depth {report.max_depth}"
    )
    print(f"hand-written BFS  {hand_seconds:7.3f} s  {hand_states / hand_seconds:10,.0f} states/s")
    print(f"checker           {seconds:7.3f} s  {report.unique_states / seconds:10,.0f} states/s")
    ratio = seconds / hand_seconds
    print(f"ratio checker / hand-written: {ratio:.2f}x (target < 1.5x)")
    if args.workers > 1:
        par_seconds, par_report = best_of(args.repeats, lambda: check(model, workers=args.workers))
        same = get_outcome(par_report) == get_outcome(report)
        print(
            f"checker x{args.workers}        {par_seconds:7.3f} s  "
            f"{par_report.unique_states / par_seconds:10,.0f} states/s  "
            f"speed-up {seconds / par_seconds:.2f}x  same counts/verdicts/trace lengths: {same}"
        )
    for line in report.get_summary_lines()[1:]:
        print(line)
    return 0 if ratio < 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
