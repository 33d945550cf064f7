"""The single-process breadth-first search: the checker's hot loop.

Everything the verdicts need is gathered into an :class:`Exploration`: states indexed in
discovery (hence BFS) order, parent links as ``array('i')``, interned actions, per-property
first hits, goal bits for ``eventually`` properties and, when one exists, the edge list.
"""

from __future__ import annotations

import sys
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from otamodel.checker._bits import Bits
from otamodel.checker._keys import Key, KeyRequest
from otamodel.checker._model import (
    Model,
    Property,
    PropertyKind,
    end_search,
    get_boundary,
    get_verdict_key,
)
from otamodel.checker._report import ProgressInfo, StopReason

ProgressHook = Callable[[ProgressInfo], None]

_CLOCK_MASK = 0
"""The clock is read (time limit, progress) before every expanded state: one expansion can be
slow on a large geometry, and a clock read (~0.1 µs) is cheap beside it (BOUND-8)."""


Task = tuple[Callable[..., Any], tuple[Any, ...]]
"""A module-level function (sent by name) and its arguments (plain data)."""


class TaskRunner(Protocol):
    """Runs tasks in worker processes: :meth:`submit` starts them, :meth:`collect` waits and
    returns their results in order."""

    def submit(self, tasks: list[Task]) -> None: ...

    def collect(self) -> list[Any]: ...


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
    goal_bits: dict[int, Bits]
    """Per ``eventually`` property, whether each state is a goal (CHK-6), a bit a state."""
    open_states: set[int]
    edge_src: array[int] | None = None
    edge_dst: array[int] | None = None
    edge_act: array[int] | None = None
    close: Callable[[], None] | None = None
    """Releases resources the exploration still holds (worker processes)."""
    workers: int = 1
    """How many processes explored (the parallel search)."""
    hit_bits: dict[int, Bits] = attrs.field(factory=dict)
    """With ``Plan.record_hits``: per always/sometimes property, a bit per state, 1 where
    the state is a counterexample (always) or a witness (sometimes)."""
    table_bytes: int = 0
    """The peak size of the visited set: the fingerprints and the table of state numbers
    (both tables while it doubles), or the set of fingerprints with its integers (CHK-16)."""
    kept_states: int = 0
    """How many states are kept as replay starts (``Plan.keep_every``, CHK-16)."""
    offload: TaskRunner | None = None
    """Runs checker tasks in the worker processes while this process goes on (CHK-36);
    ``None``: one process."""
    submit_keys: Callable[[list[KeyRequest]], Callable[[], list[Key]]] | None = None
    """Starts computing the classification's keys where the states are (CHK-35: worker
    processes) and returns what waits for them; ``None``: the classifier replays the states
    it needs through ``fetch_states``."""
    measures: dict[int, bytearray] = attrs.field(factory=dict)
    """With ``Plan.record_measures``: per ``always`` property with a ``measure``, one byte per
    state: the measure, capped at 255 (CHK-30: the classifier finds its rises here)."""

    def get_storage(self) -> dict[str, int]:
        """Bytes the search stores for its states beyond the frontier (CHK-16): the visited
        set at its peak, the parent links, the edges and the verdicts (what a replay or
        a verdict needs). The replay starts (``kept_states``, findings only) are objects
        and are not counted here."""
        def size(column: Sequence[int] | None) -> int:
            if column is None:
                return 0
            return len(column) * getattr(column, "itemsize", 1)

        bits = [*self.goal_bits.values(), *self.hit_bits.values()]
        return {
            "visited set": self.table_bytes,
            "parent links": size(self.parents) + size(self.parent_actions),
            "edges": size(self.edge_src) + size(self.edge_dst) + size(self.edge_act),
            "verdicts": sum(b.get_nbytes() for b in bits) + sum(map(len, self.measures.values())),
        }

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
        self.record_hits = False
        """Evaluate every always/sometimes predicate on every state (``hit_bits``)."""
        self.record_measures = False
        """Record every ``always`` property's measure on every state (``measures``; findings)."""
        self.keep_every = 0
        """Keep the states of every ``keep_every``-th BFS level (0: none) as replay starts:
        a classification re-creates tens of thousands of states spread over the graph, and
        from the nearest kept level a replay is at most ``keep_every - 1`` steps (CHK-16)."""
        self.keep_limit = 0
        """At most this many states are kept so (a level that would pass it is not kept):
        memory stays bounded on large searches and large states (CHK-16)."""
        self.measures: list[tuple[int, Callable[[Any], int]]] = [
            (position, prop.measure)
            for position, prop in enumerate(properties)
            if prop.kind is PropertyKind.ALWAYS and prop.measure is not None
        ]


