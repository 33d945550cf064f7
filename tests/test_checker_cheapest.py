"""CHK-15: with a cost per action, traces are the cheapest, then the shortest."""

from __future__ import annotations

from collections.abc import Sequence

from otamodel.checker import Property, check


class Ladder:
    """Counter 0..6: ``step`` adds 1; ``jump`` (a "fault", cost 1) adds 3."""

    def init_states(self) -> Sequence[int]:
        return [0]

    def actions(self, n: int) -> list[str]:
        return ["step", "jump"]

    def next_state(self, n: int, action: str) -> int | None:
        nxt = n + (1 if action == "step" else 3)
        return nxt if nxt <= 6 else None

    def properties(self) -> Sequence[Property[int, str]]:
        return [
            Property.always("below five", lambda n: n < 5),
            Property.sometimes("six", lambda n: n == 6),
            Property.eventually("reaches one", lambda n: n == 1, edge_filter=lambda a: a == "step"),
        ]


def cost(action: str) -> int:
    return 1 if action == "jump" else 0


def test_shortest_traces_use_the_fault() -> None:
    report = check(Ladder())
    assert report.get_result("below five").trace.actions == ("jump", "jump")  # type: ignore[union-attr]
    assert report.get_result("six").trace.actions == ("jump", "jump")  # type: ignore[union-attr]


def test_cheapest_traces_avoid_it() -> None:
    report = check(Ladder(), cost=cost)
    assert report.get_result("below five").trace.actions == ("step",) * 5  # type: ignore[union-attr]
    assert report.get_result("six").trace.actions == ("step",) * 6  # type: ignore[union-attr]
    # The only trap for "reaches one" is 2..6 (no way back): the cheapest path into one is
    # two plain steps; the verdicts do not change.
    trap = report.get_result("reaches one")
    assert trap.verdict.value == "violated"
    assert trap.trace is not None and trap.trace.actions == ("step", "step")
    assert [r.verdict for r in report.results] == [r.verdict for r in check(Ladder()).results]


def test_cheapest_with_two_workers_matches() -> None:
    one = check(Ladder(), cost=cost)
    two = check(Ladder(), cost=cost, workers=2)
    for a, b in zip(one.results, two.results, strict=True):
        assert a.verdict == b.verdict
        assert (a.trace is None) == (b.trace is None)
        if a.trace is not None and b.trace is not None:
            assert sum(map(cost, a.trace.actions)) == sum(map(cost, b.trace.actions))
            assert len(a.trace) == len(b.trace)
