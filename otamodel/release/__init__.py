"""Release tools: make, lint and serve OTA releases (docs/spec/release.md, REL-*)."""

from __future__ import annotations

from otamodel.release._lint import (
    Effect,
    LintContext,
    Outcome,
    ReleaseProblem,
    lint_directory,
    lint_release,
)
from otamodel.release._make import ReleaseError, ReleaseInfo, make_release, read_release

__all__ = [
    "Effect",
    "LintContext",
    "Outcome",
    "ReleaseError",
    "ReleaseInfo",
    "ReleaseProblem",
    "lint_directory",
    "lint_release",
    "make_release",
    "read_release",
]