_EMPTY = -1
"""An empty slot of the table (a slot holds a state number)."""

_SALT = 0x2545F4914F6CDD1D
"""A state's fingerprint is ``hash(state) ^ _SALT``, never 0 (the one hash equal to the salt
is stored as 1; the parallel coordinator computes it the same way)."""

_CAP = 255
"""A recorded measure above this is stored as this (one byte per state)."""

_FILL = 0.5
"""The table of state numbers doubles when it is this full (most lookups are of new states,
which probe to an empty slot: at three quarters full that took about twice as long)."""


def _grow(slots: array[int], fps: array[int]) -> tuple[array[int], int]:
    """The table at twice the capacity, every state re-placed (in number order)."""
    capacity = len(slots) * 2
    mask = capacity - 1
    new_slots = array("i", [_EMPTY]) * capacity
    for number, fp in enumerate(fps):
        slot = fp & mask
        while new_slots[slot] >= 0:
            slot = (slot + 1) & mask
        new_slots[slot] = number
    return new_slots, mask


def make_replayer(
    model: Model[Any, Any],
    roots: dict[int, Any],
    parents: array[int],
    parent_actions: array[int],
    action_table: list[Any],
    kept: dict[int, list[Any]] | None = None,
    *,
    remember: bool = False,
) -> Callable[[Sequence[int]], list[Any]]:
    """``fetch_states`` for a search that keeps only fingerprints: each wanted state is
    re-created by replaying the actions of its BFS-tree path from its initial state, or from
    the nearest kept level on it (``kept``: the first state number of a level -> its states).
    ``next_state`` is pure, so the replay gives back the state that was found. With
    ``remember``, the states replayed are added to ``roots`` and later calls start from
    them too (else each call forgets them)."""
    next_state = model.next_state
    starts = sorted(kept or ())
    levels = [kept[start] for start in starts] if kept else []

    def get_kept(number: int) -> Any:
        position = bisect_right(starts, number) - 1
        if position < 0:
            return None
        states = levels[position]
        offset = number - starts[position]
        return states[offset] if offset < len(states) else None

    def fetch_states(numbers: Sequence[int]) -> list[Any]:
        known: dict[int, Any] = roots if remember else dict(roots)
        out = []
        for number in numbers:
            path = []
            k = number
            while k not in known:
                if levels and (held := get_kept(k)) is not None:
                    known[k] = held
                    break
                path.append(k)
                k = parents[k]
            state = known[k]
            for k in reversed(path):
                state = next_state(state, action_table[parent_actions[k]])
                if state is None:  # pragma: no cover - a model whose next_state is not pure
                    raise RuntimeError(f"replaying state {k} failed: next_state is not pure")
                known[k] = state
            out.append(state)
        return out

    return fetch_states


def get_verdict_cells(plan: Plan, scope: dict[str, Any]) -> list[str]:
    """The expressions of a state ``s``'s verdict row (predicates bound in ``scope``): each
    recorded measure (capped at 255), then 1/0 per goal, per ``always`` property (1: a
    counterexample) and per ``sometimes`` property (1: a witness)."""
    cells = []
    for i, (_, measure) in enumerate(plan.measures if plan.record_measures else []):
        scope[f"m{i}"] = measure
        cells.append(f"min(m{i}(s), {_CAP})")
    for i, (_, predicate) in enumerate(plan.goals):
        scope[f"g{i}"] = predicate
        cells.append(f"1 if g{i}(s) else 0")
    for i, (_, predicate) in enumerate(plan.always):
        scope[f"a{i}"] = predicate
        cells.append(f"0 if a{i}(s) else 1")
    for i, (_, predicate) in enumerate(plan.sometimes):
        scope[f"t{i}"] = predicate
        cells.append(f"1 if t{i}(s) else 0")
    return cells


