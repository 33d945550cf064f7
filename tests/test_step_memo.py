"""ENV-9: the checker's remembered step gives what the budgeted step gives, on every world and
input (inputs whose budget is spent included), whatever its memory holds."""

from __future__ import annotations

import pytest

from otamodel.checker import Property, PropertyKind, check
from otamodel.env import enabled_actions, get_scenario, initial_world, step
from otamodel.env._actions import StepMemo
from otamodel.model import Action, World
from otamodel.model._action import ActionKind
from otamodel.model._record import get_fields
from otamodel.verify._properties import OtaModel

# Every kind with its usual argument: offered or not, spent budgets are refused alike.
EXTRA_INPUTS = [Action.of(kind.value) for kind in ActionKind if kind.budget is not None]


def get_worlds(scenario: str, limit: int) -> list[World]:
    """The first ``limit`` worlds of a breadth-first walk of ``scenario``."""
    start = initial_world(get_scenario(scenario))
    seen = {start}
    order = [start]
    for world in order:
        for action in enabled_actions(world):
            result = step(world, action)
            if not result.is_refused and result.world not in seen and len(order) < limit:
                seen.add(result.world)
                order.append(result.world)
    return order


@pytest.mark.parametrize(
    "scenario",
    ["default", "secure", "patch", "attacker", "console", "tamper", "user-power-cut",
     "fs-mount-damaged", "erase"],
)  # fmt: skip
def test_remembered_step_equals_the_step(scenario: str) -> None:
    memo = StepMemo(size=64)  # small: outcomes move between generations and are forgotten
    fields = get_fields(World)
    checked = refused = 0
    for world in get_worlds(scenario, 1500):
        inputs = list(dict.fromkeys([*enabled_actions(world), *EXTRA_INPUTS]))
        for action in inputs:
            for _ in range(2):  # the second time from memory
                result = step(world, action)
                remembered = memo.get_next_world(world, action)
                if result.is_refused:
                    assert remembered is None, (action, world)
                    refused += 1
                    continue
                assert remembered is not None, (action, world)
                # Every field, the notes (not compared by ==) included.
                for name in fields:
                    assert getattr(remembered, name) == getattr(result.world, name), name
                checked += 1
    assert checked > 1000 and refused > 100


class _Counting:
    """A tiny model (a counter to 30) that counts its ``end_search`` calls."""

    def __init__(self) -> None:
        self.ended = 0

    def init_states(self) -> list[int]:
        return [0]

    def actions(self, state: int) -> list[str]:
        return ["inc"] if state < 30 else []

    def next_state(self, state: int, action: str) -> int | None:
        return state + 1

    def properties(self) -> list[Property[int, str]]:
        return [Property("small", PropertyKind.ALWAYS, lambda s: s < 100)]

    def end_search(self) -> None:
        self.ended += 1


@pytest.mark.parametrize("workers", [1, 2])
def test_the_checker_ends_the_search_once_in_this_process(workers: int) -> None:
    model = _Counting()
    report = check(model, workers=workers, findings=True)
    assert report.unique_states == 31 and model.ended == 1


def test_the_ota_model_frees_its_step_memory_when_the_search_ends() -> None:
    model = OtaModel("user-power-cut")
    memo = model.step_memo
    explore_states = check(model, max_states=2000).unique_states
    assert explore_states == 2000
    assert model.step_memo is not memo and len(memo.recent) > 0  # the old one was used
    assert len(model.step_memo.recent) + len(model.step_memo.older) < len(memo.recent)
