"""Checker vs a minimal hand-written BFS over the OTA model (same scenario, same process).

Both explore the scenario exhaustively and evaluate the always-properties on every state;
the checker additionally records parent links and edges for traces and eventually-verdicts.
Prints states, seconds, states/s and the ratio checker/hand-written (goal: under 1.5x).

    python bench/bench_ota.py [--scenario default] [--repeat 1]
"""

from __future__ import annotations

import argparse
import time
from collections import deque

from otamodel.checker import PropertyKind, check
from otamodel.env import enabled_actions, step
from otamodel.model import World
from otamodel.verify._properties import OtaModel


def hand_bfs(model: OtaModel) -> int:
    """The baseline: dedup set, FIFO queue, always-properties per new state."""
    invariants = [p.predicate for p in model.properties() if p.kind is PropertyKind.ALWAYS]
    start = model.init_states()[0]
    seen: set[World] = {start}
    queue: deque[World] = deque([start])
    violations = 0
    while queue:
        world = queue.popleft()
        for action in enabled_actions(world):
            result = step(world, action)
            if result.is_refused:
                continue
            nxt = result.world
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
                violations += sum(1 for inv in invariants if not inv(nxt))
    return len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    model = OtaModel(args.scenario)
    best_hand = best_check = float("inf")
    states = 0
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        states = hand_bfs(model)
        best_hand = min(best_hand, time.perf_counter() - t0)
        t0 = time.perf_counter()
        report = check(model, shortest=True)  # exploration only: no cheapest-trace pass
        best_check = min(best_check, time.perf_counter() - t0)
        assert report.unique_states == states, (report.unique_states, states)
    print(f"scenario {args.scenario}: {states:,} states")
    print(f"  hand-written BFS: {best_hand:6.2f} s  ({states / best_hand:,.0f} states/s)")
    print(f"  otamodel.checker:   {best_check:6.2f} s  ({states / best_check:,.0f} states/s)")
    print(f"  ratio checker / hand-written: {best_check / best_hand:.2f}x (goal < 1.5x)")


if __name__ == "__main__":
    main()
