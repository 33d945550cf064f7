"""otamodel.explore: a local web page to walk a scenario's state space, step a device and
watch a finding happen (``otamodel explore``; API in ``docs/explorer.md``, rules EXP-*)."""

from __future__ import annotations

from otamodel.explore._server import create_app
from otamodel.explore._session import (
    Explorer,
    PathError,
    get_compact_script,
    parse_compact_script,
)

__all__ = ["Explorer", "PathError", "create_app", "get_compact_script", "parse_compact_script"]
