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


def get_budget_variants(world: World) -> list[World]:
    """``world`` and the worlds that differ from it only in having spent budgets: one unit of
    each budget with units left, and every budget spent."""
    variants = [world]
    left = [name for name, count in world.budget if count > 0]
    variants.extend(world.spend(name) for name in left)
    spent = world
    for name, count in world.budget:
        for _ in range(count):
            spent = spent.spend(name)
    variants.append(spent)
    return variants


@pytest.mark.parametrize(
    "scenario", ["default", "server-freeze", "erase-replay", "attacker", "console", "tamper"]
)
def test_the_verdict_key_covers_what_the_properties_read(scenario: str) -> None:
    """PROP-47: worlds with equal verdict keys (here: a world and its budget variants whose
    keys match) get equal values from every built-in predicate and measure, and the key
    tells apart variants whose ``freeze`` budget differs when the scenario gives one."""
    model = OtaModel(scenario)
    key = model.get_verdict_key
    assert key is not None
    judges = [p.predicate for p in model.properties()]
    judges += [p.measure for p in model.properties() if p.measure is not None]
    compared = apart = 0
    for world in get_worlds(scenario, 600):
        values = [judge(world) for judge in judges]
        for variant in get_budget_variants(world)[1:]:
            if key(variant) == key(world):
                assert [judge(variant) for judge in judges] == values, variant
                compared += 1
            else:
                assert variant.get_budget("freeze") != world.get_budget("freeze")
                apart += 1
    assert compared > 300
    assert (apart > 0) == ("freeze" in model.scenario.budget_keys)
    assert OtaModel(scenario, extra_properties=[lambda w: True]).get_verdict_key is None


class _Square:
    """A tiny model with the CHK-37 hook: numbers below 40 step by +1, +2 and *2 (refused
    past 40); the property reads only the number modulo 7."""

    def __init__(self, hooks: bool) -> None:
        self.calls = 0
        if hooks:
            self.get_verdict_key = lambda state: state % 7

    def init_states(self) -> list[int]:
        return [1]

    def actions(self, state: int) -> list[str]:
        return ["inc", "add2", "double"]

    def next_state(self, state: int, action: str) -> int | None:
        after = {"inc": state + 1, "add2": state + 2, "double": state * 2}[action]
        return after if after <= 40 else None

    def is_small(self, state: int) -> bool:
        self.calls += 1
        return state % 7 != 3

    def properties(self) -> list[Property[int, str]]:
        six: Property[int, str] = Property.sometimes("six", lambda s: s % 7 == 6)
        return [Property.always("mod7", self.is_small), six]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_verdict_key_changes_no_result(workers: int) -> None:
    """CHK-37: with ``get_verdict_key`` the checker finds what it finds without it, and
    judges each key once."""
    plain, hooked = _Square(hooks=False), _Square(hooks=True)
    one = check(plain, workers=workers, findings=True, cost=lambda a: 1)
    two = check(hooked, workers=workers, findings=True, cost=lambda a: 1)
    assert one.unique_states == two.unique_states == 40
    assert one.transitions == two.transitions
    assert [(r.name, r.verdict, r.trace and r.trace.actions) for r in one.results] == [
        (r.name, r.verdict, r.trace and r.trace.actions) for r in two.results
    ]
    assert [f.id for f in one.findings] == [f.id for f in two.findings]
    if workers == 1:
        assert hooked.calls <= 7 + 1 < plain.calls  # each key once, the initial state apart
