"""The graph work behind findings (CHK-30, CHK-31, CHK-34): the explored edges with cheapest
distances, the last causes before the system's own steps, clean sources of violations, and the
trap regions of ``eventually`` properties with their bottom components."""

from __future__ import annotations

import operator
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

from otamodel.checker._bits import get_ones
from otamodel.checker._liveness import get_row_starts
from otamodel.checker._model import Property
from otamodel.checker._trace import Trace
from otamodel.checker._violations import Edge, EdgeArrays, gather_edge_flags, get_root_count

if TYPE_CHECKING:
    from otamodel.checker._cheapest import CheapestPaths
    from otamodel.checker._liveness import ReverseGraph
    from otamodel.checker._search import Exploration

Key = tuple[str, ...]


class Graph:
    """The explored edges by target (the reverse graph, shared with the verdicts) and the
    cheapest distances from the initial states (CHK-15; shared with the verdicts too)."""

    def __init__(
        self,
        exploration: Exploration,
        cost: Callable[[Any], int] | None,
        reverse: ReverseGraph | None = None,
        paths: CheapestPaths | None = None,
    ) -> None:
        from otamodel.checker._cheapest import CheapestPaths
        from otamodel.checker._liveness import ReverseGraph

        src, dst, act = exploration.edge_src, exploration.edge_dst, exploration.edge_act
        assert src is not None and dst is not None and act is not None
        self.exploration = exploration
        self.src, self.dst, self.act = src, dst, act
        self.prices = [0 if cost is None else cost(a) for a in exploration.action_table]
        self.reverse = reverse if reverse is not None else ReverseGraph(exploration)
        if cost is None:
            self._use_tree()
        else:
            if paths is None:
                paths = CheapestPaths(exploration, cost)
            self.price, self.steps = paths.price_of, paths.steps_of
            self.via_state, self.via_action = paths.via_state, paths.via_action

    def _use_tree(self) -> None:
        exploration = self.exploration
        self.price = array("q", bytes(8 * exploration.count))
        steps = array("i", bytes(4 * exploration.count))
        starts = exploration.level_starts
        for depth, start in enumerate(starts):
            end = starts[depth + 1] if depth + 1 < len(starts) else exploration.count
            for k in range(start, end):
                steps[k] = depth
        self.steps = steps
        self.via_state = exploration.parents
        self.via_action = exploration.parent_actions

    def get_edge_flags(self, flags: Sequence[bytes | bytearray]) -> list[tuple[bytes, bytes]]:
        """For each per-state 0/1 byte string, its value at every edge's source and target
        (:func:`gather_edge_flags`)."""
        return gather_edge_flags(self.exploration.count, self.src, self.dst, flags)

    def get_arrays(self) -> EdgeArrays:
        """The edges and BFS tree as :class:`EdgeArrays` (sharing this reverse graph)."""
        exploration = self.exploration
        edges = (self.src, self.dst, self.act)
        return EdgeArrays(
            exploration.count, edges, exploration.parents, exploration.level_starts, self.reverse
        )

    def get_rank(self, source: int, action: int) -> tuple[int, int, int, int]:
        """How cheap a trace ending with the edge ``source --action-->`` is: (cost, steps,
        source, action id)."""
        return (self.price[source] + self.prices[action], self.steps[source] + 1, source, action)

    def get_path(self, state: int) -> tuple[list[int], list[int]]:
        """The cheapest path to ``state``: its states and the interned actions between them."""
        states = [state]
        actions: list[int] = []
        while self.via_state[states[-1]] >= 0:
            actions.append(self.via_action[states[-1]])
            states.append(self.via_state[states[-1]])
        states.reverse()
        actions.reverse()
        return states, actions

    def get_trace(self, states: list[int], actions: list[int]) -> Trace[Any, Any]:
        table = self.exploration.action_table
        objects = self.exploration.fetch_states(states)
        steps = tuple((table[a], s) for a, s in zip(actions, objects[1:], strict=True))
        return Trace(objects[0], steps)

    def get_action(self, source: int, target: int) -> int:
        """The lowest interned action of an edge ``source -> target``."""
        reverse = self.reverse
        best = -1
        for slot in range(reverse.offsets[target], reverse.offsets[target + 1]):
            if reverse.sources[slot] == source and (best < 0 or reverse.actions[slot] < best):
                best = reverse.actions[slot]
        assert best >= 0
        return best


