"""Release directories as the model's server releases (REL-6)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from otamodel.env import Release, Scenario
from otamodel.errors import ManifestError
from otamodel.formats import manifest as mf
from otamodel.release._lint import fetch_from_dir
from otamodel.release._make import MANIFEST_NAME, SUMMARY_NAME, read_release

__all__ = ["get_model_release", "with_releases"]


def _get_urls(manifest: bytes) -> list[str]:
    try:
        entry = mf.parse(manifest).entry
    except ManifestError:
        return []
    if entry is None:
        return []
    fields = [entry.url, *(p.patch_url for p in entry.patch or ())]
    return [f.text for f in fields if f.is_string() and f.text is not None]


def get_model_release(folder: Path) -> Release:
    """REL-6: what the in-memory server publishes for a release directory: its manifest at
    the scenario's manifest URL and, at each URL the manifest names, the file the directory
    hosts there (as the linter and ``otamodel serve`` find it)."""
    info = read_release(folder) if (folder / SUMMARY_NAME).is_file() else None
    manifest = (folder / (info.manifest if info is not None else MANIFEST_NAME)).read_bytes()
    fetch = fetch_from_dir(folder, info)
    files = []
    for url in _get_urls(manifest):
        data = fetch(url)
        if data is not None:
            files.append((url, data))
    return Release(f"{folder.name}", manifest, tuple(files))


def with_releases(scenario: Scenario, folders: Sequence[Path]) -> Scenario:
    """REL-6: the scenario with its server releases replaced by release directories."""
    return attrs.evolve(scenario, releases=tuple(get_model_release(f) for f in folders))
