"""The cost of findings: ``check(findings=True)`` against the same check without them.

Both runs explore the scenario exhaustively with the fewest-faults trace choice (``cost``);
the second also classifies every violation into findings (CHK-16..CHK-19). Runs alternate
(plain first, then classified first) and the medians of CPU seconds are compared.
Goal: under 1.3x on the default scenario.

    python bench/bench_findings.py [--scenario default] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from otamodel.checker import check
from otamodel.verify._properties import OtaModel


def timed(model: OtaModel, *, findings: bool) -> tuple[float, int]:
    started = time.process_time()
    report = check(model, cost=model.get_action_cost, findings=findings)
    return time.process_time() - started, len(report.findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    model = OtaModel(args.scenario)
    plain: list[float] = []
    classified: list[float] = []
    found = 0
    for round_ in range(args.repeat):
        order = (False, True) if round_ % 2 == 0 else (True, False)
        for findings in order:
            seconds, count = timed(model, findings=findings)
            (classified if findings else plain).append(seconds)
            found = max(found, count)
    a, b = statistics.median(plain), statistics.median(classified)
    print(f"scenario {args.scenario}: {found} findings")
    print(f"  check without findings: {a:6.2f} CPU s (median of {len(plain)})")
    print(f"  check with findings:    {b:6.2f} CPU s (median of {len(classified)})")
    print(f"  ratio: {b / a:.2f}x (goal < 1.3x)")


if __name__ == "__main__":
    main()