class Causes:
    """CHK-34: the last causes before states reached without one. A model may mark which
    actions are causes (``is_cause_action``: faults, inputs) and which of the others are the
    system's own progress (``is_own_action``); a step of its own progress is attributed to
    every cause edge from which it can be reached over non-cause edges only (and to the
    start, from an initial state). The sets are a fixpoint over the graph, so they do not
    depend on exploration order."""

    def __init__(self, graph: Graph, is_cause: bytes, needed: Iterable[int]) -> None:
        reverse = graph.reverse
        offsets, sources, actions = reverse.offsets, reverse.sources, reverse.actions
        parents = graph.exploration.parents
        count = graph.exploration.count
        self.graph, self.is_cause = graph, is_cause
        inside = bytearray(count)
        stack = list(set(needed))  # the order the inputs and starts are found in
        for state in stack:
            inside[state] = 1
        edge_src, edge_dst = array("i"), array("i")  # own-progress edges inside
        inputs: list[tuple[int, int, int]] = []  # (source, action, target)
        starts: list[int] = []
        while stack:
            state = stack.pop()
            if parents[state] == -1:
                starts.append(state)
            for slot in range(offsets[state], offsets[state + 1]):
                source, action = sources[slot], actions[slot]
                if is_cause[action]:
                    inputs.append((source, action, state))
                    continue
                edge_src.append(source)
                edge_dst.append(state)
                if not inside[source]:
                    inside[source] = 1
                    stack.append(source)
        # The own-progress edges in compressed rows (the fixpoint of set_keys walks them).
        order = sorted(range(len(edge_src)), key=edge_src.__getitem__)
        self.targets = array("i", map(edge_dst.__getitem__, order))
        self.firsts = get_row_starts(edge_src, count)
        self.inputs, self.starts = inputs, starts
        self.keys: list[Key] = []
        self.masks: dict[int, int] = {}
        self.bit_of: dict[tuple[int, int, int], int] = {}

    def set_keys(self, start_key: Key, input_keys: list[Key]) -> None:
        """Number the distinct cause keys and propagate them (a worklist fixpoint)."""
        bits: dict[Key, int] = {}
        masks = self.masks
        pending: list[int] = []
        for state in self.starts:
            bit = bits.setdefault(start_key, len(bits))
            masks[state] = masks.get(state, 0) | (1 << bit)
            pending.append(state)
        for edge, key in zip(self.inputs, input_keys, strict=True):
            bit = bits.setdefault(key, len(bits))
            self.bit_of[edge] = bit
            masks[edge[2]] = masks.get(edge[2], 0) | (1 << bit)
            pending.append(edge[2])
        self.keys = [key for key, _ in sorted(bits.items(), key=lambda item: item[1])]
        self.start_bit = bits.get(start_key, -1)
        targets, firsts = self.targets, self.firsts
        while pending:
            state = pending.pop()
            mask = masks[state]
            for target in targets[firsts[state] : firsts[state + 1]]:
                old = masks.get(target, 0)
                if mask & ~old:
                    masks[target] = old | mask
                    pending.append(target)

    def get_causes(self, state: int) -> list[int]:
        return _bits(self.masks.get(state, 0))

    def get_path_to(self, state: int, bit: int) -> tuple[list[int], list[int]]:
        """A cheap path to ``state`` whose last cause is ``bit``: the nearest such cause edge
        (fewest own-progress steps after it; then cheapest), the cheapest path to it."""
        graph = self.graph
        reverse = graph.reverse
        offsets, sources, actions = reverse.offsets, reverse.sources, reverse.actions
        parents = graph.exploration.parents
        after: dict[int, int] = {state: -1}  # state -> the next state towards ``state``
        frontier = [state]
        while frontier:
            found: list[tuple[tuple[int, ...], int, int, int]] = []
            following: list[int] = []
            for target in frontier:
                if bit == self.start_bit and parents[target] == -1:
                    found.append(((0, 0, target, -1), -1, -1, target))
                for slot in range(offsets[target], offsets[target + 1]):
                    source, action = sources[slot], actions[slot]
                    if self.is_cause[action]:
                        if self.bit_of.get((source, action, target)) == bit:
                            found.append((graph.get_rank(source, action), source, action, target))
                    elif source not in after:
                        after[source] = target
                        following.append(source)
            if found:
                _, source, action, entry = min(found)
                moves: list[int]
                if source < 0:
                    path, moves = [entry], []
                else:
                    path, moves = graph.get_path(source)
                    path.append(entry)
                    moves.append(action)
                while path[-1] != state:
                    nxt = after[path[-1]]
                    moves.append(graph.get_action(path[-1], nxt))
                    path.append(nxt)
                return path, moves
            frontier = following
        return graph.get_path(state)  # pragma: no cover - every cause bit has an edge


