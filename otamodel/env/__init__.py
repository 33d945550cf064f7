"""The world around the device: server releases, network, attacker, power (ENV-*)."""

from __future__ import annotations

from importlib import resources

from otamodel.env._actions import TICK, enabled_actions, step
from otamodel.env._ghost import set_initial_ghost
from otamodel.env._scenario import (
    MANIFEST_URL,
    Release,
    Scenario,
    build_scenario,
    load_scenario_file,
    load_scenario_text,
)
from otamodel.env._transport import HttpTransport, ReleaseServer, Transport
from otamodel.errors import ScenarioError
from otamodel.model import Fs, World, make_initial_world
from otamodel.model._state import replace


def get_scenario_names() -> list[str]:
    """SCN-8: the named scenarios shipped with otamodel (every ``*.toml`` of the library)."""
    folder = resources.files("otamodel") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def get_scenario(name: str) -> Scenario:
    """A named scenario, or a path to a TOML/JSON description."""
    if name.endswith((".toml", ".json")):
        return load_scenario_file(name)
    folder = resources.files("otamodel") / "scenarios"
    item = folder / f"{name}.toml"
    if not item.is_file():
        known = ", ".join(get_scenario_names())
        raise ScenarioError(f"unknown scenario {name!r} (known: {known})")
    return load_scenario_text(item.read_text(encoding="utf-8"), f"{name}.toml", name)


def initial_world(scenario: Scenario | str) -> World:
    """The world a programmer leaves (DEV-5), with the scenario's fault budgets."""
    if isinstance(scenario, str):
        scenario = get_scenario(scenario)
    world = set_initial_ghost(make_initial_world(scenario, scenario.budget))
    preload = scenario.fs_options.preload
    if preload:
        # SCN-33: files already on a formatted volume at first boot (empty content).
        fs = Fs(formatted=True, has_dir=True)
        for name in sorted(set(preload)):
            fs = fs.with_file(name, b"")
        world = replace(world, fs=fs)
    return world


__all__ = [
    "MANIFEST_URL",
    "TICK",
    "HttpTransport",
    "Release",
    "ReleaseServer",
    "Scenario",
    "Transport",
    "build_scenario",
    "enabled_actions",
    "get_scenario",
    "get_scenario_names",
    "initial_world",
    "load_scenario_file",
    "step",
]


def with_variant(scenario: Scenario, variant: str) -> Scenario:
    """The same scenario built for another code variant."""
    spec = dict(scenario.source)
    spec["variant"] = variant
    spec.setdefault("name", scenario.name)
    return build_scenario(spec)


__all__ += ["with_variant"]


def with_defects(scenario: Scenario, defects: list[str] | tuple[str, ...]) -> Scenario:
    """PROP-45: the same scenario with planted self-test defects."""
    spec = dict(scenario.source)
    spec["defects"] = list(defects)
    spec.setdefault("name", scenario.name)
    spec.setdefault("variant", scenario.config.variant.value)
    return build_scenario(spec)


__all__ += ["with_defects"]

from otamodel.env._script import Until, format_actions, parse_actions, parse_until  # noqa: E402

__all__ += ["Until", "format_actions", "parse_actions", "parse_until"]
