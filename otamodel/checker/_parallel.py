"""Process-parallel breadth-first search (CHK-14).

States never travel whole between processes unless the load must be rebalanced. Each
worker holds a share of the current level as objects and expands it; what it sends back is
compact: per distinct successor its 64-bit fingerprint and its discovery key
``(parent number, action position)``. The coordinator owns the fingerprint table: a
successor is new if its fingerprint is unknown, and among the workers that found the same
new successor the one with the smallest key keeps it, which is the state the
single-process search would have found first (unless another worker holds a variant of it,
CHK-38: that worker makes and keeps it). Sorting the new states by key numbers them
exactly as the single-process search does, so counts, numbers, parents, edges, verdicts and
traces are identical. The workers then judge the properties on the states they keep and,
given every successor's number, resolve their edges ``(parent, successor, action)``
themselves. Traces are replayed from the parent links like in the single-process search.

The worker side (:class:`~otamodel.checker._workers.Shard`, the process pool) is in
``_workers.py``; this module is the coordinator.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from typing import Any

from otamodel.checker._affinity import Homes, Move
from otamodel.checker._bits import Bits
from otamodel.checker._keys import (
    Key,
    KeyRequest,
    get_balanced_homes,
    pack_requests,
)
from otamodel.checker._model import Model, end_search, get_boundary
from otamodel.checker._numbering import FingerprintTable, Level, as_int64, merge_edges, remap
from otamodel.checker._report import ProgressInfo, StopReason
from otamodel.checker._search import (
    Exploration,
    Plan,
    ProgressHook,
    make_replayer,
)
from otamodel.checker._workers import _POS_BITS, Edges, Engine, Offload, _Pool
from otamodel.errors import ModelDefinitionError

_REBALANCE = 64
"""Workers' shares of a level are evened out when they differ by more than this."""
_NOT_KEPT = 255
"""The owner of a state no worker keeps (``_Coordinator.owners``)."""
_SPREAD = 8
"""Requests whose replay starts at an initial state are dealt by their ancestor this many
steps below it (:meth:`_Coordinator.get_anchor`)."""


def explore_parallel(
    model: Model[Any, Any],
    plan: Plan,
    *,
    workers: int,
    max_depth: int | None,
    max_states: int | None,
    deadline: float | None,
    stop_on_violation: bool,
    progress: ProgressHook | None,
    progress_interval: float,
    started: float,
    engine: Callable[[Model[Any, Any], Plan, int], Engine] | None = None,
) -> Exploration:
    """Level-synchronous BFS over ``workers`` shards (CHK-14). ``max_states`` keeps the
    first ``max_states`` states (only the transition count may differ from one process);
    time is checked per level (a cut level stays unexpanded);
    ``stop_on_violation`` finishes the level it is in (CHK-9)."""
    pool = (engine or _Pool)(model, plan, workers)
    try:
        return _Coordinator(model, plan, pool, pool.workers).run(
            max_depth=max_depth,
            max_states=max_states,
            deadline=deadline,
            stop_on_violation=stop_on_violation,
            progress=progress,
            progress_interval=progress_interval,
            started=started,
        )
    except BaseException:
        pool.close()
        raise


