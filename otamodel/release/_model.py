"""Release directories as the model's server releases (REL-6)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from otamodel.env import Release, Scenario
from otamodel.release._make import read_release

__all__ = ["get_model_release", "with_releases"]


def get_model_release(folder: Path) -> Release:
    """REL-6: what the in-memory server publishes for a release directory: its manifest at
    the scenario's manifest URL and each hosted file at its URL."""
    info = read_release(folder)
    manifest = (folder / info.manifest).read_bytes()
    files = tuple((f.url, (folder / f.file).read_bytes()) for f in info.get_files())
    return Release(f"release v{info.version} ({folder.name})", manifest, files)


def with_releases(scenario: Scenario, folders: Sequence[Path]) -> Scenario:
    """REL-6: the scenario with its server releases replaced by release directories."""
    return attrs.evolve(scenario, releases=tuple(get_model_release(f) for f in folders))