class TrapGraph:
    """The allowed edges out of the trap states of every ``eventually`` property sharing one
    edge filter, and their strongly connected components (computed once: each property's
    trap region is closed under its allowed edges, so its components are among these)."""

    def __init__(
        self,
        graph: Graph,
        table: list[Any],
        prop: Property[Any, Any],
        traps: list[bytearray],
        edge_flags: list[tuple[bytes, bytes]],
        *,
        parts: TrapParts | None = None,
    ) -> None:
        """``traps``: the group's can-reach bytes; ``edge_flags`` their values at each
        edge's source and target (:meth:`Graph.get_edge_flags`); ``parts``: the graph as
        :func:`get_trap_parts` computed it elsewhere (a worker process, CHK-36)."""
        if parts is None:
            allowed = get_allowed_edges(table, prop)
            edges = (graph.src, graph.dst, graph.act)
            parts = get_trap_parts(graph.exploration.count, edges, allowed, traps, edge_flags)
        self.starts, self.targets, self.components, self.component_of, self.is_sink = parts

    def successors(self, state: int) -> array[int]:
        """The targets of ``state``'s allowed edges, ascending."""
        return self.targets[self.starts[state] : self.starts[state + 1]]


TrapParts = tuple["array[int]", "array[int]", "Components", "array[int]", list[bool]]
"""A trap graph's allowed edges (``starts``, ``targets``), components, component of each
state and whether each component is a sink."""


def get_allowed_edges(table: list[Any], prop: Property[Any, Any]) -> bytes:
    """Per interned action, 1 if ``prop`` lets its edges count."""
    return bytes(1 if prop.is_edge_allowed(a) else 0 for a in table)


TrapRegion = tuple[list[list[int]], list[Edge]]
"""A property's trap region as the classification reads it: its bottom components (sorted
members each) and its entry edges (``(-1, -1, state)`` for an initial trap state)."""


def get_trap_region(
    parts: tuple[Components, list[bool]],
    edges: tuple[array[int], array[int], array[int]],
    roots: int,
    can_reach: bytearray,
    edge_flags: tuple[bytes, bytes],
) -> TrapRegion:
    """CHK-31: a property's bottom components and entry edges from its group's trap graph
    (``parts``: its components and which are sinks), the edge arrays, the number of initial
    states and the property's can-reach bytes and edge flags."""
    components, is_sink = parts
    # A trap region is closed under its allowed edges: its bottom components are the
    # shared graph's sinks inside it.
    flat, firsts = components.members, components.starts
    bottoms = [
        sorted(components[number])
        for number, sink in enumerate(is_sink)
        if sink and not can_reach[flat[firsts[number]]]
    ]
    src, dst, act = edges
    at_src, at_dst = edge_flags
    entering = int.from_bytes(at_src) & ~int.from_bytes(at_dst) if 0 in can_reach else 0
    entries: list[Edge] = [(-1, -1, k) for k in range(roots) if not can_reach[k]]
    entries += [(src[e], act[e], dst[e]) for e in get_ones(entering.to_bytes(len(src)))]
    return bottoms, entries


def get_trap_graph(
    count: int,
    edges: tuple[array[int], array[int], array[int]],
    allowed: bytes,
    traps: list[bytearray],
    edge_flags: list[tuple[bytes, bytes]] | None,
    roots: int,
) -> tuple[TrapParts, list[TrapRegion]]:
    """CHK-36: a worker's task: the trap graph of :func:`get_trap_parts` and each property's
    region in it (:func:`get_trap_region`), so the coordinator builds neither; the edge
    flags are gathered here when not given (:func:`gather_edge_flags`)."""
    if edge_flags is None:
        edge_flags = gather_edge_flags(count, edges[0], edges[1], traps)
    parts = get_trap_parts(count, edges, allowed, traps, edge_flags)
    regions = [
        get_trap_region((parts[2], parts[4]), edges, roots, can_reach, flags)
        for can_reach, flags in zip(traps, edge_flags, strict=True)
    ]
    return parts, regions


