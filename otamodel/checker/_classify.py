"""Findings: every distinct way a property fails, each with its own cheapest trace (CHK-30..CHK-33).

A verdict says *whether* a property fails; a finding says *how*. After the search the explored
graph is classified:

* ``always``: every violating edge (a state where the property held, an action, a state where
  it fails; a violating initial state counts too) is keyed by the model's ``get_edge_key``
  hook; edges with equal keys form one finding (CHK-30). A property may carry a ``measure``
  (a count of violations so far that never decreases); an edge is then violating when the
  measure rises, so a second, later violation shows too.
* ``eventually``: the trap region (states from which no goal is reachable over allowed edges)
  is split by its bottom strongly connected components, the behaviours the device ends in,
  keyed by ``get_terminal_key`` over each component's states, and within each by the entry
  edges into the region (the last edge from a state that could still reach a goal), keyed by
  ``get_edge_key`` (CHK-31).
* ``sometimes`` properties without a witness give one finding (CHK-32).

Keys are tuples of strings computed from states and actions only, so they do not depend on
exploration order or on the number of workers; the finding ID is a short hash of the property
and key (CHK-33). Each finding carries its cheapest trace: least total cost, then fewest steps
(CHK-15); for a trap finding the trace continues, with allowed edges only, into the terminal
behaviour.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
from array import array
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic

import attrs

from otamodel.checker._model import A, Property, PropertyKind, S, get_action_label
from otamodel.checker._trace import Trace

if TYPE_CHECKING:
    from otamodel.checker._search import Exploration

Key = tuple[str, ...]
EdgeKeyHook = Callable[[Property[Any, Any], Any, Any, Any], Key]
TerminalKeyHook = Callable[[Property[Any, Any], Sequence[Any]], Key]


@attrs.frozen
class Finding(Generic[S, A]):
    """One class of violations of one property (CHK-30..CHK-33).

    ``key`` is the model's description of the class (for ``eventually``: the terminal
    behaviour's key, then the entry cause's key), ``terminal``/``cause`` its two parts.
    ``decisive`` is the index in ``trace.steps`` of the violating or entry step (``-1``: the
    initial state itself). ``states``/``edges`` count the violating states and edges the class
    covers (for traps: the states entered and the entry edges); ``region`` counts, for traps,
    every trap state that can end in this terminal behaviour.
    """

    id: str
    property: str
    kind: PropertyKind
    key: Key
    trace: Trace[S, A]
    decisive: int
    states: int
    edges: int
    cost: int
    terminal: Key = ()
    cause: Key = ()
    region: int = 0


def get_finding_id(prefix: str, property_name: str, key: Key, digits: int = 4) -> str:
    """CHK-33: ``PREFIX-xxxx``, a hash of the property name and key (stable across runs)."""
    text = "\x1f".join((property_name, *key)).encode()
    return f"{prefix}-{hashlib.blake2s(text, digest_size=8).hexdigest()[:digits]}"


def get_prefix(model: object, prop: Property[Any, Any]) -> str:
    """The model's ``get_finding_prefix(prop)`` or the initials of the property's name."""
    hook = getattr(model, "get_finding_prefix", None)
    if callable(hook):
        return str(hook(prop))
    words = [w for w in prop.name.replace("_", "-").split("-") if w]
    return "".join(w[0] for w in words).upper() or "F"


def _default_edge_key(model: object) -> EdgeKeyHook:
    def key(_prop: Property[Any, Any], _before: Any, action: Any, _after: Any) -> Key:
        return ("init",) if action is None else (get_action_label(model, action),)

    return key


def _default_terminal_key(_prop: Property[Any, Any], states: Sequence[Any]) -> Key:
    return tuple(sorted({repr(s) for s in states}))


class Graph:
    """Forward adjacency of the explored edges (``order[offsets[s]:offsets[s+1]]`` are the
    edge numbers leaving ``s``), and cheapest distances from the initial states (CHK-15)."""

    def __init__(self, exploration: Exploration, cost: Callable[[Any], int] | None) -> None:
        src, dst, act = exploration.edge_src, exploration.edge_dst, exploration.edge_act
        assert src is not None and dst is not None and act is not None
        self.exploration = exploration
        self.src, self.dst, self.act = src, dst, act
        count = exploration.count
        self.prices = [0 if cost is None else cost(a) for a in exploration.action_table]
        self.order = array("i", sorted(range(len(src)), key=src.__getitem__))
        self.targets = array("i", [dst[edge] for edge in self.order])
        """``targets[offsets[s]:offsets[s + 1]]``: the states ``s`` has an edge to."""
        self.actions = array("i", [act[edge] for edge in self.order])
        offsets = [0] * (count + 1)
        for state in src:
            offsets[state + 1] += 1
        for k in range(count):
            offsets[k + 1] += offsets[k]
        self.offsets = offsets
        if cost is None:
            self._use_tree()
        else:
            self._run_dijkstra()

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

    def _run_dijkstra(self) -> None:
        """CHK-15: ordered by (total cost, steps, state number) from every initial state."""
        count = self.exploration.count
        unreached = 1 << 62
        price = array("q", [unreached]) * count
        steps = array("i", [0]) * count
        via_state = array("i", [-1]) * count
        via_action = array("i", [-1]) * count
        parents = self.exploration.parents
        heap = [(0, 0, k) for k in range(count) if parents[k] == -1]
        for _, _, k in heap:
            price[k] = 0
        heapq.heapify(heap)
        offsets, targets, actions, prices = self.offsets, self.targets, self.actions, self.prices
        pop, push = heapq.heappop, heapq.heappush
        done = bytearray(count)
        while heap:
            p, n, state = pop(heap)
            if done[state]:
                continue
            done[state] = 1
            first, last = offsets[state], offsets[state + 1]
            for target, action in zip(targets[first:last], actions[first:last], strict=True):
                if done[target]:
                    continue
                q = p + prices[action]
                if q < price[target] or (q == price[target] and n + 1 < steps[target]):
                    price[target] = q
                    steps[target] = n + 1
                    via_state[target] = state
                    via_action[target] = action
                    push(heap, (q, n + 1, target))
        self.price, self.steps = price, steps
        self.via_state, self.via_action = via_state, via_action

    def get_rank(self, edge: int) -> tuple[int, int, int, int]:
        """How cheap a trace ending with ``edge`` is: (cost, steps, source, action id)."""
        source = self.src[edge]
        return (
            self.price[source] + self.prices[self.act[edge]],
            self.steps[source] + 1,
            source,
            self.act[edge],
        )

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


@attrs.define
class _Class:
    rank: tuple[int, ...]
    edge: int  # -1: an initial state
    target: int
    states: set[int] = attrs.field(factory=set)
    edges: int = 0
    region: int = 0


def classify(
    model: object,
    exploration: Exploration,
    properties: Sequence[Property[Any, Any]],
    cost: Callable[[Any], int] | None = None,
    *,
    can_reach: dict[int, bytearray] | None = None,
    witnesses: dict[int, bool] | None = None,
) -> list[Finding[Any, Any]]:
    """CHK-30..CHK-33: the findings of every property, in property order, cheapest first.

    The cyclic garbage collector is paused meanwhile: the classification allocates many
    small lists while every explored state is alive, and each full collection would walk
    them all (it creates no cycles of its own)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _classify(model, exploration, properties, cost, can_reach, witnesses)
    finally:
        if paused:
            gc.enable()


