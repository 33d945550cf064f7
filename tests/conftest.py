"""Shared fixtures for the unit and vector tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def get_shared_dir() -> Path:
    """The ``shared/`` folder beside the repository (or ``$OTAMODEL_SHARED``)."""
    override = os.environ.get("OTAMODEL_SHARED")
    return Path(override) if override else REPO.parent / "shared"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    path = get_shared_dir() / "vectors"
    if not path.is_dir():
        pytest.fail(f"test vectors not found at {path} (set OTAMODEL_SHARED)")
    return path