def get_trap_parts(
    count: int,
    edges: tuple[array[int], array[int], array[int]],
    allowed: bytes,
    traps: list[bytearray],
    edge_flags: list[tuple[bytes, bytes]],
) -> TrapParts:
    """The trap graph of :class:`TrapGraph` over plain data (what a worker is sent)."""
    src, dst, act = edges
    reachable = int.from_bytes(b"\x01" * count)
    for can_reach in traps:
        reachable &= int.from_bytes(can_reach)
    in_any = (reachable ^ int.from_bytes(b"\x01" * count)).to_bytes(count)
    kept = 0
    if any(in_any):
        ones = int.from_bytes(b"\x01" * len(src))
        src_reach, dst_reach = ones, ones
        for at_src, at_dst in edge_flags:
            src_reach &= int.from_bytes(at_src)
            dst_reach &= int.from_bytes(at_dst)
        kept = (
            (src_reach ^ ones)
            & (dst_reach ^ ones)
            & int.from_bytes(bytes(map(allowed.__getitem__, act)))
        )
    starts, targets = _get_adjacency(src, dst, kept, count)
    components, component_of, is_sink = _get_components(get_ones(in_any), starts, targets)
    return starts, targets, components, component_of, is_sink


def _get_adjacency(
    src: array[int], dst: array[int], kept: int, count: int
) -> tuple[array[int], array[int]]:
    """The kept edges (bit ``e`` of ``kept`` for edge ``e``) in compressed rows: state ``s``'s
    targets, ascending, are ``targets[starts[s] : starts[s + 1]]`` (flat arrays instead of a
    list per state: a trap graph holds most edges)."""
    edges = get_ones(kept.to_bytes(len(src))) if kept else []
    pairs = sorted(
        map(
            operator.add,
            map(count.__mul__, map(src.__getitem__, edges)),
            map(dst.__getitem__, edges),
        )
    )
    del edges
    targets = array("i", map(operator.mod, pairs, repeat(count)))
    return get_row_starts(map(operator.floordiv, pairs, repeat(count)), count), targets


_NO_SUCCESSORS: list[int] = []


class Traps:
    """One property's trap region: its bottom components (``sinks``: bit -> states), which
    of them each trap state can end in, and the entry edges into the region (CHK-31)."""

    def __init__(
        self,
        graph: Graph,
        can_reach: bytearray,
        shared: TrapGraph,
        edge_flags: tuple[bytes, bytes] | None,
        *,
        region: TrapRegion | None = None,
    ) -> None:
        """``region``: the bottoms and entries as :func:`get_trap_region` computed them
        elsewhere (a worker process, CHK-36); ``edge_flags`` are needed without it."""
        self.shared = shared
        self.can_reach = can_reach
        if region is None:
            assert edge_flags is not None, "a trap region needs its edge flags"
            exploration = graph.exploration
            edges = (graph.src, graph.dst, graph.act)
            parts = (shared.components, shared.is_sink)
            roots = get_root_count(exploration.level_starts, exploration.count)
            region = get_trap_region(parts, edges, roots, can_reach, edge_flags)
        self.bottoms, self.entries = region
        self.sinks: dict[int, list[int]] = {}
        self.masks: list[int] = []
        self.component_of = shared.component_of
        self.sizes: dict[int, int] = {}

    def set_terminal_keys(self, keys: list[Key]) -> list[Key]:
        """One bit per distinct terminal key (bottom components with one key merge),
        propagated from the sinks up (Tarjan emits them first); the keys by bit."""
        shared, can_reach = self.shared, self.can_reach
        components, component_of = shared.components, shared.component_of
        successors = shared.successors
        bits: dict[Key, int] = {}
        sink_bit = {}
        for members, key in zip(self.bottoms, keys, strict=True):
            bit = bits.setdefault(key, len(bits))
            sink_bit[component_of[members[0]]] = bit
            self.sinks.setdefault(bit, []).extend(members)
        masks = [0] * len(components)
        flat, firsts = components.members, components.starts
        for number in range(len(components)):
            begin, end = firsts[number], firsts[number + 1]
            first = flat[begin]
            if can_reach[first]:
                continue
            if number in sink_bit:
                masks[number] = 1 << sink_bit[number]
                continue
            mask = 0
            if end - begin == 1:  # most components: no self-loops were recorded
                for target in successors(first):
                    mask |= masks[component_of[target]]
            else:
                for state in flat[begin:end]:
                    for target in successors(state):
                        other = component_of[target]
                        if other != number:
                            mask |= masks[other]
            masks[number] = mask
        self.masks = masks
        # Every trap state is in one trap component (the members of a component reach each
        # other over allowed edges, so they are all traps or none): count by component.
        per_mask: dict[int, int] = {}
        for number in range(len(components)):
            if not can_reach[flat[firsts[number]]]:
                size = firsts[number + 1] - firsts[number]
                per_mask[masks[number]] = per_mask.get(masks[number], 0) + size
        sizes = self.sizes
        for mask, size in per_mask.items():
            for bit in _bits(mask):
                sizes[bit] = sizes.get(bit, 0) + size
        return [key for key, _ in sorted(bits.items(), key=lambda item: item[1])]

    def get_ends(self, state: int) -> list[int]:
        return _bits(self.masks[self.component_of[state]])


