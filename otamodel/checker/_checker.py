"""The entry point: :func:`check` explores a model and judges its properties.

The rules are in ``docs/spec/checker.md``; each function names the rule it implements.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from otamodel.checker._affinity import get_affinity
from otamodel.checker._bits import FLIP
from otamodel.checker._cheapest import CheapestPaths, get_cheapest_arrays
from otamodel.checker._classify import Finding, classify
from otamodel.checker._gc import paused_gc
from otamodel.checker._liveness import (
    ForwardGraph,
    ReverseGraph,
    get_allowed,
    get_can_reach_all,
    get_lasso,
    get_open_ends,
    spread_can_reach_many,
)
from otamodel.checker._model import A, Model, Property, PropertyKind, S
from otamodel.checker._report import (
    CheckReport,
    ProgressInfo,
    PropertyResult,
    StopReason,
    Verdict,
)
from otamodel.checker._search import Exploration, Plan, ProgressHook, Task, explore
from otamodel.checker._trace import Trace
from otamodel.checker._violations import (
    EdgeArrays,
    get_violation_candidates,
    get_violation_inputs,
    resolve_violations,
)
from otamodel.errors import ModelDefinitionError

_SEARCH_SHARE = 0.75
"""Share of ``time_limit`` the search may use; the rest is for the verdicts (BOUND-8)."""
_PARALLEL_SEARCH_SHARE = 0.4
"""The same with worker processes: there the verdicts (states fetched back from the workers)
take about 1.4 times the search time (measured on `secure`, 2 workers)."""


_KEEP_EVERY = 6
"""With findings, the states of every 6th BFS level are kept as replay starts (CHK-16). The
states a classification needs are spread over the graph: on the default scenario 43k of
them, whose BFS-tree paths from the initial states cover 195k states; from the nearest kept
level they cover 60k. The price is a sixth of the states held (about 85 bytes a state)."""

_KEEP_LIMIT = 64_000
"""At most this many states are kept as replay starts: the default scenario's sixth fits
(58k), while a search of millions of states, or of the real geometry's large states, keeps
its memory bounded (its later levels replay from further away)."""


def check(
    model: Model[S, A],
    *,
    max_depth: int | None = None,
    max_states: int | None = None,
    time_limit: float | None = None,
    stop_on_violation: bool = False,
    workers: int = 1,
    progress: ProgressHook | None = None,
    progress_interval: float = 0.5,
    cost: Callable[[A], int] | None = None,
    cluster: str | None = None,
    shortest: bool = False,
    findings: bool = False,
) -> CheckReport[S, A]:
    """Explore ``model`` breadth-first and return a verdict for each of its properties.

    * ``max_depth``: states at this depth are discovered and checked but not expanded.
    * ``max_states``: stop before storing more than this many unique states.
    * ``time_limit``: seconds of wall time before the search stops.
    * ``stop_on_violation``: stop at the first violated ``always`` property (CHK-9) instead of
      continuing until every property has its verdict.
    * ``workers``: processes expanding each BFS level (CHK-14); the results are the same.
    * ``progress``: called about every ``progress_interval`` seconds and once at the end (CHK-12).
    * ``cluster``: the address of a Dask scheduler (``tcp://host:8786``); the search runs on
      its workers (``workers`` of them, all when ``workers`` is 1), with the same results
      (CHK-17).
    * ``cost``: a price per action (e.g. 1 per fault); each trace is then the cheapest one,
      shortest among the cheapest, instead of the shortest (CHK-15). By default the model's
      own ``get_action_cost`` hook when it has one (what ``otamodel check`` uses).
    * ``shortest``: ignore any cost and report the plain shortest (BFS) traces.
    * ``findings``: also classify every violation into findings (CHK-30..CHK-33), each with
      its own cheapest trace, keyed by the model's optional ``get_edge_key`` and
      ``get_terminal_key`` hooks.

    Any bound that cuts the search short makes verdicts that need the whole graph
    ``BOUNDED`` (CHK-10).
    """
    if max_depth is not None and max_depth < 0:
        raise ValueError("max_depth must be >= 0")
    if max_states is not None and max_states < 1:
        raise ValueError("max_states must be >= 1")
    if workers < 1:
        raise ValueError("workers must be >= 1")
    if shortest:
        cost = None
    elif cost is None:
        cost = getattr(model, "get_action_cost", None)
    get_affinity(model)  # CHK-38: all three variant hooks or none
    properties = tuple(model.properties())
    names = [prop.name for prop in properties]
    if len(set(names)) != len(names):
        raise ModelDefinitionError(f"property names must be unique: {names}")
    plan = Plan(properties)
    plan.record_edges = plan.record_edges or cost is not None or findings
    plan.record_hits = cost is not None or findings
    plan.record_measures = findings
    plan.keep_every = _KEEP_EVERY if findings else 0
    plan.keep_limit = _KEEP_LIMIT
    started = time.perf_counter()
    # The search stops at a share of the limit so that computing the verdicts (up to a third
    # of the search time on the OTA model) still ends within the limit (BOUND-8).
    share = _SEARCH_SHARE if workers == 1 else _PARALLEL_SEARCH_SHARE
    deadline = None if time_limit is None else started + time_limit * share
    options: dict[str, Any] = {
        "max_depth": max_depth,
        "max_states": max_states,
        "deadline": deadline,
        "stop_on_violation": stop_on_violation,
        "progress": progress,
        "progress_interval": progress_interval,
        "started": started,
    }
    if cluster is not None or workers > 1:
        # The parallel search's numbering uses NumPy: loaded only when it runs.
        from otamodel.checker._parallel import explore_parallel
    with paused_gc():
        if cluster is not None:
            from otamodel.checker._dask import DaskEngine

            def engine(model: Model[Any, Any], plan: Plan, count: int) -> DaskEngine:
                return DaskEngine(cluster, model, plan, 0 if workers == 1 else count)

            exploration = explore_parallel(model, plan, workers=workers, engine=engine, **options)
            workers = exploration.workers
        elif workers == 1:
            exploration = explore(model, plan, **options)
        else:
            exploration = explore_parallel(model, plan, workers=workers, **options)
        found: list[Finding[S, A]] = []
        try:
            reach: dict[int, bytearray] = {}
            built: dict[str, Any] = {}
            if exploration.offload is not None and exploration.edge_src is not None:
                offload_graph_work(exploration, properties, cost, built, findings=findings)
            done: list[tuple[PropertyResult[S, A], ...]] = []

            def run_results() -> None:
                done.append(get_results(exploration, properties, cost, reach, built))

            if findings and exploration.submit_keys is not None:
                # CHK-36: the verdicts are computed while the workers build the trap graphs
                # or compute the keys (the can-reach bytes are at hand already).
                reach.update(built.get("reach", {}))
            else:
                run_results()
            if findings:
                found = classify(
                    model, exploration, properties, cost, can_reach=reach,
                    witnesses=get_witnessed(exploration, properties),
                    reverse=built.get("reverse"), paths=built.get("paths"),
                    violations=built.get("violations"), meanwhile=None if done else run_results,
                )  # fmt: skip
            results = done[0]
        finally:
            if exploration.close is not None:
                exploration.close()
    seconds = time.perf_counter() - started
    report: CheckReport[S, A] = CheckReport(
        unique_states=exploration.count,
        transitions=exploration.transitions,
        max_depth=len(exploration.level_starts) - 1,
        seconds=seconds,
        stop_reason=exploration.stop_reason,
        is_complete=exploration.is_complete,
        results=results,
        pruned=exploration.pruned,
        workers=workers,
        findings=tuple(found),
        classified=findings,
    )
    if progress is not None:
        progress(
            ProgressInfo(
                report.unique_states,
                report.transitions,
                len(exploration.unexpanded),
                report.max_depth,
                seconds,
                is_final=True,
            )
        )
    return report


def get_trace(exploration: Exploration, index: int) -> Trace[Any, Any]:
    """The shortest trace from an initial state to state ``index`` (CHK-8)."""
    path = exploration.get_path(index)
    states = exploration.fetch_states(path)
    table = exploration.action_table
    actions = exploration.parent_actions
    steps = tuple((table[actions[k]], state) for k, state in zip(path[1:], states[1:], strict=True))
    return Trace(states[0], steps)


def offload_graph_work(
    exploration: Exploration,
    properties: tuple[Property[Any, Any], ...],
    cost: Callable[[Any], int] | None,
    built: dict[str, Any],
    *,
    findings: bool,
) -> None:
    """CHK-36: with worker processes, the cheapest paths are computed in a worker (from the
    edge arrays) while this process builds the reverse graph and the can-reach bytes of the
    ``eventually`` properties (without a cost, those bytes are the worker's task and the
    reverse graph, if the findings need it, this process's); with findings another worker
    finds the violations of the ``always`` properties meanwhile. ``built`` receives them all
    (``paths``, ``reverse``, ``reach``, ``violations``)."""
    offload = exploration.offload
    src, dst, act = exploration.edge_src, exploration.edge_dst, exploration.edge_act
    assert offload is not None and src is not None and dst is not None and act is not None
    table = exploration.action_table
    edges = (src, dst, act)
    eventually = [(k, p) for k, p in enumerate(properties) if p.kind is PropertyKind.EVENTUALLY]
    wanted = get_violation_inputs(exploration, properties) if findings else None
    first: list[Task] = []  # the longest task is sent first
    if wanted:
        args = (exploration.count, edges, exploration.parents, exploration.level_starts, wanted)
        first.append((get_violation_candidates, args))
    if cost is not None:
        prices = [cost(action) for action in table]
        task = (get_cheapest_arrays, (exploration.count, edges, exploration.parents, prices))
        offload.submit([*first, task])
        if findings or eventually:
            reverse = built["reverse"] = ReverseGraph(exploration)
            built["reach"] = get_can_reach_of(exploration, reverse, dict(eventually))
        answers = offload.collect()
        built["paths"] = CheapestPaths(exploration, arrays=answers[-1])
    elif eventually:
        goals = {
            k: (exploration.goal_bits[k].get_bytes(), get_allowed(table, p.edge_filter))
            for k, p in eventually
        }
        open_ends = get_open_ends(exploration)
        offload.submit([*first, (get_can_reach_all, (exploration.count, edges, goals, open_ends))])
        if findings:
            built["reverse"] = ReverseGraph(exploration)
        answers = offload.collect()
        built["reach"] = answers[-1]
    elif first:
        offload.submit(first)
        if findings:
            built["reverse"] = ReverseGraph(exploration)
        answers = offload.collect()
    if wanted:
        count, parents, starts = exploration.count, exploration.parents, exploration.level_starts
        arrays = EdgeArrays(count, edges, parents, starts, built["reverse"])
        built["violations"] = resolve_violations(arrays, wanted, answers[0])


def get_can_reach_of(
    exploration: Exploration, reverse: ReverseGraph, eventually: dict[int, Property[Any, Any]]
) -> dict[int, bytearray]:
    """CHK-6: per ``eventually`` property position, its can-reach bytes (one backward walk
    for several properties)."""
    table = exploration.action_table
    wanted = {
        position: (exploration.goal_bits[position].get_bytes(), get_allowed(table, p.edge_filter))
        for position, p in eventually.items()
    }
    return spread_can_reach_many(exploration.count, reverse, wanted, get_open_ends(exploration))


def get_results(
    exploration: Exploration,
    properties: tuple[Property[S, A], ...],
    cost: Callable[[A], int] | None = None,
    reach_out: dict[int, bytearray] | None = None,
    built: dict[str, Any] | None = None,
) -> tuple[PropertyResult[S, A], ...]:
    """One verdict per property, in the model's order (CHK-4, CHK-5, CHK-6, CHK-10); with
    ``cost``, each trace is the cheapest (CHK-15). ``reach_out`` receives, per ``eventually``
    property position, the can-reach bytes (CHK-6); ``built`` the reverse graph and cheapest
    paths it built (``reverse``, ``paths``), for the classification to reuse. What ``built``
    holds already (those, and ``reach``: can-reach bytes by position, computed by workers)
    is used instead of computed again (CHK-36)."""
    complete = exploration.is_complete
    given = built or {}
    reverse: ReverseGraph | None = given.get("reverse")
    forward: ForwardGraph | None = None
    states: list[Any] | None = None
    paths: CheapestPaths | None = given.get("paths")
    given_reach: dict[int, bytearray] = dict(given.get("reach", {}))
    missing = {
        position: prop
        for position, prop in enumerate(properties)
        if prop.kind is PropertyKind.EVENTUALLY and position not in given_reach
    }
    if missing:
        if reverse is None:
            reverse = ReverseGraph(exploration)
        given_reach.update(get_can_reach_of(exploration, reverse, missing))
    results: list[PropertyResult[S, A]] = []
    for position, prop in enumerate(properties):
        hit = exploration.first_hits[position]
        reach: bytearray | None = None
        if prop.kind is PropertyKind.EVENTUALLY:
            reach = given_reach[position]
            if reach_out is not None:
                reach_out[position] = reach
            hit = reach.find(0)
        verdict = get_verdict(prop.kind, found=hit >= 0, is_complete=complete)
        trace = get_trace(exploration, hit) if hit >= 0 else None
        if trace is not None and cost is not None:
            if reach is not None:
                targets = bytearray(reach.translate(FLIP))  # the traps: 0 <-> 1
            elif position in exploration.hit_bits:
                targets = exploration.hit_bits[position].get_bytes()
            else:
                if states is None:
                    states = exploration.fetch_states(range(exploration.count))
                wanted = prop.kind is PropertyKind.SOMETIMES
                predicate = prop.predicate
                targets = bytearray(predicate(s) == wanted for s in states)
            if paths is None:
                paths = CheapestPaths(exploration, cost)
            cheapest = paths.get_path(targets)
            if cheapest is not None:
                trace, hit = cheapest
        lasso: tuple[tuple[Any, Any], ...] = ()
        if trace is not None and reach is not None and exploration.edge_src is not None:
            if forward is None:
                forward = ForwardGraph(exploration)
            steps = get_lasso(exploration, forward, hit, reach, prop.edge_filter)
            table = exploration.action_table
            fetched = exploration.fetch_states([t for _, t in steps])
            lasso = tuple((table[a], s) for (a, _), s in zip(steps, fetched, strict=True))
        results.append(
            PropertyResult(prop.name, prop.kind, verdict, trace, prop.description, lasso)
        )
    if built is not None:
        built.update({"reverse": reverse, "paths": paths})
    return tuple(results)


def get_witnessed(
    exploration: Exploration, properties: tuple[Property[S, A], ...]
) -> dict[int, bool]:
    """Per ``sometimes`` property position, whether its verdict is not ``NO_WITNESS``."""
    complete = exploration.is_complete
    return {
        position: get_verdict(
            prop.kind, found=exploration.first_hits[position] >= 0, is_complete=complete
        )
        is not Verdict.NO_WITNESS
        for position, prop in enumerate(properties)
        if prop.kind is PropertyKind.SOMETIMES
    }


def get_verdict(kind: PropertyKind, *, found: bool, is_complete: bool) -> Verdict:
    """The verdict table (CHK-11): a counterexample or witness is final in any search;
    its absence is final only in a complete one, else ``BOUNDED``."""
    if kind is PropertyKind.SOMETIMES:
        if found:
            return Verdict.WITNESSED
        return Verdict.NO_WITNESS if is_complete else Verdict.BOUNDED
    if found:
        return Verdict.VIOLATED
    return Verdict.HOLDS if is_complete else Verdict.BOUNDED


__all__ = ["StopReason", "check", "get_results", "get_trace", "get_verdict"]
