"""The worker side of the parallel search (CHK-14, CHK-35, CHK-36).

A :class:`Shard` is one worker's part of the search and knows nothing of processes: it holds
its share of the current level as objects, expands it, keeps and judges what the coordinator
numbered, keeps its share of the replay-start levels, computes classification keys from them
and runs graph tasks. :class:`_Pool` runs shards in forked (or spawned) processes with pipes;
the model is sent once per worker. :class:`Engine` is what the coordinator needs of a pool
(the Dask engine is another).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Sequence
from itertools import compress
from multiprocessing.connection import Connection
from typing import Any, Protocol

from otamodel.checker._affinity import Move, Variants, get_affinity
from otamodel.checker._keys import (
    Key,
    KeyHooks,
    PackedRequest,
    get_keys,
    unpack_requests,
)
from otamodel.checker._model import Model, end_search, get_boundary, get_verdict_key
from otamodel.checker._parcels import pack_states, unpack_states
from otamodel.checker._search import _SALT, Plan, Task, make_replayer, make_verdict

_POS_BITS = 20
"""A discovery key is ``parent << _POS_BITS | action position``."""

_SWITCH_INTERVAL = 0.0002
"""Seconds a thread may hold the GIL while another waits, while a pool is open (``_Pool``)."""

_CLOCK_MASK = 0  # the clock is read before every state (BOUND-8)
_POLL_MASK = 3
"""Stepping ahead looks for the coordinator's next call before every fourth candidate."""

Edges = tuple["array[int]", "array[int]", "array[int]"]
"""Edge arrays: sources, targets (numbers or fingerprints) and actions."""

Links = tuple[dict[int, Any], "array[int]", "array[int]", list[Any]]
"""What a worker replays with: the initial states by number, the parent links and actions,
and the coordinator's action table."""


