"""CHK-38: worker processes keep a state where its variants are, with one process's results."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from test_checker_parallel import get_arrays

from otamodel.checker import CheckReport, Property, check
from otamodel.checker._affinity import GENERATION, Homes
from otamodel.checker._parallel import _Coordinator
from otamodel.errors import ModelDefinitionError
from otamodel.verify._properties import OtaModel

State = tuple[int, int]
"""A position and a budget left: states with one position are variants of one another."""


class Budgets:
    """Positions 0..2999 moved by +1, *3+1 and +7 (mod 3000), and a budget of 2 spent by
    ``spend`` without moving: each position is reached with several budgets, by different
    parents (levels large enough for the workers to share them out)."""

    def __init__(self, hooks: bool = True, lie: bool = False) -> None:
        self.lie = lie
        if hooks:
            self.get_variant_key: Callable[[State], int] = lambda state: state[0] * 7919
            self.get_variant_delta: Callable[[State], int] = lambda state: state[1]
            self.make_variant: Callable[[State, int], State] = self.make

    def make(self, variant: State, delta: int) -> State:
        return (variant[0], delta + 1 if self.lie and delta < 2 else delta)

    def init_states(self) -> list[State]:
        return [(0, 2)]

    def actions(self, state: State) -> list[str]:
        return ["inc", "triple", "hop", "spend"]

    def next_state(self, state: State, action: str) -> State | None:
        position, budget = state
        if action == "spend":
            return (position, budget - 1) if budget else None
        after = {"inc": position + 1, "triple": position * 3 + 1, "hop": position + 7}[action]
        return (after % 3000, budget)

    def properties(self) -> Sequence[Property[State, str]]:
        return [
            Property.always("not 2999 unbudgeted", lambda s: s != (2999, 0)),
            Property.sometimes("at 30", lambda s: s[0] == 30),
            Property.eventually("back home", lambda s: s[0] == 0),
        ]


def get_results(report: CheckReport[Any, Any]) -> tuple[object, ...]:
    return (
        report.unique_states,
        report.transitions,
        [(r.name, r.verdict, r.trace and r.trace.steps) for r in report.results],
        [(f.id, f.trace and f.trace.steps) for f in report.findings],
    )


def count_moves(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many states the coordinators of the next searches move (CHK-38)."""
    moved: list[int] = []
    original = _Coordinator.get_moves

    def get_moves(self: _Coordinator, *args: Any) -> Any:
        moves = original(self, *args)
        moved.append(sum(map(len, moves)))
        return moves

    monkeypatch.setattr(_Coordinator, "get_moves", get_moves)
    return moved


def test_states_kept_by_variant_give_one_process_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """CHK-38: states move to the worker holding their variants, and the numbering, parents,
    edges, verdicts, traces and findings are those of one process (and of no hooks)."""
    moved = count_moves(monkeypatch)
    one = check(Budgets(), findings=True)
    two = check(Budgets(), workers=2, findings=True)
    assert sum(moved) > 0
    assert get_results(two) == get_results(one)
    assert get_results(check(Budgets(hooks=False), workers=2, findings=True)) == get_results(one)
    assert get_arrays(Budgets(), parallel=True) == get_arrays(Budgets(), parallel=False)


def test_a_made_state_with_another_fingerprint_is_an_error() -> None:
    """CHK-38: a variant that does not give back the state found stops the search."""
    with pytest.raises(ModelDefinitionError, match="make_variant did not give back state"):
        check(Budgets(lie=True), workers=2)
    assert check(Budgets(lie=True)).unique_states == check(Budgets()).unique_states


def test_variant_hooks_come_all_three_or_none() -> None:
    model = Budgets()
    del model.make_variant
    with pytest.raises(ModelDefinitionError, match="needs all three"):
        check(model)


def reply(keys: list[int], fps: list[int]) -> dict[str, Any]:
    return {"variants": array("q", keys), "fps": array("q", fps), "deltas": [0] * len(keys)}


def test_homes_move_a_state_to_a_variant_kept_in_the_last_generations() -> None:
    """A worker's variant keys are remembered for GENERATION to 2 * GENERATION levels;
    the moved state leaves its discoverer's numbers."""
    homes = Homes(2)
    assert homes.get_moves([reply([5], [50]), reply([], [])], [array("i", [0]), array("i")]) == [
        [],
        [],
    ]
    homes.remember()
    numbers = [array("i"), array("i", [1, -1])]
    moves = homes.get_moves([reply([], []), reply([5, 5], [51, 52])], numbers)
    assert moves == [[(1, 5, 51, 0)], []]
    assert list(numbers[1]) == [-1, -1]
    homes.remember()
    assert 5 in homes.current[0] or 5 in homes.previous[0]
    for _ in range(2 * GENERATION):
        homes.get_moves([reply([], []), reply([], [])], [array("i"), array("i")])
        homes.remember()
    numbers = [array("i"), array("i", [2])]
    assert homes.get_moves([reply([], []), reply([5], [53])], numbers) == [[], []]
    assert list(numbers[1]) == [2]


def test_a_variant_the_discoverer_holds_too_stays_with_it() -> None:
    homes = Homes(2)
    homes.get_moves([reply([9], [90]), reply([9], [91])], [array("i", [0]), array("i", [1])])
    homes.remember()
    numbers = [array("i"), array("i", [2])]
    assert homes.get_moves([reply([], []), reply([9], [92])], numbers) == [[], []]
    assert list(numbers[1]) == [2]


def test_ota_worlds_are_made_from_their_budget_variants() -> None:
    """ENV-9, CHK-38: any two reached worlds with equal variant keys make each other."""
    model = OtaModel("user-power-cut")
    seen = {state: None for state in model.init_states()}
    frontier = list(seen)
    while frontier and len(seen) < 4000:
        following = []
        for world in frontier:
            for action in model.actions(world):
                after = model.next_state(world, action)
                if after is not None and after not in seen:
                    seen[after] = None
                    following.append(after)
        frontier = following
    by_key: dict[int, list[Any]] = {}
    for world in seen:
        by_key.setdefault(model.get_variant_key(world), []).append(world)
    pairs = 0
    for worlds in by_key.values():
        for world in worlds[1:]:
            made = model.make_variant(worlds[0], model.get_variant_delta(world))
            assert made == world and hash(made) == hash(world)
            pairs += 1
    assert pairs > 100
