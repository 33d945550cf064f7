"""``eventually`` properties: backward reachability from goal states over the recorded edges."""

from __future__ import annotations

import operator
from array import array
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from otamodel.checker._bits import BIT_OF

if TYPE_CHECKING:
    from otamodel.checker._search import Exploration


def get_row_starts(rows: Iterable[int], count: int) -> array[int]:
    """Compressed rows: where each of ``count`` rows starts when items are grouped by row
    (``rows`` gives each item's row); row ``r`` spans ``starts[r] : starts[r + 1]``."""
    import numpy as np

    from otamodel.checker._numbering import to_array

    given = rows if isinstance(rows, array) else array("i", rows)
    starts = np.zeros(count + 1, dtype=np.int64)
    if len(given):
        values = np.frombuffer(given, dtype=np.int32 if given.itemsize == 4 else np.int64)
        np.cumsum(np.bincount(values, minlength=count)[:count], out=starts[1:])
    return to_array(starts)


class ReverseGraph:
    """The explored edges grouped by target: ``sources[offsets[v]:offsets[v + 1]]`` are the
    states with an edge into ``v`` and ``actions[...]`` the interned actions of those edges."""

    def __init__(self, exploration: Exploration) -> None:
        edge_src = exploration.edge_src
        targets = exploration.edge_dst
        edge_actions = exploration.edge_act
        assert edge_src is not None and targets is not None and edge_actions is not None
        self._build(exploration.count, edge_src, targets, edge_actions)

    @classmethod
    def from_edges(
        cls, count: int, edge_src: array[int], targets: array[int], edge_actions: array[int]
    ) -> ReverseGraph:
        """The reverse graph of ``count`` states and the given edges (a worker builds it
        from the arrays it was sent)."""
        reverse = cls.__new__(cls)
        reverse._build(count, edge_src, targets, edge_actions)
        return reverse

    def _build(
        self, count: int, edge_src: array[int], targets: array[int], edge_actions: array[int]
    ) -> None:
        # A stable sort by target: each target's sources in edge order.
        import numpy as np

        from otamodel.checker._numbering import as_int32, to_array

        self.offsets = get_row_starts(targets, count)
        order = np.argsort(as_int32(targets), kind="stable")
        self.sources = to_array(as_int32(edge_src)[order])
        self.actions = to_array(as_int32(edge_actions)[order])


def find_trap(
    exploration: Exploration,
    reverse: ReverseGraph,
    goal_bits: bytearray,
    edge_filter: Callable[[Any], bool] | None,
) -> int:
    """The shallowest trap state (see :func:`get_can_reach`), or ``-1``."""
    return get_can_reach(exploration, reverse, goal_bits, edge_filter).find(0)


def get_can_reach(
    exploration: Exploration,
    reverse: ReverseGraph,
    goal_bits: bytearray,
    edge_filter: Callable[[Any], bool] | None,
) -> bytearray:
    """One byte per state: 1 if a goal state can be reached over edges passing
    ``edge_filter``; the 0 states are traps (CHK-6, CHK-7), the lowest-numbered being the
    shallowest (CHK-8).

    States that were not expanded, or lost a successor to ``within_boundary``, might still
    reach a goal outside the explored graph, so they count as able to (CHK-10): a reported
    trap is a real one even in a bounded search.
    """
    return spread_can_reach(
        exploration.count,
        reverse,
        goal_bits,
        get_open_ends(exploration),
        get_allowed(exploration.action_table, edge_filter),
    )


def get_open_ends(exploration: Exploration) -> list[int]:
    """States that might reach a goal outside the explored graph (CHK-10): not expanded, or
    lost a successor to ``within_boundary``."""
    return [*exploration.unexpanded, *exploration.open_states]


def get_allowed(table: list[Any], edge_filter: Callable[[Any], bool] | None) -> bytes:
    """Per interned action, 1 if ``edge_filter`` lets its edges count."""
    return bytes(1 if edge_filter is None or edge_filter(a) else 0 for a in table)


def spread_can_reach(
    count: int,
    reverse: ReverseGraph,
    goal_bits: bytes | bytearray,
    open_ends: list[int],
    allowed: bytes,
) -> bytearray:
    """:func:`get_can_reach` over plain data (what a worker process is sent)."""
    return _spread_bits(count, reverse, [(goal_bits, allowed)], open_ends)


def get_can_reach_all(
    count: int,
    edges: tuple[array[int], array[int], array[int]],
    wanted: dict[int, tuple[bytes | bytearray, bytes]],
    open_ends: list[int],
) -> dict[int, bytearray]:
    """Per property position, its can-reach bytes (``wanted``: its goal bits and allowed
    actions), over a reverse graph built here: the task a worker process runs while the
    coordinator does other work (CHK-36)."""
    reverse = ReverseGraph.from_edges(count, *edges)
    return spread_can_reach_many(count, reverse, wanted, open_ends)


_GROUP = 8
"""Properties whose can-reach bytes one walk computes (a bit each in a byte a state)."""