def _classify(
    model: object,
    exploration: Exploration,
    properties: Sequence[Property[Any, Any]],
    cost: Callable[[Any], int] | None,
    can_reach: dict[int, bytearray] | None,
    witnesses: dict[int, bool] | None,
) -> list[Finding[Any, Any]]:
    edge_hook = getattr(model, "get_edge_key", None)
    edge_key: EdgeKeyHook = edge_hook if callable(edge_hook) else _default_edge_key(model)
    terminal_hook = getattr(model, "get_terminal_key", None)
    terminal_key: TerminalKeyHook = (
        terminal_hook if callable(terminal_hook) else _default_terminal_key
    )
    graph: Graph | None = None
    states: list[Any] | None = None
    trap_graphs: dict[Any, TrapGraph] = {}
    findings: list[Finding[Any, Any]] = []
    for position, prop in enumerate(properties):
        if graph is None and prop.kind is not PropertyKind.SOMETIMES:
            graph = Graph(exploration, cost)
            states = exploration.fetch_states(range(exploration.count))
        if prop.kind is PropertyKind.ALWAYS:
            assert graph is not None and states is not None
            found = _classify_always(graph, states, prop, edge_key)
        elif prop.kind is PropertyKind.EVENTUALLY:
            assert graph is not None and states is not None and can_reach is not None
            shared = trap_graphs.get(prop.edge_filter)
            if shared is None:
                group = [can_reach[k] for k, other in enumerate(properties)
                         if k in can_reach and other.edge_filter == prop.edge_filter]  # fmt: skip
                table = exploration.action_table
                shared = trap_graphs[prop.edge_filter] = TrapGraph(graph, table, prop, group)
            found = _classify_traps(
                graph, states, prop, can_reach[position], edge_key, terminal_key, shared
            )
        else:
            if witnesses is None or witnesses.get(position, True) or not exploration.is_complete:
                continue
            found = [(("no witness",), (), (), None)]
        prefix = get_prefix(model, prop)
        made = [_make_finding(prefix, prop, graph, *entry) for entry in found]
        _lengthen_colliding_ids(prefix, prop, made)
        made.sort(key=lambda f: (f.cost, len(f.trace), f.id))
        findings.extend(made)
    return findings


