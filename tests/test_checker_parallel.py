"""``workers=2`` finds the same states, depths, verdicts and trace lengths as one process."""

from __future__ import annotations

import pickle
import sys
from array import array
from collections.abc import Sequence
from typing import Any

import pytest
from test_checker import (
    FAULT_EDGES,
    TRAP_EDGES,
    DieHardInvariant,
    GraphModel,
    SmallJugsOnly,
    is_not_fault,
    reach_goal,
    reach_goal_2,
)

from otamodel.checker import CheckReport, Property, PropertyKind, StopReason, Verdict, check
from otamodel.checker._examples import (
    DieHard,
    RmState,
    TpcAction,
    TpcState,
    TwoPhaseCommit,
    get_rm_states,
    get_tm_state,
)


def get_summary(report: CheckReport[Any, Any]) -> tuple[object, ...]:
    return (
        report.unique_states,
        report.transitions,
        report.max_depth,
        report.stop_reason,
        report.is_complete,
        report.pruned,
        [(r.name, r.verdict, None if r.trace is None else len(r.trace)) for r in report.results],
    )


class TwoPhaseCommitProgress(TwoPhaseCommit):
    def properties(self) -> Sequence[Property[TpcState, TpcAction]]:
        return [*super().properties(), Property.eventually("tm decides", is_tm_decided)]


def is_tm_decided(state: TpcState) -> bool:
    return get_tm_state(state) != 0


def is_two(state: int) -> bool:
    return state == 2


def get_prepared(state: TpcState) -> int:
    """How many resource managers are prepared (a measure: several per state)."""
    return sum(1 for rm in get_rm_states(state) if rm is RmState.PREPARED)


class TwoPhaseCommitMeasured(TwoPhaseCommitProgress):
    """Every kind of verdict column: a measured always, a sometimes, an eventually."""

    def properties(self) -> Sequence[Property[TpcState, TpcAction]]:
        return [
            *super().properties(),
            Property.always("few prepared", lambda s: get_prepared(s) < 2, measure=get_prepared),
            Property.sometimes("decided", is_tm_decided),
        ]


