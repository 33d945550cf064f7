"""ENV-9: the checker's remembered step gives what the budgeted step gives, on every world and
input (inputs whose budget is spent included), whatever its memory holds."""

from __future__ import annotations

import pytest

from otamodel.env import enabled_actions, get_scenario, initial_world, step
from otamodel.env._actions import StepMemo
from otamodel.model import Action, World
from otamodel.model._action import ActionKind
from otamodel.model._record import get_fields

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
