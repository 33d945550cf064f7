"""The ``transitions`` machines are the source of truth: the compiled path ``step`` runs
agrees with the real Machines (their state read back after every firing), every change of a
machine's state is a transition of that machine, and the tables are complete."""

from __future__ import annotations

import random
from collections import deque

import pytest

from otamodel.env import enabled_actions, get_scenario, initial_world, step, with_variant
from otamodel.model import (
    MACHINES,
    Action,
    BlTask,
    CoreTask,
    Phase,
    SvcState,
    World,
    build_machine,
    checking_effects,
    through_machines,
)
from otamodel.model._machine import state_name

# Reachable states per scenario (and variant) the conformance test fires through the real
# Machines (the Machines are slow): patch is covered whole; the others by the first states in
# BFS order plus the states of seeded random walks that reach deep into updates. The patch
# path of the core is reached with the 3.9.0 variant (SVC-25/SVC-26).
LIMITS = {
    ("default", None): 1500,
    ("secure", None): 1000,
    ("patch", None): 7000,
    ("rollback", None): 1500,
    ("patch", "harmony-3.9.0"): 1000,
    ("default", "hardened"): 500,
}
WALKS = 10
WALK_LENGTH = 1500


def _reachable(name: str, limit: int, variant: str | None = None) -> list[World]:
    scenario = get_scenario(name)
    world = initial_world(with_variant(scenario, variant) if variant else scenario)
    seen = {world}
    queue = deque([world])
    out = []
    while queue and len(out) < limit:
        w = queue.popleft()
        out.append(w)
        for action in enabled_actions(w):
            result = step(w, action)
            if not result.is_refused and result.world not in seen:
                seen.add(result.world)
                queue.append(result.world)
    rng = random.Random(f"{name}/{variant}")
    for _ in range(WALKS):
        w = world
        for _ in range(WALK_LENGTH):
            actions = enabled_actions(w)
            if not actions:
                break
            # Mostly let the device run (the RTCC alarm when armed), sometimes another input.
            timer = [a for a in actions if a.kind == "timer"]
            if rng.random() < 0.97:
                action = timer[0] if timer else actions[0]
            else:
                action = rng.choice(actions)
            result = step(w, action)
            if not result.is_refused:
                w = result.world
                if w not in seen:
                    seen.add(w)
                    out.append(w)
    return out


@pytest.mark.parametrize(("scenario", "variant"), list(LIMITS))
def test_compiled_path_agrees_with_the_transitions_machines(
    scenario: str, variant: str | None
) -> None:
    """Every input in every (bounded) reachable state: the same world whether the machines
    (events between machines too) fire through the compiled table or the real Machines;
    and no effect changes a machine's state outside a transition of that machine."""
    worlds = _reachable(scenario, LIMITS[scenario, variant], variant)
    fired = 0
    for world in worlds:
        actions = enabled_actions(world)
        if world.phase is Phase.APP:
            actions += [Action("ctrl", m) for m in ("rollback", "factory_reset", "system_reset")]
        for action in actions:
            with checking_effects():
                compiled = step(world, action)
            with through_machines():
                real = step(world, action)
            assert compiled.is_refused == real.is_refused, (action, compiled.refusal)
            assert compiled.world == real.world, (str(action), compiled.transition)
            fired += not compiled.is_refused
    assert fired > len(worlds)


def test_every_state_is_entered_and_left() -> None:
    """No state without an incoming edge (but the initial state) and none without an exit
    (but the final ones): the tables are complete."""
    for spec in MACHINES.values():
        keys = spec.defn.get_keys()
        names = {v: k for k, v in keys.items()}
        sources = {r.source for rows in spec.table.values() for rs in rows.values() for r in rs}
        dests = {
            r.dest_name
            for rows in spec.table.values()
            for rs in rows.values()
            for r in rs
            if r.dest_name is not None
        }
        finals = {state_name(f) for f in spec.defn.finals}
        for name in keys:
            initial = names[spec.defn.get_key(initial_world(get_scenario("default")))]
            if spec.name in ("service", "core") or name != initial:
                assert name in dests or name == state_name(spec.defn.initial), (spec.name, name)
            assert name in sources or name in finals, (spec.name, name)


def test_cross_machine_events_are_transitions() -> None:
    core = MACHINES["core"].table[(CoreTask.IDLE, None)]
    assert {"start", "rollback", "factory_reset", "erase_image", "tick"} <= set(core)
    service = MACHINES["service"].table
    assert "core_result" in service[SvcState.WAIT_FOR_OTA_COMPLETE]
    jump = MACHINES["bootloader"].table[(BlTask.JUMP_TO_APP, None)]["tick"]
    assert jump[0].dest == (BlTask.APPLICATION, None)