MODELS: dict[str, Any] = {
    "2pc-3": TwoPhaseCommit(3),
    "2pc-5+eventually": TwoPhaseCommitProgress(5),
    "2pc-4+measured": TwoPhaseCommitMeasured(4),
    "diehard": DieHard(),
    "diehard-invariant": DieHardInvariant(),
    "boundary": SmallJugsOnly(),
    "trap": GraphModel(TRAP_EDGES, (reach_goal(),)),
    "faults": GraphModel(
        FAULT_EDGES,
        (reach_goal_2(), Property.eventually("again", is_two, edge_filter=is_not_fault)),
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_parallel_matches_sequential(name: str) -> None:
    model = MODELS[name]
    sequential = check(model)
    parallel = check(model, workers=2)
    assert parallel.workers == 2
    assert get_summary(parallel) == get_summary(sequential)
    for seq, par in zip(sequential.results, parallel.results, strict=True):
        if seq.trace is not None and par.trace is not None:
            assert par.trace.states[0] in model.init_states()
            assert len(par.trace.states) == len(par.trace) + 1


def test_parallel_pinned_counts() -> None:
    assert check(TwoPhaseCommit(5), workers=2).unique_states == 8_832


def test_parallel_depth_bound_matches() -> None:
    sequential = check(TwoPhaseCommit(5), max_depth=6)
    parallel = check(TwoPhaseCommit(5), max_depth=6, workers=2)
    assert parallel.stop_reason is StopReason.MAX_DEPTH
    assert get_summary(parallel) == get_summary(sequential)


def test_parallel_witness_is_a_real_trace() -> None:
    model = DieHard()
    trace = check(model, workers=2).get_result("big is 4").trace
    assert trace is not None and len(trace) == 6
    state = trace.init
    for action, following in trace:
        assert model.next_state(state, action) == following
        state = following
    assert state.big == 4


def test_parallel_time_bound() -> None:
    report = check(TwoPhaseCommit(5), workers=2, time_limit=0.0)
    assert report.stop_reason is StopReason.TIME_LIMIT
    assert report.get_result("consistent").verdict is Verdict.BOUNDED


class Exploding(DieHard):
    def next_state(self, state: object, action: object) -> None:
        raise ZeroDivisionError("boom")


def test_parallel_worker_errors_propagate() -> None:
    with pytest.raises(ZeroDivisionError, match="boom"):
        check(Exploding(), workers=2)


def test_parallel_state_bound_is_checked_per_level() -> None:
    report = check(TwoPhaseCommit(5), workers=2, max_states=100)
    assert report.stop_reason is StopReason.MAX_STATES
    assert 100 <= report.unique_states < 8_832
    assert report.get_result("consistent").verdict is Verdict.BOUNDED


def test_parallel_stop_on_violation() -> None:
    report = check(DieHardInvariant(), workers=2, stop_on_violation=True)
    assert report.stop_reason is StopReason.FIRST_VIOLATION
    result = report.get_result("big is not 4")
    assert result.verdict is Verdict.VIOLATED
    assert result.trace is not None and len(result.trace) == 6


def get_arrays(model: Any, parallel: bool, workers: int = 2) -> tuple[object, ...]:
    """Everything the analysis reads, with actions instead of their interned ids."""
    from otamodel.checker._parallel import explore_parallel
    from otamodel.checker._search import Plan, explore

    plan = Plan(model.properties())
    plan.record_edges = True
    plan.record_hits = True
    plan.record_measures = True
    options: dict[str, Any] = {
        "max_depth": None,
        "max_states": None,
        "deadline": None,
        "stop_on_violation": False,
        "progress": None,
        "progress_interval": 1.0,
        "started": 0.0,
    }
    if parallel:
        found = explore_parallel(model, plan, workers=workers, **options)
    else:
        found = explore(model, plan, **options)
    try:
        table = found.action_table
        assert found.edge_src is not None and found.edge_dst is not None
        assert found.edge_act is not None
        return (
            found.count,
            list(found.parents),
            [table[a] if a >= 0 else None for a in found.parent_actions],
            found.level_starts,
            list(found.edge_src),
            list(found.edge_dst),
            [table[a] for a in found.edge_act],
            {position: bits.get_bytes() for position, bits in found.goal_bits.items()},
            {position: bits.get_bytes() for position, bits in found.hit_bits.items()},
            found.first_hits,
            {position: bytes(values) for position, values in found.measures.items()},
            found.fetch_states(range(found.count)),
        )
    finally:
        if found.close is not None:
            found.close()


@pytest.mark.parametrize(
    "name", ["2pc-3", "2pc-5+eventually", "2pc-4+measured", "diehard", "faults"]
)
def test_parallel_numbers_states_exactly_like_one_process(name: str) -> None:
    """CHK-14: same numbering, parents, edges (in order), verdict bits and states."""
    model = MODELS[name]
    assert get_arrays(model, parallel=True) == get_arrays(model, parallel=False)


@pytest.mark.parametrize("workers", [2, 3])
def test_rebalanced_shares_number_states_exactly_like_one_process(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CHK-14: with every uneven share evened out (parcels of states sent from the heavy
    workers to the light ones), the same numbering, parents, edges, verdicts and states."""
    from otamodel.checker import _parallel

    monkeypatch.setattr(_parallel, "_REBALANCE", 0)
    routed: list[list[list[tuple[int, bytes]]]] = []
    route = _parallel._Coordinator.get_takes

    def get_takes(given: list[list[tuple[int, bytes]]]) -> list[list[bytes]]:
        routed.append(given)
        return route(given)

    monkeypatch.setattr(_parallel._Coordinator, "get_takes", staticmethod(get_takes))
    model = MODELS["2pc-4+measured"]
    assert get_arrays(model, True, workers) == get_arrays(model, parallel=False)
    assert sum(len(parcels) for given in routed for parcels in given) >= 3


def test_gives_even_out_the_shares_from_heavy_to_light_workers() -> None:
    from otamodel.checker._parallel import _REBALANCE, _Coordinator

    coordinator = _Coordinator.__new__(_Coordinator)
    coordinator.workers = 3
    assert coordinator.get_gives([900, 100, 200]) == [[(1, 300), (2, 200)], [], []]
    assert coordinator.get_gives([700, 100, 700]) == [[(1, 200)], [], [(1, 200)]]
    even = [300, 300 + _REBALANCE, 300 - _REBALANCE]
    assert coordinator.get_gives(even) == [[], [], []]
    given = [[(1, b"a"), (2, b"b")], [], [(1, b"c")]]
    assert _Coordinator.get_takes(given) == [[], [b"a", b"c"], [b"b"]]


def test_a_parcel_keeps_each_large_byte_string_once() -> None:
    from otamodel.checker._parcels import pack_states, unpack_states

    page = bytes(range(256)) * 16
    copies = [bytes(bytearray(page)) for _ in range(40)]  # equal contents, distinct objects
    items = [(k, (copies[2 * k], b"small", (copies[2 * k + 1], k))) for k in range(20)]
    parcel = pack_states(items)
    assert len(parcel) < len(page) + 2_000 < len(pickle.dumps(items))
    back = unpack_states(parcel)
    assert back == items
    assert len({id(part) for _, (one, _, (two, _)) in back for part in (one, two)}) == 1
    assert unpack_states(pack_states([])) == []


def explore_for_storage(model: Any, parallel: bool) -> Any:
    from otamodel.checker._parallel import explore_parallel
    from otamodel.checker._search import Plan, explore

    plan = Plan(model.properties())
    plan.record_edges = plan.record_hits = True
    options: dict[str, Any] = {
        "max_depth": None, "max_states": None, "deadline": None, "stop_on_violation": False,
        "progress": None, "progress_interval": 1.0, "started": 0.0,
    }  # fmt: skip
    if parallel:
        return explore_parallel(model, plan, workers=2, **options)
    return explore(model, plan, **options)


def test_storage_accounts_every_stored_array() -> None:
    """CHK-16: the visited set at its peak (8 bytes of fingerprint per state and a table of
    4-byte state numbers, doubling when half full), 8 bytes of parent links per
    state, 12 per edge, a verdict bit per state and tracked property."""
    model = TwoPhaseCommitProgress(5)
    found = explore_for_storage(model, parallel=False)
    storage = found.get_storage()
    assert found.edge_src is not None
    count, edges = found.count, len(found.edge_src)
    columns = [*found.goal_bits.values(), *found.hit_bits.values()]
    assert columns and all(len(bits) == count for bits in columns)
    assert all(len(bits.packed) == count // 8 and len(bits.tail) == count % 8 for bits in columns)
    capacity, peak = 1 << 12, 0
    while count > capacity // 2:  # each doubling holds both tables for a moment
        peak = max(peak, 12 * capacity + 8 * (capacity // 2 + 1))
        capacity *= 2
    peak = max(peak, 4 * capacity + 8 * count)
    assert storage == {
        "visited set": peak,
        "parent links": 8 * count,
        "edges": 12 * edges,
        "verdicts": sum(len(bits.packed) + len(bits.tail) for bits in columns),
    }
    assert found.kept_states == 0
    parallel = explore_for_storage(model, parallel=True)
    try:
        shared = parallel.get_storage()
        assert {k: v for k, v in shared.items() if k != "visited set"} == {
            k: v for k, v in storage.items() if k != "visited set"
        }
        assert shared["visited set"] > 0  # the coordinator's table (CHK-14)
    finally:
        if parallel.close is not None:
            parallel.close()


def test_findings_keep_every_sixth_level_as_replay_starts() -> None:
    """CHK-16: with findings, the states of every sixth level are kept (and counted)."""
    from otamodel.checker._search import Plan, explore

    model = TwoPhaseCommitProgress(5)
    plan = Plan(model.properties())
    plan.record_edges = True
    plan.keep_every, plan.keep_limit = 6, 10**6
    found = explore(
        model, plan, max_depth=None, max_states=None, deadline=None, stop_on_violation=False,
        progress=None, progress_interval=1.0, started=0.0,
    )  # fmt: skip
    starts = [*found.level_starts, found.count]
    expected = sum(starts[d + 1] - starts[d] for d in range(6, len(starts) - 1, 6))
    assert found.kept_states == expected > 0


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 63, 64, 1000, 4099])
def test_bits_pack_round_trip_and_first_one(count: int) -> None:
    """CHK-16: verdict bits are packed eight a byte; what comes back is what went in."""
    import random

    from otamodel.checker._bits import Bits

    rng = random.Random(count)
    for density in (0.0, 0.01, 0.5, 1.0):
        values = bytearray(1 if rng.random() < density else 0 for _ in range(count))
        bits = Bits()
        for start in range(0, count, 37):  # levels of 37 states, flushed after each
            bits.tail.extend(values[start : start + 37])
            bits.flush()
        assert len(bits) == count and len(bits.packed) == count // 8
        assert bits.get_bytes() == values
        assert bits.find_one() == values.find(1)
        later = Bits()
        later.extend_to(count)
        later.set_ones([k for k, v in enumerate(values) if v])
        later.flush()
        assert later.get_bytes() == values


def test_parallel_keys_are_computed_in_the_workers() -> None:
    """CHK-35: with workers the classification's keys come from the workers (each replaying
    from the kept levels it holds), equal to those one process computes, and the same
    levels are kept."""
    from otamodel.checker._keys import KeyHooks, KeyRequest, Need, get_keys
    from otamodel.checker._parallel import explore_parallel
    from otamodel.checker._search import Plan, explore

    model = TwoPhaseCommitProgress(5)
    plan = Plan(model.properties())
    plan.record_edges = True
    plan.keep_every, plan.keep_limit = 6, 10**6
    options: dict[str, Any] = {
        "max_depth": None, "max_states": None, "deadline": None, "stop_on_violation": False,
        "progress": None, "progress_interval": 1.0, "started": 0.0,
    }  # fmt: skip
    one = explore(model, plan, **options)
    two = explore_parallel(model, plan, workers=2, **options)
    try:
        # CHK-36: each of the two workers keeps its share of every third level.
        starts = [*one.level_starts, one.count]
        every_third = sum(starts[d + 1] - starts[d] for d in range(3, len(starts) - 1, 3))
        assert one.kept_states > 0 and two.kept_states == every_third > one.kept_states
        assert one.submit_keys is None and two.submit_keys is not None
        last = len(model.properties()) - 1
        requests = [KeyRequest(Need.TERMINAL, n, last, members=(n,)) for n in range(one.count)] + [
            KeyRequest(Need.CAUSE, -1, action=0)
        ]
        hooks = KeyHooks(model, model.properties())
        local, states = get_keys(
            hooks, requests, one.fetch_states, model.next_state, one.action_table
        )
        assert len(states) == one.count
        assert local[0] == tuple(sorted({repr(one.fetch_states([0])[0])}))
        assert two.submit_keys(requests)() == local
    finally:
        if two.close is not None:
            two.close()


def test_key_requests_are_evened_out_by_whole_replay_groups() -> None:
    """CHK-35: groups of key requests (one replay start each) move from a worker whose
    replay cost is above an even share to the least loaded one, largest first, never more
    than half the gap (a move that would only turn the imbalance around is skipped)."""
    from otamodel.checker._keys import get_balanced_homes

    # Worker 0 holds 100 + 60 + 30 + 5, worker 1 holds 10: the 60 and 30 groups even it out
    # (100 would overshoot), the 5 is left where the slack allows.
    homes = {1: 0, 2: 0, 3: 0, 4: 0, 5: 1}
    costs = {1: 100, 2: 60, 3: 30, 4: 5, 5: 10}
    moved = get_balanced_homes(homes, costs, 2)
    assert moved == {2: 1, 3: 1}
    loads = [0, 0]
    for anchor, home in {**homes, **moved}.items():
        loads[home] += costs[anchor]
    assert loads == [105, 100]
    # Already even within the slack: nothing moves; three workers share one heavy one's load.
    assert get_balanced_homes({1: 0, 2: 1}, {1: 50, 2: 48}, 2) == {}
    spread = get_balanced_homes({1: 0, 2: 0, 3: 0}, {1: 10, 2: 10, 3: 10}, 3)
    assert sorted(spread.values()) == [1, 2] and len(spread) == 2


def test_graph_work_sent_to_workers_matches_one_process() -> None:
    """CHK-36: the can-reach bytes and cheapest paths a worker computes from the edge arrays
    are those this process computes from the exploration, and check() with workers uses
    them (same verdicts and traces)."""
    from otamodel.checker._cheapest import CheapestPaths, get_cheapest_arrays
    from otamodel.checker._liveness import (
        ReverseGraph,
        get_allowed,
        get_can_reach,
        get_can_reach_all,
        get_open_ends,
    )

    model = MODELS["faults"]
    found = explore_for_storage(model, parallel=False)
    assert found.edge_src is not None and found.edge_dst is not None
    assert found.edge_act is not None
    edges = (found.edge_src, found.edge_dst, found.edge_act)
    props = list(model.properties())
    wanted = {
        k: (found.goal_bits[k].get_bytes(), get_allowed(found.action_table, p.edge_filter))
        for k, p in enumerate(props)
        if k in found.goal_bits
    }
    assert len(wanted) == 2
    sent = get_can_reach_all(found.count, edges, wanted, get_open_ends(found))
    reverse = ReverseGraph(found)
    for k, bits in sent.items():
        goals = found.goal_bits[k].get_bytes()
        assert bits == get_can_reach(found, reverse, goals, props[k].edge_filter)
    prices = [1 + len(str(a)) % 3 for a in found.action_table]
    arrays = get_cheapest_arrays(found.count, edges, found.parents, prices)
    local = CheapestPaths(found, lambda a: 1 + len(str(a)) % 3)
    assert arrays == (local.price_of, local.steps_of, local.via_state, local.via_action)

    def cost(action: object) -> int:
        return 1 + len(str(action)) % 3

    one = check(model, cost=cost, findings=True)
    two = check(model, cost=cost, findings=True, workers=2)
    assert get_summary(one) == get_summary(two)
    assert [r.trace for r in one.results] == [r.trace for r in two.results]
    assert [r.lasso for r in one.results] == [r.lasso for r in two.results]
    assert [(f.id, f.trace) for f in one.findings] == [(f.id, f.trace) for f in two.findings]


@pytest.mark.parametrize("name", ["faults", "trap"])
def test_trap_regions_found_by_a_worker_match_one_process(name: str) -> None:
    """CHK-31, CHK-36: the trap graph a worker builds comes with each property's bottoms and
    entry edges, equal to those this process finds from the same graph."""
    from otamodel.checker._liveness import ReverseGraph, get_can_reach
    from otamodel.checker._regions import (
        Graph,
        TrapGraph,
        Traps,
        get_allowed_edges,
        get_trap_graph,
    )
    from otamodel.checker._violations import get_root_count

    model = MODELS[name]
    found = explore_for_storage(model, parallel=False)
    graph = Graph(found, None, ReverseGraph(found))
    props = [p for p in model.properties() if p.kind is PropertyKind.EVENTUALLY]
    assert props
    reach = [
        get_can_reach(found, graph.reverse, found.goal_bits[k].get_bytes(), p.edge_filter)
        for k, p in enumerate(model.properties())
        if p.kind is PropertyKind.EVENTUALLY
    ]
    assert any(0 in bits for bits in reach)
    flags = graph.get_edge_flags(reach)
    table = found.action_table
    allowed = get_allowed_edges(table, props[0])
    edges = (graph.src, graph.dst, graph.act)
    roots = get_root_count(found.level_starts, found.count)
    parts, regions = get_trap_graph(found.count, edges, allowed, reach, flags, roots)
    # A worker not sent the edge flags gathers them itself: the same graph and regions.
    gathered, again = get_trap_graph(found.count, edges, allowed, reach, None, roots)
    assert again == regions and gathered[:2] == parts[:2] and gathered[3:] == parts[3:]
    assert gathered[2].members == parts[2].members and gathered[2].starts == parts[2].starts
    shared = TrapGraph(graph, table, props[0], reach, flags)
    assert parts[2].members == shared.components.members and parts[4] == shared.is_sink
    for bits, flag, region in zip(reach, flags, regions, strict=True):
        local = Traps(graph, bits, shared, flag)
        assert (local.bottoms, local.entries) == region
    assert any(bottoms and entries for bottoms, entries in regions)


def test_a_heavy_worker_gives_states_spread_over_its_level() -> None:
    """CHK-14: rebalancing moves states from all over the level (a level's tail comes from
    its later actions), and both shares stay in number order."""
    from otamodel.checker._search import Plan
    from otamodel.checker._workers import Shard

    model = MODELS["diehard"]
    shard = Shard(model, Plan(model.properties()))
    shard.take([(number, f"s{number}") for number in range(10, 0, -1)])
    given = shard.give(3)
    assert [number for number, _ in given] == [1, 4, 7]
    assert [number for number, _ in shard.frontier] == [2, 3, 5, 6, 8, 9, 10]
    assert shard.give(20) == [(n, f"s{n}") for n in (2, 3, 5, 6, 8, 9, 10)]
    assert shard.frontier == []


def get_no_verdict(state: object) -> bytes:
    raise AssertionError("judged again")


def test_a_worker_judges_ahead_and_commits_the_verdicts_of_its_winners() -> None:
    """CHK-14: verdicts computed between calls (while the coordinator numbers the level) are
    the ones the commit reports; without them the commit judges the winners itself."""
    from otamodel.checker._search import Plan
    from otamodel.checker._workers import Shard

    model = MODELS["2pc-4+measured"]
    plan = Plan(model.properties())
    plan.record_hits = plan.record_measures = True
    ahead, late = Shard(model, plan), Shard(model, plan)
    init = model.init_states()[0]
    for shard in (ahead, late):
        shard.take([(0, init)])
        shard.expand(None)
    ahead.judge_ahead()
    assert ahead.verdicts is not None and len(ahead.verdicts) == len(ahead.candidates)
    ahead.get_verdict = get_no_verdict  # the commit must not judge again
    count = len(late.candidates)
    numbers = array("i", [-1 if k % 2 else 10 + k for k in range(count)])
    judged_late = late.commit(numbers, numbers, set(), keep=False)
    judged_ahead = ahead.commit(numbers, numbers, set(), keep=False)
    assert judged_ahead == judged_late
    assert [n for n, _ in ahead.frontier] == [n for n in numbers if n >= 0]


def test_a_worker_steps_ahead_until_called_and_expands_alike() -> None:
    """CHK-14: candidates stepped while the coordinator numbers them (until it calls again)
    give the expansion a worker computes without stepping ahead, and are stepped once."""
    from otamodel.checker._search import Plan
    from otamodel.checker._workers import Shard

    class Counting(TwoPhaseCommit):
        steps = 0

        def next_state(self, state: TpcState, action: TpcAction) -> TpcState | None:
            Counting.steps += 1
            return super().next_state(state, action)

    model = Counting(4)
    plan = Plan(model.properties())
    plan.record_edges = True
    ahead, late = Shard(model, plan), Shard(model, plan)
    init = model.init_states()[0]
    for shard in (ahead, late):
        shard.take([(0, init)])
        shard.expand(None)
    count = len(ahead.candidates)
    calls = iter([False] * 2 + [True])
    ahead.expand_ahead(lambda: next(calls))  # called before the ninth candidate
    assert ahead.ahead_count == 8 < count and len(ahead.ahead) == 8
    ahead.expand_ahead(lambda: False)
    assert ahead.ahead_count == count
    numbers = array("i", [-1 if k % 3 == 0 else 10 + k for k in range(count)])
    for shard in (ahead, late):
        shard.commit(numbers, numbers, set(), keep=False)
    before = Counting.steps
    expanded = ahead.expand(None)
    assert Counting.steps == before and not ahead.ahead
    assert expanded == late.expand(None)
    assert Counting.steps > before


def test_a_worker_resolves_its_edges_with_the_numbers_it_is_sent() -> None:
    """CHK-14: the worker turns its level's edges (source, target fingerprint, action) into
    numbers with every candidate's number from the coordinator, leaving out edges to a state
    beyond the bound (-1) and self-loops, in expansion order."""
    from otamodel.checker._search import Plan
    from otamodel.checker._workers import Shard

    model = MODELS["2pc-4+measured"]
    plan = Plan(model.properties())
    plan.record_edges = True
    shard = Shard(model, plan)
    shard.take([(0, model.init_states()[0]), (1, model.init_states()[0])])
    reply = shard.expand(None)
    count = len(reply["fps"])
    assert count >= 2 and "edges" not in reply
    # Candidate 0 is beyond the bound, candidate 1 is state 1 itself, the others are new.
    targets = array("i", [-1, 1, *range(10, 10 + count - 2)])
    edges = shard.commit(targets, targets, set(), keep=False)["edges"]
    assert edges is not None
    src, dst, act = edges
    expected = []
    for number in (0, 1):
        for action in model.actions(model.init_states()[0]):
            after = model.next_state(model.init_states()[0], action)
            if after is None:
                continue
            target = targets[reply["fps"].index(Shard.get_fingerprints([after])[0])]
            if target >= 0 and target != number:
                expected.append((number, target, shard.action_ids[action]))
    assert list(zip(src, dst, act, strict=True)) == expected
    assert shard.commit(array("i"), array("i"), set(), keep=False)["edges"] is None


@pytest.mark.parametrize("name", ["2pc-4+measured", "diehard-invariant"])
def test_violations_found_from_arrays_match_one_process(name: str) -> None:
    """CHK-30, CHK-36: the violations a worker finds from the edge arrays and the recorded
    values are those the classification finds in this process, and check() with workers
    uses them (same findings, traces included)."""
    from otamodel.checker._classify import _Classifier
    from otamodel.checker._regions import Graph
    from otamodel.checker._search import Plan, explore
    from otamodel.checker._violations import (
        EdgeArrays,
        get_violation_candidates,
        get_violation_inputs,
        resolve_violations,
    )

    model = MODELS[name]
    props = list(model.properties())
    plan = Plan(props)
    plan.record_edges = plan.record_hits = plan.record_measures = True
    options: dict[str, Any] = {
        "max_depth": None, "max_states": None, "deadline": None, "stop_on_violation": False,
        "progress": None, "progress_interval": 1.0, "started": 0.0,
    }  # fmt: skip
    found = explore(model, plan, **options)
    wanted = get_violation_inputs(found, props)
    assert wanted is not None
    assert wanted.keys() == {k for k, p in enumerate(props) if p.kind is PropertyKind.ALWAYS}
    assert found.edge_src is not None and found.edge_dst is not None
    assert found.edge_act is not None
    edges = (found.edge_src, found.edge_dst, found.edge_act)
    candidates = get_violation_candidates(
        found.count, edges, found.parents, found.level_starts, wanted
    )
    arrays = EdgeArrays(found.count, edges, found.parents, found.level_starts)
    sent = resolve_violations(arrays, wanted, candidates)
    classifier = _Classifier(model, found, props, Graph(found, None))
    classifier.edge_flags = classifier._get_edge_flags(None)
    local = {k: classifier._get_violations(k, props[k]) for k in wanted}
    assert sent == local
    assert any(sent.values())
    one = check(model, findings=True)
    two = check(model, findings=True, workers=2)
    assert [(f.id, f.states, f.edges, f.trace) for f in one.findings] == [
        (f.id, f.states, f.edges, f.trace) for f in two.findings
    ]


def test_violations_from_arrays_keep_only_clean_sources() -> None:
    """CHK-30: where edges lead out of a violation and back in, only the edges from states
    reached without an earlier violation count (the backward search included)."""
    from otamodel.checker._violations import (
        EdgeArrays,
        get_violation_candidates,
        resolve_violations,
    )

    def get_violations_all(*args: Any) -> Any:
        candidates = get_violation_candidates(*args)
        return resolve_violations(EdgeArrays(*args[:4]), args[4], candidates)

    # BFS: 0; 1 2; 3 5; 4. 1 and 4 violate. 3's tree path goes through 1, but 2 -> 3 is a
    # clean way in (a backward search finds it); 5 is reached through 1 only.
    src = array("i", [0, 0, 1, 1, 2, 3, 5])
    dst = array("i", [1, 2, 3, 5, 3, 4, 4])
    act = array("i", [0] * 7)
    parents, starts = array("i", [-1, 0, 0, 1, 3, 1]), [0, 1, 3, 5]
    violates = bytes([0, 1, 0, 0, 1, 0])
    wanted: dict[int, tuple[bytes | bytearray, bool]] = {0: (violates, False)}
    found = get_violations_all(6, (src, dst, act), parents, starts, wanted)
    assert found == {0: [(0, 0, 1), (3, 0, 4)]}
    candidates = get_violation_candidates(6, (src, dst, act), parents, starts, wanted)
    tree = candidates[0][2]
    assert tree is not None and list(tree) == [1, 0, 1, 0, 0, 0]  # 3 and 5: a search decides
    measure = bytearray([0, 1, 0, 1, 2, 1])
    rises = get_violations_all(6, (src, dst, act), parents, starts, {0: (measure, True)})
    assert rises == {0: [(0, 0, 1), (2, 0, 3), (3, 0, 4), (5, 0, 4)]}


def test_a_call_behind_an_unanswered_one_does_not_block_the_pool() -> None:
    """CHK-35: calls sent to busy workers before the first is collected (messages and
    answers far larger than a pipe holds) are answered, in order."""
    import threading

    from otamodel.checker._search import Plan
    from otamodel.checker._workers import _Pool

    model = MODELS["diehard"]
    pool = _Pool(model, Plan(model.properties()), 2)
    big = [(k, k) for k in range(200_000)]
    answers: list[Any] = []

    def run() -> None:
        pool.submit("get_fingerprints", [(big,), (big,)])
        pool.submit("get_fingerprints", [(big[::-1],), (big[::-1],)])
        pool.submit("get_fingerprints", [(big[:9],), (big[:9],)])
        answers.extend(pool.collect() for _ in range(3))

    try:
        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        runner.join(60)
        assert not runner.is_alive(), "the pool blocked"
        expected = [(hash(s) ^ _get_salt()) or 1 for s in big]
        assert answers == [
            [expected, expected],
            [expected[::-1], expected[::-1]],
            [expected[:9], expected[:9]],
        ]
    finally:
        for process in pool.processes:
            process.terminate()
        pool.close()  # ends the receiving threads, gives the switch interval back


def test_a_worker_goes_on_while_the_coordinator_is_busy() -> None:
    """CHK-35, CHK-36: an answer far larger than a pipe holds is received as soon as it is
    sent, so the worker starts the call queued behind it while this process is still busy
    (without the receiving thread it would wait, idle, until this process collects)."""
    import time

    from otamodel.checker._search import Plan
    from otamodel.checker._workers import _Pool

    model = MODELS["diehard"]
    interval = sys.getswitchinterval()
    pool = _Pool(model, Plan(model.properties()), 1)
    assert sys.getswitchinterval() < interval
    try:
        pool.submit("run_tasks", [([(bytes, (8 << 20,))],)])
        pool.submit("run_tasks", [([(time.perf_counter, ())],)])
        busy_until = time.perf_counter() + 2.0
        while time.perf_counter() < busy_until:
            pass  # this process computes (and holds the GIL most of the time)
        assert pool.collect() == [[bytes(8 << 20)]]
        started = pool.collect()[0][0]
        assert started < busy_until
        readers = list(pool.readers)
    finally:
        pool.close()
    assert readers and not any(reader.is_alive() for reader in readers)
    assert sys.getswitchinterval() == interval


def test_a_remembering_replayer_steps_each_state_once() -> None:
    """CHK-35: a worker's replayer remembers the states it replayed for one key batch, so
    the next batches start from them (the same states: the model is pure)."""
    from otamodel.checker._search import make_replayer

    model = MODELS["2pc-3"]
    found = explore_for_storage(model, parallel=False)
    steps: list[Any] = []

    class Counting:
        def next_state(self, state: Any, action: Any) -> Any:
            steps.append(action)
            return model.next_state(state, action)

    links = (found.parents, found.parent_actions, found.action_table)
    deep = found.count - 1
    roots = dict(enumerate(model.init_states()))
    forgetful = make_replayer(Counting(), dict(roots), *links)
    memory = dict(roots)
    remembering = make_replayer(Counting(), memory, *links, remember=True)
    first = remembering([deep])
    replayed = len(steps)
    assert replayed > 1 and len(memory) == len(roots) + replayed
    assert remembering([deep, found.parents[deep]]) == [first[0], memory[found.parents[deep]]]
    assert len(steps) == replayed  # nothing stepped again
    assert forgetful([deep]) == first and len(steps) == 2 * replayed
    assert forgetful([deep]) == first and len(steps) == 3 * replayed


def _get_salt() -> int:
    from otamodel.checker._search import _SALT

    return _SALT
