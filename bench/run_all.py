"""Run every benchmark script in this folder (``tox -e bench``); each prints its own ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_checker.py",
    "bench_ota.py",
    "bench_storage.py",
    "bench_jdiff.py",
    "bench_release.py",
    "bench_hexmerge.py",
    "bench_findings.py",
    "bench_machines.py",
]


def main() -> int:
    failed = 0
    for name in SCRIPTS:
        print(f"== {name}", flush=True)
        failed += subprocess.call([sys.executable, str(HERE / name)]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