_VERDICTS_KEPT = 1 << 16
"""How many verdict rows a memory of verdicts (CHK-37) holds before it starts afresh."""


def _get_row_source(plan: Plan, scope: dict[str, Any], key: Callable[[Any], int] | None) -> str:
    """The body lines that leave state ``s``'s verdict row in ``row``: computed, or with the
    model's verdict key (CHK-37) looked up in ``memo`` first."""
    cells = get_verdict_cells(plan, scope)
    compute = f"bytes(({', '.join(cells)},))" if cells else "b''"
    if key is None:
        return f"    row = {compute}\n"
    scope["_key"] = key
    memo: dict[int, bytes] = {}
    scope["memo"] = memo
    scope["memo_get"] = memo.get
    return (
        "    vk = _key(s)\n    row = memo_get(vk)\n    if row is None:\n"
        f"        row = {compute}\n"
        f"        if len(memo) >= {_VERDICTS_KEPT}:\n            memo.clear()\n"
        "        memo[vk] = row\n"
    )


def make_verdict(plan: Plan, key: Callable[[Any], int] | None = None) -> Callable[[Any], bytes]:
    """A state's verdict row (:func:`get_verdict_cells`): one generated function, no loop;
    with ``key`` (the model's verdict key, CHK-37) states with equal keys share one
    evaluation."""
    scope: dict[str, Any] = {}
    source = f"def verdict(s):\n{_get_row_source(plan, scope, key)}    return row\n"
    exec(compile(source, "<checker verdict>", "exec"), scope)
    return scope["verdict"]  # type: ignore[no-any-return]


def _make_row_judge(
    plan: Plan, rows: list[bytes], key: Callable[[Any], int] | None
) -> Callable[[Any, int], bool]:
    """``judge`` when every predicate is recorded for every state and nothing stops the
    search: it appends the state's verdict row to ``rows`` (one generated function), which
    :func:`_spread_rows` turns into the columns at the end of each level."""
    scope: dict[str, Any] = {"append": rows.append}
    body = _get_row_source(plan, scope, key)
    source = f"def judge(s, k):\n{body}    append(row)\n    return False\n"
    exec(compile(source, "<checker judge>", "exec"), scope)
    return scope["judge"]  # type: ignore[no-any-return]


