"""The machines' conformance over every reachable state of a scenario.

:class:`ConformanceModel` is a scenario as a checker model whose ``next_state`` fires every
input twice: through the compiled path ``step`` runs (with the effect check on: no effect
changes a machine's state outside a transition of that machine) and through the real
``transitions`` Machines (``through_machines``: every event, events between machines too,
fired by the variant's HierarchicalMachine, whose own state is read back after each
firing). It raises :class:`ConformanceError` when the two disagree on the refusal or on
the world. The checker hands out every reachable state (in worker processes when asked),
so a complete check of this model covers every enabled input of every reachable state.
While the application runs, every control message the scenario does not enable is fired
both ways too by the device's ``step`` (not explored, no budget): the machines' paths for
rollback, factory reset, system reset and the update requests are then checked in every
scenario.

Run as a script to print the coverage table::

    python tests/_conformance.py default secure patch rollback --workers 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Callable, Sequence
from multiprocessing.sharedctypes import Synchronized

import attrs

from otamodel.checker import CheckReport, Property, check
from otamodel.env import get_scenario, step, with_variant
from otamodel.model import (
    CTRL_MESSAGES,
    Action,
    ActionKind,
    Phase,
    StepResult,
    World,
    checking_effects,
    through_machines,
)
from otamodel.model import step as device_step
from otamodel.model._machine import get_machine_firings
from otamodel.model._record import get_fields
from otamodel.verify._properties import OtaModel

SCENARIOS = ("default", "secure", "patch", "rollback")
"""The scenarios issue 9 names; each is covered whole."""

CTRL_ACTIONS = tuple(Action(ActionKind.CTRL, m.value) for m in CTRL_MESSAGES)


class ConformanceError(AssertionError):
    """The compiled path and the real Machines disagree on one input in one state."""


class ConformanceModel:
    """A scenario whose every firing runs both ways (see the module docstring)."""

    def __init__(self, scenario: str, variant: str | None = None) -> None:
        chosen = get_scenario(scenario)
        self.inner = OtaModel(with_variant(chosen, variant) if variant else chosen)
        # Shared with forked worker processes: (state, input) pairs checked, refusals
        # (both ways), events the Machines fired.
        context = multiprocessing.get_context("fork")
        self.pairs: Synchronized[int] = context.Value("q", 0)
        self.refused: Synchronized[int] = context.Value("q", 0)
        self.events: Synchronized[int] = context.Value("q", 0)
        self.extra: Synchronized[int] = context.Value("q", 0)

    def __repr__(self) -> str:
        return f"<ConformanceModel {self.inner.scenario.name}>"

    def init_states(self) -> Sequence[World]:
        return self.inner.init_states()

    def actions(self, state: World) -> list[Action]:
        actions = list(self.inner.actions(state))
        if state.phase is Phase.APP:
            extra = [a for a in CTRL_ACTIONS if a not in actions]
            for action in extra:
                self.fire_both_ways(state, action, device_step)
            with self.extra.get_lock():
                self.extra.value += len(extra)
        return actions

    def next_state(self, state: World, action: Action) -> World | None:
        return self.fire_both_ways(state, action)

    def fire_both_ways(
        self, state: World, action: Action, run: Callable[[World, Action], StepResult] = step
    ) -> World | None:
        """``action`` in ``state`` through the compiled path and through the Machines (by
        the environment's ``step``, or the device's own for inputs outside the budgets)."""
        with checking_effects():
            compiled = run(state, action)
        events = get_machine_firings()
        with through_machines():
            real = run(state, action)
        if compiled.is_refused != real.is_refused or compiled.world != real.world:
            raise ConformanceError(describe(state, action, compiled.world, real.world))
        with self.pairs.get_lock():
            self.pairs.value += 1
        with self.events.get_lock():
            self.events.value += get_machine_firings() - events
        if compiled.is_refused:
            with self.refused.get_lock():
                self.refused.value += 1
            return None
        return compiled.world

    def properties(self) -> Sequence[Property[World, Action]]:
        return ()

    def format_action(self, action: Action) -> str:
        return str(action)


def describe(state: World, action: Action, compiled: World, real: World) -> str:
    """Which fields of the two worlds differ, after ``action`` in ``state``."""
    fields = [name for name in get_fields(World) if name not in ("notes", "scenario")]
    differ = [
        f"{name}: compiled {getattr(compiled, name)!r} / machines {getattr(real, name)!r}"
        for name in fields
        if getattr(compiled, name) != getattr(real, name)
    ]
    return f"{action} in {state!r}: " + ("; ".join(differ) or "refusal differs")


@attrs.frozen
class Coverage:
    """What one exhaustive conformance run covered."""

    scenario: str
    states: int
    pairs: int
    extra: int
    refused: int
    events: int
    is_complete: bool
    seconds: float
    cpu_seconds: float

    def get_line(self) -> str:
        return (
            f"{self.scenario:<10} {self.states:>8} states  {self.pairs:>9} inputs "
            f"({self.extra} extra, {self.refused} refused)  {self.events:>9} machine events  "
            f"{self.seconds:7.1f} s wall  {self.cpu_seconds:7.1f} s CPU"
        )


def run_conformance(scenario: str, *, workers: int = 1, variant: str | None = None) -> Coverage:
    """Every reachable state of ``scenario``, every enabled input, both ways."""
    model = ConformanceModel(scenario, variant)
    started = time.perf_counter()
    cpu = time.process_time()
    children = _get_children_cpu()
    report: CheckReport[World, Action] = check(model, workers=workers, shortest=True)
    return Coverage(
        scenario=scenario if variant is None else f"{scenario}/{variant}",
        states=report.unique_states,
        pairs=model.pairs.value,
        extra=model.extra.value,
        refused=model.refused.value,
        events=model.events.value,
        is_complete=report.is_complete,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu + _get_children_cpu() - children,
    )


def _get_children_cpu() -> float:
    import os

    times = os.times()
    return times.children_user + times.children_system


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variant", default=None)
    args = parser.parse_args(argv)
    for name in args.scenarios:
        print(run_conformance(name, workers=args.workers, variant=args.variant).get_line())


if __name__ == "__main__":
    main()
