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

import hashlib
from array import array
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic

import attrs

from otamodel.checker._gc import paused_gc
from otamodel.checker._keys import KeyHooks, KeyRequest, Need, get_keys, get_step_request
from otamodel.checker._model import A, Property, PropertyKind, S
from otamodel.checker._regions import (
    Causes,
    Edge,
    Graph,
    TrapGraph,
    TrapRegion,
    Traps,
    get_allowed_edges,
    get_path_into,
    get_trap_graph,
)
from otamodel.checker._trace import Trace
from otamodel.checker._violations import (
    EdgeArrays,
    Violations,
    find_violations,
    get_root_count,
)

if TYPE_CHECKING:
    from otamodel.checker._cheapest import CheapestPaths
    from otamodel.checker._liveness import ReverseGraph
    from otamodel.checker._search import Exploration

Key = tuple[str, ...]
Batch = tuple[list[KeyRequest], Callable[[list[Key]], None]]
"""Key requests and what uses their keys (in request order)."""
Built = tuple[dict[Any, TrapGraph], dict[int, TrapRegion]]
"""The trap graphs by edge filter and, when a worker found them, the trap regions by
property position."""


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


@attrs.define
class _Class:
    rank: tuple[int, ...]
    edge: tuple[int, int]  # (source, action); source -1: an initial state
    target: int
    cause: int = -1  # the cause bit the trace must go through (-1: none)
    states: set[int] = attrs.field(factory=set)
    edges: int = 0
    region: int = 0

    def add(self, rank: tuple[int, ...], edge: tuple[int, int], target: int, cause: int) -> None:
        if rank < self.rank:
            self.rank, self.edge, self.target, self.cause = rank, edge, target, cause
        self.states.add(target)
        self.edges += 1


def get_finding_key(step: Key, cause: Key | None) -> Key:
    """CHK-34: the key of a violating or entering step that is not itself a cause: the step's
    own key, then ``after:`` and the key of the last cause before it."""
    return step if cause is None else (*step, "after:", *cause)


