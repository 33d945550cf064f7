"""Paths through a small scenario shared by the explorer's API and browser tests."""

from __future__ import annotations

from typing import Any

from otamodel.env import enabled_actions, initial_world, step
from otamodel.model import Action, Phase

SMALL = {"name": "explore-small", "releases": [{"version": 2}], "budget": {"power_cut": 1}}


def get_update_path(scenario: Any, limit: int = 3000) -> list[str]:
    """A fault-free path that ends with the new release running: ticks, and the RTCC alarm
    whenever it is armed."""
    world = initial_world(scenario)
    path: list[str] = []
    for _ in range(limit):
        if world.phase is Phase.APP and world.running is not None and world.running.version == 2:
            return path
        enabled = enabled_actions(world)
        action = next((a for a in enabled if a.kind == "timer"), Action("tick"))
        world = step(world, action).world
        path.append(str(action))
    raise AssertionError("no update within the step limit")
