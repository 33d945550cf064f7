"""otamodel.checker: a generic explicit-state model checker (knows nothing about OTA).

Semantics: ``docs/spec/checker.md``. Usage::

    report = check(model, max_depth=30)
    for line in report.get_summary_lines():
        print(line)
"""

from __future__ import annotations

from otamodel.checker._checker import check
from otamodel.checker._model import (
    BoundedModel,
    Model,
    Property,
    PropertyKind,
    get_action_label,
)
from otamodel.checker._progress import get_progress_text, live_progress
from otamodel.checker._report import (
    CheckReport,
    ProgressInfo,
    PropertyResult,
    StopReason,
    Verdict,
)
from otamodel.checker._search import ProgressHook
from otamodel.checker._trace import Trace, replay_trace

__all__ = [
    "BoundedModel",
    "CheckReport",
    "Model",
    "ProgressHook",
    "ProgressInfo",
    "Property",
    "PropertyKind",
    "PropertyResult",
    "StopReason",
    "Trace",
    "Verdict",
    "check",
    "get_action_label",
    "get_progress_text",
    "live_progress",
    "replay_trace",
]
