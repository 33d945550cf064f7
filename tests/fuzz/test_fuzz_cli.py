"""Fuzz the command line: for every mutated input file the command ends with a documented
status (0, 1, 2, 3), one error line at most, and never a traceback (issue 17)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otamodel.cli import main
from tests.fuzz import _seeds
from tests.fuzz._harness import COUNTS, CRASHES, SECONDS, inputs

_TOLERANT = settings(suppress_health_check=list(HealthCheck))
_STATUSES = {0, 1, 2, 3}


def _cli(name: str, data: bytes, suffix: str, args: Callable[[Path, Path], list[str]]) -> None:
    import time

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path = root / f"input{suffix}"
        path.write_bytes(data)
        COUNTS[name] += 1
        started = time.perf_counter()
        result = CliRunner().invoke(main, args(path, root))
        SECONDS[name] += time.perf_counter() - started
        ok = (
            result.exit_code in _STATUSES
            and (result.exception is None or isinstance(result.exception, SystemExit))
            and "Traceback" not in result.output
            and len([ln for ln in result.stderr.splitlines() if ln.startswith("error")]) <= 1
        )
        if not ok:
            CRASHES[name] += 1
        assert ok, (result.exit_code, result.output, result.exception)
        leftovers = [p.name for p in root.iterdir() if p.name.endswith(".tmp")]
        assert not leftovers, leftovers


@_TOLERANT
@given(inputs(_seeds.manifests(), 4096))
def test_cli_manifest_lint(data: bytes) -> None:
    _cli("cli.manifest-lint", data, ".json", lambda p, r: ["manifest", "lint", str(p), "--json"])


@_TOLERANT
@given(inputs(_seeds.databases(), 4096))
def test_cli_db_show(data: bytes) -> None:
    _cli("cli.db-show", data, ".csv", lambda p, r: ["db", "show", str(p)])


@_TOLERANT
@given(inputs(_seeds.bootctl_pages(), 8192))
def test_cli_bootctl_show(data: bytes) -> None:
    _cli("cli.bootctl-show", data, ".bin", lambda p, r: ["bootctl", "show", str(p)])


@_TOLERANT
@given(inputs(_seeds.patches(), 4096), st.booleans())
def test_cli_patch(data: bytes, lenient: bool) -> None:
    def args(path: Path, root: Path) -> list[str]:
        (root / "old").write_bytes(_seeds.OLD_FILE)
        flags = ["--lenient"] if lenient else []
        return [
            "patch",
            "apply",
            *flags,
            "--max-size",
            "65536",
            str(root / "old"),
            str(path),
            str(root / "new"),
        ]

    _cli("cli.patch-apply", data, ".jdf", args)
    _cli("cli.patch-show", data, ".jdf", lambda p, r: ["patch", "show", str(p), "--lenient"])


@_TOLERANT
@given(inputs(_seeds.hex_files(), 8192))
def test_cli_hex(data: bytes) -> None:
    _cli(
        "cli.hex2bin",
        data,
        ".hex",
        lambda p, r: ["hex2bin", "-i", str(p), "-o", str(r / "o.bin"), "-z", "10000"],
    )
    _cli(
        "cli.hexmerge",
        data,
        ".hex",
        lambda p, r: ["hexmerge", str(p), str(p), "-o", str(r / "o.hex")],
    )


@_TOLERANT
@given(inputs(_seeds.signatures(), 256), inputs(_seeds.keys(), 2048))
def test_cli_verify(sig: bytes, key: bytes) -> None:
    def args(path: Path, root: Path) -> list[str]:
        (root / "data").write_bytes(b"data")
        return [
            "verify",
            "-k",
            str(path),
            "-s",
            sig.decode("latin-1").replace("\0", ""),
            str(root / "data"),
        ]

    _cli("cli.verify", key, ".pem", args)


@_TOLERANT
@given(inputs(_seeds.traces(), 8192))
def test_cli_replay(data: bytes) -> None:
    _cli("cli.replay", data, ".json", lambda p, r: ["replay", str(p)])


@_TOLERANT
@given(inputs(_seeds.actions_files(), 1024))
def test_cli_simulate_actions(data: bytes) -> None:
    _cli("cli.simulate", data, ".txt", lambda p, r: ["simulate", "--actions", str(p)])


@_TOLERANT
@given(inputs(_seeds.scenarios(), 4096), st.sampled_from([".toml", ".json"]))
def test_cli_check_scenario(data: bytes, suffix: str) -> None:
    _cli(
        "cli.check",
        data,
        suffix,
        lambda p, r: ["check", "--scenario", str(p), "-q", "--max-states", "30"],
    )


@_TOLERANT
@given(inputs(_seeds.manifests(), 4096))
def test_cli_release_lint(data: bytes) -> None:
    def args(path: Path, root: Path) -> list[str]:
        folder = root / "release"
        folder.mkdir()
        path.rename(folder / "ota.json")
        (folder / "a.bin").write_bytes(b"image")
        return ["release", "lint", str(folder), "--json"]

    _cli("cli.release-lint", data, ".json", args)
