"""A short per-family summary after the Hypothesis suites: examples, how many ran to their end,
examples per second, and how many known findings each family reached (one line each)."""

from __future__ import annotations

from typing import Any

import pytest

_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "::Test" in report.nodeid and report.nodeid.endswith("runTest"):
        family = report.nodeid.split("::Test")[1].split("::")[0].lower()
        _SECONDS[family] = _SECONDS.get(family, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from properties.test_device_machine import COMPLETED, REACHED, STARTED

    if not _SECONDS:
        return
    terminalreporter.section("Hypothesis families")
    for family, seconds in sorted(_SECONDS.items()):
        started = STARTED.get(family, 0)
        done = COMPLETED.get(family, 0)
        rate = done / seconds if seconds else 0.0
        found = len(REACHED.get(family, ()))
        terminalreporter.write_line(
            f"{family:8} {started:5} test cases, {done:5} run to the end "
            f"({100 * done / max(started, 1):.0f}%), {rate:5.1f} examples/s, "
            f"{found} known findings reached"
        )
