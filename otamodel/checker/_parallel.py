"""Process-parallel breadth-first search: the state space is sharded across worker processes.

Worker ``w`` owns the states with ``hash(state) % workers == w``: it stores them, deduplicates
them and evaluates the properties on them. BFS levels stay synchronous: each worker expands its
share of the frontier, keeps the successors it owns, and ships the others (pickled, once per
worker thanks to a cache of states already sent) to their owners through the parent process,
which only forwards bytes. So the same states are found at the same depths as by the
single-process search (CHK-14); which of several equally short traces is reported may differ.

Workers are forked where the platform allows (nothing but states and actions is pickled);
elsewhere they are spawned and the model itself must be picklable.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import time
import traceback
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from otamodel.checker._model import Model, get_boundary
from otamodel.checker._report import ProgressInfo, StopReason
from otamodel.checker._search import Exploration, Plan, ProgressHook

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_CLOCK_MASK = 0  # the clock is read before every state (BOUND-8)
_PENDING = -1
"""Cache value of a remote state sent this level whose owner has not yet named its id."""

Batch = list[tuple[Any, int, Any]]
"""Successors shipped to their owner: ``(state, parent id, action)``."""


class _Shard:
    """One worker's part of the search. Ids are ``local index * workers + owner``."""

    def __init__(self, model: Model[Any, Any], me: int, workers: int) -> None:
        self.model = model
        self.me = me
        self.workers = workers
        plan = Plan(model.properties())
        self.plan = plan
        self.record = plan.record_edges
        self.states: list[Any] = []
        self.index: dict[Any, int] = {}
        self.parents = array("q")
        self.parent_actions = array("i")
        self.action_table: list[Any] = []
        self.action_ids: dict[Any, int] = {}
        self.first_hits = [-1] * plan.count
        self.goals = [(bytearray(), predicate) for _, predicate in plan.goals]
        self.always = list(plan.always)
        self.sometimes = list(plan.sometimes)
        self.boundary = get_boundary(model)
        self.open_states: set[int] = set()
        self.bounds = [0]
        self.expanded = 0
        self.transitions = 0
        self.pruned = 0
        self.is_violated = False
        self.is_timed_out = False
        self.cache: dict[Any, int] = {}
        self.sent: list[Batch] = [[] for _ in range(workers)]
        self.pending: list[tuple[int, Any, int]] = []
        self.edge_src = array("q")
        self.edge_dst = array("q")
        self.edge_act = array("i")

    def intern(self, action: Any) -> int:
        aid = self.action_ids.get(action)
        if aid is None:
            aid = len(self.action_table)
            self.action_ids[action] = aid
            self.action_table.append(action)
        return aid

    def add(self, state: Any, parent: int, aid: int) -> int:
        """Store a new owned state and evaluate the pending predicates on it (CHK-4/5/6)."""
        j = len(self.states)
        self.index[state] = j
        self.states.append(state)
        self.parents.append(parent)
        self.parent_actions.append(aid)
        for bits, predicate in self.goals:
            bits.append(1 if predicate(state) else 0)
        for position, predicate in self.sometimes:
            if predicate(state):
                self.first_hits[position] = j
                self.sometimes = [e for e in self.sometimes if e[0] != position]
        for position, predicate in self.always:
            if not predicate(state):
                self.first_hits[position] = j
                self.always = [e for e in self.always if e[0] != position]
                self.is_violated = True
        return j

    def start(self) -> tuple[int, int, bool]:
        """Keep the owned initial states (CHK-1)."""
        for init in self.model.init_states():
            if hash(init) % self.workers != self.me or init in self.index:
                continue
            if self.boundary is not None and not self.boundary(init):
                self.pruned += 1
                continue
            self.add(init, -1, -1)
        self.bounds.append(len(self.states))
        return len(self.states), len(self.states), self.is_violated

    def apply_replies(self, replies: Sequence[bytes | None]) -> None:
        """Learn the ids owners gave the states sent last level; resolve pending edges."""
        cache = self.cache
        for owner, reply in enumerate(replies):
            if reply is None:
                continue
            ids = array("q")
            ids.frombytes(reply)
            for (state, _, _), gid in zip(self.sent[owner], ids, strict=True):
                cache[state] = gid
            self.sent[owner] = []
        for src, state, aid in self.pending:
            self.edge_src.append(src)
            self.edge_dst.append(cache[state])
            self.edge_act.append(aid)
        self.pending = []

    def expand(
        self, replies: Sequence[bytes | None], time_left: float | None
    ) -> list[bytes | None]:
        """Expand this worker's share of the frontier (CHK-2, CHK-3)."""
        self.apply_replies(replies)
        workers, me, record = self.workers, self.me, self.record
        deadline = None if time_left is None else time.perf_counter() + time_left
        states, index_get = self.states, self.index.get
        cache, cache_get = self.cache, self.cache.get
        actions, next_state = self.model.actions, self.model.next_state
        boundary, intern, add = self.boundary, self.intern, self.add
        out: list[Batch] = [[] for _ in range(workers)]
        src_append, dst_append = self.edge_src.append, self.edge_dst.append
        act_append, pending_append = self.edge_act.append, self.pending.append
        transitions = 0
        start, end = self.bounds[-2], self.bounds[-1]
        self.expanded = end
        for i in range(start, end):
            if deadline is not None and not i & _CLOCK_MASK and time.perf_counter() >= deadline:
                self.expanded = i
                self.is_timed_out = True
                break
            s = states[i]
            src = i * workers + me
            for a in actions(s):
                t = next_state(s, a)
                if t is None:
                    continue
                transitions += 1
                owner = hash(t) % workers
                if owner == me:
                    j = index_get(t)
                    if j is None:
                        if boundary is not None and not boundary(t):
                            self.pruned += 1
                            self.open_states.add(i)
                            continue
                        aid = intern(a)
                        j = add(t, src, aid)
                        if record:
                            src_append(src)
                            dst_append(j * workers + me)
                            act_append(aid)
                    elif record and j != i:
                        src_append(src)
                        dst_append(j * workers + me)
                        act_append(intern(a))
                    continue
                gid = cache_get(t)
                if gid is None:
                    if boundary is not None and not boundary(t):
                        self.pruned += 1
                        self.open_states.add(i)
                        continue
                    cache[t] = _PENDING
                    out[owner].append((t, src, a))
                elif record:
                    if gid == _PENDING:
                        pending_append((src, t, intern(a)))
                    else:
                        src_append(src)
                        dst_append(gid)
                        act_append(intern(a))
        self.transitions += transitions
        if record:
            self.sent = out
        return [pickle.dumps(batch, _PROTOCOL) if batch else None for batch in out]

    def merge(
        self, incoming: Sequence[bytes | None]
    ) -> tuple[int, int, bool, bool, list[bytes | None], int]:
        """Deduplicate the successors other workers found for this one; close the level."""
        workers, me, record = self.workers, self.me, self.record
        index_get, intern, add = self.index.get, self.intern, self.add
        replies: list[bytes | None] = [None] * workers
        for sender, payload in enumerate(incoming):
            if payload is None:
                continue
            batch: Batch = pickle.loads(payload)
            ids = array("q")
            for t, src, a in batch:
                j = index_get(t)
                aid = intern(a)
                if j is None:
                    j = add(t, src, aid)
                gid = j * workers + me
                if record:
                    ids.append(gid)
                    self.edge_src.append(src)
                    self.edge_dst.append(gid)
                    self.edge_act.append(aid)
            replies[sender] = ids.tobytes() if record else None
        self.bounds.append(len(self.states))
        level = len(self.states) - self.bounds[-2]
        return (
            len(self.states),
            level,
            self.is_violated,
            self.is_timed_out,
            replies,
            self.transitions,
        )

    def gather(self, replies: Sequence[bytes | None]) -> dict[str, Any]:
        """Everything the parent needs to number the states globally and judge properties."""
        self.apply_replies(replies)
        return {
            "count": len(self.states),
            "bounds": self.bounds,
            "expanded": self.expanded,
            "parents": self.parents,
            "parent_actions": self.parent_actions,
            "action_table": self.action_table,
            "first_hits": self.first_hits,
            "goal_bits": [bits for bits, _ in self.goals],
            "open_states": sorted(self.open_states),
            "transitions": self.transitions,
            "pruned": self.pruned,
            "edges": (self.edge_src, self.edge_dst, self.edge_act) if self.record else None,
        }