def _make_finding(
    prefix: str,
    prop: Property[Any, Any],
    graph: Graph | None,
    key: Key,
    terminal: Key,
    cause: Key,
    chosen: tuple[_Class, list[int]] | None,
) -> Finding[Any, Any]:
    if chosen is None or graph is None:
        return Finding(get_finding_id(prefix, prop.name, key), prop.name, prop.kind, key,
                       Trace(None), -1, 0, 0, 0, terminal, cause)  # fmt: skip
    group, tail = chosen
    actions: list[int]
    if group.edge < 0:
        path, actions = [group.target], []
    else:
        path, actions = graph.get_path(graph.src[group.edge])
        path.append(group.target)
        actions.append(graph.act[group.edge])
    decisive = len(actions) - 1
    for state in tail:
        edge = _find_edge(graph, path[-1], state)
        path.append(state)
        actions.append(graph.act[edge])
    trace = graph.get_trace(path, actions)
    return Finding(
        id=get_finding_id(prefix, prop.name, key),
        property=prop.name,
        kind=prop.kind,
        key=key,
        trace=trace,
        decisive=decisive,
        states=len(group.states),
        edges=group.edges,
        cost=group.rank[0],
        terminal=terminal,
        cause=cause,
        region=group.region,
    )


def _find_edge(graph: Graph, source: int, target: int) -> int:
    best = -1
    for position in range(graph.offsets[source], graph.offsets[source + 1]):
        edge = graph.order[position]
        if graph.dst[edge] == target and (best < 0 or graph.act[edge] < graph.act[best]):
            best = edge
    assert best >= 0
    return best


def _lengthen_colliding_ids(prefix: str, prop: Property[Any, Any], made: list[Any]) -> None:
    """Two keys of one property with the same short hash both get a longer ID."""
    seen: dict[str, int] = {}
    for finding in made:
        seen[finding.id] = seen.get(finding.id, 0) + 1
    for k, finding in enumerate(made):
        if seen[finding.id] > 1:
            made[k] = attrs.evolve(finding, id=get_finding_id(prefix, prop.name, finding.key, 8))


Found = tuple[Key, Key, Key, tuple[_Class, list[int]] | None]


