"""The violations of ``always`` properties (CHK-30): the violating initial states and edges
whose source is clean (reached without an earlier violation), found from plain arrays, in this
process or in a worker process that was sent them (CHK-36)."""

from __future__ import annotations

import operator
from array import array
from collections.abc import Sequence
from itertools import compress, pairwise
from typing import TYPE_CHECKING, Any

from otamodel.checker._bits import BIT_OF, FLIP, get_ones
from otamodel.checker._model import Property, PropertyKind

if TYPE_CHECKING:
    from otamodel.checker._liveness import ReverseGraph
    from otamodel.checker._search import Exploration

Edge = tuple[int, int, int]
"""(source, interned action, target); source -1: an initial state."""


def get_root_count(level_starts: Sequence[int], count: int) -> int:
    """How many initial states were explored (numbered first, the only ones without a
    parent)."""
    return level_starts[1] if len(level_starts) > 1 else count


def gather_edge_flags(
    count: int, src: array[int], dst: array[int], flags: Sequence[bytes | bytearray]
) -> list[tuple[bytes, bytes]]:
    """For each per-state 0/1 byte string, its value at every edge's source and target.
    Eight strings are packed into the bits of one byte string first, so one gather over the
    edges serves eight of them."""
    out: list[tuple[bytes, bytes]] = []
    for start in range(0, len(flags), 8):
        chunk = flags[start : start + 8]
        packed = 0
        for bit, values in enumerate(chunk):
            packed |= int.from_bytes(values) << bit  # each byte 0/1: stays in its byte
        table = packed.to_bytes(count)
        at_src = bytes(map(table.__getitem__, src))
        at_dst = bytes(map(table.__getitem__, dst))
        out.extend(
            (at_src.translate(BIT_OF[bit]), at_dst.translate(BIT_OF[bit]))
            for bit in range(len(chunk))
        )
    return out


class EdgeArrays:
    """The explored edges and the BFS tree as plain arrays: what the violations are found
    from (CHK-30), in this process or in a worker that was sent the arrays (CHK-36). The
    reverse graph is built on first use unless given."""

    def __init__(
        self,
        count: int,
        edges: tuple[array[int], array[int], array[int]],
        parents: array[int],
        level_starts: Sequence[int],
        reverse: ReverseGraph | None = None,
    ) -> None:
        self.count = count
        self.src, self.dst, self.act = edges
        self.parents = parents
        self.level_starts = level_starts
        self._reverse = reverse

    def get_reverse(self) -> ReverseGraph:
        if self._reverse is None:
            from otamodel.checker._liveness import ReverseGraph

            self._reverse = ReverseGraph.from_edges(self.count, self.src, self.dst, self.act)
        return self._reverse


Violations = dict[int, list[Edge]]
"""Per ``always`` property position, its violating initial states and edges (CHK-30)."""


Candidates = tuple[list[Edge], list[int], "bytearray | None"]
"""A property's violations before any backward search (:func:`find_candidates`): its
violating initial states, its candidate edges (indices, in edge order) and, when the BFS tree
does not tell for every candidate whether its source is clean, every state's tree cleanness
(:func:`get_tree_clean`; ``None``: every candidate's source is clean)."""


def find_candidates(
    arrays: EdgeArrays,
    values: Sequence[int],
    flags: tuple[bytes, bytes] | None,
    *,
    measured: bool,
) -> Candidates:
    """CHK-30: the violating initial states, and the edges from a state where the property
    holds (``values``: 0) into one where it fails (or, ``measured``, where the measure rises);
    an edge counts only if its source is clean (reached without an earlier violation: a
    later one on the same path repeats it), which the BFS tree decides for most sources and
    :func:`resolve_candidates` for the others. ``flags``: the values at each edge's source and
    target, if gathered."""
    if not any(values):
        return [], [], None
    src, dst, parents = arrays.src, arrays.dst, arrays.parents
    if flags is not None:
        at_src, at_dst = flags
    else:
        at_src = bytes(map(values.__getitem__, src))
        at_dst = bytes(map(values.__getitem__, dst))
    roots = get_root_count(arrays.level_starts, arrays.count)
    out: list[Edge] = [(-1, -1, k) for k in get_ones(values[:roots]) if parents[k] == -1]
    if measured:
        return out, list(compress(range(len(src)), map(operator.gt, at_dst, at_src))), None
    into = int.from_bytes(at_dst) & ~int.from_bytes(at_src)
    rises = get_ones(into.to_bytes(len(src)))
    if not int.from_bytes(at_src) & ~int.from_bytes(at_dst):
        return out, rises, None  # no edge leads out of a violation: every source is clean
    tree = get_tree_clean(arrays, values)
    if all(map(tree.__getitem__, map(src.__getitem__, rises))):
        return out, rises, None
    return out, rises, tree


def resolve_candidates(
    arrays: EdgeArrays, values: Sequence[int], candidates: Candidates
) -> list[Edge]:
    """CHK-30: the violations among :func:`find_candidates`' candidates: those whose source
    is clean (a backward search for the sources the BFS tree does not answer for)."""
    out, rises, tree = candidates
    src, dst, act = arrays.src, arrays.dst, arrays.act
    if tree is not None:
        clean = Clean(arrays, values, tree)
        rises = [e for e in rises if clean.is_clean(src[e])]
    return out + [(src[e], act[e], dst[e]) for e in rises]