def _serve(conn: Connection, model: Model[Any, Any], me: int, workers: int) -> None:
    """A worker process: answer the parent's requests until told to stop."""
    try:
        shard = _Shard(model, me, workers)
        conn.send(("ok", shard.start()))
        while True:
            op, *args = conn.recv()
            if op == "expand":
                conn.send(("ok", shard.expand(args[0], args[1])))
            elif op == "merge":
                conn.send(("ok", shard.merge(args[0])))
            elif op == "gather":
                conn.send(("ok", shard.gather(args[0])))
            elif op == "fetch":
                conn.send(("ok", [shard.states[k] for k in args[0]]))
            else:
                return
    except BaseException as exc:  # report it to the parent, which re-raises it
        detail = traceback.format_exc()
        try:
            conn.send(("error", (exc, detail)))
        except Exception:
            conn.send(("error", (RuntimeError(repr(exc)), detail)))


class _Pool:
    """The worker processes and their pipes."""

    def __init__(self, model: Model[Any, Any], workers: int) -> None:
        methods = multiprocessing.get_all_start_methods()
        method = "fork" if "fork" in methods else "spawn"
        context: Any = multiprocessing.get_context(method)
        self.conns: list[Connection] = []
        self.processes: list[Any] = []
        saved_seed = os.environ.get("PYTHONHASHSEED")
        if method == "spawn" and saved_seed is None:
            os.environ["PYTHONHASHSEED"] = "0"  # owners are found by hash: agree on it
        try:
            for me in range(workers):
                parent_end, child_end = context.Pipe()
                process = context.Process(
                    target=_serve, args=(child_end, model, me, workers), daemon=True
                )
                process.start()
                child_end.close()
                self.conns.append(parent_end)
                self.processes.append(process)
        finally:
            if method == "spawn" and saved_seed is None:
                del os.environ["PYTHONHASHSEED"]

    def ask(self, requests: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send one request to each worker, then collect the answers in order."""
        for conn, request in zip(self.conns, requests, strict=True):
            conn.send(request)
        return [self.receive(conn) for conn in self.conns]

    @staticmethod
    def receive(conn: Connection) -> Any:
        status, payload = conn.recv()
        if status == "error":
            exc, detail = payload
            exc.add_note(f"in a checker worker process:\n{detail}")
            raise exc
        return payload

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(("stop",))
                conn.close()
            except OSError:
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()


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
) -> Exploration:
    """Level-synchronous BFS over ``workers`` processes (CHK-14).

    Bounds are checked between levels, so ``max_states`` may be exceeded by one level and
    ``stop_on_violation`` finishes the level it is in (CHK-9).
    """
    pool = _Pool(model, workers)
    try:
        answers = [pool.receive(conn) for conn in pool.conns]
        count = sum(answer[0] for answer in answers)
        frontier = sum(answer[1] for answer in answers)
        stop: StopReason | None = None
        if stop_on_violation and any(answer[2] for answer in answers):
            stop = StopReason.FIRST_VIOLATION
        replies: list[list[bytes | None]] = [[None] * workers for _ in range(workers)]
        depth = 0
        transitions_seen = 0
        next_report = started + progress_interval
        while stop is None:
            now = time.perf_counter()
            if frontier == 0:
                stop = StopReason.EXHAUSTED
            elif max_depth is not None and depth >= max_depth:
                stop = StopReason.MAX_DEPTH
            elif max_states is not None and count >= max_states:
                stop = StopReason.MAX_STATES
            elif deadline is not None and now >= deadline:
                stop = StopReason.TIME_LIMIT
            if stop is not None:
                break
            time_left = None if deadline is None else deadline - now
            outgoing = pool.ask([("expand", replies[w], time_left) for w in range(workers)])
            merged = pool.ask(
                [("merge", [outgoing[s][w] for s in range(workers)]) for w in range(workers)]
            )
            count = sum(answer[0] for answer in merged)
            frontier = sum(answer[1] for answer in merged)
            replies = [[merged[owner][4][w] for owner in range(workers)] for w in range(workers)]
            transitions_seen = sum(answer[5] for answer in merged)
            depth += 1
            if any(answer[3] for answer in merged):
                stop = StopReason.TIME_LIMIT
            elif stop_on_violation and any(answer[2] for answer in merged):
                stop = StopReason.FIRST_VIOLATION
            now = time.perf_counter()
            if progress is not None and now >= next_report:
                next_report = now + progress_interval
                progress(ProgressInfo(count, transitions_seen, frontier, depth, now - started))
        shards = pool.ask([("gather", replies[w]) for w in range(workers)])
        exploration = _assemble(shards, plan, stop, pool)
    except BaseException:
        pool.close()
        raise
    return exploration


def _assemble(
    shards: list[dict[str, Any]], plan: Plan, stop: StopReason, pool: _Pool
) -> Exploration:
    """Number the shards' states globally in BFS order: by depth, then by worker."""
    workers = len(shards)
    levels = len(shards[0]["bounds"]) - 1
    to_global = [array("q") for _ in range(workers)]
    level_starts: list[int] = []
    count = 0
    for depth in range(levels):
        level_starts.append(count)
        for w, shard in enumerate(shards):
            size = shard["bounds"][depth + 1] - shard["bounds"][depth]
            to_global[w].extend(range(count, count + size))
            count += size
    while level_starts and level_starts[-1] == count:
        level_starts.pop()

    def to_number(gid: int) -> int:
        return to_global[gid % workers][gid // workers]

    action_table: list[Any] = []
    action_ids: dict[Any, int] = {}
    remaps: list[list[int]] = []
    for shard in shards:
        remap = []
        for action in shard["action_table"]:
            if action not in action_ids:
                action_ids[action] = len(action_table)
                action_table.append(action)
            remap.append(action_ids[action])
        remaps.append(remap)

    parents = array("i", [-1]) * count
    parent_actions = array("i", [-1]) * count
    first_hits = [-1] * plan.count
    goal_bits = {position: bytearray(count) for position, _ in plan.goals}
    open_states: set[int] = set()
    unexpanded: list[int] = []
    edges = (array("i"), array("i"), array("i")) if plan.record_edges else None
    for w, shard in enumerate(shards):
        local = to_global[w]
        remap = remaps[w]
        for k, (parent, aid) in enumerate(
            zip(shard["parents"], shard["parent_actions"], strict=True)
        ):
            if parent >= 0:
                number = local[k]
                parents[number] = to_number(parent)
                parent_actions[number] = remap[aid]
        for position, hit in enumerate(shard["first_hits"]):
            if hit >= 0 and (first_hits[position] < 0 or local[hit] < first_hits[position]):
                first_hits[position] = local[hit]
        for (position, _), bits in zip(plan.goals, shard["goal_bits"], strict=True):
            target = goal_bits[position]
            for k, bit in enumerate(bits):
                if bit:
                    target[local[k]] = 1
        open_states.update(local[k] for k in shard["open_states"])
        unexpanded.extend(local[shard["expanded"] : shard["count"]])
        if edges is not None:
            src, dst, act = shard["edges"]
            edges[0].extend(to_number(gid) for gid in src)
            edges[1].extend(to_number(gid) for gid in dst)
            edges[2].extend(remap[aid] for aid in act)
    unexpanded.sort()

    def fetch_states(numbers: Sequence[int]) -> list[Any]:
        wanted: list[list[int]] = [[] for _ in range(workers)]
        where = []
        for number in numbers:
            for w in range(workers):
                k = bisect_left(to_global[w], number)
                if k < len(to_global[w]) and to_global[w][k] == number:
                    where.append((w, len(wanted[w])))
                    wanted[w].append(k)
                    break
        found = pool.ask([("fetch", wanted[w]) for w in range(workers)])
        return [found[w][k] for w, k in where]

    return Exploration(
        count=count,
        fetch_states=fetch_states,
        parents=parents,
        parent_actions=parent_actions,
        action_table=action_table,
        level_starts=level_starts,
        unexpanded=unexpanded,
        transitions=sum(shard["transitions"] for shard in shards),
        pruned=sum(shard["pruned"] for shard in shards),
        stop_reason=stop,
        first_hits=first_hits,
        goal_bits=goal_bits,
        open_states=open_states,
        edge_src=edges[0] if edges else None,
        edge_dst=edges[1] if edges else None,
        edge_act=edges[2] if edges else None,
        close=pool.close,
    )


__all__ = ["explore_parallel"]
