"""A small driver for scenario tests: let the device run (ticks, and the RTCC alarm
whenever it is armed), optionally injecting inputs at chosen points."""

from __future__ import annotations

from collections.abc import Callable

from otamodel.env import enabled_actions, step
from otamodel.model import Action, World


def run(
    world: World,
    *,
    until: Callable[[World], bool],
    max_steps: int = 2000,
    log: list[str] | None = None,
) -> World:
    """Step with ``tick`` (or ``timer`` when the service waits for it) until ``until``."""
    for _ in range(max_steps):
        if until(world):
            return world
        actions = enabled_actions(world)
        timer = [a for a in actions if a.kind == "timer"]
        action = timer[0] if timer else Action("tick")
        result = step(world, action)
        assert not result.is_refused, result.refusal
        if log is not None:
            log.extend(result.notes)
        world = result.world
    raise AssertionError(f"condition not reached in {max_steps} steps")


def apply(world: World, action: Action, log: list[str] | None = None) -> World:
    result = step(world, action)
    assert not result.is_refused, result.refusal
    if log is not None:
        log.extend(result.notes)
    return result.world


def callbacks(log: list[str]) -> list[str]:
    return [n.split(": ", 1)[1] for n in log if n.startswith("app callback: ")]
