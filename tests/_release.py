"""Helpers for the release tests: make releases from scenario images and run the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from otamodel.env import (
    ReleaseServer,
    Scenario,
    build_scenario,
    enabled_actions,
    initial_world,
    step,
)
from otamodel.model import Action, AppImage, Reply, World
from otamodel.release._make import make_release
from otamodel.release._model import get_model_release

BASE_URL = "http://127.0.0.1:8000"


def make_scenario(**spec: object) -> Scenario:
    """A small-geometry scenario whose images the tests turn into releases."""
    data = {"name": "release", "geometry": "small", **spec}
    return build_scenario(data)


def get_image(scenario: Scenario, version: int) -> AppImage:
    return next(i for i in scenario.images if i.version == version)


def make(
    tmp: Path,
    data: bytes,
    version: int,
    *,
    name: str | None = None,
    bases: Sequence[Path] = (),
    key_pem: bytes | None = None,
    folder: str | None = None,
) -> Path:
    source = tmp / f"src_v{version}.bin"
    source.write_bytes(data)
    out = tmp / (folder or f"r{version}")
    make_release(
        source,
        out,
        version=version,
        base_url=BASE_URL,
        name=name or f"app_v{version}",
        key_pem=key_pem,
        bases=bases,
    )
    return out


@attrs.define
class Recording:
    """The in-memory server, noting every URL the device asks for."""

    inner: ReleaseServer
    urls: list[str] = attrs.field(factory=list)

    def get(self, release: int, url: str) -> bytes | Reply | None:
        self.urls.append(url)
        return self.inner.get(release, url)


@attrs.define
class Run:
    world: World
    log: list[str]
    urls: list[str]
    versions: set[int]
    worlds: list[World]

    @property
    def callbacks(self) -> list[str]:
        return [n.split(": ", 1)[1] for n in self.log if n.startswith("app callback: ")]


def run_releases(
    scenario: Scenario,
    folders: Sequence[Path],
    *,
    steps: int = 2500,
    inject: Callable[[World], Action | None] | None = None,
) -> Run:
    """Run the device with ticks (and the RTCC alarm) against the releases in ``folders``;
    ``inject`` may return an input to apply instead of the next tick."""
    releases = tuple(get_model_release(f) for f in folders)
    recording = Recording(ReleaseServer(releases))
    scenario = attrs.evolve(scenario, releases=releases, transport=recording)
    return drive(initial_world(scenario), steps=steps, inject=inject, urls=recording.urls)


def drive(
    world: World,
    *,
    steps: int,
    inject: Callable[[World], Action | None] | None = None,
    urls: list[str] | None = None,
) -> Run:
    log: list[str] = []
    versions: set[int] = set()
    worlds = [world]
    for _ in range(steps):
        action = inject(world) if inject is not None else None
        if action is None:
            timer = [a for a in enabled_actions(world) if a.kind == "timer"]
            action = timer[0] if timer else Action("tick")
        result = step(world, action)
        assert not result.is_refused, (action, result.refusal)
        log.extend(result.notes)
        world = result.world
        worlds.append(world)
        if world.running is not None:
            versions.add(world.running.version)
    return Run(world, log, urls if urls is not None else [], versions, worlds)


def publish_when_running(version: int, release: int = 1) -> Callable[[World], Action | None]:
    """Publish ``release`` once the device runs ``version`` (a base release installed)."""

    def inject(world: World) -> Action | None:
        running = world.running
        if world.published != release and running is not None and running.version == version:
            return None if world.pending else Action("publish", str(release))
        return None

    return inject
