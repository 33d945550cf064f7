"""CHK-16: an eventually-violation carries a lasso that shows why the goal stays away."""

from __future__ import annotations

from test_checker import GraphModel

from otamodel.checker import Property, check


def test_lasso_from_a_0_step_trap_closes_its_cycle() -> None:
    # 0 -> 1 -> 2 -> 1 (cycle without the goal); 'fault' -> 3 is the goal but not allowed.
    edges = {
        0: (("a", 1), ("fault", 3)),
        1: (("b", 2),),
        2: (("c", 1),),
        3: (),
    }
    goal = Property.eventually("goal", lambda s: s == 3, edge_filter=lambda a: a != "fault")
    report = check(GraphModel(edges, (goal,)), cost=lambda a: 0)
    result = report.get_result("goal")
    assert result.verdict.value == "violated"
    assert result.trace is not None and len(result.trace) == 0
    assert [a for a, _ in result.lasso] == ["a", "b", "c"]
    assert [s for _, s in result.lasso] == [1, 2, 1]


def test_lasso_stops_at_a_dead_end_and_is_empty_when_edges_are_not_recorded() -> None:
    edges = {0: (("a", 1), ("g", 2)), 1: (), 2: ()}
    goal = Property.eventually("goal", lambda s: s == 2, edge_filter=lambda a: a == "a")
    result = check(GraphModel(edges, (goal,)), cost=lambda a: 1).get_result("goal")
    assert [a for a, _ in result.lasso] == ["a"]
    plain = check(GraphModel(edges, (goal,))).get_result("goal")
    assert plain.verdict.value == "violated"
    always = Property.always("never-1", lambda s: s != 1)
    assert check(GraphModel(edges, (always,)), cost=lambda a: 1).get_result("never-1").lasso == ()
