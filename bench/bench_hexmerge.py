"""Benchmark: ``hexmerge`` scales as n log n in overlapping records (issue 17, BOUND-4).

Run ``python bench/bench_hexmerge.py``. For n = 5,000 .. 40,000 identical 16-byte records (the
worst case of the old sweep, which compared every record with every earlier overlapping one:
20,000 records took 283 s) it times :func:`otamodel.formats.hexfile.merge_hex` of the file with
itself, and as the independent baseline ``bytes.fromhex`` of every record line (what any
reader of the file must at least do). Timings are medians of ``--repeat`` runs with the two in
alternating order; the table shows the ratio merge/baseline for each n and how the merge time
grows when n doubles (2.0-2.3 for n log n, 4 for quadratic).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from otamodel.formats.hexfile import merge_hex


def _record(offset: int, data: bytes) -> str:
    body = bytes([len(data), offset >> 8, offset & 0xFF, 0]) + data
    return ":" + (body + bytes([-sum(body) & 0xFF])).hex().upper()


def make_text(n: int) -> str:
    return "\n".join([_record(0x100, bytes(range(16)))] * n + [":00000001FF"]) + "\n"


def baseline(text: str) -> int:
    return sum(len(bytes.fromhex(line[1:])) for line in text.splitlines())


def _time(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'records':>8} {'merge s':>9} {'base s':>9} {'ratio':>7} {'growth':>7}")
    previous = None
    for n in (5_000, 10_000, 20_000, 40_000):
        text = make_text(n)
        merges: list[float] = []
        bases: list[float] = []
        jobs: list[tuple[list[float], Callable[[], object]]] = [
            (merges, lambda t=text: merge_hex(t, t)),  # type: ignore[misc]
            (bases, lambda t=text: baseline(t)),  # type: ignore[misc]
        ]
        for i in range(args.repeat):
            for times, job in jobs if i % 2 == 0 else reversed(jobs):
                times.append(_time(job))
        merge, base = statistics.median(merges), statistics.median(bases)
        growth = "" if previous is None else f"{merge / previous:7.2f}"
        print(f"{n:8d} {merge:9.4f} {base:9.4f} {merge / base:7.1f} {growth:>7}")
        previous = merge
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