class Shard:
    """One worker's part of the search: its share of the current level, as objects."""

    def __init__(self, model: Model[Any, Any], plan: Plan) -> None:
        self.model = model
        self.plan = plan
        self.boundary = get_boundary(model)
        self.frontier: list[tuple[int, Any]] = []
        self.candidates: list[Any] = []
        self.action_ids: dict[Any, int] = {}
        self.actions_sent = 0
        self.action_table: list[Any] = []
        self.always = list(plan.always)
        self.sometimes = list(plan.sometimes)
        self.kept: dict[int, Any] = {}
        """The states of the kept levels this worker committed (replay starts, CHK-35)."""
        self.get_verdict = (
            make_verdict(plan, get_verdict_key(model)) if plan.record_hits else None
        )
        self.verdicts: list[bytes] | None = None
        """The candidates' verdicts, when judged ahead (:meth:`judge_ahead`)."""
        self.replayed: dict[int, Any] | None = None
        """The replay starts and the states replayed from them for the keys (CHK-35)."""
        self.edges: Edges | None = None
        """The expanded level's edges (source number, target's position among the
        candidates, own action id), resolved to numbers when the coordinator has numbered the
        candidates."""
        self.ahead: dict[int, tuple[Any, list[tuple[int, Any, Any]]]] = {}
        """Candidates stepped while the coordinator numbers them, by identity (CHK-14)."""
        self.ahead_count = 0
        """How many of the candidates are in ``ahead``."""
        affinity = get_affinity(model)
        self.variants = Variants(affinity) if affinity is not None else None
        """CHK-38: the states kept here lately, to make moved states from."""

    @staticmethod
    def get_fingerprints(states: list[Any]) -> list[int]:
        """The fingerprints of ``states`` as this worker computes them."""
        return list(map(_get_fingerprint, states))

    @staticmethod
    def get_hash_probe() -> int:
        """Workers on other machines must share the hash seed (``PYTHONHASHSEED``)."""
        return hash("otamodel fingerprint probe")

    def expand(self, time_left: float | None, parcels: Sequence[bytes] = ()) -> dict[str, Any]:
        """Expand the held level (in number order), with the states of the ``parcels`` other
        workers gave (:func:`pack_states`): distinct successors with their keys, and every
        edge when the plan records edges. ``time_left`` is in seconds."""
        deadline = None if time_left is None else time.perf_counter() + time_left
        for parcel in parcels:
            self.take(unpack_states(parcel))
        record = self.plan.record_edges
        boundary = self.boundary
        action_ids = self.action_ids
        table = self.action_table
        salt = _SALT
        firsts: dict[int, int] = {}
        fps = array("q")
        keys = array("q")
        aids = array("i")
        candidates: list[Any] = []
        edge_src = array("i")
        edge_to = array("i")  # each edge's target: its index among the candidates
        edge_act = array("i")
        open_states: list[int] = []
        transitions = pruned = 0
        clock = time.perf_counter
        ahead, self.ahead = self.ahead, {}
        for count, (number, state) in enumerate(self.frontier):
            if deadline is not None and not count & _CLOCK_MASK and clock() >= deadline:
                return {"timed_out": True}
            base = number << _POS_BITS
            stepped = ahead.get(id(state))
            if stepped is None or stepped[0] is not state:
                stepped = (state, self.get_successors(state))
            for position, action, successor in stepped[1]:
                transitions += 1
                if boundary is not None and not boundary(successor):
                    pruned += 1
                    open_states.append(number)
                    continue
                fp = (hash(successor) ^ salt) or 1
                aid = action_ids.get(action)
                if aid is None:
                    aid = action_ids[action] = len(table)
                    table.append(action)
                index = firsts.get(fp)
                if index is None:
                    index = firsts[fp] = len(fps)
                    fps.append(fp)
                    keys.append(base | position)
                    aids.append(aid)
                    candidates.append(successor)
                if record:
                    edge_src.append(number)
                    edge_to.append(index)
                    edge_act.append(aid)
        self.candidates = candidates
        self.ahead_count = 0
        self.verdicts = None
        self.edges = (edge_src, edge_to, edge_act) if record else None
        new_actions = table[self.actions_sent :]
        self.actions_sent = len(table)
        reply = {
            "timed_out": False,
            "fps": fps,
            "keys": keys,
            "aids": aids,
            "actions": new_actions,
            "transitions": transitions,
            "pruned": pruned,
            "open": open_states,
        }
        if self.variants is not None:  # CHK-38: what the coordinator moves states by
            affinity = self.variants.affinity
            reply["variants"] = array("q", map(affinity.get_key, candidates))
            reply["deltas"] = list(map(affinity.get_delta, candidates))
        return reply

    def commit(
        self,
        numbers: array[int],
        targets: array[int],
        solved: set[int],
        keep: bool,
        give: Sequence[tuple[int, int]] = (),
        moves: Sequence[Move] = (),
    ) -> dict[str, Any]:
        """Keep the successors the coordinator numbered (the next level) and judge them;
        ``targets``: every candidate's number (-1: beyond the state bound), which resolves
        the level's edges (``"edges"``); ``keep``: the level is a replay start (CHK-35) and
        its states stay here; ``give``: ``(taker, count)``, that many of the level's states
        leave this worker for that one (``"given"``: a parcel each, rebalancing);
        ``moves``: states another worker found, made here from their variants (CHK-38)."""
        edges = self.resolve_edges(targets)
        chosen = bytes(map((-1).__lt__, numbers))
        kept = list(zip(compress(numbers, chosen), compress(self.candidates, chosen), strict=True))
        verdicts = self.verdicts
        rows: list[bytes] | None = None
        if self.get_verdict is not None:
            rows = (
                list(compress(verdicts, chosen))
                if verdicts is not None
                else list(map(self.get_verdict, map(_get_state, kept)))
            )
        if self.variants is not None:
            kept, rows = self.take_moves(kept, rows, moves)
        if rows is not None:
            judged = self.assemble(array("i", map(_get_number, kept)), rows)
        else:
            judged = self.judge(kept, solved)
        self.candidates = []
        self.verdicts = None
        self.frontier = kept
        if keep:
            self.kept.update(kept)
        if give:
            judged["given"] = [(taker, pack_states(self.give(count))) for taker, count in give]
        judged["edges"] = edges
        return judged

    def take_moves(
        self, kept: list[tuple[int, Any]], rows: list[bytes] | None, moves: Sequence[Move]
    ) -> tuple[list[tuple[int, Any]], list[bytes] | None]:
        """CHK-38: the level's kept states with the moved ones made here, in number order
        (and their verdict rows); all of them are remembered as variants."""
        variants = self.variants
        assert variants is not None
        variants.start_level()
        if moves:
            made = variants.make(moves, _get_fingerprint)
            both = kept + made
            order = sorted(range(len(both)), key=list(map(_get_number, both)).__getitem__)
            if rows is not None:
                assert self.get_verdict is not None
                rows += map(self.get_verdict, map(_get_state, made))
                rows = list(map(rows.__getitem__, order))
            kept = list(map(both.__getitem__, order))
        variants.remember(map(_get_state, kept))
        return kept, rows

    def resolve_edges(self, targets: array[int]) -> Edges | None:
        """CHK-14: the expanded level's edges with their targets' numbers, those to a state
        beyond the bound and self-loops left out, in expansion order (by source, then
        action). The lookups are in this level's small candidate map, not the coordinator's
        table of every state."""
        if self.edges is None:
            return None
        src, to, acts = self.edges
        self.edges = None
        numbers = array("i", map(targets.__getitem__, to))
        kept = bytes(map(_is_kept_edge, src, numbers))
        return (
            array("i", compress(src, kept)),
            array("i", compress(numbers, kept)),
            array("i", compress(acts, kept)),
        )

    def get_successors(self, state: Any) -> list[tuple[int, Any, Any]]:
        """``(position, action, successor)`` for each action of ``state`` it accepts."""
        next_state = self.model.next_state
        stepped = []
        for position, action in enumerate(self.model.actions(state)):
            successor = next_state(state, action)
            if successor is not None:
                stepped.append((position, action, successor))
        return stepped

    def expand_ahead(self, is_called: Callable[[], bool]) -> None:
        """CHK-14: step the expanded candidates, in order, while the coordinator numbers
        them, until it calls again (``is_called``); the next expansion takes the successors
        of those it keeps from here (held with the state: no identity is reused)."""
        candidates, ahead = self.candidates, self.ahead
        for k in range(self.ahead_count, len(candidates)):
            if not k & _POLL_MASK and is_called():
                self.ahead_count = k
                return
            state = candidates[k]
            ahead[id(state)] = (state, self.get_successors(state))
        self.ahead_count = len(candidates)

    def judge_ahead(self) -> None:
        """CHK-14: judge the expanded candidates while the coordinator numbers them (the
        worker would wait meanwhile); the commit then picks the verdicts of those kept."""
        if self.get_verdict is not None and self.verdicts is None and self.candidates:
            self.verdicts = list(map(self.get_verdict, self.candidates))

    def advance(
        self,
        numbers: array[int],
        targets: array[int],
        solved: set[int],
        keep: bool,
        time_left: float | None,
        moves: Sequence[Move] = (),
    ) -> dict[str, Any]:
        """:meth:`commit`, then :meth:`expand` of the level just kept (one round trip);
        ``time_left`` counts from now."""
        deadline = None if time_left is None else time.perf_counter() + time_left
        judged = self.commit(numbers, targets, solved, keep, (), moves)
        left = None if deadline is None else deadline - time.perf_counter()
        return {"judged": judged, "expanded": self.expand(left)}

    def end_search(self) -> None:
        """The search is over: the model may free its search caches (nothing is judged or
        stepped ahead any more)."""
        self.candidates, self.ahead, self.verdicts = [], {}, None
        end_search(self.model)

    @staticmethod
    def run_tasks(tasks: list[Task]) -> list[Any]:
        """CHK-36: run checker functions for the coordinator (graph work after the search)."""
        return [function(*args) for function, args in tasks]

    def get_keys(self, rows: list[PackedRequest], links: Links) -> list[Key]:
        """CHK-35: the classification keys of the requests, from states replayed here from
        the roots or this worker's kept levels (only keys go back)."""
        requests = unpack_requests(rows)
        roots, parents, parent_actions, table = links
        if self.replayed is None:
            self.replayed = dict(roots)
            self.replayed.update(self.kept)
        # The states replayed for one batch serve the next ones too (the steps' bases are
        # often on the terminal behaviours' paths).
        fetch = make_replayer(
            self.model, self.replayed, parents, parent_actions, table, remember=True
        )
        hooks = KeyHooks(self.model, tuple(self.model.properties()))
        return get_keys(hooks, requests, fetch, self.model.next_state, table)[0]

    def judge(self, kept: list[tuple[int, Any]], solved: set[int]) -> dict[str, Any]:
        """CHK-4/5/6 on new states: goal bits, hit bits and first hits, by state number."""
        plan = self.plan
        self.always = [e for e in self.always if e[0] not in solved]
        self.sometimes = [e for e in self.sometimes if e[0] not in solved]
        # Bits travel as the numbers of the states where they are 1.
        goals = {position: array("i") for position, _ in plan.goals}
        hits: dict[int, array[int]] = {}
        first: dict[int, int] = {}
        tracked = plan.always + plan.sometimes if plan.record_hits else []
        for position, _ in tracked:
            hits[position] = array("i")
        wanted = {position: True for position, _ in plan.sometimes}
        measured = plan.measures if plan.record_measures else []
        values: dict[int, list[tuple[int, int]]] = {position: [] for position, _ in measured}
        for number, state in kept:
            for position, measure in measured:
                value = measure(state)
                if value:
                    values[position].append((number, min(value, 255)))
            for position, predicate in plan.goals:
                if predicate(state):
                    goals[position].append(number)
            for position, predicate in tracked:
                if predicate(state) == wanted.get(position, False):
                    hits[position].append(number)
                    if position not in first:
                        first[position] = number
            if not plan.record_hits:
                for position, predicate in self.sometimes:
                    if position not in first and predicate(state):
                        first[position] = number
                for position, predicate in self.always:
                    if position not in first and not predicate(state):
                        first[position] = number
        return {"goals": goals, "hits": hits, "first": first, "measures": values}

    def assemble(self, numbers: array[int], rows: list[bytes]) -> dict[str, Any]:
        """CHK-4/5/6 from verdict rows (:func:`make_verdict`, every state judged on every
        predicate): per column, the numbers of the states where it is 1 (C-level slices)."""
        plan = self.plan
        measured = plan.measures if plan.record_measures else []
        width = len(measured) + len(plan.goals) + len(plan.always) + len(plan.sometimes)
        table = b"".join(rows)
        columns = iter(range(width))
        values: dict[int, list[tuple[int, int]]] = {}
        for position, _ in measured:
            column = table[next(columns) :: width]
            values[position] = list(compress(zip(numbers, column, strict=True), column))
        goals = {}
        for position, _ in plan.goals:
            goals[position] = array("i", compress(numbers, table[next(columns) :: width]))
        hits: dict[int, array[int]] = {}
        first: dict[int, int] = {}
        for position, _ in plan.always + plan.sometimes:
            hits[position] = ones = array("i", compress(numbers, table[next(columns) :: width]))
            if ones:
                first[position] = ones[0]
        return {"goals": goals, "hits": hits, "first": first, "measures": values}

    def take(self, items: list[tuple[int, Any]]) -> int:
        self.frontier.extend(items)
        self.frontier.sort(key=_get_number)
        return len(self.frontier)

    def give(self, count: int) -> list[tuple[int, Any]]:
        """``count`` states of the level, spread evenly over it (not its tail: a level's
        later states come from later actions, faults among them, whose successors differ in
        number from the others': both workers keep a mix)."""
        frontier = self.frontier
        size = len(frontier)
        if count >= size:
            self.frontier = []
            return frontier
        picked = bytearray(size)
        for k in range(count):
            picked[k * size // count] = 1
        self.frontier = [item for item, out in zip(frontier, picked, strict=True) if not out]
        return [item for item, out in zip(frontier, picked, strict=True) if out]

    @staticmethod
    def get_cpu_seconds() -> float:
        """This worker process's CPU time (for benchmarks)."""
        return time.process_time()


def _is_kept_edge(source: int, target: int) -> bool:
    return target >= 0 and target != source


def _get_fingerprint(state: Any) -> int:
    return (hash(state) ^ _SALT) or 1


def _get_number(item: tuple[int, Any]) -> int:
    return item[0]


def _get_state(item: tuple[int, Any]) -> Any:
    return item[1]


class Engine(Protocol):
    """Runs one shard per worker and calls a method on all of them (or some) at once."""

    workers: int

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]: ...

    def submit(self, method: str, args: Sequence[tuple[Any, ...]]) -> None:
        """Start ``method`` on every shard; :meth:`collect` returns the answers."""
        ...

    def collect(self) -> list[Any]: ...

    def close(self) -> None: ...