def test_an_effect_that_writes_a_machine_state_is_caught() -> None:
    from otamodel.model._machine import Compiled, Row, fire
    from otamodel.model._storage import set_core

    spec = MACHINES["service"]
    world = initial_world(get_scenario("default"))

    def sneaky(w: World) -> World:
        return set_core(w, task=CoreTask.IDLE)

    row = Row("service", "X", "tick", None, None, (), None, ((sneaky, False),))
    key = spec.defn.get_key(world)
    table = {**spec.table, key: {"tick": (row,)}}
    bad = Compiled(defn=spec.defn, table=table, machine=spec.machine)
    assert fire(bad, world, "tick").transition is row
    with checking_effects(), pytest.raises(AssertionError, match="outside a transition"):
        fire(bad, world, "tick")


def test_hardened_only_edges_only_in_the_hardened_machine() -> None:
    from otamodel.model import Variant
    from otamodel.model._service import SERVICE_DEF

    def count(variant: Variant) -> int:
        machine = build_machine(SERVICE_DEF, variant=variant)
        return len(machine.events["tick"].transitions["STATE_IDLE"])

    assert count(Variant.HARDENED) == count(Variant.V3_9_1) + 1


def test_docs_diagrams_are_current() -> None:
    """docs/diagrams/*.mmd and docs/machines.md are what ``tox -e docs`` generates."""
    from pathlib import Path

    from otamodel.model._diagrams import get_diagram_files, get_machines_page

    docs = Path(__file__).resolve().parent.parent / "docs"
    for name, text in get_diagram_files().items():
        assert (docs / "diagrams" / name).read_text(encoding="utf-8") == text, name
    assert (docs / "machines.md").read_text(encoding="utf-8") == get_machines_page()
    core = get_diagram_files()["core.mmd"]
    assert "state DOWNLOAD_IMAGE {" in core and "[is_next_download]" in core
    assert "is_hardened_periodic" in get_diagram_files()["service-hardened.mmd"]
    assert "is_hardened_periodic" not in get_diagram_files()["service.mmd"]


@pytest.mark.parametrize("scenario", ["erase", "patch", "attacker-patch"])
def test_no_effect_changes_a_machine_state_in_any_reachable_state(scenario: str) -> None:
    """Every reachable state of small scenarios (whole, not bounded), every input: the
    effects change no machine's state outside a transition of that machine."""
    world = initial_world(get_scenario(scenario))
    seen = {world}
    queue = deque([world])
    with checking_effects():
        while queue:
            w = queue.popleft()
            for action in enabled_actions(w):
                result = step(w, action)
                if not result.is_refused and result.world not in seen:
                    seen.add(result.world)
                    queue.append(result.world)
    assert len(seen) > 3000


def test_the_finishing_guard_predicts_the_step() -> None:
    """SVC-8: ``is_step_finishing`` (a guard on the world before the step) says exactly
    whether the check is finished after the step it guards."""
    from otamodel.model._service import is_check_allowed, is_step_finishing, run_check_step
    from otamodel.model._update_check import is_check_finished

    checked = 0
    for name in ("rollback", "erase"):
        for world in _reachable(name, 3000):
            svc = world.service
            if (
                world.phase is not Phase.APP
                or svc.state is not SvcState.SERVER_UPDATE_CHECK_TRIGGER
            ):
                continue
            if not is_check_allowed(world):
                continue
            assert is_step_finishing(world) == is_check_finished(run_check_step(world))
            checked += 1
    assert checked > 50


def test_a_machine_that_disagrees_is_caught() -> None:
    """The conformance is not vacuous: a Machine whose service row goes elsewhere than the
    compiled table's (the compiled path is unchanged) fails it, naming the field."""
    import attrs
    from _conformance import ConformanceError, ConformanceModel

    from otamodel.model import Variant
    from otamodel.model._machine import _DRIVER, build_runner
    from otamodel.model._service import SERVICE_DEF

    rows = list(SERVICE_DEF.transitions)
    index = next(i for i, r in enumerate(rows) if r["source"] == ["REGOTACALLBCK"] and r["dest"])
    rows[index] = {**rows[index], "dest": "AUTORESET"}
    wrong = build_runner(attrs.evolve(SERVICE_DEF, transitions=tuple(rows)))
    key = ("service", Variant.V3_9_1)
    saved = _DRIVER.runners.get(key)
    _DRIVER.runners[key] = wrong
    try:
        model = ConformanceModel("patch")
        with pytest.raises(ConformanceError, match="service"):
            for world in _reachable("patch", 3000):
                for action in model.actions(world):
                    model.next_state(world, action)
    finally:
        if saved is None:
            del _DRIVER.runners[key]
        else:
            _DRIVER.runners[key] = saved
    assert model.pairs.value > 0
