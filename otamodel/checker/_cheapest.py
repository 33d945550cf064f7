"""Cheapest counterexamples: among all paths to a target state, the one of least total
action cost, then fewest steps (CHK-15). With "faults cost 1" this is the trace that needs
the fewest faults, which is usually the one a person can read."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from otamodel.checker._search import Exploration
from otamodel.checker._trace import Trace


def get_cheapest_trace(
    exploration: Exploration, targets: bytearray, cost: Callable[[Any], int]
) -> Trace[Any, Any] | None:
    """CHK-15: Dijkstra over the recorded edges (tree edges included) from every initial
    state, ordered by (total cost, steps, state number); ``None`` when no target is reached."""
    found = get_cheapest_path(exploration, targets, cost)
    return None if found is None else found[0]


def get_cheapest_path(
    exploration: Exploration, targets: bytearray, cost: Callable[[Any], int]
) -> tuple[Trace[Any, Any], int] | None:
    """:func:`get_cheapest_trace` and the number of the state it ends in."""
    src, dst, act = exploration.edge_src, exploration.edge_dst, exploration.edge_act
    assert src is not None and dst is not None and act is not None
    count = exploration.count
    table = exploration.action_table
    prices = [cost(action) for action in table]
    order = sorted(range(len(src)), key=src.__getitem__)
    offsets = [0] * (count + 1)
    for edge in order:
        offsets[src[edge] + 1] += 1
    for k in range(count):
        offsets[k + 1] += offsets[k]
    parents = exploration.parents
    best: dict[int, tuple[int, int]] = {}
    via: dict[int, tuple[int, int]] = {}
    heap: list[tuple[int, int, int]] = []
    for state in range(count):
        if parents[state] == -1:
            best[state] = (0, 0)
            heap.append((0, 0, state))
    heapq.heapify(heap)
    found = -1
    while heap:
        price, steps, state = heapq.heappop(heap)
        if best.get(state) != (price, steps):
            continue
        if targets[state]:
            found = state
            break
        for position in range(offsets[state], offsets[state + 1]):
            edge = order[position]
            target = dst[edge]
            candidate = (price + prices[act[edge]], steps + 1)
            if candidate < best.get(target, (1 << 62, 0)):
                best[target] = candidate
                via[target] = (state, act[edge])
                heapq.heappush(heap, (*candidate, target))
    if found < 0:
        return None
    path = [found]
    actions: list[Any] = []
    while path[-1] in via:
        previous, action = via[path[-1]]
        actions.append(table[action])
        path.append(previous)
    path.reverse()
    actions.reverse()
    states = exploration.fetch_states(path)
    return Trace(states[0], tuple(zip(actions, states[1:], strict=True))), found
