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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--exhaustive",
        action="store_true",
        help="run the tests marked exhaustive (tox -e conformance: every reachable state)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``exhaustive`` run only with ``--exhaustive`` (their own tox env)."""
    if config.getoption("--exhaustive"):
        return
    skip = pytest.mark.skip(reason="exhaustive: run with --exhaustive (tox -e conformance)")
    for item in items:
        if "exhaustive" in item.keywords:
            item.add_marker(skip)
