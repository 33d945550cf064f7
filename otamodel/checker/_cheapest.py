"""Cheapest counterexamples: among all paths to a target state, the one of least total
action cost, then fewest steps (CHK-15). With "faults cost 1" this is the trace that needs
the fewest faults, which is usually the one a person can read."""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from otamodel.checker._liveness import get_row_starts
from otamodel.checker._search import Exploration
from otamodel.checker._trace import Trace

_UNREACHED = 1 << 62
"""The price of a state no path reaches."""


class CheapestPaths:
    """CHK-15: one Dijkstra over the recorded edges (tree edges included) from every initial
    state, ordered by (total cost, steps, state number), run to the end once and shared by
    every property. A property's trace ends at its target popped first, i.e. the target
    with the least (cost, steps, number); a node's recorded predecessor never changes after
    it is popped, so the path is the one a search stopped at that target would give."""

    def __init__(
        self,
        exploration: Exploration,
        cost: Callable[[Any], int] | None = None,
        *,
        arrays: CheapestArrays | None = None,
    ) -> None:
        """The paths for ``cost``, or those ``arrays`` hold (computed elsewhere by
        :func:`get_cheapest_arrays`)."""
        self.exploration = exploration
        if arrays is None:
            src, dst, act = exploration.edge_src, exploration.edge_dst, exploration.edge_act
            assert src is not None and dst is not None and act is not None and cost is not None
            prices = [cost(action) for action in exploration.action_table]
            arrays = get_cheapest_arrays(
                exploration.count, (src, dst, act), exploration.parents, prices
            )
        self.price_of, self.steps_of, self.via_state, self.via_action = arrays

    def get_trace(self, targets: bytearray) -> Trace[Any, Any] | None:
        """The cheapest trace to a state marked in ``targets`` (``None``: none reachable)."""
        found = self.get_path(targets)
        return None if found is None else found[0]

    def get_path(self, targets: bytearray) -> tuple[Trace[Any, Any], int] | None:
        """:meth:`get_trace` and the number of the state it ends in."""
        import numpy as np

        # The least price, then the fewest steps, then the lowest number: whole-array passes.
        marked = np.flatnonzero(np.frombuffer(targets, dtype=np.uint8))
        if not len(marked):
            return None
        prices = np.frombuffer(self.price_of, dtype=np.int64)[marked]
        price = prices.min()
        if price >= _UNREACHED:
            return None
        tied = marked[prices == price]
        steps = np.frombuffer(self.steps_of, dtype=np.int32)[tied]
        found = int(tied[steps == steps.min()][0])
        table = self.exploration.action_table
        path = [found]
        actions: list[Any] = []
        while self.via_state[path[-1]] >= 0:
            actions.append(table[self.via_action[path[-1]]])
            path.append(self.via_state[path[-1]])
        path.reverse()
        actions.reverse()
        states = self.exploration.fetch_states(path)
        return Trace(states[0], tuple(zip(actions, states[1:], strict=True))), found


CheapestArrays = tuple["array[int]", "array[int]", "array[int]", "array[int]"]
"""Per state: least price, fewest steps at that price, and the predecessor and action."""


_WHOLE = 48
"""A (price, steps) list of at least this many states is settled in array operations; a
shorter one state by state (the fixed cost of the array operations would dominate)."""


