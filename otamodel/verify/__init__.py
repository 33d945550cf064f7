"""otamodel.verify: the OTA questions asked of the model — named properties (PROP-*),
the checker's view of a scenario (:class:`OtaModel`), trace files, replay and the
findings report. Built on the generic :mod:`otamodel.checker`, which knows nothing of OTA."""

from __future__ import annotations

from otamodel.verify._cuttable import CutTable, get_cut_table, get_double_summary
from otamodel.verify._findings import write_findings
from otamodel.verify._itf import get_itf, write_itf
from otamodel.verify._properties import (
    OtaModel,
    get_expected_witnesses,
    get_release_targets,
    is_progress_action,
    is_recovery_action,
)
from otamodel.verify._tracefile import (
    ReplayStep,
    TraceFile,
    get_mermaid_sequence,
    get_persistent_changes,
    get_trace_document,
    parse_trace_document,
    read_trace,
    replay,
    run,
    write_trace,
)

__all__ = [
    "CutTable",
    "OtaModel",
    "ReplayStep",
    "TraceFile",
    "get_cut_table",
    "get_double_summary",
    "get_expected_witnesses",
    "get_itf",
    "get_mermaid_sequence",
    "get_persistent_changes",
    "get_release_targets",
    "get_trace_document",
    "is_progress_action",
    "is_recovery_action",
    "parse_trace_document",
    "read_trace",
    "replay",
    "run",
    "write_findings",
    "write_itf",
    "write_trace",
]
