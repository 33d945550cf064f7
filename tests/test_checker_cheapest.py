"""CHK-15: with a cost per action, traces are the cheapest, then the shortest."""

from __future__ import annotations

import heapq
import random
from array import array
from collections.abc import Sequence
from typing import Any

import pytest

from otamodel.checker import Property, check
from otamodel.checker._cheapest import get_cheapest_arrays
from otamodel.checker._liveness import ReverseGraph, spread_can_reach, spread_can_reach_many


class Ladder:
    """Counter 0..6: ``step`` adds 1; ``jump`` (a "fault", cost 1) adds 3."""

    def init_states(self) -> Sequence[int]:
        return [0]

    def actions(self, n: int) -> list[str]:
        return ["step", "jump"]

    def next_state(self, n: int, action: str) -> int | None:
        nxt = n + (1 if action == "step" else 3)
        return nxt if nxt <= 6 else None

    def properties(self) -> Sequence[Property[int, str]]:
        return [
            Property.always("below five", lambda n: n < 5),
            Property.sometimes("six", lambda n: n == 6),
            Property.eventually("reaches one", lambda n: n == 1, edge_filter=lambda a: a == "step"),
        ]


def cost(action: str) -> int:
    return 1 if action == "jump" else 0


def test_shortest_traces_use_the_fault() -> None:
    report = check(Ladder())
    assert report.get_result("below five").trace.actions == ("jump", "jump")  # type: ignore[union-attr]
    assert report.get_result("six").trace.actions == ("jump", "jump")  # type: ignore[union-attr]


def test_cheapest_traces_avoid_it() -> None:
    report = check(Ladder(), cost=cost)
    assert report.get_result("below five").trace.actions == ("step",) * 5  # type: ignore[union-attr]
    assert report.get_result("six").trace.actions == ("step",) * 6  # type: ignore[union-attr]
    # The only trap for "reaches one" is 2..6 (no way back): the cheapest path into one is
    # two plain steps; the verdicts do not change.
    trap = report.get_result("reaches one")
    assert trap.verdict.value == "violated"
    assert trap.trace is not None and trap.trace.actions == ("step", "step")
    assert [r.verdict for r in report.results] == [r.verdict for r in check(Ladder()).results]


def test_cheapest_with_two_workers_matches() -> None:
    one = check(Ladder(), cost=cost)
    two = check(Ladder(), cost=cost, workers=2)
    for a, b in zip(one.results, two.results, strict=True):
        assert a.verdict == b.verdict
        assert (a.trace is None) == (b.trace is None)
        if a.trace is not None and b.trace is not None:
            assert sum(map(cost, a.trace.actions)) == sum(map(cost, b.trace.actions))
            assert len(a.trace) == len(b.trace)


def get_random_graph(seed: int, count: int = 300) -> tuple[Any, ...]:
    """A random graph in the arrays a search records: edges by source, BFS-like parents
    (state 0 and every 50th state are roots), 6 interned actions."""
    rng = random.Random(seed)
    parents = array("i", [-1 if k % 50 == 0 else rng.randrange(k) for k in range(count)])
    edges = sorted(
        {(rng.randrange(count), rng.randrange(count), rng.randrange(6)) for _ in range(4 * count)}
        | {(parents[k], k, rng.randrange(6)) for k in range(count) if parents[k] >= 0}
    )
    src, dst, act = (array("i", column) for column in zip(*edges, strict=True))
    return count, (src, dst, act), parents


def get_reference_arrays(
    count: int, edges: tuple[array[int], ...], parents: array[int], prices: list[int]
) -> tuple[list[int], ...]:
    """A plain Dijkstra over (price, steps, state) entries: the order CHK-15 specifies."""
    src, dst, act = edges
    price_of = [1 << 62] * count
    steps_of = [0] * count
    via = [(-1, -1)] * count
    heap = [(0, 0, k) for k in range(count) if parents[k] == -1]
    for _, _, k in heap:
        price_of[k] = 0
    heapq.heapify(heap)
    while heap:
        price, steps, state = heapq.heappop(heap)
        if (price, steps) != (price_of[state], steps_of[state]):
            continue
        for edge in range(len(src)):
            if src[edge] != state:
                continue
            target, candidate = dst[edge], price + prices[act[edge]]
            if (candidate, steps + 1) < (price_of[target], steps_of[target]):
                price_of[target], steps_of[target] = candidate, steps + 1
                via[target] = (state, act[edge])
                heapq.heappush(heap, (candidate, steps + 1, target))
    return price_of, steps_of, [v[0] for v in via], [v[1] for v in via]


