"""``otamodel manifest lint | db show | bootctl show`` (otamodel.cli.records)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otamodel.cli import main
from otamodel.formats import bootctl, otadb
from otamodel.formats import manifest as mf

DIGEST = "ab" * 32


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error"), result.stderr
    for needle in needles:
        assert needle in lines[0]
    assert result.stdout == ""


# -- manifest lint ----------------------------------------------------------------------------


def test_lint_clean(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(mf.make_manifest(2, "http://h/a.bin", DIGEST))
    result = run("manifest", "lint", path)
    assert result.exit_code == 0 and "no problems" in result.stdout
    result = run("manifest", "lint", path, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_lint_problems_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(mf.make_manifest(0, "ftp://h/a.bin", "xyz"))
    result = run("manifest", "lint", path)
    assert result.exit_code == 1
    assert (
        "error: $.ota[0].Version" in result.stdout and "3 problem(s), 3 error(s)" in result.stdout
    )
    result = run("manifest", "lint", path, "--json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)
    assert [p["path"] for p in problems] == ["$.ota[0].Version", "$.ota[0].URL", "$.ota[0].Digest"]
    assert {p["severity"] for p in problems} == {"error"}


def test_lint_malformed_json_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(b'{"ota": [')
    result = run("manifest", "lint", path, "--json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)
    assert "offset 9" in problem["message"]


def test_lint_unreadable_file_exit_2(tmp_path: Path) -> None:
    assert_one_line_error(run("manifest", "lint", tmp_path / "missing.json"), "missing.json")


# -- db show ----------------------------------------------------------------------------------


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    db = otadb.ImageDatabase((("name.bin", "FE", "2", "0x01", DIGEST), ("b.bin", "f8", "10")))
    path = tmp_path / "image_database.csv"
    path.write_bytes(otadb.serialize(db))
    return path


def test_db_show_table(db_file: Path) -> None:
    result = run("db", "show", db_file)
    assert result.exit_code == 0, result.stderr
    assert "name.bin" in result.stdout and DIGEST in result.stdout
    assert "16 (0x10)" in result.stdout and "VALID" in result.stdout


def test_db_show_json(db_file: Path) -> None:
    result = run("db", "show", db_file, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["total_imgs"] == 2
    second = data["rows"][1]
    assert (second["version"], second["version_written"], second["version_read"]) == ("10", 10, 16)
    assert second["status_read"] == 0xF8 and second["digest"] is None
    assert second["fields"] == ["b.bin", "f8", "10"]


def test_db_show_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "image_database.csv"
    path.write_bytes(b"")
    data = json.loads(run("db", "show", path, "--json").stdout)
    assert data["rows"][0]["fields"] == [""]


def test_db_show_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run("db", "show", tmp_path / "nope.csv"), "nope.csv")


# -- bootctl show -----------------------------------------------------------------------------


def test_bootctl_show_default_page(tmp_path: Path) -> None:
    path = tmp_path / "page.bin"
    path.write_bytes(bootctl.get_default_page())
    result = run("bootctl", "show", path)
    assert result.exit_code == 0
    assert "FACTORY_RESET" in result.stdout and "0xB0021000" in result.stdout
    info = json.loads(run("bootctl", "show", path, "--json").stdout)
    assert info["is_default_page"] and info["signature_byte"] == 0xF8
    assert info["status_name"] == "INVALID" and info["reserved"] == "all 0x00"


def test_bootctl_show_header(tmp_path: Path) -> None:
    header = bootctl.BootControlHeader(0xFC, 0, 0, 1, 4096, 16, 0xB0021000)
    path = tmp_path / "header.bin"
    path.write_bytes(header.pack())
    info = json.loads(run("bootctl", "show", path, "--json").stdout)
    assert (info["status_name"], info["type_name"], info["version"]) == (
        "UNBOOTED",
        "PRODUCTION",
        16,
    )
    assert "signature_byte" not in info
    assert "256-byte header" in run("bootctl", "show", path).stdout


def test_bootctl_show_blank_page(tmp_path: Path) -> None:
    path = tmp_path / "blank.bin"
    path.write_bytes(b"\xff" * 4096)
    info = json.loads(run("bootctl", "show", path, "--json").stdout)
    assert info["blank_prefix"] and info["status_name"] == "INVALID" and info["type_name"] == "0xFF"


@pytest.mark.parametrize("size", [0, 255, 4095, 8192])
def test_bootctl_show_wrong_size(tmp_path: Path, size: int) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(size))
    assert_one_line_error(run("bootctl", "show", path), f"is {size} bytes")