def spread_can_reach_many(
    count: int,
    reverse: ReverseGraph,
    wanted: Mapping[int, tuple[bytes | bytearray, bytes]],
    open_ends: list[int],
) -> dict[int, bytearray]:
    """:func:`spread_can_reach` of several properties (``wanted``: position -> goal bits and
    allowed actions): one backward walk per eight of them, a bit per property in a byte per
    state, so an edge is followed once for all the properties it lets reach further (each
    result is the same fixpoint a walk of its own finds)."""
    positions = list(wanted)
    out: dict[int, bytearray] = {}
    for first in range(0, len(positions), _GROUP):
        group = positions[first : first + _GROUP]
        if len(group) == 1:
            goals, allowed = wanted[group[0]]
            out[group[0]] = spread_can_reach(count, reverse, goals, open_ends, allowed)
            continue
        bits = _spread_bits(count, reverse, [wanted[k] for k in group], open_ends)
        for i, position in enumerate(group):
            out[position] = bytearray(bits.translate(BIT_OF[i]))
    return out


def _spread_bits(
    count: int,
    reverse: ReverseGraph,
    group: list[tuple[bytes | bytearray, bytes]],
    open_ends: list[int],
) -> bytearray:
    """Bit ``i`` of a state's byte: it can reach a goal of ``group[i]`` over edges that
    property allows (open ends reach every goal, CHK-10). The least fixpoint, a backward
    breadth-first wave at a time in whole-array operations: the edges into the states whose
    bits grew carry those bits, as far as each edge's action lets them, to its source."""
    import numpy as np

    from otamodel.checker._numbering import as_int32, get_row_items

    reach = np.zeros(count, dtype=np.uint8)
    for i, (goals, _) in enumerate(group):
        marked = np.frombuffer(bytes(goals[:count]), dtype=np.uint8) != 0
        reach[: len(marked)][marked] |= np.uint8(1 << i)
    if open_ends:
        reach[np.asarray(open_ends, dtype=np.int64)] = (1 << len(group)) - 1
    actions = len(group[0][1])
    masks = np.zeros(actions, dtype=np.uint8)
    for i, (_, allowed) in enumerate(group):
        masks |= (np.frombuffer(allowed, dtype=np.uint8)[:actions] != 0).astype(np.uint8) << i
    offsets = as_int32(reverse.offsets).astype(np.int64)
    sources, edge_actions = as_int32(reverse.sources), as_int32(reverse.actions)
    wave = np.flatnonzero(reach)
    while len(wave):
        # Every edge into the wave, and the bits its target carries.
        edges, sizes = get_row_items(offsets, wave)
        if not len(edges):
            break
        carried = np.repeat(reach[wave], sizes) & masks[edge_actions[edges]]
        source = sources[edges]
        new = carried & ~reach[source]
        grown = new != 0
        source, new = source[grown], new[grown]
        np.bitwise_or.at(reach, source, new)
        wave = np.unique(source)
    return bytearray(reach.tobytes())


class ForwardGraph:
    """The explored edges grouped by source (built once, only when a lasso is wanted)."""

    def __init__(self, exploration: Exploration) -> None:
        edge_src = exploration.edge_src
        assert edge_src is not None
        self.offsets = get_row_starts(edge_src, exploration.count)
        if all(map(operator.le, edge_src, islice(edge_src, 1, None))):
            # The search records edges by source already (CHK-14): each row is a range.
            self.edges = array("i", range(len(edge_src)))
            return
        fill = array("i", self.offsets)
        self.edges = array("i", bytes(4 * len(edge_src)))
        for edge, source in enumerate(edge_src):
            self.edges[fill[source]] = edge
            fill[source] += 1


def get_lasso(
    exploration: Exploration,
    forward: ForwardGraph,
    start: int,
    can_reach: bytearray,
    edge_filter: Callable[[Any], bool] | None,
    limit: int = 200,
) -> list[tuple[int, int]]:
    """CHK-18: why a trap stays one: from ``start``, follow allowed edges (the first one to a
    state not on the path yet) until the path closes a cycle, reaches a state with no allowed
    edge, or ``limit`` steps. Every state on it is a trap too. Returns ``(action id, state)``
    steps."""
    edge_dst = exploration.edge_dst
    edge_act = exploration.edge_act
    assert edge_dst is not None and edge_act is not None
    table = exploration.action_table
    allowed = [edge_filter is None or edge_filter(a) for a in table]
    path: list[tuple[int, int]] = []
    seen = {start}
    state = start
    while len(path) < limit:
        edges = forward.edges[forward.offsets[state] : forward.offsets[state + 1]]
        options = [
            (edge_act[e], edge_dst[e])
            for e in edges
            if allowed[edge_act[e]] and not can_reach[edge_dst[e]]
        ]
        if not options:
            break
        fresh = [(a, t) for a, t in options if t not in seen]
        action, target = (fresh or options)[0]
        path.append((action, target))
        if target in seen:
            break
        seen.add(target)
        state = target
    return path