def _classify_always(
    graph: Graph, states: list[Any], prop: Property[Any, Any], edge_key: EdgeKeyHook
) -> list[Found]:
    """CHK-30: group violating edges (and violating initial states) by key."""
    measure = prop.measure
    if measure is None:
        predicate = prop.predicate
        values: Sequence[int] = bytes(0 if predicate(s) else 1 for s in states)
    else:
        values = array("q", [measure(s) for s in states])
    classes: dict[Key, _Class] = {}
    parents = graph.exploration.parents

    def add(key: Key, rank: tuple[int, ...], edge: int, target: int) -> None:
        group = classes.get(key)
        if group is None:
            group = classes[key] = _Class(rank, edge, target)
        elif rank < group.rank:
            group.rank, group.edge, group.target = rank, edge, target
        group.states.add(target)
        group.edges += 1

    for k, value in enumerate(values):
        if value and parents[k] == -1:
            add(tuple(edge_key(prop, None, None, states[k])), (0, 0, k, -1), -1, k)
    table = graph.exploration.action_table
    src, dst, act = graph.src, graph.dst, graph.act
    clean = _get_clean(graph, values) if measure is None else None
    for edge in range(len(src)):
        target = dst[edge]
        if values[target] > values[src[edge]]:
            source = src[edge]
            if clean is not None and not clean[source]:
                continue
            key = tuple(edge_key(prop, states[source], table[act[edge]], states[target]))
            add(key, graph.get_rank(edge), edge, target)
    return [(key, (), key, (group, [])) for key, group in sorted(classes.items())]


def _get_clean(graph: Graph, values: Sequence[int]) -> bytearray:
    """CHK-30: the states reachable from a non-violating initial state through non-violating
    states only; an edge out of any other state repeats an earlier violation."""
    count = graph.exploration.count
    parents = graph.exploration.parents
    clean = bytearray(count)
    stack = [k for k in range(count) if parents[k] == -1 and not values[k]]
    for k in stack:
        clean[k] = 1
    offsets, targets = graph.offsets, graph.targets
    while stack:
        state = stack.pop()
        for target in targets[offsets[state] : offsets[state + 1]]:
            if not clean[target] and not values[target]:
                clean[target] = 1
                stack.append(target)
    return clean


class TrapGraph:
    """The allowed edges out of the trap states of every ``eventually`` property sharing one
    edge filter, and their strongly connected components (computed once: each property's
    trap region is closed under its allowed edges, so its components are among these)."""

    def __init__(
        self, graph: Graph, table: list[Any], prop: Property[Any, Any], traps: list[bytearray]
    ) -> None:
        count = graph.exploration.count
        allowed = bytes(1 if prop.is_edge_allowed(a) else 0 for a in table)
        in_any = bytearray(count)
        for can_reach in traps:
            for k in range(count):
                if not can_reach[k]:
                    in_any[k] = 1
        adjacency: dict[int, list[int]] = {}
        for source, target, action in zip(graph.src, graph.dst, graph.act, strict=True):
            if in_any[source] and allowed[action]:
                adjacency.setdefault(source, []).append(target)
        self.adjacency = adjacency
        nodes = [k for k in range(count) if in_any[k]]
        self.components, self.component_of = _get_components(nodes, self.successors, count)

    def successors(self, state: int) -> list[int]:
        return self.adjacency.get(state, _NO_SUCCESSORS)


_NO_SUCCESSORS: list[int] = []