_NONZERO = bytes([0]) + bytes([1]) * 255


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def get_path_into(
    start: int, goal: set[int], successors: Callable[[int], Sequence[int]]
) -> list[int]:
    """The states of a shortest allowed path from ``start`` into ``goal`` (``start`` excluded)."""
    if start in goal:
        return []
    previous: dict[int, int] = {start: -1}
    frontier = [start]
    while frontier:
        following = []
        for state in frontier:
            for target in successors(state):
                if target in previous:
                    continue
                previous[target] = state
                if target in goal:
                    path = [target]
                    while previous[path[-1]] != start:
                        path.append(previous[path[-1]])
                    path.reverse()
                    return path
                following.append(target)
        frontier = following
    return []


class Components:
    """Strongly connected components as two flat arrays: component ``n``'s states are
    ``members[starts[n] : starts[n + 1]]`` (most components are single states: a list
    each would cost far more than the states' numbers)."""

    __slots__ = ("members", "starts")

    def __init__(self, members: array[int], starts: array[int]) -> None:
        self.members = members
        self.starts = starts

    def __len__(self) -> int:
        return len(self.starts) - 1

    def __getitem__(self, number: int) -> array[int]:
        return self.members[self.starts[number] : self.starts[number + 1]]

    def __iter__(self) -> Iterator[array[int]]:
        members, starts = self.members, self.starts
        return (members[starts[n] : starts[n + 1]] for n in range(len(starts) - 1))


def _get_components(
    nodes: list[int], starts: array[int], targets: array[int]
) -> tuple[Components, array[int], list[bool]]:
    """Tarjan's strongly connected components (iterative, flat arrays), sinks first, and
    whether each is a sink: no edge leaves it. An edge leaves a component exactly when it
    leads to a state whose component is already complete (a state still on the stack is in
    the same component)."""
    count = len(starts) - 1
    index = array("i", [-1]) * count
    leaves = bytearray(count)
    low = array("i", [0]) * count
    on_stack = bytearray(count)
    component_of = array("i", [-1]) * count
    stack: list[int] = []
    flat = array("i")
    flat_append = flat.append
    firsts = array("i", [0])
    is_sink: list[bool] = []
    counter = 0
    for root in nodes:
        if index[root] >= 0:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        work: list[tuple[int, Iterator[int]]] = [
            (root, iter(targets[starts[root] : starts[root + 1]]))
        ]
        while work:
            node, children = work[-1]
            for child in children:
                if index[child] < 0:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack[child] = 1
                    work.append((child, iter(targets[starts[child] : starts[child + 1]])))
                    break
                if on_stack[child]:
                    if index[child] < low[node]:  # noqa: PLR1730 - no call in the hot loop
                        low[node] = index[child]
                else:
                    leaves[node] = 1
            else:
                work.pop()
                if low[node] == index[node]:
                    number = len(is_sink)
                    sink = True
                    while True:
                        member = stack.pop()
                        on_stack[member] = 0
                        component_of[member] = number
                        flat_append(member)
                        if leaves[member]:
                            sink = False
                        if member == node:
                            break
                    firsts.append(len(flat))
                    is_sink.append(sink)
                if work:
                    parent = work[-1][0]
                    if low[node] < low[parent]:  # noqa: PLR1730 - no call in the hot loop
                        low[parent] = low[node]
                    if not on_stack[node]:
                        leaves[parent] = 1  # the edge parent -> node leaves parent's component
    return Components(flat, firsts), component_of, is_sink


__all__ = [
    "Causes",
    "Edge",
    "Graph",
    "TrapGraph",
    "TrapParts",
    "TrapRegion",
    "Traps",
    "get_allowed_edges",
    "get_trap_graph",
    "get_trap_parts",
    "get_trap_region",
]