@pytest.mark.parametrize("whole", [1, 8, 1 << 30])
@pytest.mark.parametrize("seed", range(6))
def test_cheapest_arrays_settle_states_in_price_steps_number_order(
    seed: int, whole: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CHK-15: the bucketed search picks the same predecessors as a heap of (price, steps,
    state) entries, ties included (costs 0, 1 and 2), whether its lists are settled in
    array operations (all, the long ones, none) or state by state."""
    import otamodel.checker._cheapest as cheapest

    monkeypatch.setattr(cheapest, "_WHOLE", whole)
    count, edges, parents = get_random_graph(seed)
    prices = [0, 0, 1, 0, 2, 1]
    found = get_cheapest_arrays(count, edges, parents, prices)
    assert tuple(map(list, found)) == get_reference_arrays(count, edges, parents, prices)
    if seed == 0:  # edges not in source order: sorted first, the same paths
        shuffled = [list(column) for column in edges]
        order = random.Random(1).sample(range(len(edges[0])), len(edges[0]))
        unsorted = tuple(array("i", (column[k] for k in order)) for column in shuffled)
        again = get_cheapest_arrays(count, unsorted, parents, prices)
        # Within a source the shuffled order is the edge order: prices and steps agree.
        assert tuple(map(list, again[:2])) == tuple(map(list, found[:2]))


@pytest.mark.parametrize("seed", range(6))
def test_cheapest_path_ends_in_the_least_price_then_steps_then_number(seed: int) -> None:
    """CHK-15: among the marked states the path goes to the least (price, steps), the
    lowest number among equals (many ties: costs 0 and 1)."""
    from types import SimpleNamespace

    from otamodel.checker._cheapest import CheapestPaths

    count, edges, parents = get_random_graph(seed)
    prices = [0, 1, 0, 0, 1, 0]
    arrays = get_cheapest_arrays(count, edges, parents, prices)
    price_of, steps_of = arrays[0], arrays[1]
    stub = SimpleNamespace(action_table=list(range(6)), fetch_states=list)
    paths = CheapestPaths(stub, arrays=arrays)
    rng = random.Random(seed)
    for _ in range(20):
        targets = bytearray(rng.random() < 0.3 for _ in range(count))
        found = paths.get_path(targets)
        marked = [k for k in range(count) if targets[k]]
        if not marked:
            assert found is None
            continue
        best = min((price_of[k], steps_of[k], k) for k in marked)
        assert found is not None and found[1] == best[2]
        trace = found[0]
        end = trace.steps[-1][1] if trace.steps else trace.init
        assert len(trace.steps) == best[1] and end == best[2]
    assert paths.get_path(bytearray(count)) is None


@pytest.mark.parametrize("seed", range(4))
def test_can_reach_of_many_properties_equals_one_walk_each(seed: int) -> None:
    """CHK-6: the shared backward walk (a bit per property, groups of eight) finds each
    property's own fixpoint."""
    count, edges, _ = get_random_graph(seed)
    reverse = ReverseGraph.from_edges(count, *edges)
    rng = random.Random(seed)
    wanted = {
        position: (
            bytes(1 if rng.random() < 0.02 else 0 for _ in range(count)),
            bytes(rng.randrange(2) for _ in range(6)),
        )
        for position in range(11)
    }
    open_ends = [rng.randrange(count) for _ in range(3)]
    together = spread_can_reach_many(count, reverse, wanted, open_ends)
    for position, (goals, allowed) in wanted.items():
        alone = spread_can_reach(count, reverse, goals, open_ends, allowed)
        assert together[position] == alone
        assert alone == get_reference_reach(count, edges, goals, open_ends, allowed)


def get_reference_reach(
    count: int,
    edges: tuple[array[int], ...],
    goals: bytes,
    open_ends: list[int],
    allowed: bytes,
) -> bytearray:
    """CHK-6 as a plain fixpoint: a source of an allowed edge into a state that can reach
    a goal can too; repeat over every edge until nothing changes."""
    reach = bytearray(goals)
    for state in open_ends:
        reach[state] = 1
    changed = True
    while changed:
        changed = False
        for source, target, action in zip(*edges, strict=True):
            if reach[target] and allowed[action] and not reach[source]:
                reach[source] = changed = True
    return reach


@pytest.mark.parametrize("seed", range(3))
def test_reverse_graph_lists_each_targets_sources_in_edge_order(seed: int) -> None:
    count, edges, _ = get_random_graph(seed)
    reverse = ReverseGraph.from_edges(count, *edges)
    for target in range(count):
        row = range(reverse.offsets[target], reverse.offsets[target + 1])
        expected = [(s, a) for s, t, a in zip(*edges, strict=True) if t == target]
        assert [(reverse.sources[k], reverse.actions[k]) for k in row] == expected
    assert reverse.offsets[count] == len(edges[0])