def get_cheapest_arrays(
    count: int,
    edges: tuple[array[int], array[int], array[int]],
    parents: array[int],
    prices: list[int],
) -> CheapestArrays:
    """The Dijkstra of :class:`CheapestPaths` over plain data (what a worker is sent)."""
    src, dst, act = edges
    # Both searches record edges by source; sort only if a caller did not.
    in_order = all(a <= b for a, b in pairwise(src))
    order: Sequence[int] = (
        range(len(src)) if in_order else array("i", sorted(range(len(src)), key=src.__getitem__))
    )
    offsets = get_row_starts(src, count)
    price_of = array("q", [_UNREACHED]) * count
    steps_of = array("i", [0]) * count
    via_state = array("i", [-1]) * count
    via_action = array("i", [-1]) * count
    arrays: CheapestArrays = (price_of, steps_of, via_state, via_action)
    whole = _Whole(arrays, edges, offsets, None if in_order else order, prices)
    # The states to settle, by (price, steps): a heap of those keys and a list of states per
    # key, taken in number order — the order of a heap of (price, steps, state) entries
    # (a relaxation always yields a key with one step more, so a key's list is complete
    # when its turn comes).
    roots = [state for state in range(count) if parents[state] == -1]
    for state in roots:
        price_of[state] = 0
    waiting: dict[tuple[int, int], list[int]] = {(0, 0): roots} if roots else {}
    keys = list(waiting)
    pop, push = heapq.heappop, heapq.heappush
    while keys:
        key = pop(keys)
        price, steps = key
        following = steps + 1
        states = waiting.pop(key)
        if len(states) >= _WHOLE:
            for reached, members in whole.settle(states, price, steps):
                slot = waiting.get(reached)
                if slot is None:
                    slot = waiting[reached] = []
                    push(keys, reached)
                slot.extend(members)
            continue
        for state in sorted(states):
            if price_of[state] != price or steps_of[state] != steps:
                continue  # settled cheaper since
            for position in range(offsets[state], offsets[state + 1]):
                edge = order[position]
                target = dst[edge]
                candidate = price + prices[act[edge]]
                best = price_of[target]
                if candidate < best or (candidate == best and following < steps_of[target]):
                    price_of[target] = candidate
                    steps_of[target] = following
                    via_state[target] = state
                    via_action[target] = act[edge]
                    slot = waiting.get((candidate, following))
                    if slot is None:
                        slot = waiting[candidate, following] = []
                        push(keys, (candidate, following))
                    slot.append(target)
    return arrays


class _Whole:
    """The relaxations of one (price, steps) list at once, over NumPy views of the same
    arrays: in number order, then edge order, a target takes the first of its cheapest
    edges if that beats what it has — what relaxing them one by one leaves."""

    def __init__(
        self,
        arrays: CheapestArrays,
        edges: tuple[array[int], array[int], array[int]],
        offsets: array[int],
        order: Sequence[int] | None,
        prices: list[int],
    ) -> None:
        import numpy as np

        from otamodel.checker._numbering import as_int32, get_row_items

        self.np = np
        self.get_row_items = get_row_items
        self.price_of = np.frombuffer(arrays[0], dtype=np.int64)
        self.steps_of, self.via_state, self.via_action = (
            np.frombuffer(a, dtype=np.int32) for a in arrays[1:]
        )
        self.dst, self.act = as_int32(edges[1]), as_int32(edges[2])
        self.offsets = as_int32(offsets).astype(np.int64)
        self.order = None if order is None else np.asarray(order, dtype=np.int64)
        self.prices = np.asarray(prices, dtype=np.int64)

    def settle(
        self, states: list[int], price: int, steps: int
    ) -> list[tuple[tuple[int, int], list[int]]]:
        """Relax the out-edges of ``states`` (those still at ``(price, steps)``); the new
        keys with the states that reached them."""
        np = self.np
        following = steps + 1
        at = np.unique(np.asarray(states, dtype=np.int64))
        at = at[(self.price_of[at] == price) & (self.steps_of[at] == steps)]
        edges, sizes = self.get_row_items(self.offsets, at)
        total = len(edges)
        if not total:
            return []
        if self.order is not None:
            edges = self.order[edges]
        targets = self.dst[edges]
        actions = self.act[edges]
        candidates = price + self.prices[actions]
        # Per target its cheapest edge, the first of those in edge order (a stable sort).
        ranked = np.lexsort((candidates, targets))
        sorted_targets = targets[ranked]
        first = np.ones(total, dtype=bool)
        first[1:] = sorted_targets[1:] != sorted_targets[:-1]
        won = ranked[first]
        target, candidate = targets[won], candidates[won]
        best = self.price_of[target]
        better = (candidate < best) | ((candidate == best) & (following < self.steps_of[target]))
        won, target, candidate = won[better], target[better], candidate[better]
        self.price_of[target] = candidate
        self.steps_of[target] = following
        self.via_state[target] = np.repeat(at, sizes)[won]
        self.via_action[target] = actions[won]
        reached = []
        for value in np.unique(candidate).tolist():
            reached.append(((value, following), target[candidate == value].tolist()))
        return reached


def get_cheapest_trace(
    exploration: Exploration, targets: bytearray, cost: Callable[[Any], int]
) -> Trace[Any, Any] | None:
    """CHK-15: the cheapest trace to a target (see :class:`CheapestPaths`)."""
    return CheapestPaths(exploration, cost).get_trace(targets)