def _classify_traps(
    graph: Graph,
    states: list[Any],
    prop: Property[Any, Any],
    can_reach: bytearray,
    edge_key: EdgeKeyHook,
    terminal_key: TerminalKeyHook,
    shared: TrapGraph,
) -> list[Found]:
    """CHK-31: terminal behaviours (bottom SCCs of the trap region over allowed edges), and
    within each the entry edges into the region, grouped by key."""
    exploration = graph.exploration
    count = exploration.count
    table = exploration.action_table
    src, dst, act = graph.src, graph.dst, graph.act
    trap = [k for k in range(count) if not can_reach[k]]
    if not trap:
        return []
    successors = shared.successors
    components, component_of = shared.components, shared.component_of
    # Terminal keys: one bit per distinct key, propagated from sinks (Tarjan emits them first).
    key_bits: dict[Key, int] = {}
    masks: list[int] = [0] * len(components)
    sink_of_bit: dict[int, list[int]] = {}
    for number, members in enumerate(components):
        if can_reach[members[0]]:
            continue  # a component of another property's trap region
        mask = 0
        for state in members:
            for target in successors(state):
                other = component_of[target]
                if other != number:
                    mask |= masks[other]
        if not mask:
            key = tuple(terminal_key(prop, [states[k] for k in members]))
            bit = key_bits.setdefault(key, len(key_bits))
            mask = 1 << bit
            sink_of_bit.setdefault(bit, []).extend(members)
        masks[number] = mask
    keys_by_bit = {bit: key for key, bit in key_bits.items()}
    classes: dict[tuple[Key, Key], _Class] = {}
    trap_states: dict[int, int] = {}
    for state in trap:
        for bit in _bits(masks[component_of[state]]):
            trap_states[bit] = trap_states.get(bit, 0) + 1

    def add(cause: Key, rank: tuple[int, ...], edge: int, target: int) -> None:
        for bit in _bits(masks[component_of[target]]):
            group = classes.get((keys_by_bit[bit], cause))
            if group is None:
                group = classes[(keys_by_bit[bit], cause)] = _Class(rank, edge, target)
            elif rank < group.rank:
                group.rank, group.edge, group.target = rank, edge, target
            group.states.add(target)
            group.edges += 1

    parents = exploration.parents
    for state in trap:
        if parents[state] == -1:
            add(tuple(edge_key(prop, None, None, states[state])), (0, 0, state, -1), -1, state)
    for edge in range(len(src)):
        target = dst[edge]
        if not can_reach[target] and can_reach[src[edge]]:
            source = src[edge]
            cause = tuple(edge_key(prop, states[source], table[act[edge]], states[target]))
            add(cause, graph.get_rank(edge), edge, target)
    found: list[Found] = []
    for (terminal, cause), group in sorted(classes.items()):
        bit = key_bits[terminal]
        tail = _get_path_into(group.target, set(sink_of_bit[bit]), successors)
        group.region = trap_states[bit]
        found.append(((*terminal, "|", *cause), terminal, cause, (group, tail)))
    return found


def _bits(mask: int) -> list[int]:
    out = []
    bit = 0
    while mask:
        if mask & 1:
            out.append(bit)
        mask >>= 1
        bit += 1
    return out


def _get_path_into(start: int, goal: set[int], successors: Callable[[int], list[int]]) -> list[int]:
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


def _get_components(
    nodes: list[int], successors: Callable[[int], list[int]], count: int
) -> tuple[list[list[int]], array[int]]:
    """Tarjan's strongly connected components (iterative, flat arrays), sinks first."""
    index = array("i", [-1]) * count
    low = array("i", [0]) * count
    on_stack = bytearray(count)
    component_of = array("i", [-1]) * count
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in nodes:
        if index[root] >= 0:
            continue
        work: list[tuple[int, list[int], int]] = [(root, successors(root), 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = 1
        while work:
            node, children, position = work[-1]
            if position < len(children):
                work[-1] = (node, children, position + 1)
                child = children[position]
                if index[child] < 0:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack[child] = 1
                    work.append((child, successors(child), 0))
                elif on_stack[child] and index[child] < low[node]:
                    low[node] = index[child]
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members = []
                number = len(components)
                while True:
                    member = stack.pop()
                    on_stack[member] = 0
                    component_of[member] = number
                    members.append(member)
                    if member == node:
                        break
                components.append(members)
    return components, component_of


__all__ = ["Finding", "Graph", "Key", "classify", "get_finding_id", "get_prefix"]
