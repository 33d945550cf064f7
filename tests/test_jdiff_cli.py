"""``otamodel patch apply|create|show``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from otamodel.cli import main
from otamodel.formats import jdiff


@pytest.fixture
def case24(vectors_dir: Path) -> Path:
    return vectors_dir / "jdiff" / "case24"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otamodel", "patch", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_apply_rebuilds_new(case24: Path, tmp_path: Path) -> None:
    out = tmp_path / "new.bin"
    result = CliRunner().invoke(
        main, ["patch", "apply", str(case24 / "old.bin"), str(case24 / "patch.jdf"), str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (case24 / "new.bin").read_bytes()
    assert "207800" in result.output


def test_create_then_apply(case24: Path, tmp_path: Path) -> None:
    patch = tmp_path / "p.jdf"
    runner = CliRunner()
    result = runner.invoke(
        main, ["patch", "create", str(case24 / "old.bin"), str(case24 / "new.bin"), str(patch)]
    )
    assert result.exit_code == 0, result.output
    assert len(patch.read_bytes()) <= len((case24 / "patch.jdf").read_bytes())
    out = tmp_path / "out.bin"
    result = runner.invoke(main, ["patch", "apply", str(case24 / "old.bin"), str(patch), str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (case24 / "new.bin").read_bytes()


def test_show_lists_ops_and_json(vectors_dir: Path) -> None:
    patch = vectors_dir / "jdiff" / "case17" / "patch.jdf"
    runner = CliRunner()
    result = runner.invoke(main, ["patch", "show", str(patch)])
    assert result.exit_code == 0, result.output
    assert "BKT" in result.output
    assert "7 ops" in result.output
    result = runner.invoke(main, ["patch", "show", str(patch), "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [item["op"] for item in listed] == ["MOD", "DEL", "EQL", "BKT", "EQL", "BKT", "EQL"]
    assert listed[0] == {
        "op": "MOD",
        "length": 1,
        "old_offset": 0,
        "new_offset": 0,
        "patch_offset": 0,
        "data": "4d",
    }


def test_dialect_and_lenient_options(vectors_dir: Path, tmp_path: Path) -> None:
    case = vectors_dir / "jdiff" / "case31"
    patch085 = tmp_path / "p085"
    patch085.write_bytes(bytes.fromhex("a7a307 78 a7a313"))
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["patch", "apply", str(case / "old.bin"), str(patch085), str(out)]
    result = runner.invoke(main, [*args, "--dialect", "085"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (case / "new.bin").read_bytes()
    result = runner.invoke(main, [*args, "--lenient"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b"Hello, World! This is a test"
    result = runner.invoke(main, ["patch", "show", "--dialect", "085", str(patch085)])
    assert result.exit_code == 0, result.output
    assert "MOD" in result.output


def test_apply_error_is_one_line_and_leaves_no_file(vectors_dir: Path, tmp_path: Path) -> None:
    case = vectors_dir / "jdiff" / "case31"
    bad = tmp_path / "bad.jdf"
    bad.write_bytes(bytes.fromhex("a7a307 78 a7a313"))  # 0.8.5 patch read as 0.7
    out = tmp_path / "out.bin"
    proc = run("apply", case / "old.bin", bad, out)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: {bad}: patch: at byte offset 3:")
    assert not out.exists()
    out.write_bytes(b"keep me")
    proc = run("apply", case / "old.bin", bad, out)
    assert proc.returncode == 2
    assert out.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jdf", "out.bin"]


def test_missing_input_is_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    proc = run("apply", tmp_path / "nope.bin", tmp_path / "nope.jdf", out)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "nope.bin" in proc.stderr
    assert not out.exists()
    proc = run("create", tmp_path / "nope.bin", tmp_path / "nope.bin", tmp_path / "p")
    assert proc.returncode == 2
    assert not (tmp_path / "p").exists()
    (tmp_path / "trunc.jdf").write_bytes(b"\xa7\xa3\xfd")
    proc = run("show", tmp_path / "trunc.jdf")
    assert proc.returncode == 2
    assert (
        proc.stderr
        == f"error: {tmp_path / 'trunc.jdf'}: patch: at byte offset 0: truncated length of EQL "
        "(patch ends inside it)\n"
    )


def test_cli_patch_is_what_the_library_writes(case24: Path, tmp_path: Path) -> None:
    patch = tmp_path / "p.jdf"
    proc = run("create", case24 / "old.bin", case24 / "new.bin", patch)
    assert proc.returncode == 0, proc.stderr
    old = (case24 / "old.bin").read_bytes()
    assert patch.read_bytes() == jdiff.encode(old, (case24 / "new.bin").read_bytes())