class Offload:
    """CHK-36: tasks dealt round-robin to the workers, run while the coordinator goes on."""

    def __init__(self, pool: Engine) -> None:
        self.pool = pool
        self.count = 0

    def submit(self, tasks: list[Task]) -> None:
        workers = self.pool.workers
        shares: list[list[Task]] = [[] for _ in range(workers)]
        for k, task in enumerate(tasks):
            shares[k % workers].append(task)
        self.count = len(tasks)
        self.pool.submit("run_tasks", [(share,) for share in shares])

    def collect(self) -> list[Any]:
        answers = self.pool.collect()
        workers = self.pool.workers
        return [answers[k % workers][k // workers] for k in range(self.count)]


def _serve(conn: Connection, model: Model[Any, Any], plan: Plan) -> None:
    """A worker process: run shard methods for the coordinator until told to stop."""
    try:
        shard = Shard(model, plan)
        conn.send(("ok", None))
        while True:
            request = conn.recv()
            if request is None:
                return
            method, args = request
            conn.send(("ok", getattr(shard, method)(*args)))
            shard.judge_ahead()
            shard.expand_ahead(conn.poll)
    except BaseException as exc:  # report it to the coordinator, which re-raises it
        detail = traceback.format_exc()
        try:
            conn.send(("error", (exc, detail)))
        except Exception:
            conn.send(("error", (RuntimeError(repr(exc)), detail)))


def _send_all(
    messages: list[tuple[Connection, Any]],
    errors: list[BaseException],
    after: threading.Thread | None,
) -> None:
    """Send ``messages`` once the sender ``after`` is done (calls reach a worker in order)."""
    try:
        if after is not None:
            after.join()
        for conn, message in messages:
            conn.send(message)
    except BaseException as exc:  # collect() re-raises it
        errors.append(exc)


def _read_all(conn: Connection, inbox: queue.SimpleQueue[Any]) -> None:
    """Receive a worker's answers as they come (a worker whose answer is larger than the
    pipe would wait, idle, until this process reads it); an ended pipe is reported as an
    error to whoever collects next."""
    while True:
        try:
            inbox.put(conn.recv())
        except (EOFError, OSError) as exc:
            inbox.put(("error", (exc, "the worker process ended")))
            return


class _Pool:
    """Worker processes with pipes: forked where possible (the model is inherited), else
    spawned (the model is pickled once per worker). Answers are received by a thread per
    worker as soon as they are sent, so a worker goes on (judging ahead, the next task in
    line) while this process is busy."""

    def __init__(self, model: Model[Any, Any], plan: Plan, workers: int) -> None:
        methods = multiprocessing.get_all_start_methods()
        method = "fork" if "fork" in methods else "spawn"
        context: Any = multiprocessing.get_context(method)
        self.workers = workers
        self.conns: list[Connection] = []
        self.processes: list[Any] = []
        self.outstanding = 0
        """Calls submitted and not collected yet."""
        self.senders: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.inboxes: list[queue.SimpleQueue[Any]] = []
        self.readers: list[threading.Thread] = []
        saved_seed = os.environ.get("PYTHONHASHSEED")
        if method == "spawn" and saved_seed is None:
            os.environ["PYTHONHASHSEED"] = "0"  # fingerprints are hashes: agree on them
        try:
            for _ in range(workers):
                parent_end, child_end = context.Pipe()
                process = context.Process(target=_serve, args=(child_end, model, plan), daemon=True)
                process.start()
                child_end.close()
                self.conns.append(parent_end)
                self.processes.append(process)
        finally:
            if method == "spawn" and saved_seed is None:
                del os.environ["PYTHONHASHSEED"]
        # The readers and senders need the GIL back quickly while the main thread computes:
        # a message moves in pipe-sized pieces, each waiting for the switch interval.
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL)
        for conn in self.conns:
            inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
            reader = threading.Thread(target=_read_all, args=(conn, inbox), daemon=True)
            reader.start()
            self.inboxes.append(inbox)
            self.readers.append(reader)
        for inbox in self.inboxes:
            self.receive(inbox)

    def call(self, method: str, args: Sequence[tuple[Any, ...]]) -> list[Any]:
        self.submit(method, args)
        return self.collect()

    def submit(self, method: str, args: Sequence[tuple[Any, ...]]) -> None:
        """Start ``method`` on every worker. A call behind one not collected yet is sent
        from a thread: a worker still busy with the earlier call reads nothing, and a large
        message would block this process, which must go on to collect the earlier answers
        (else both would wait on each other)."""
        calls = zip(self.conns, args, strict=True)
        messages = [(conn, (method, arguments)) for conn, arguments in calls]
        self.outstanding += 1
        if self.outstanding == 1:
            for conn, message in messages:
                conn.send(message)
            return
        after = self.senders[-1] if self.senders else None
        sender = threading.Thread(
            target=_send_all, args=(messages, self.errors, after), daemon=True
        )
        sender.start()
        self.senders.append(sender)

    def collect(self) -> list[Any]:
        answers = [self.receive(inbox) for inbox in self.inboxes]
        self.outstanding -= 1
        if not self.outstanding:
            for sender in self.senders:
                sender.join()
            self.senders = []
            if self.errors:
                raise self.errors.pop()
        return answers

    @staticmethod
    def receive(inbox: queue.SimpleQueue[Any]) -> Any:
        status, payload = inbox.get()
        if status == "error":
            exc, detail = payload
            exc.add_note(f"in a checker worker process:\n{detail}")
            raise exc
        return payload

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join()
        for reader in self.readers:  # each ends with its worker's end of the pipe
            reader.join(timeout=5)
        for conn in self.conns:
            conn.close()
        if self.readers:
            sys.setswitchinterval(self.switch_interval)
            self.readers = []


__all__ = ["Engine", "Links", "Offload", "Shard"]