def _spread_rows(rows: list[bytes], columns: list[bytearray]) -> None:
    """Append the verdict rows' values to their columns (C-level slices) and empty ``rows``."""
    if rows:
        table = b"".join(rows)
        width = len(columns)
        for i, column in enumerate(columns):
            column += table[i::width]
        rows.clear()


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
    hit are no longer evaluated, unless ``plan.record_hits`` asks for every state's value.

    Storage is compact (CHK-16): a discovered state costs its 64-bit fingerprint (its hash) in
    an open-addressing table with its BFS number, its parent number and its interned action;
    only the current and the next level are kept as objects. States are re-created by replay
    when a trace needs them.
    """
    clock = time.perf_counter
    capacity = 1 << 12
    # The visited set (CHK-16): ``fps[j]`` is state j's fingerprint; ``slots`` is an
    # open-addressing table of state numbers (linear probing from ``fp & mask``).
    slots = array("i", [_EMPTY]) * capacity
    fps = array("q")
    fps_append = fps.append
    mask = capacity - 1
    grow_at = int(capacity * _FILL)
    table_bytes = 4 * capacity
    count = 0
    roots: dict[int, Any] = {}
    parents = array("i")
    parent_actions = array("i")
    action_table: list[Any] = []
    action_ids: dict[Any, int] = {}
    first_hits = [-1] * plan.count
    goal_bits = {position: Bits() for position, _ in plan.goals}
    goals = [(goal_bits[position].tail, predicate) for position, predicate in plan.goals]
    always = list(plan.always)
    sometimes = list(plan.sometimes)
    hit_bits: dict[int, Bits] = {}
    tracked: list[tuple[bytearray, Callable[[Any], bool], bool, bool]] = []
    measures: dict[int, bytearray] = {}
    measured: list[tuple[bytearray, Callable[[Any], int]]] = []
    if plan.record_measures:
        for position, measure in plan.measures:
            measures[position] = bytearray()
            measured.append((measures[position], measure))
    if plan.record_hits:
        # Every state's value of every always/sometimes predicate (cheapest traces need them).
        for position, predicate in always:
            hit_bits[position] = Bits()
            tracked.append((hit_bits[position].tail, predicate, False, True))
        for position, predicate in sometimes:
            hit_bits[position] = Bits()
            tracked.append((hit_bits[position].tail, predicate, True, False))
        always = []
        sometimes = []
    columns = [*goal_bits.values(), *hit_bits.values()]
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

    def judge(state: Any, k: int) -> bool:
        """Evaluate the pending predicates on a new state; whether the search must stop."""
        nonlocal always, sometimes
        halt = False
        for bits, predicate in goals:
            bits.append(1 if predicate(state) else 0)
        for bits, predicate, wanted, is_always in tracked:
            hit = predicate(state) == wanted
            bits.append(hit)
            if hit and is_always and stop_on_violation:
                halt = True
        for bits, measure in measured:
            value = measure(state)
            bits.append(value if value < _CAP else _CAP)
        for position, predicate in sometimes:
            if predicate(state):
                first_hits[position] = k
                sometimes = [e for e in sometimes if e[0] != position]
        for position, predicate in always:
            if not predicate(state):
                first_hits[position] = k
                always = [e for e in always if e[0] != position]
                if stop_on_violation:
                    halt = True
        return halt

    judge_state: Callable[[Any, int], bool] = judge
    rows: list[bytes] = []
    # The verdict rows' columns, in the order of get_verdict_cells.
    row_columns = [
        *(values for values, _ in measured),
        *(bits for bits, _ in goals),
        *(bits for bits, _, _, _ in tracked),
    ]
    if tracked and not always and not sometimes and not stop_on_violation:
        judge_state = _make_row_judge(plan, rows, get_verdict_key(model))

    # Without edge recording only membership matters: a set of fingerprints (C speed, about
    # 70 bytes a state) instead of the table that also maps fingerprints to numbers.
    use_set = not record
    seen: set[int] = set()
    seen_add = seen.add

    # CHK-1: initial states, deduplicated, in the model's order, are depth 0.
    level: list[Any] = []
    for init in model.init_states():
        fp = (hash(init) ^ _SALT) or 1
        slot = fp & mask
        while (known := slots[slot]) >= 0 and fps[known] != fp:
            slot = (slot + 1) & mask
        if known >= 0:
            continue
        if boundary is not None and not boundary(init):
            pruned += 1
            continue
        if count >= limit:
            stop = StopReason.MAX_STATES
            break
        slots[slot] = count
        fps_append(fp)
        if use_set:
            seen_add(fp)
        roots[count] = init
        level.append(init)
        parents.append(-1)
        parent_actions.append(-1)
        count += 1
        if judge(init, count - 1):
            stop = StopReason.FIRST_VIOLATION
            break

    actions = model.actions
    next_state = model.next_state
    action_get = action_ids.get
    parents_append = parents.append
    parent_actions_append = parent_actions.append
    dst_append = edge_dst.append
    act_append = edge_act.append
    src_append = edge_src.append
    next_report = started + progress_interval
    pending_judge = bool(goals or tracked or always or sometimes)
    salt = _SALT

    level_starts = [0]
    depth = 0
    keep_every, keep_limit = plan.keep_every, plan.keep_limit
    kept: dict[int, list[Any]] = {}
    kept_count = 0
    expanded = 0
    while stop is None:
        start = level_starts[-1]
        end = count
        if start == end:  # no initial state
            stop = StopReason.EXHAUSTED
            break
        if max_depth is not None and depth >= max_depth:
            stop = StopReason.MAX_DEPTH
            break
        upcoming: list[Any] = []
        upcoming_append = upcoming.append
        for i, s in enumerate(level, start):
            if not i & _CLOCK_MASK:
                now = clock()
                if deadline is not None and now >= deadline:
                    stop = StopReason.TIME_LIMIT
                    expanded = i
                    break
                if progress is not None and now >= next_report:
                    next_report = now + progress_interval
                    progress(ProgressInfo(count, transitions, count - i, depth, now - started))
            for a in actions(s):
                t = next_state(s, a)
                if t is None:
                    continue
                transitions += 1
                fp = (hash(t) ^ salt) or 1
                if use_set:  # no edges wanted: a set of fingerprints is enough
                    if fp in seen:
                        continue
                    j = -1
                    slot = 0
                else:
                    slot = fp & mask
                    while (j := slots[slot]) >= 0 and fps[j] != fp:
                        slot = (slot + 1) & mask
                if j < 0:
                    if boundary is not None and not boundary(t):
                        pruned += 1
                        open_states.add(i)
                        continue
                    j = count
                    if j >= limit:
                        stop = StopReason.MAX_STATES
                        break
                    count += 1
                    if use_set:
                        seen_add(fp)
                    else:
                        slots[slot] = j
                        fps_append(fp)
                        if count > grow_at:
                            # While it doubles, the old and the new table exist at once.
                            table_bytes = max(table_bytes, 12 * len(slots) + 8 * count)
                            slots, mask = _grow(slots, fps)
                            grow_at = int(len(slots) * _FILL)
                    upcoming_append(t)
                    parents_append(i)
                    aid = action_get(a)
                    if aid is None:
                        aid = intern(a)
                    parent_actions_append(aid)
                    # CHK-4/5/6: evaluate each pending predicate once, at discovery.
                    if pending_judge and judge_state(t, j):
                        stop = StopReason.FIRST_VIOLATION
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
            if count == end:
                stop = StopReason.EXHAUSTED
                break
            level_starts.append(end)
            level = upcoming
            depth += 1
            _spread_rows(rows, row_columns)
            for column in columns:
                column.flush()
            if keep_every and depth % keep_every == 0 and kept_count + len(level) <= keep_limit:
                kept[end] = level
                kept_count += len(level)
            continue
        break

    if record:
        # Drop the edges of a state whose expansion was cut short: it counts as unexpanded.
        while edge_src and edge_src[-1] >= expanded:
            edge_src.pop()
            edge_dst.pop()
            edge_act.pop()
    _spread_rows(rows, row_columns)
    for position, bits in hit_bits.items():
        first_hits[position] = bits.find_one()
    assert stop is not None
    table_bytes = max(table_bytes, 4 * len(slots) + 8 * len(fps))
    if use_set:
        table_bytes = sys.getsizeof(seen) + sum(map(sys.getsizeof, seen))
    del slots, fps, level, seen
    end_search(model)  # CHK-16: the model frees what it kept for the search
    return Exploration(
        table_bytes=table_bytes,
        kept_states=kept_count,
        count=count,
        fetch_states=make_replayer(model, roots, parents, parent_actions, action_table, kept),
        parents=parents,
        parent_actions=parent_actions,
        action_table=action_table,
        level_starts=level_starts,
        unexpanded=range(expanded, count),
        transitions=transitions,
        pruned=pruned,
        stop_reason=stop,
        first_hits=first_hits,
        goal_bits=goal_bits,
        open_states=open_states,
        edge_src=edge_src if record else None,
        edge_dst=edge_dst if record else None,
        edge_act=edge_act if record else None,
        hit_bits=hit_bits,
        measures=measures,
    )