def find_violations(
    arrays: EdgeArrays,
    values: Sequence[int],
    flags: tuple[bytes, bytes] | None,
    *,
    measured: bool,
) -> list[Edge]:
    """CHK-30: the violating initial states and edges (:func:`find_candidates`, then
    :func:`resolve_candidates`)."""
    candidates = find_candidates(arrays, values, flags, measured=measured)
    return resolve_candidates(arrays, values, candidates)


def get_violation_candidates(
    count: int,
    edges: tuple[array[int], array[int], array[int]],
    parents: array[int],
    level_starts: Sequence[int],
    wanted: dict[int, tuple[bytes | bytearray, bool]],
) -> dict[int, Candidates]:
    """:func:`find_candidates` of several properties (``wanted``: position -> its values and
    whether they are a measure) from plain arrays: the task a worker process runs while the
    coordinator builds the reverse graph (CHK-36), which :func:`resolve_violations` then uses
    for the few backward searches."""
    arrays = EdgeArrays(count, edges, parents, level_starts)
    plain = {k: v for k, (v, measured) in wanted.items() if not measured and any(v)}
    gathered = gather_edge_flags(count, arrays.src, arrays.dst, list(plain.values()))
    flags = dict(zip(plain, gathered, strict=True))
    return {
        k: find_candidates(arrays, values, flags.get(k), measured=measured)
        for k, (values, measured) in wanted.items()
    }


def resolve_violations(
    arrays: EdgeArrays,
    wanted: dict[int, tuple[bytes | bytearray, bool]],
    candidates: dict[int, Candidates],
) -> Violations:
    """:func:`resolve_candidates` of every property of :func:`get_violation_candidates`."""
    return {k: resolve_candidates(arrays, wanted[k][0], found) for k, found in candidates.items()}


class Clean:
    """CHK-30: whether a state is reachable from a non-violating initial state through
    non-violating states only (an edge out of any other state repeats an earlier violation).
    Asked for the sources of violating edges only: the BFS-tree path usually answers; else a
    backward search over non-violating predecessors looks for a state the tree answers for."""

    def __init__(
        self, arrays: EdgeArrays, values: Sequence[int], tree: bytearray | None = None
    ) -> None:
        """``tree``: :func:`get_tree_clean` of ``values``, if computed already."""
        self.arrays, self.values = arrays, values
        self.known: dict[int, bool] = {}
        self.tree = tree if tree is not None else get_tree_clean(arrays, values)

    def is_clean(self, state: int) -> bool:
        known = self.known.get(state)
        if known is not None:
            return known
        if self.values[state]:
            return False
        if self.tree[state]:
            return True
        reverse, values, tree = self.arrays.get_reverse(), self.values, self.tree
        known_of = self.known
        offsets, sources = reverse.offsets, reverse.sources
        seen = {state}
        stack = [state]
        while stack:
            target = stack.pop()
            for slot in range(offsets[target], offsets[target + 1]):
                source = sources[slot]
                if source in seen or values[source]:
                    continue
                found = known_of.get(source)
                if found is False:
                    continue  # none of its ancestors is clean either
                if found or tree[source]:
                    known_of[state] = True
                    return True
                seen.add(source)
                stack.append(source)
        # Every state seen has only the ancestors seen, none of them clean.
        known_of.update(dict.fromkeys(seen, False))
        return False


def get_tree_clean(arrays: EdgeArrays, values: Sequence[int]) -> bytearray:
    """1 where no state on the BFS-tree path from an initial state violates (``values``
    non-zero), level by level with C-level maps (a parent is always in an earlier level)."""
    count = arrays.count
    flags = values if isinstance(values, bytes | bytearray) else bytes(map(bool, values))
    holds = flags.translate(FLIP)
    parents = arrays.parents
    clean = bytearray(count)
    bounds = [*arrays.level_starts, count]
    for start, end in pairwise(bounds):
        if start >= end:
            continue
        if start == 0:
            clean[start:end] = holds[start:end]  # the initial states
        else:
            above = map(clean.__getitem__, parents[start:end])
            clean[start:end] = bytes(map(operator.and_, holds[start:end], above))
    return clean


def get_violation_inputs(
    exploration: Exploration, properties: Sequence[Property[Any, Any]]
) -> dict[int, tuple[bytes | bytearray, bool]] | None:
    """What :func:`get_violation_candidates` needs to find the
    violations of every ``always`` property elsewhere (CHK-36): per position, the values
    the search recorded and whether they are a measure; ``None`` if some were not recorded."""
    wanted: dict[int, tuple[bytes | bytearray, bool]] = {}
    for position, prop in enumerate(properties):
        if prop.kind is not PropertyKind.ALWAYS:
            continue
        if prop.measure is not None and position in exploration.measures:
            wanted[position] = (exploration.measures[position], True)
        elif prop.measure is None and position in exploration.hit_bits:
            wanted[position] = (exploration.hit_bits[position].get_bytes(), False)
        else:
            return None
    return wanted


__all__ = [
    "Candidates",
    "Clean",
    "EdgeArrays",
    "Violations",
    "find_candidates",
    "find_violations",
    "gather_edge_flags",
    "get_root_count",
    "get_tree_clean",
    "get_violation_candidates",
    "get_violation_inputs",
    "resolve_candidates",
    "resolve_violations",
]