def classify(
    model: object,
    exploration: Exploration,
    properties: Sequence[Property[Any, Any]],
    cost: Callable[[Any], int] | None = None,
    *,
    can_reach: dict[int, bytearray] | None = None,
    witnesses: dict[int, bool] | None = None,
    reverse: ReverseGraph | None = None,
    paths: CheapestPaths | None = None,
    violations: Violations | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[Finding[Any, Any]]:
    """CHK-30..CHK-34: the findings of every property, in property order, cheapest first.

    ``reverse``/``paths``: the reverse graph and cheapest paths the verdicts already built.
    ``violations``: those of the ``always`` properties, found already (by a worker process,
    :func:`get_violation_inputs`); ``meanwhile``: other work, run while worker processes
    build the trap graphs (with ``violations``) or compute the keys (CHK-36).
    Only the states the keys need are fetched (violating and entering steps, their causes,
    the terminal behaviours); the violations come from the bits the search recorded.
    The cyclic garbage collector is paused meanwhile (many small lists, no cycles)."""
    with paused_gc():
        graph: Graph | None = None
        if any(p.kind is not PropertyKind.SOMETIMES for p in properties):
            graph = Graph(exploration, cost, reverse, paths)
        classifier = _Classifier(model, exploration, properties, graph, meanwhile)
        return classifier.run(can_reach, witnesses, violations)


class _Classifier:
    def __init__(
        self,
        model: object,
        exploration: Exploration,
        properties: Sequence[Property[Any, Any]],
        graph: Graph | None,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        self.model, self.exploration, self.properties, self.graph = (
            model, exploration, properties, graph,
        )  # fmt: skip
        self.meanwhile = meanwhile
        """Run once, while the keys are computed (every run asks for keys, maybe none)."""
        self.keys_by_bit: dict[int, dict[int, Key]] = {}
        """Per ``eventually`` position, its terminal keys by bit (``Traps.set_terminal_keys``)."""
        self.causes: Causes | None = None
        self.arrays: EdgeArrays | None = None
        self.hooks = KeyHooks(model, properties)
        cause_hook = getattr(model, "is_cause_action", None)
        table = exploration.action_table
        self.is_cause = bytes(1 if not callable(cause_hook) or cause_hook(a) else 0 for a in table)
        own_hook = getattr(model, "is_own_action", None)
        self.is_own = bytes(
            0 if cause else 1 if not callable(own_hook) or own_hook(a) else 0
            for a, cause in zip(table, self.is_cause, strict=True)
        )
        needs_hook = getattr(model, "is_cause_state_needed", None)
        self.needs_state = bytes(
            1 if not callable(needs_hook) or needs_hook(a) else 0 for a in table
        )

    def run(
        self,
        can_reach: dict[int, bytearray] | None,
        witnesses: dict[int, bool] | None,
        violations: Violations | None = None,
    ) -> list[Finding[Any, Any]]:
        exploration, graph = self.exploration, self.graph
        plans: list[tuple[int, Property[Any, Any], Any]] = []
        # CHK-35: the keys, computed where the states are: terminal behaviours, then steps.
        bottoms: list[KeyRequest] = []
        requests: list[KeyRequest] = []
        steps: dict[tuple[int, Edge], int] = {}  # (position, edge) -> its request
        terminals: dict[int, range] = {}  # position -> its bottoms' requests
        own: set[int] = set()  # sources of own-progress steps whose causes are needed
        # With workers the trap graphs' tasks gather the eventually properties' flags.
        offloaded = self.exploration.offload is not None
        self.edge_flags = self._get_edge_flags(
            can_reach, with_always=violations is None, with_eventually=not offloaded
        )
        # Trap graphs are built (by the workers, if any) while the violations are found here,
        # or, when a worker found them already, while the meanwhile work runs (CHK-36).
        collect_trap_graphs = self._start_trap_graphs(can_reach)
        if violations is None:
            violations = {
                position: self._get_violations(position, prop)
                for position, prop in enumerate(self.properties)
                if prop.kind is PropertyKind.ALWAYS
            }
        elif can_reach and offloaded:
            self._run_meanwhile()
        trap_graphs, regions = collect_trap_graphs()
        for position, prop in enumerate(self.properties):
            if prop.kind is PropertyKind.ALWAYS:
                edges = violations[position]
                plans.append((position, prop, edges))
            elif prop.kind is PropertyKind.EVENTUALLY:
                assert graph is not None and can_reach is not None
                shared = trap_graphs[prop.edge_filter]
                flags = self.edge_flags.get(position)
                region = regions.get(position)
                traps = Traps(graph, can_reach[position], shared, flags, region=region)
                edges = traps.entries
                terminals[position] = range(len(bottoms), len(bottoms) + len(traps.bottoms))
                bottoms.extend(
                    KeyRequest(Need.TERMINAL, members[0], position, members=tuple(members),
                               walk=tuple(self._walk_component(members, shared)))
                    for members in traps.bottoms
                )  # fmt: skip
                plans.append((position, prop, traps))
            else:
                plans.append((position, prop, None))
                continue
            always = prop.kind is PropertyKind.ALWAYS
            for edge in edges:
                steps[position, edge] = len(requests)
                requests.append(get_step_request(position, always, edge))
            own.update(s for s, a, _ in edges if s >= 0 and self.is_own[a])

        def use_terminal_keys(keys: list[Key]) -> None:
            for position, prop, plan in plans:
                if prop.kind is PropertyKind.EVENTUALLY:
                    span = terminals[position]
                    self.keys_by_bit[position] = dict(
                        enumerate(plan.set_terminal_keys(keys[span.start : span.stop]))
                    )

        def use_step_keys(keys: list[Key]) -> None:
            self.step_keys = {step: keys[k] for step, k in steps.items()}

        batches: list[Batch] = [(bottoms, use_terminal_keys), (requests, use_step_keys)]
        states = self._get_all_keys(batches, own)
        pending: list[tuple[str, Property[Any, Any], list[_Made]]] = []
        for position, prop, plan in plans:
            if prop.kind is PropertyKind.ALWAYS:
                found = self._classify_always(position, plan)
            elif prop.kind is PropertyKind.EVENTUALLY:
                found = self._classify_traps(position, plan)
            else:
                if (
                    witnesses is None
                    or witnesses.get(position, True)
                    or not exploration.is_complete
                ):
                    continue
                found = [(("no witness",), (), (), None)]
            prefix = get_prefix(self.model, prop)
            pending.append((prefix, prop, [self._make_finding(prefix, prop, *e) for e in found]))
        return self._add_traces(pending, states)

    def _get_all_keys(self, batches: list[Batch], own: set[int]) -> dict[int, Any]:
        """CHK-34, CHK-35: the keys of each batch of requests (terminal behaviours, then
        violating and entering steps), given to the batch's function, then those of the
        causes of the own-progress steps from ``own``. With worker processes every batch is
        sent before the causes are found here, and each batch's keys are used here while the
        workers compute the next ones. Returns the states replayed here (none with
        workers)."""
        submit = self.exploration.submit_keys
        if submit is None:
            causes = self._find_causes(own)
            wanted = [r for requests, _ in batches for r in requests]
            keys, states = self._get_keys(wanted + self._get_cause_requests(causes))
            for requests, use in batches:
                use(keys[: len(requests)])
                del keys[: len(requests)]
        else:
            collects = [submit(requests) if requests else list for requests, _ in batches]
            causes = self._find_causes(own)
            wanted = self._get_cause_requests(causes)
            collect_causes = submit(wanted) if wanted else list
            self._run_meanwhile()
            for collect, (_, use) in zip(collects, batches, strict=True):
                use(collect())
            keys = collect_causes()
            states = {}
        if causes is not None:
            causes.set_keys(tuple(self.hooks.cause_key(None, None)), keys)
        self.causes = causes
        return states

    def _find_causes(self, own: set[int]) -> Causes | None:
        graph = self.graph
        return Causes(graph, self.is_cause, own) if own and graph is not None else None

    def _get_cause_requests(self, causes: Causes | None) -> list[KeyRequest]:
        if causes is None:
            return []
        return [
            KeyRequest(Need.CAUSE, s, before=s, action=a)
            if self.needs_state[a]
            else KeyRequest(Need.CAUSE, -1, action=a)
            for s, a, _ in causes.inputs
        ]

    def _add_traces(
        self, pending: list[tuple[str, Property[Any, Any], list[_Made]]], states: dict[int, Any]
    ) -> list[Finding[Any, Any]]:
        """The traces' states: stepped along each path from the states already at hand (the
        paths share prefixes; ``next_state`` is pure); the findings in order."""
        exploration = self.exploration
        table = exploration.action_table
        next_state = self.model.next_state  # type: ignore[attr-defined]
        starts = {path[0] for _, _, made in pending for _, path, _ in made if path}
        roots = sorted(starts - set(states))
        known = dict(states)
        known.update(zip(roots, exploration.fetch_states(roots), strict=True))
        findings: list[Finding[Any, Any]] = []
        for prefix, prop, made in pending:
            done = []
            for finding, path, actions in made:
                if path:
                    state = known[path[0]]
                    steps = []
                    for action, number in zip(actions, path[1:], strict=True):
                        following = known.get(number)
                        if following is None:
                            following = known[number] = next_state(state, table[action])
                        steps.append((table[action], following))
                        state = following
                    finding = attrs.evolve(finding, trace=Trace(known[path[0]], tuple(steps)))
                done.append(finding)
            _lengthen_colliding_ids(prefix, prop, done)
            done.sort(key=lambda f: (f.cost, len(f.trace), f.id))
            findings.extend(done)
        return findings

    def _start_trap_graphs(self, can_reach: dict[int, bytearray] | None) -> Callable[[], Built]:
        """One trap graph per edge filter of the ``eventually`` properties (CHK-31); with
        worker processes they are built there (CHK-36), with each property's trap region
        (bottoms and entries, by position). Returns what waits for them."""
        graph, table = self.graph, self.exploration.action_table
        groups: dict[Any, tuple[Property[Any, Any], list[int]]] = {}
        for position, prop in enumerate(self.properties):
            if prop.kind is PropertyKind.EVENTUALLY and can_reach is not None:
                groups.setdefault(prop.edge_filter, (prop, []))[1].append(position)
        inputs = {
            key: (prop, [can_reach[k] for k in members])
            for key, (prop, members) in groups.items()
            if can_reach is not None
        }
        offload = self.exploration.offload
        if not inputs or graph is None:
            return lambda: ({}, {})
        if offload is None:
            flags = {key: [self.edge_flags[k] for k in groups[key][1]] for key in inputs}
            return lambda: (
                {
                    key: TrapGraph(graph, table, prop, traps, flags[key])
                    for key, (prop, traps) in inputs.items()
                },
                {},
            )
        edges = (graph.src, graph.dst, graph.act)
        exploration = self.exploration
        count = exploration.count
        roots = get_root_count(exploration.level_starts, count)
        offload.submit(
            [
                (get_trap_graph, (count, edges, get_allowed_edges(table, p), traps, None, roots))
                for p, traps in inputs.values()
            ]
        )

        def collect() -> Built:
            shared: dict[Any, TrapGraph] = {}
            regions: dict[int, TrapRegion] = {}
            answers = zip(inputs.items(), offload.collect(), strict=True)
            for (key, (prop, traps)), (parts, found) in answers:
                shared[key] = TrapGraph(graph, table, prop, traps, [], parts=parts)
                regions.update(zip(groups[key][1], found, strict=True))
            return shared, regions

        return collect

    def _run_meanwhile(self) -> None:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()

    def _get_keys(self, requests: list[KeyRequest]) -> tuple[list[Key], dict[int, Any]]:
        """CHK-35: the requests' keys, by the exploration's own key source when it has one
        (worker processes: no states come back), else from states replayed here."""
        exploration = self.exploration
        if exploration.submit_keys is not None:
            collect = exploration.submit_keys(requests)
            self._run_meanwhile()
            return collect(), {}
        self._run_meanwhile()
        next_state = self.model.next_state  # type: ignore[attr-defined]
        return get_keys(
            self.hooks, requests, exploration.fetch_states, next_state, exploration.action_table
        )

    def _walk_component(self, members: list[int], shared: TrapGraph) -> list[Edge]:
        """The edges of a breadth-first walk over a bottom component from its first member
        (each member reached once, from a member reached before it)."""
        graph = self.graph
        assert graph is not None
        inside = set(members)
        seen = {members[0]}
        frontier = [members[0]]
        walk: list[Edge] = []
        while frontier:
            following = []
            for state in frontier:
                for target in shared.successors(state):
                    if target in inside and target not in seen:
                        seen.add(target)
                        walk.append((state, graph.get_action(state, target), target))
                        following.append(target)
            frontier = following
        return walk

    # ------------------------------------------------------------------ always (CHK-30)

    def _get_edge_flags(
        self,
        can_reach: dict[int, bytearray] | None,
        *,
        with_always: bool = True,
        with_eventually: bool = True,
    ) -> dict[int, tuple[bytes, bytes]]:
        """Per property position, its 0/1 values at each edge's source and target, for the
        properties whose values are 0/1: always without a measure (violated or not), and
        eventually (can the goal be reached), gathered over the edges together."""
        graph = self.graph
        if graph is None:
            return {}
        wanted: dict[int, bytes | bytearray] = {}
        for position, prop in enumerate(self.properties):
            if prop.kind is PropertyKind.ALWAYS and prop.measure is None and with_always:
                values = self._get_values(position, prop)
                if any(values):
                    wanted[position] = (
                        values if isinstance(values, bytes | bytearray) else bytes(values)
                    )
            elif prop.kind is PropertyKind.EVENTUALLY and can_reach is not None and with_eventually:
                wanted[position] = can_reach[position]
        return dict(zip(wanted, graph.get_edge_flags(list(wanted.values())), strict=True))

    def _get_values(self, position: int, prop: Property[Any, Any]) -> Sequence[int]:
        exploration = self.exploration
        if prop.measure is not None and position in exploration.measures:
            return exploration.measures[position]
        if prop.measure is None and position in exploration.hit_bits:
            return exploration.hit_bits[position].get_bytes()
        states = exploration.fetch_states(range(exploration.count))
        if prop.measure is not None:
            measure = prop.measure
            return array("q", [measure(s) for s in states])
        predicate = prop.predicate
        return bytes(0 if predicate(s) else 1 for s in states)

    def _get_violations(self, position: int, prop: Property[Any, Any]) -> list[Edge]:
        """CHK-30: the property's violating initial states and edges (:func:`find_violations`)."""
        graph = self.graph
        assert graph is not None
        if self.arrays is None:
            self.arrays = graph.get_arrays()
        values = self._get_values(position, prop)
        flags = self.edge_flags.get(position)
        return find_violations(self.arrays, values, flags, measured=prop.measure is not None)

    def _get_causes(self, edge: Edge) -> list[tuple[Key | None, int]]:
        """The cause keys (and bits) an edge is attributed to (CHK-34)."""
        source, action, _ = edge
        if source < 0 or not self.is_own[action] or self.causes is None:
            return [(None, -1)]
        causes = self.causes
        return [(causes.keys[bit], bit) for bit in causes.get_causes(source)]

    def _classify_always(self, position: int, edges: list[Edge]) -> list[Found]:
        graph = self.graph
        assert graph is not None
        classes: dict[Key, _Class] = {}
        for edge in edges:
            source, action, target = edge
            step = self.step_keys[position, edge]
            rank = (0, 0, target, -1) if source < 0 else graph.get_rank(source, action)
            for cause, bit in self._get_causes(edge):
                key = get_finding_key(step, cause)
                group = classes.get(key)
                if group is None:
                    group = classes[key] = _Class(rank, (source, action), target, bit)
                group.add(rank, (source, action), target, bit)
        return [(key, (), key, (group, [])) for key, group in sorted(classes.items())]

    # ------------------------------------------------------------- eventually (CHK-31)

    def _classify_traps(self, position: int, traps: Traps) -> list[Found]:
        graph = self.graph
        assert graph is not None
        keys_by_bit = self.keys_by_bit[position]
        by_key = {key: [bit] for bit, key in keys_by_bit.items()}
        classes: dict[tuple[Key, Key], _Class] = {}
        for edge in traps.entries:
            source, action, target = edge
            step = self.step_keys[position, edge]
            rank = (0, 0, target, -1) if source < 0 else graph.get_rank(source, action)
            terminals = {keys_by_bit[bit] for bit in traps.get_ends(target)}
            for cause, bit in self._get_causes(edge):
                key = get_finding_key(step, cause)
                for terminal in terminals:
                    group = classes.get((terminal, key))
                    if group is None:
                        group = classes[(terminal, key)] = _Class(
                            rank, (source, action), target, bit
                        )
                    group.add(rank, (source, action), target, bit)
        found: list[Found] = []
        for (terminal, cause), group in sorted(classes.items()):
            goal = {k for bit in by_key[terminal] for k in traps.sinks[bit]}
            tail = get_path_into(group.target, goal, traps.shared.successors)
            group.region = sum(traps.sizes[bit] for bit in by_key[terminal])
            found.append(((*terminal, "|", *cause), terminal, cause, (group, tail)))
        return found

    # ------------------------------------------------------------------ findings

    def _make_finding(
        self,
        prefix: str,
        prop: Property[Any, Any],
        key: Key,
        terminal: Key,
        cause: Key,
        chosen: tuple[_Class, list[int]] | None,
    ) -> _Made:
        """The finding (its trace still empty), and its trace's states and actions."""
        graph = self.graph
        if chosen is None or graph is None:
            return (Finding(get_finding_id(prefix, prop.name, key), prop.name, prop.kind, key,
                            Trace(None), -1, 0, 0, 0, terminal, cause), [], [])  # fmt: skip
        group, tail = chosen
        source, action = group.edge
        actions: list[int]
        if source < 0:
            path, actions = [group.target], []
        else:
            if group.cause >= 0 and self.causes is not None:
                path, actions = self.causes.get_path_to(source, group.cause)
            else:
                path, actions = graph.get_path(source)
            path.append(group.target)
            actions.append(action)
        decisive = len(actions) - 1
        for state in tail:
            actions.append(graph.get_action(path[-1], state))
            path.append(state)
        price = sum(graph.prices[a] for a in actions[: decisive + 1])
        finding: Finding[Any, Any] = Finding(
            id=get_finding_id(prefix, prop.name, key),
            property=prop.name,
            kind=prop.kind,
            key=key,
            trace=Trace(None, ((None, None),) * len(actions)),
            decisive=decisive,
            states=len(group.states),
            edges=group.edges,
            cost=price,
            terminal=terminal,
            cause=cause,
            region=group.region,
        )
        return finding, path, actions


_Made = tuple[Finding[Any, Any], list[int], list[int]]


def _lengthen_colliding_ids(prefix: str, prop: Property[Any, Any], made: list[Any]) -> None:
    """Two keys of one property with the same short hash both get a longer ID."""
    seen: dict[str, int] = {}
    for finding in made:
        seen[finding.id] = seen.get(finding.id, 0) + 1
    for k, finding in enumerate(made):
        if seen[finding.id] > 1:
            made[k] = attrs.evolve(finding, id=get_finding_id(prefix, prop.name, finding.key, 8))


Found = tuple[Key, Key, Key, tuple[_Class, list[int]] | None]


__all__ = [
    "Causes",
    "Finding",
    "Graph",
    "Key",
    "classify",
    "get_finding_id",
    "get_finding_key",
    "get_prefix",
]
