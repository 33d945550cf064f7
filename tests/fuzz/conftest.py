"""The fuzz suite's summary: inputs per target, crashes, seconds and peak memory."""

from __future__ import annotations

import resource
from typing import Any

from tests.fuzz._harness import COUNTS, CRASHES, SECONDS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not COUNTS:
        return
    write = terminalreporter.write_line
    write("fuzz targets: inputs, crashes, seconds")
    for name in sorted(COUNTS):
        write(f"  {name:22} {COUNTS[name]:8d} {CRASHES[name]:4d} {SECONDS[name]:8.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write(
        f"  total inputs {sum(COUNTS.values())}, crashes {sum(CRASHES.values())}, "
        f"peak RSS {peak:.0f} MiB"
    )
