"""The generic checker: pinned textbook state counts, verdict semantics, bounds, traces."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import attrs
import pytest
from rich.console import Console

from otamodel.checker import (
    ProgressInfo,
    Property,
    PropertyKind,
    StopReason,
    Trace,
    Verdict,
    check,
    get_progress_text,
    live_progress,
    replay_trace,
)
from otamodel.checker._examples import (
    DieHard,
    JugAction,
    Jugs,
    TpcAction,
    TpcState,
    TwoPhaseCommit,
    get_tm_state,
)
from otamodel.errors import ModelDefinitionError, TraceError

REPO = Path(__file__).resolve().parent.parent

# -- small graph models -----------------------------------------------------------------------


@attrs.frozen
class GraphModel:
    """A model given as an explicit labelled graph: ``edges[state] = ((label, next), ...)``."""

    edges: Mapping[int, tuple[tuple[str, int], ...]] = attrs.field(eq=False)
    props: tuple[Property[int, str], ...] = attrs.field(eq=False)
    inits: tuple[int, ...] = (0,)

    def init_states(self) -> Sequence[int]:
        return self.inits

    def actions(self, state: int) -> Sequence[str]:
        return [label for label, _ in self.edges.get(state, ())]

    def next_state(self, state: int, action: str) -> int | None:
        for label, target in self.edges.get(state, ()):
            if label == action:
                return target
        return None

    def properties(self) -> Sequence[Property[int, str]]:
        return self.props


def is_three(state: int) -> bool:
    return state == 3


def is_positive(state: int) -> bool:
    return state >= 0


def is_not_fault(action: str) -> bool:
    return not action.startswith("fault")


# 0 -a-> 1 -b-> 2 -c-> 3 (goal, loops on itself) and 1 -trap-> 4 -x-> 5 -y-> 4 (no way out).
TRAP_EDGES = {
    0: (("a", 1),),
    1: (("b", 2), ("trap", 4)),
    2: (("c", 3),),
    3: (("stay", 3),),
    4: (("x", 5),),
    5: (("y", 4),),
}

# 0 -work-> 1 -work-> 2 (goal); 0 -fault-> 6 -fault-> 7 -fault-> 0: recovery only by faults.
FAULT_EDGES = {
    0: (("work", 1), ("fault1", 6)),
    1: (("work", 2),),
    2: (("done", 2),),
    6: (("fault2", 7),),
    7: (("fault3", 0),),
}


def reach_goal(edge_filter: Callable[[str], bool] | None = None) -> Property[int, str]:
    return Property.eventually(
        "reaches 3", is_three, "state 3 stays reachable", edge_filter=edge_filter
    )


# -- pinned counts ----------------------------------------------------------------------------


@pytest.mark.parametrize(("rm_count", "states"), [(3, 288), (5, 8_832)])
def test_two_phase_commit_counts(rm_count: int, states: int) -> None:
    """Stateright examples/2pc.rs pins 288 (3 RMs) and 8,832 (5 RMs) unique states."""
    report = check(TwoPhaseCommit(rm_count))
    assert report.unique_states == states
    assert report.stop_reason is StopReason.EXHAUSTED and report.is_complete
    assert report.is_ok
    verdicts = {result.name: result.verdict for result in report.results}
    assert verdicts == {
        "abort agreement": Verdict.WITNESSED,
        "commit agreement": Verdict.WITNESSED,
        "consistent": Verdict.HOLDS,
    }


def test_two_phase_commit_shortest_witnesses() -> None:
    report = check(TwoPhaseCommit(3))
    assert (report.transitions, report.max_depth) == (1145, 10)
    abort = report.get_result("abort agreement").trace
    commit = report.get_result("commit agreement").trace
    assert abort is not None and len(abort) == 3  # TmAbort isn't needed: RMs choose to abort
    assert commit is not None and len(commit) == 10  # 3 prepare, 3 rcv, commit, 3 rcv commit
    assert commit.actions[-1].kind.name == "RM_RCV_COMMIT_MSG"


def test_die_hard_count_and_witness() -> None:
    """TLA+ DieHard: 16 distinct states; big == 4 first after 6 steps."""
    model = DieHard()
    report = check(model)
    assert report.unique_states == 16
    assert report.transitions == 96
    result = report.get_result("big is 4")
    assert result.verdict is Verdict.WITNESSED
    assert result.trace is not None
    assert result.trace.actions == (
        JugAction.FILL_BIG,
        JugAction.BIG_TO_SMALL,
        JugAction.EMPTY_SMALL,
        JugAction.BIG_TO_SMALL,
        JugAction.FILL_BIG,
        JugAction.BIG_TO_SMALL,
    )
    assert result.trace.last_state == Jugs(3, 4)
    assert result.get_label() == "witnessed at depth 6"


# -- always / sometimes -----------------------------------------------------------------------


class DieHardInvariant(DieHard):
    """The TLA+ way to find the solution: the invariant ``big /= 4`` fails."""

    def properties(self) -> Sequence[Property[Jugs, JugAction]]:
        return [
            Property.always("big is not 4", self.is_not_goal),
            Property.sometimes("big is 4", self.is_goal),
        ]

    def is_not_goal(self, state: Jugs) -> bool:
        return state.big != 4


def test_always_violation_gives_shortest_counterexample_and_search_continues() -> None:
    report = check(DieHardInvariant())
    result = report.get_result("big is not 4")
    assert result.verdict is Verdict.VIOLATED and result.is_failing
    assert result.trace is not None and len(result.trace) == 6
    assert report.unique_states == 16 and report.stop_reason is StopReason.EXHAUSTED
    assert report.get_result("big is 4").verdict is Verdict.WITNESSED
    assert not report.is_ok
    assert [r.name for r in report.get_failures()] == ["big is not 4"]


def test_stop_on_violation() -> None:
    report = check(DieHardInvariant(), stop_on_violation=True)
    assert report.stop_reason is StopReason.FIRST_VIOLATION
    assert not report.is_complete
    assert report.unique_states < 16
    result = report.get_result("big is not 4")
    assert result.verdict is Verdict.VIOLATED
    assert result.trace is not None and len(result.trace) == 6


def test_sometimes_without_witness_fails() -> None:
    report = check(DieHard(goal=7))  # the 5-gallon jug never holds 7
    result = report.get_result("big is 4")
    assert report.unique_states == 16 and report.is_complete
    assert result.verdict is Verdict.NO_WITNESS
    assert result.is_failing and result.trace is None
    assert result.get_label() == "no witness found"
    assert not report.is_ok


def test_always_violated_in_initial_state() -> None:
    model = GraphModel(TRAP_EDGES, (Property.always("never zero", bool),))
    report = check(model)
    result = report.get_result("never zero")
    assert result.verdict is Verdict.VIOLATED
    assert result.trace == Trace(0, ())


# -- eventually -------------------------------------------------------------------------------


def test_eventually_finds_shortest_path_to_trap() -> None:
    report = check(GraphModel(TRAP_EDGES, (reach_goal(),)))
    result = report.get_result("reaches 3")
    assert result.verdict is Verdict.VIOLATED
    assert result.trace is not None
    assert result.trace.actions == ("a", "trap")
    assert result.trace.states == (0, 1, 4)


def test_eventually_holds_without_trap() -> None:
    edges = {k: v for k, v in TRAP_EDGES.items() if k not in (4, 5)}
    edges[1] = (("b", 2),)
    report = check(GraphModel(edges, (reach_goal(),)))
    assert report.get_result("reaches 3").verdict is Verdict.HOLDS


def test_eventually_deadlock_is_a_trap() -> None:
    edges = {0: (("a", 1), ("b", 2)), 1: (("c", 3),)}  # 2 has no successor
    result = check(GraphModel(edges, (reach_goal(),))).get_result("reaches 3")
    assert result.verdict is Verdict.VIOLATED
    assert result.trace is not None and result.trace.states == (0, 2)


def test_eventually_edge_filter_excludes_faults() -> None:
    plain = check(GraphModel(FAULT_EDGES, (reach_goal_2(),)))
    assert plain.get_result("reaches 2").verdict is Verdict.HOLDS
    filtered = check(GraphModel(FAULT_EDGES, (reach_goal_2(edge_filter=is_not_fault),)))
    result = filtered.get_result("reaches 2")
    assert result.verdict is Verdict.VIOLATED
    assert result.trace is not None and result.trace.actions == ("fault1",)


def reach_goal_2(edge_filter: Callable[[str], bool] | None = None) -> Property[int, str]:
    return Property.eventually("reaches 2", lambda state: state == 2, edge_filter=edge_filter)


def test_eventually_is_sound_under_depth_bound() -> None:
    chain = {k: ((f"s{k}", k + 1),) for k in range(10)}
    goal: Property[int, str] = Property.eventually("reaches 10", lambda state: state == 10)
    report = check(GraphModel(chain, (goal,)), max_depth=3)
    assert report.stop_reason is StopReason.MAX_DEPTH
    assert report.get_result("reaches 10").verdict is Verdict.BOUNDED  # not a false trap
    # A real trap closed inside the explored part is still reported under the bound.
    edges = {**chain, 0: (("s0", 1), ("trap", 14)), 14: (("x", 15),), 15: (("y", 14),)}
    report = check(GraphModel(edges, (goal,)), max_depth=3)
    assert report.stop_reason is StopReason.MAX_DEPTH
    result = report.get_result("reaches 10")
    assert result.verdict is Verdict.VIOLATED and result.trace is not None
    assert result.trace.states == (0, 14)


def test_two_phase_commit_with_progress_property() -> None:
    class WithProgress(TwoPhaseCommit):
        def properties(self) -> Sequence[Property[TpcState, TpcAction]]:
            decided: Property[TpcState, TpcAction] = Property.eventually(
                "tm decides", lambda s: get_tm_state(s) != 0
            )
            return [*super().properties(), decided]

    report = check(WithProgress(3))
    assert report.unique_states == 288
    assert report.get_result("tm decides").verdict is Verdict.HOLDS


# -- bounds -----------------------------------------------------------------------------------


def test_depth_bound_gives_bounded_verdicts() -> None:
    report = check(DieHard(), max_depth=3)
    assert report.stop_reason is StopReason.MAX_DEPTH and not report.is_complete
    assert report.max_depth == 3
    assert report.get_result("type ok").verdict is Verdict.BOUNDED
    assert report.get_result("type ok").get_label() == "holds (bounded)"
    assert report.get_result("big is 4").verdict is Verdict.BOUNDED
    assert report.is_ok  # bounded is not failing
    # States at the bound are still checked: the depth-6 witness is found with max_depth=6.
    deep = check(DieHard(), max_depth=6)
    assert deep.get_result("big is 4").verdict is Verdict.WITNESSED


def test_state_bound() -> None:
    report = check(TwoPhaseCommit(5), max_states=100)
    assert report.unique_states == 100
    assert report.stop_reason is StopReason.MAX_STATES
    assert report.get_result("consistent").verdict is Verdict.BOUNDED
    exact = check(DieHard(), max_states=16)
    assert exact.stop_reason is StopReason.EXHAUSTED and exact.is_complete


def test_time_bound() -> None:
    report = check(TwoPhaseCommit(5), time_limit=0.0)
    assert report.stop_reason is StopReason.TIME_LIMIT
    assert report.unique_states < 8_832
    assert report.get_result("consistent").verdict is Verdict.BOUNDED


class SmallJugsOnly(DieHard):
    def within_boundary(self, state: Jugs) -> bool:
        return state.small + state.big <= 6


def test_boundary_prunes_and_bounds_verdicts() -> None:
    report = check(SmallJugsOnly())
    assert report.pruned > 0 and report.unique_states < 16
    assert report.stop_reason is StopReason.EXHAUSTED and not report.is_complete
    assert report.get_result("type ok").verdict is Verdict.BOUNDED


def test_bad_options_and_duplicate_names() -> None:
    with pytest.raises(ValueError):
        check(DieHard(), max_states=0)
    with pytest.raises(ValueError):
        check(DieHard(), workers=0)
    twice: tuple[Property[int, str], ...] = (
        Property.always("p", is_positive),
        Property.sometimes("p", is_three),
    )
    with pytest.raises(ModelDefinitionError):
        check(GraphModel(TRAP_EDGES, twice))


# -- traces, report, progress -----------------------------------------------------------------


def test_replay_trace_round_trip() -> None:
    model = DieHard()
    witness = check(model).get_result("big is 4").trace
    assert witness is not None
    assert replay_trace(model, witness.actions) == witness
    assert witness.get_path()[0] == (None, Jugs(0, 0))
    assert witness.get_lines(model)[1] == "  1. FillBigJug -> Jugs(small=0, big=5)"


def test_replay_trace_rejects_refused_or_unoffered_actions() -> None:
    model = GraphModel(TRAP_EDGES, ())
    with pytest.raises(TraceError, match="step 2"):
        replay_trace(model, ["a", "c"])
    with pytest.raises(TraceError, match="initial state"):
        replay_trace(model, [], init=5)


def test_summary_lines_and_progress_hook() -> None:
    seen: list[ProgressInfo] = []
    report = check(TwoPhaseCommit(5), progress=seen.append, progress_interval=0.0)
    assert seen and seen[-1].is_final and seen[-1].states == 8_832
    assert any(not info.is_final for info in seen)
    lines = report.get_summary_lines()
    assert lines[0].startswith("8832 states, 58145 transitions, max depth 16")
    assert "[  ok] always 'consistent': holds" in lines
    assert "8,832 states" in get_progress_text(seen[-1]).plain


def test_live_progress_display() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=120)
    with live_progress(console) as hook:
        report = check(DieHard(), progress=hook)
    assert report.unique_states == 16
    assert "16 states" in console.file.getvalue()  # type: ignore[attr-defined]


def test_property_kinds() -> None:
    assert Property.always("a", is_positive).kind is PropertyKind.ALWAYS
    prop = Property.eventually("e", is_three, edge_filter=is_not_fault)
    assert prop.is_edge_allowed("work") and not prop.is_edge_allowed("fault1")


# -- the spec ---------------------------------------------------------------------------------


def test_every_rule_is_cited_and_every_citation_exists() -> None:
    spec = (REPO / "docs" / "spec" / "checker.md").read_text()
    rules = set(re.findall(r"^- \*\*(CHK-\d+)\*\* —", spec, flags=re.MULTILINE))
    assert rules, "no rules found in docs/spec/checker.md"
    sources = "".join(
        path.read_text()
        for path in (REPO / "otamodel" / "checker").glob("_*.py")
        if path.name
        in {
            "_checker.py",
            "_liveness.py",
            "_model.py",
            "_parallel.py",
            "_workers.py",
            "_progress.py",
            "_report.py",
            "_search.py",
            "_trace.py",
            "_cheapest.py",
            "_classify.py",
            "_regions.py",
            "_keys.py",
        }
    )
    cited = set(re.findall(r"CHK-\d+", sources))
    assert rules == cited


@pytest.mark.parametrize("sources", [[0, 0, 1, 3, 3, 3], [3, 0, 1, 0, 3, 3], []])
def test_forward_graph_rows_hold_each_source_edges(sources: list[int]) -> None:
    """CHK-18: the lasso's forward graph lists each state's edges, in edge order (edges the
    search recorded by source are their own rows; others are sorted into them)."""
    from array import array
    from types import SimpleNamespace
    from typing import Any

    from otamodel.checker._liveness import ForwardGraph

    explored: Any = SimpleNamespace(edge_src=array("i", sources), count=4)
    found = ForwardGraph(explored)
    rows = [list(found.edges[found.offsets[s] : found.offsets[s + 1]]) for s in range(4)]
    assert rows == [[e for e, s in enumerate(sources) if s == v] for v in range(4)]
