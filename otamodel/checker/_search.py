"""The single-process breadth-first search: the checker's hot loop.

Everything the verdicts need is gathered into an :class:`Exploration`: states indexed in
discovery (hence BFS) order, parent links as ``array('i')``, interned actions, per-property
first hits, goal bits for ``eventually`` properties and, when one exists, the edge list.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from otamodel.checker._model import Model, Property, PropertyKind, get_boundary
from otamodel.checker._report import ProgressInfo, StopReason

ProgressHook = Callable[[ProgressInfo], None]

_CLOCK_MASK = 0
"""The clock is read (time limit, progress) before every expanded state: one expansion can be
slow on a large geometry, and a clock read (~0.1 µs) is cheap beside it (BOUND-8)."""


@attrs.define(eq=False)
class Exploration:
    """The explored graph, in the flat form the verdicts are computed from.

    States are numbered ``0 .. count - 1`` in BFS order (by depth, so a lower number is never
    deeper). ``unexpanded`` are discovered states a bound kept from being expanded;
    ``open_states`` are expanded states that lost a successor to ``within_boundary``. The
    edge arrays (source, target, interned action) exist only when an ``eventually``
    property needs them; self-loops are left out.
    """

    count: int
    fetch_states: Callable[[Sequence[int]], list[Any]]
    parents: array[int]
    parent_actions: array[int]
    action_table: list[Any]
    level_starts: list[int]
    unexpanded: Sequence[int]
    transitions: int
    pruned: int
    stop_reason: StopReason
    first_hits: list[int]
    goal_bits: dict[int, bytearray]
    open_states: set[int]
    edge_src: array[int] | None = None
    edge_dst: array[int] | None = None
    edge_act: array[int] | None = None
    close: Callable[[], None] | None = None
    """Releases resources the exploration still holds (worker processes)."""

    @property
    def is_complete(self) -> bool:
        """Every reachable state was expanded and none was pruned (CHK-10)."""
        return self.stop_reason is StopReason.EXHAUSTED and not self.pruned

    def get_path(self, index: int) -> list[int]:
        """State numbers from an initial state to ``index`` (a shortest path, CHK-8)."""
        path = []
        parents = self.parents
        while index >= 0:
            path.append(index)
            index = parents[index]
        path.reverse()
        return path


class Plan:
    """The properties split by kind, as the hot loop consumes them."""

    def __init__(self, properties: Sequence[Property[Any, Any]]) -> None:
        self.always: list[tuple[int, Callable[[Any], bool]]] = []
        self.sometimes: list[tuple[int, Callable[[Any], bool]]] = []
        self.goals: list[tuple[int, Callable[[Any], bool]]] = []
        for position, prop in enumerate(properties):
            entry = (position, prop.predicate)
            if prop.kind is PropertyKind.ALWAYS:
                self.always.append(entry)
            elif prop.kind is PropertyKind.SOMETIMES:
                self.sometimes.append(entry)
            else:
                self.goals.append(entry)
        self.count = len(properties)
        self.record_edges = bool(self.goals)


def explore(
    model: Model[Any, Any],
    plan: Plan,
    *,
    max_depth: int | None,
    max_states: int | None,
    deadline: float | None,
    stop_on_violation: bool,
    progress: ProgressHook | None,
    progress_interval: float,
    started: float,
) -> Exploration:
    """Breadth-first search with deduplication and bounds (CHK-1, CHK-2, CHK-3, CHK-9).

    Properties are evaluated once per new state, when it is discovered, so the first hit of
    each is a shortest one (CHK-8). ``always``/``sometimes`` predicates that already have a
    hit are no longer evaluated.
    """
    clock = time.perf_counter
    states: list[Any] = []
    index: dict[Any, int] = {}
    parents = array("i")
    parent_actions = array("i")
    action_table: list[Any] = []
    action_ids: dict[Any, int] = {}
    first_hits = [-1] * plan.count
    goals = [(bytearray(), predicate) for _, predicate in plan.goals]
    always = list(plan.always)
    sometimes = list(plan.sometimes)
    boundary = get_boundary(model)
    open_states: set[int] = set()
    record = plan.record_edges
    edge_src = array("i")
    edge_dst = array("i")
    edge_act = array("i")
    limit = max_states if max_states is not None else 1 << 62
    stop: StopReason | None = None
    transitions = 0
    pruned = 0

    def intern(action: Any) -> int:
        aid = len(action_table)
        action_ids[action] = aid
        action_table.append(action)
        return aid

    # CHK-1: initial states, deduplicated, in the model's order, are depth 0.
    for init in model.init_states():
        if init in index:
            continue
        if boundary is not None and not boundary(init):
            pruned += 1
            continue
        if len(states) >= limit:
            stop = StopReason.MAX_STATES
            break
        k = len(states)
        index[init] = k
        states.append(init)
        parents.append(-1)
        parent_actions.append(-1)
        for bits, predicate in goals:
            bits.append(1 if predicate(init) else 0)
        for position, predicate in sometimes:
            if predicate(init):
                first_hits[position] = k
                sometimes = [e for e in sometimes if e[0] != position]
        for position, predicate in always:
            if not predicate(init):
                first_hits[position] = k
                always = [e for e in always if e[0] != position]
                if stop_on_violation:
                    stop = StopReason.FIRST_VIOLATION
        if stop is not None:
            break

    actions = model.actions
    next_state = model.next_state
    index_get = index.get
    action_get = action_ids.get
    states_append = states.append
    parents_append = parents.append
    parent_actions_append = parent_actions.append
    dst_append = edge_dst.append
    act_append = edge_act.append
    src_append = edge_src.append
    next_report = started + progress_interval

    level_starts = [0]
    depth = 0
    expanded = 0
    while stop is None:
        start = level_starts[-1]
        end = len(states)
        if start == end:  # no initial state
            stop = StopReason.EXHAUSTED
            break
        if max_depth is not None and depth >= max_depth:
            stop = StopReason.MAX_DEPTH
            break
        for i in range(start, end):
            if not i & _CLOCK_MASK:
                now = clock()
                if deadline is not None and now >= deadline:
                    stop = StopReason.TIME_LIMIT
                    expanded = i
                    break
                if progress is not None and now >= next_report:
                    next_report = now + progress_interval
                    progress(
                        ProgressInfo(
                            len(states), transitions, len(states) - i, depth, now - started
                        )
                    )
            s = states[i]
            for a in actions(s):
                t = next_state(s, a)
                if t is None:
                    continue
                transitions += 1
                j = index_get(t)
                if j is None:
                    if boundary is not None and not boundary(t):
                        pruned += 1
                        open_states.add(i)
                        continue
                    j = len(states)
                    if j >= limit:
                        stop = StopReason.MAX_STATES
                        break
                    index[t] = j
                    states_append(t)
                    parents_append(i)
                    aid = action_get(a)
                    if aid is None:
                        aid = intern(a)
                    parent_actions_append(aid)
                    # CHK-4/5/6: evaluate each pending predicate once, at discovery.
                    for bits, predicate in goals:
                        bits.append(1 if predicate(t) else 0)
                    for position, predicate in sometimes:
                        if predicate(t):
                            first_hits[position] = j
                            sometimes = [e for e in sometimes if e[0] != position]
                    for position, predicate in always:
                        if not predicate(t):
                            first_hits[position] = j
                            always = [e for e in always if e[0] != position]
                            if stop_on_violation:
                                stop = StopReason.FIRST_VIOLATION
                    if stop is not None:
                        break
                    if record:
                        src_append(i)
                        dst_append(j)
                        act_append(aid)
                elif record and j != i:
                    aid = action_get(a)
                    if aid is None:
                        aid = intern(a)
                    src_append(i)
                    dst_append(j)
                    act_append(aid)
            else:
                continue
            expanded = i
            break
        else:
            expanded = end
            if len(states) == end:
                stop = StopReason.EXHAUSTED
                break
            level_starts.append(end)
            depth += 1
            continue
        break

    if record:
        # Drop the edges of a state whose expansion was cut short: it counts as unexpanded.
        while edge_src and edge_src[-1] >= expanded:
            edge_src.pop()
            edge_dst.pop()
            edge_act.pop()
    assert stop is not None
    return Exploration(
        count=len(states),
        fetch_states=lambda numbers: [states[k] for k in numbers],
        parents=parents,
        parent_actions=parent_actions,
        action_table=action_table,
        level_starts=level_starts,
        unexpanded=range(expanded, len(states)),
        transitions=transitions,
        pruned=pruned,
        stop_reason=stop,
        first_hits=first_hits,
        goal_bits={
            position: bits for (position, _), (bits, _) in zip(plan.goals, goals, strict=True)
        },
        open_states=open_states,
        edge_src=edge_src if record else None,
        edge_dst=edge_dst if record else None,
        edge_act=edge_act if record else None,
    )