class _Coordinator:
    """Numbers states, keeps the table, the parent links, the edges and the verdict bits."""

    def __init__(self, model: Model[Any, Any], plan: Plan, pool: Engine, workers: int) -> None:
        self.model = model
        self.plan = plan
        self.pool = pool
        self.workers = workers
        self.table = FingerprintTable()
        """Fingerprint -> state number (CHK-16; an array table probed a level at a time)."""
        self.parents = array("i")
        self.parent_actions = array("i")
        self.action_table: list[Any] = []
        self.action_ids: dict[Any, int] = {}
        self.remaps: list[list[int]] = [[] for _ in range(workers)]
        self.first_hits = [-1] * plan.count
        self.goal_bits = {position: Bits() for position, _ in plan.goals}
        self.hit_bits: dict[int, Bits] = {}
        if plan.record_hits:
            self.hit_bits = {position: Bits() for position, _ in plan.always + plan.sometimes}
        self.measures: dict[int, bytearray] = {}
        if plan.record_measures:
            self.measures = {position: bytearray() for position, _ in plan.measures}
        self.edges = (array("i"), array("i"), array("i"))
        self.edge_parts: list[Edges | None] = []
        """The workers' resolved edges of the level committed last (added to ``edges`` while
        the workers work on the next one)."""
        self.open_states: set[int] = set()
        self.transitions = 0
        self.pruned = 0
        self.roots: dict[int, Any] = {}
        self.judged: list[dict[str, Any]] = []
        """The workers' judgements of the level just committed."""
        self.given: list[list[tuple[int, bytes]]] = []
        """Per worker, the parcels of states it gave away: ``(taker, parcel)``."""
        self.takes: list[list[bytes]] = [[] for _ in range(workers)]
        """Per worker, the parcels it takes with the next expansion (rebalancing)."""
        self.owners = bytearray()
        """Per state number, the worker keeping it as a replay start (roots: the worker they
        were dealt to), else ``_NOT_KEPT`` (CHK-35)."""
        self.kept_count = 0
        self.homes: Homes | None = None
        """CHK-38: where the states' variants are kept (models with variant hooks)."""
        self.moves: list[list[Move]] = [[] for _ in range(workers)]
        """The level's states moved to the workers keeping their variants."""

    def intern(self, action: Any) -> int:
        aid = self.action_ids.get(action)
        if aid is None:
            aid = self.action_ids[action] = len(self.action_table)
            self.action_table.append(action)
        return aid

    def start(self, max_states: int | None) -> tuple[StopReason | None, list[list[Any]]]:
        """CHK-1: the initial states, deduplicated in order, dealt to the workers."""
        boundary = get_boundary(self.model)
        shares: list[list[Any]] = [[] for _ in range(self.workers)]
        probes = self.pool.call("get_hash_probe", [()] * self.workers)
        if len(set(probes)) > 1:
            raise ModelDefinitionError(
                "the checker's workers hash differently: start every worker process with the "
                "same PYTHONHASHSEED (e.g. PYTHONHASHSEED=0)"
            )
        inits = list(self.model.init_states())
        # Fingerprints come from the workers (this process may use another hash seed).
        fps = self.pool.call("get_fingerprints", [(inits,)] * self.workers)[0]
        for init, fp in zip(inits, fps, strict=True):
            if self.table.get(fp) >= 0:
                continue
            if boundary is not None and not boundary(init):
                self.pruned += 1
                continue
            if max_states is not None and len(self.table) >= max_states:
                return StopReason.MAX_STATES, shares
            number = len(self.table)
            self.table.add(as_int64(array("q", [fp])))
            self.parents.append(-1)
            self.parent_actions.append(-1)
            self.roots[number] = init
            shares[number % self.workers].append((number, init))
            self.owners.append(number % self.workers)
        return None, shares

    def run(
        self,
        *,
        max_depth: int | None,
        max_states: int | None,
        deadline: float | None,
        stop_on_violation: bool,
        progress: ProgressHook | None,
        progress_interval: float,
        started: float,
    ) -> Exploration:
        plan = self.plan
        stop, shares = self.start(max_states)
        self.pool.call("take", [(share,) for share in shares])
        judged = self.pool.call("judge", [(share, set()) for share in shares])
        violated = self.record_judgements(judged)
        if stop is None and stop_on_violation and violated:
            stop = StopReason.FIRST_VIOLATION
        level_starts = [0]
        depth = 0
        expanded = 0
        next_report = started + progress_interval
        replies: list[dict[str, Any]] | None = None  # the level's expansion, if already done
        while stop is None:
            start = level_starts[-1]
            count = len(self.table)
            if start == count:
                stop = StopReason.EXHAUSTED
                expanded = count
                break
            if max_depth is not None and depth >= max_depth:
                stop = StopReason.MAX_DEPTH
                break
            if replies is None:
                time_left = None if deadline is None else deadline - time.perf_counter()
                takes, self.takes = self.takes, [[] for _ in range(self.workers)]
                replies = self.pool.call("expand", [(time_left, take) for take in takes])
            if any(reply["timed_out"] for reply in replies):
                stop = StopReason.TIME_LIMIT
                break
            numbers, targets, truncated = self.number_level(replies, max_states)
            expanded = count if truncated < 0 else truncated
            size = len(self.table) - count
            self.moves = self.get_moves(replies, numbers)
            sizes = [
                len(level) - level.count(-1) + len(moved)
                for level, moved in zip(numbers, self.moves, strict=True)
            ]
            # The workers go on to expand the new level right after judging it (one round
            # trip a level) unless a bound ends the search there or the shares need evening
            # out first; a violation the judging finds discards that expansion (CHK-9).
            going_on = size > 0 and truncated < 0 and (max_depth is None or depth + 1 < max_depth)
            gives = self.get_gives(sizes) if going_on else None
            replies = self.commit_level(numbers, targets, depth + 1, size, gives, deadline)
            violated = self.record_judgements(self.judged)
            if size == 0:
                stop = StopReason.EXHAUSTED
                break
            level_starts.append(count)
            depth += 1
            if truncated >= 0:
                stop = StopReason.MAX_STATES
            elif stop_on_violation and violated:
                stop = StopReason.FIRST_VIOLATION
            elif deadline is not None and time.perf_counter() >= deadline:
                stop = StopReason.TIME_LIMIT
            elif gives is not None and any(gives):
                self.takes = self.get_takes(self.given)
            now = time.perf_counter()
            if progress is not None and now >= next_report:
                next_report = now + progress_interval
                frontier = len(self.table) - count
                progress(
                    ProgressInfo(len(self.table), self.transitions, frontier, depth, now - started)
                )
        assert stop is not None
        self.pool.call("end_search", [()] * self.workers)
        end_search(self.model)
        if plan.record_edges:
            self.add_edges(self.edge_parts)
            src, dst, act = self.edges
            while src and src[-1] >= expanded:
                src.pop()
                dst.pop()
                act.pop()
        for position, bits in self.hit_bits.items():
            self.first_hits[position] = bits.find_one()
        count = len(self.table)
        table_bytes = self.table.nbytes  # for the storage figures (CHK-16)
        del self.table
        return Exploration(
            table_bytes=table_bytes,
            kept_states=self.kept_count,
            submit_keys=self.submit_keys,
            offload=Offload(self.pool),
            count=count,
            fetch_states=make_replayer(
                self.model, self.roots, self.parents, self.parent_actions, self.action_table
            ),
            parents=self.parents,
            parent_actions=self.parent_actions,
            action_table=self.action_table,
            level_starts=level_starts,
            unexpanded=range(expanded, count),
            transitions=self.transitions,
            pruned=self.pruned,
            stop_reason=stop,
            first_hits=self.first_hits,
            goal_bits=self.goal_bits,
            open_states=self.open_states,
            edge_src=self.edges[0] if plan.record_edges else None,
            edge_dst=self.edges[1] if plan.record_edges else None,
            edge_act=self.edges[2] if plan.record_edges else None,
            close=self.pool.close,
            workers=self.workers,
            hit_bits=self.hit_bits,
            measures=self.measures,
        )

    def is_kept_level(self, depth: int, size: int, numbers: list[array[int]]) -> bool:
        """Whether the new level (``depth``, ``size`` states) is a replay start (CHK-16) and
        record which worker keeps each of its states. Each worker keeps its share of a kept
        level, so with N workers every (6 / N)-th level is kept: a worker holds about as many
        states as one process keeping every sixth level, and replays are shorter (CHK-36)."""
        plan = self.plan
        stride = max(1, plan.keep_every // self.workers) if plan.keep_every else 0
        keep = bool(stride) and depth % stride == 0
        # The bound is per process: each worker keeps about its share of a level.
        keep = keep and self.kept_count + size <= plan.keep_limit * self.workers
        self.owners.extend(bytes([_NOT_KEPT]) * size)
        if keep:
            self.kept_count += size
            owners = self.owners
            for w, level in enumerate(numbers):
                for number in level:
                    if number >= 0:
                        owners[number] = w
                for move in self.moves[w]:  # CHK-38: made there from a variant
                    owners[move[0]] = w
        return keep

    def get_anchor(self, number: int, anchors: dict[int, int]) -> tuple[int, int]:
        """Where the replay of ``number`` starts, and how many states of its path no earlier
        call walked (the replay steps it adds). The start is the nearest kept state on its
        BFS-tree path; a path that reaches an initial state (every worker has them) starts
        at the state ``_SPREAD`` steps below it (its subtree replays in one worker, and the
        subtrees spread over the workers). ``anchors`` remembers the answers along the way."""
        owners, parents = self.owners, self.parents
        hops = []
        k = number
        while k not in anchors and owners[k] == _NOT_KEPT:
            hops.append(k)
            k = parents[k]
        if k in anchors:
            anchor = anchors[k]
        elif parents[k] >= 0 or not hops:
            anchor = k
        else:  # an initial state: any worker
            anchor = hops[-min(len(hops), _SPREAD)]
            # The states above that one would be replayed by several workers: no anchor.
            del hops[len(hops) - min(len(hops), _SPREAD) + 1 :]
        for hop in hops:
            anchors[hop] = anchor
        return anchor, len(hops)

    def get_home(self, anchor: int) -> int:
        """The worker that replays from ``anchor``: the one keeping it, else (a state below
        an initial one) the one its number deals it to."""
        owner = self.owners[anchor]
        return owner if owner != _NOT_KEPT else anchor % self.workers

    def submit_keys(self, requests: list[KeyRequest]) -> Callable[[], list[Key]]:
        """CHK-35: each request goes to the worker keeping the nearest replay start of its
        base state (requests sharing a start stay together), the shares evened out by their
        replay steps; the workers replay and compute the keys side by side while this
        process goes on. Returns what waits for the keys (in request order)."""
        workers = self.workers
        groups: dict[int, list[int]] = {}  # anchor -> its requests (-1 - k: none needed)
        costs: dict[int, int] = {}
        anchors: dict[int, int] = {}
        for k, request in enumerate(requests):
            if request.base < 0:
                anchor, steps = -1 - k % workers, 0
            else:
                anchor, steps = self.get_anchor(request.base, anchors)
            groups.setdefault(anchor, []).append(k)
            costs[anchor] = costs.get(anchor, 0) + 1 + steps + len(request.walk)
        homes = {a: -1 - a if a < 0 else self.get_home(a) for a in groups}
        for anchor, home in get_balanced_homes(homes, costs, workers).items():
            homes[anchor] = home
        places: list[list[int]] = [[] for _ in range(workers)]
        for anchor, members in groups.items():
            places[homes[anchor]].extend(members)
        for where in places:
            where.sort()
        groups_out = [[requests[k] for k in where] for where in places]
        links = (self.roots, self.parents, self.parent_actions, self.action_table)
        self.pool.submit("get_keys", [(pack_requests(g), links) for g in groups_out])

        def collect() -> list[Key]:
            keys: list[Key] = [()] * len(requests)
            for where, answer in zip(places, self.pool.collect(), strict=True):
                for k, key in zip(where, answer, strict=True):
                    keys[k] = key
            return keys

        return collect

    def number_level(
        self, replies: list[dict[str, Any]], max_states: int | None
    ) -> tuple[list[array[int]], list[array[int]], int]:
        """Pick each new state's first discovery, number the level in key order, record
        parents and edges (in the single-process order: by parent, then action). The work
        per successor runs in whole-array operations (the workers step ahead meanwhile)."""
        for w, reply in enumerate(replies):
            self.remaps[w].extend(self.intern(action) for action in reply["actions"])
            self.transitions += reply["transitions"]
            self.pruned += reply["pruned"]
            self.open_states.update(reply["open"])
        level = Level(self.table, replies, self.remaps, _POS_BITS)
        truncated = -1
        if max_states is not None and len(self.table) + len(level) > max_states:
            # As one process would: the parent whose expansion reached the bound, and every
            # later one, count as unexpanded.
            truncated = level.truncate(max(0, max_states - len(self.table)))
        numbers = level.commit(self.parents, self.parent_actions)
        # Every candidate's number (the workers resolve their edges with them).
        record = self.plan.record_edges
        targets = level.get_targets() if record else [array("i") for _ in replies]
        return numbers, targets, truncated

    def get_moves(
        self, replies: list[dict[str, Any]], numbers: list[array[int]]
    ) -> list[list[Move]]:
        """CHK-38: the new states to move to the workers keeping their variants (none unless
        the workers send variant keys)."""
        if self.homes is None:
            if not replies or "variants" not in replies[0]:
                return [[] for _ in range(self.workers)]
            self.homes = Homes(self.workers)
        return self.homes.get_moves(replies, numbers)

    def add_edges(self, parts: list[Edges | None]) -> None:
        """Append a level's edges, resolved to numbers by the workers, in the single-process
        order: by source, then action (a stable sort by source merges the workers' runs)."""
        resolved = [
            (part[0], part[1], remap(part[2], self.remaps[w]))
            for w, part in enumerate(parts)
            if part is not None
        ]
        if sum(1 for part in resolved if part[0]) > 1:
            resolved = [merge_edges(resolved)]
        for out, *runs in zip(self.edges, *resolved, strict=True):
            for run in runs:
                out.extend(run)

    def record_judgements(self, judged: list[dict[str, Any]]) -> bool:
        """Place the workers' verdict bits by state number; whether an invariant failed."""
        count = len(self.table)
        columns = [*self.goal_bits.values(), *self.hit_bits.values()]
        for column in columns:
            column.extend_to(count)
        for values in self.measures.values():
            values.extend(bytes(count - len(values)))
        violated = False
        always = {position for position, _ in self.plan.always}
        for answer in judged:
            for position, ones in answer["goals"].items():
                self.goal_bits[position].set_ones(ones)
            for position, ones in answer["hits"].items():
                self.hit_bits[position].set_ones(ones)
            for position, pairs in answer.get("measures", {}).items():
                target = self.measures[position]
                for number, value in pairs:
                    target[number] = value
            for position, number in answer["first"].items():
                current = self.first_hits[position]
                if current < 0 or number < current:
                    self.first_hits[position] = number
                if position in always:
                    violated = True
        for column in columns:
            column.flush()
        return violated

    def commit_level(
        self,
        numbers: list[array[int]],
        targets: list[array[int]],
        depth: int,
        size: int,
        gives: list[list[tuple[int, int]]] | None,
        deadline: float | None,
    ) -> list[dict[str, Any]] | None:
        """The workers keep and judge the numbered level (``self.judged``) and resolve its
        edges, while the previous level's edges are added here. When the search goes on
        (``gives``): with balanced shares the workers expand the level too, in the same
        round trip, and that expansion is returned; else the heavy ones give their excess
        (``self.given``, parcels by taker) for the light ones to take with the next
        expansion."""
        solved = {p for p, hit in enumerate(self.first_hits) if hit >= 0}
        keep = self.is_kept_level(depth, size, numbers)
        onward = gives is not None and not any(gives)
        moves = self.moves
        args: list[tuple[Any, ...]]
        if onward:
            time_left = None if deadline is None else deadline - time.perf_counter()
            args = [
                (numbers[w], targets[w], solved, keep, time_left, moves[w])
                for w in range(self.workers)
            ]
            self.pool.submit("advance", args)
        else:
            give = gives or [[] for _ in range(self.workers)]
            args = [
                (numbers[w], targets[w], solved, keep, give[w], moves[w])
                for w in range(self.workers)
            ]
            self.pool.submit("commit", args)
        if self.homes is not None:
            self.homes.remember()
        if self.edge_parts:
            self.add_edges(self.edge_parts)
        answers = self.pool.collect()
        self.edge_parts = [
            (answer["judged"] if onward else answer).pop("edges") for answer in answers
        ]
        if not onward:
            self.given = [answer.pop("given", []) for answer in answers]
            self.judged = answers
            return None
        self.judged = [answer["judged"] for answer in answers]
        return [answer["expanded"] for answer in answers]

    def get_gives(self, sizes: list[int]) -> list[list[tuple[int, int]]]:
        """Per worker, how many of its states it gives to which light worker to even out the
        shares of a level: ``(taker, count)`` (none unless they differ by more than
        ``_REBALANCE``)."""
        target = sum(sizes) // self.workers
        excess = [size - target if size > target + _REBALANCE else 0 for size in sizes]
        needs = [target - size if size < target - _REBALANCE else 0 for size in sizes]
        gives: list[list[tuple[int, int]]] = [[] for _ in range(self.workers)]
        if not any(excess) or not any(needs):
            return gives
        for giver in range(self.workers):
            for taker in range(self.workers):
                count = min(excess[giver], needs[taker])
                if count:
                    gives[giver].append((taker, count))
                    excess[giver] -= count
                    needs[taker] -= count
        return gives

    @staticmethod
    def get_takes(given: list[list[tuple[int, bytes]]]) -> list[list[bytes]]:
        """The given parcels, by taker (passed on as they are: this process never opens
        them)."""
        takes: list[list[bytes]] = [[] for _ in given]
        for parcels in given:
            for taker, parcel in parcels:
                takes[taker].append(parcel)
        return takes


__all__ = ["explore_parallel"]
