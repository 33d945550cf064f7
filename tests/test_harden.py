"""Issue 17 / issue 14 "CLI hygiene": one regression test per reproducer (docs/spec/cli.md).

Every test is small and bounded in memory: the bounds under test stop the work long before it
would grow.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otamodel import _io
from otamodel.cli import main
from otamodel.errors import BoundError, OutputError
from otamodel.formats import hexfile as hx
from otamodel.formats import manifest as mf

DIGEST = "ab" * 32


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def run_process(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "otamodel", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        **kwargs,
    )


def one_line_error(result: Result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert ".tmp" not in lines[0]
    return lines[0]


def rec(kind: int, offset: int, data: bytes = b"") -> str:
    body = bytes([len(data), offset >> 8, offset & 0xFF, kind]) + data
    return ":" + (body + bytes([-sum(body) & 0xFF])).hex().upper()


EOF = ":00000001FF"


def hex_text(*lines: str, eof: bool = True) -> str:
    return "\n".join([*lines, *([EOF] if eof else [])]) + "\n"


IN_SLOT = hex_text(rec(4, 0, b"\x10\x02"), rec(0, 0, b"\x01\x02\x03\x04"))


# -- the output layer (IO-1 .. IO-7) -----------------------------------------------------------


def test_new_file_gets_the_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        _io.write_output(tmp_path / "a", b"x")
        assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o644
        (tmp_path / "b").write_bytes(b"old")
        os.chmod(tmp_path / "b", 0o640)
        _io.write_output(tmp_path / "b", b"new")
        assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o640
        assert (tmp_path / "b").read_bytes() == b"new"
    finally:
        os.umask(old)


def test_symlink_to_a_device_is_written_through_not_replaced(tmp_path: Path) -> None:
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    manifest = tmp_path / "m.json"
    manifest.write_bytes(mf.make_manifest(2, "http://h/a.bin", DIGEST))
    result = run("manifest", "lint", manifest, "--json", link)
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "null"]


def test_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    _io.write_output(fifo, b"hello")
    reader.join(10)
    assert got == [b"hello"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_symlink_to_a_regular_file_stays_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"old")
    (tmp_path / "link").symlink_to("real")
    _io.write_output(tmp_path / "link", b"new")
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "real").read_bytes() == b"new"


def test_dash_is_stdout(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_bytes(mf.make_manifest(2, "http://h/a.bin", DIGEST))
    result = run("manifest", "lint", manifest, "--json", "-")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert not (tmp_path / "-").exists()


def test_child_paths_stay_inside_the_directory(tmp_path: Path) -> None:
    for name in ("../x", "/etc/passwd", "..", "a/../../b", "\x00\n", ".hidden"):
        child = _io.get_child_path(tmp_path, name, ".json")
        assert child.parent == tmp_path, (name, child)
        assert not child.name.startswith(".")


def test_output_set_commits_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"old a")
    (tmp_path / "b").mkdir()  # cannot be replaced by a file
    with pytest.raises(OutputError, match="is a directory"), _io.OutputSet() as out:
        out.add(tmp_path / "a", b"new a")
        out.add(tmp_path / "b", b"new b")
        out.commit()
    assert (tmp_path / "a").read_bytes() == b"old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_failed_write_names_the_target_not_the_temporary(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: a read-only directory is writable")
        with pytest.raises(OutputError) as err:
            _io.write_output(folder / "x.bin", b"x")
        assert str(folder / "x.bin") in str(err.value) and ".tmp" not in str(err.value)
    finally:
        os.chmod(folder, 0o700)


def test_keygen_force_keeps_the_old_private_key_when_the_public_fails(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    key.write_bytes(b"OLD PRIVATE")
    (tmp_path / "k.pub").mkdir()
    result = run("keygen", key, "--force")
    one_line_error(result, 2, "k.pub")
    assert key.read_bytes() == b"OLD PRIVATE"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key", "k.pub"]


def test_keygen_modes_and_empty_name(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert run("keygen", tmp_path / "k.key").exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k.pub").stat().st_mode) == 0o644
    one_line_error(run("keygen", ""), 2, "not a file name")


def test_sigterm_removes_the_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"")
    (tmp_path / "p").write_bytes(bytes.fromhex("a7a3 fe 40 00 00 00"))  # EQL of 1 GiB
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otamodel",
            "patch",
            "apply",
            "--lenient",
            "--max-size",
            str(1 << 31),
            tmp_path / "old",
            tmp_path / "p",
            tmp_path / "out",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143
    finally:
        proc.kill()
        proc.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "p"]


def test_sigint_exits_130_and_cleans_up(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"")
    (tmp_path / "p").write_bytes(bytes.fromhex("a7a3 fe 40 00 00 00"))  # EQL of 1 GiB
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "otamodel",
            "patch",
            "apply",
            "--lenient",
            "--max-size",
            str(1 << 31),
            tmp_path / "old",
            tmp_path / "p",
            tmp_path / "out",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "p"]


def test_closed_pipe_exit_status_is_141(tmp_path: Path) -> None:
    """``| head``: no traceback, no "Broken pipe" message, the status of a SIGPIPE death."""
    ops = tmp_path / "ops"
    ops.write_bytes(b"".join(bytes.fromhex("a7a3 01 a7a5 01") for _ in range(20_000)))
    script = (
        f"{sys.executable} -m otamodel patch show --lenient {ops} | head -n 1 >/dev/null; "
        "echo ${PIPESTATUS[0]}"
    )
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.stdout.strip() == "141", (proc.stdout, proc.stderr)
    assert proc.stderr == ""


# -- check --traces / --json (IO-4, IO-5) --------------------------------------------------------


SMALL_SCENARIO = 'name = "{name}"\n[budget]\npower_cut = 0\n'


def test_check_traces_stay_inside_the_directory(tmp_path: Path) -> None:
    scenario = tmp_path / "evil.toml"
    scenario.write_text(SMALL_SCENARIO.format(name="../../escaped"))
    traces = tmp_path / "deep" / "traces"
    result = run("check", "--scenario", scenario, "-q", "--traces", traces, "--max-states", "50")
    assert result.exit_code in (0, 1), result.stderr
    inside = {p.name for p in traces.iterdir()}
    # one file per finding, named by its ID, whatever the scenario's name says
    assert inside and all(re.fullmatch(r"[A-Z]+-[0-9a-f]{4,8}\.json", name) for name in inside)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "evil.toml"]


def test_check_json_untouched_when_traces_fail(tmp_path: Path) -> None:
    out = tmp_path / "verdicts.json"
    out.write_text("keep")
    blocker = tmp_path / "traces"
    blocker.write_text("a file, not a directory")
    result = run(
        "check",
        "--scenario",
        "erase",
        "-q",
        "--max-states",
        "50",
        "--json",
        out,
        "--traces",
        blocker,
    )
    assert result.exit_code == 2
    assert out.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traces", "verdicts.json"]


# -- bounds (BOUND-*) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "patch",
    ["a7a3 fe ff ff ff ff", "a7a3 ff 00 00 00 0b 00 00 00 00"],  # 7 B -> 4 GiB, 11 B -> 47 GB
)
def test_lenient_patch_output_is_bounded(tmp_path: Path, patch: str) -> None:
    (tmp_path / "old").write_bytes(b"")
    (tmp_path / "p").write_bytes(bytes.fromhex(patch))
    result = run("patch", "apply", "--lenient", tmp_path / "old", tmp_path / "p", tmp_path / "o")
    line = one_line_error(result, 3, "--max-size", str(tmp_path / "p"))
    assert "913408" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "p"]


def test_strict_patch_output_is_bounded(tmp_path: Path) -> None:
    old = bytes(range(256)) * 4096  # 1 MiB
    (tmp_path / "old").write_bytes(old)
    # EQL the whole file, BKT back to 0, again and again: a 2 KB patch for 154 MB.
    lap = bytes.fromhex("a7a3 fe 00 0f ff fc a7a6 fe 00 0f ff fc")
    (tmp_path / "p").write_bytes(lap * 150)
    result = run("patch", "apply", tmp_path / "old", tmp_path / "p", tmp_path / "o")
    one_line_error(result, 3, "--max-size")
    assert not (tmp_path / "o").exists()


def test_huge_manifest_lint_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b'{"ota": [' + b"{}," * 400_000 + b"{}]}")
    result = run("manifest", "lint", path)
    assert result.exit_code == 3
    assert result.stdout.count("\n") == 1 and "1990" in result.stdout
    assert "--max-bytes" in result.stderr and result.stderr.count("\n") == 1


def test_many_ignored_manifest_elements_are_one_line(tmp_path: Path) -> None:
    entry = json.loads(mf.make_manifest(2, "http://h/a.bin", DIGEST))["ota"][0]
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"ota": [entry] * 300}))
    result = run("manifest", "lint", path)
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) <= 4
    assert "299 elements ignored" in result.stdout


def test_hexmerge_is_not_quadratic(tmp_path: Path) -> None:
    record = rec(0, 0x100, bytes(range(16)))
    path = tmp_path / "a.hex"
    path.write_text(hex_text(*[record] * 20_000))
    result = run("hexmerge", path, path, "-o", tmp_path / "out.hex")
    assert result.exit_code == 0, result.stderr
    image = hx.load_hex((tmp_path / "out.hex").read_text())
    assert image.segments == ((0x100, bytes(range(16))),)


def test_hexmerge_conflict_names_both_records() -> None:
    a = hex_text(rec(0, 0, b"\x01\x02\x03\x04"))
    b = hex_text(rec(0, 2, b"\x03\x09"))
    with pytest.raises(hx.HexFileError, match=r"0x04 from a line 1, 0x09 from b line 1"):
        hx.merge_hex(a, b, names=["a", "b"])


def test_hex_record_count_is_bounded() -> None:
    with pytest.raises(BoundError, match="--max-records"):
        hx.parse_records(hex_text(*[rec(0, 0, b"\x01")] * 11), max_records=10)


def test_hex2bin_window_is_bounded(tmp_path: Path) -> None:
    source = tmp_path / "a.hex"
    source.write_text(IN_SLOT)
    result = run("hex2bin", "-i", source, "-s", "0", "-z", "FFFFFFFF")
    one_line_error(result, 3, "--max-window")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.hex"]


def test_hex2bin_force_and_empty_slot(tmp_path: Path) -> None:
    source = tmp_path / "a.hex"
    source.write_text(IN_SLOT)
    out = tmp_path / "a.bin"
    assert run("hex2bin", "-i", source).exit_code == 0
    first = out.read_bytes()
    one_line_error(run("hex2bin", "-i", source), 2, "--force")
    assert run("hex2bin", "-i", source, "--force").exit_code == 0
    assert out.read_bytes() == first
    outside = tmp_path / "b.hex"
    outside.write_text(hex_text(rec(4, 0, b"\x1f\xc0"), rec(0, 0, b"\x01")))
    one_line_error(run("hex2bin", "-i", outside), 2, "no data record inside the window")
    assert not (tmp_path / "b.bin").exists()


def test_hex_without_eof_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "a.hex"
    source.write_text(hex_text(rec(4, 0, b"\x10\x02"), rec(0, 0, b"\x01"), eof=False))
    one_line_error(run("hex2bin", "-i", source), 2, "end-of-file", str(source))


def test_db_version_of_5000_digits(tmp_path: Path) -> None:
    path = tmp_path / "db.csv"
    path.write_text("img0,0xFF," + "9" * 5000 + ",1,00\n")
    result = run("db", "show", path, "--json")
    assert result.exit_code in (0, 2), result.stderr
    assert "Traceback" not in result.output
    if result.exit_code == 0:  # the field is longer than the device's read buffer
        row = json.loads(result.stdout)["rows"][0]
        assert row["version_written"] is None


def _scenario(tmp_path: Path, text: str, suffix: str = ".toml") -> Path:
    path = tmp_path / f"s{suffix}"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "suffix", "code", "needle"),
    [
        ("[budget]\npower_cut = 1000000000000000000\n", ".toml", 3, "--max-budget"),
        ("[budget]\npower_cut = -1\n", ".toml", 2, "budget.power_cut"),
        ("releases = [{version = -1}]\n", ".toml", 2, "releases[0].version"),
        ("releases = [{version = 1099511627776}]\n", ".toml", 2, "releases[0].version"),
        ("factory_version = -5\n", ".toml", 2, "factory_version"),
        (
            "geometry = { page_size = 1073741824, row_size = 128, slot_pages = 4 }\n",
            ".toml",
            3,
            "--max-page-size",
        ),
        (
            "geometry = { page_size = 4096, row_size = 128, slot_pages = 1073741824 }\n",
            ".toml",
            3,
            "--max-slot-bytes",
        ),
        (
            "geometry = { page_size = 256, row_size = 0, slot_pages = 4 }\n",
            ".toml",
            2,
            "geometry.row_size",
        ),
        ("[1, 2]", ".json", 2, "table/object"),
        ("x = " + "[" * 500 + "]" * 500 + "\n", ".toml", 3, "--max-depth"),
        ('{"x": ' + "[" * 1000 + "]" * 1000 + "}", ".json", 3, "--max-depth"),
        ("\xff\xfe", ".toml", 2, "UTF-8"),
        ("name = ", ".toml", 2, "not TOML"),
        ('{"name": ', ".json", 2, "line 1 column"),
    ],
)
def test_bad_scenario_files(tmp_path: Path, text: str, suffix: str, code: int, needle: str) -> None:
    path = tmp_path / f"s{suffix}"
    path.write_bytes(text.encode("latin-1"))
    one_line_error(run("check", "--scenario", path, "-q"), code, needle)


def test_deep_trace_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"format": "otamodel-trace/1", "actions": ' + "[" * 1000 + "]" * 1000 + "}")
    one_line_error(run("replay", path), 3, "--max-depth")


def test_trace_from_another_scenario(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(
        json.dumps(
            {
                "format": "otamodel-trace/1",
                "scenario": "erase",
                "scenario_source": {"name": "default"},
                "actions": ["tick"],
            }
        )
    )
    one_line_error(run("replay", path), 2, "$.scenario")


def test_non_utf8_actions_file(tmp_path: Path) -> None:
    path = tmp_path / "actions.txt"
    path.write_bytes(b"tick\n\xff\xfe\n")
    one_line_error(run("simulate", "--actions", path), 2, str(path), "byte offset 5")


# -- CLI hygiene (CLI-*) ---------------------------------------------------------------------------


def test_usage_errors_are_one_line() -> None:
    one_line_error(run("check", "--variant", "harmony-9"), 2, "harmony-9")
    one_line_error(run("hex2bin"), 2, "--input")
    one_line_error(run("nosuchcommand"), 2, "nosuchcommand")


def test_help_lists_the_real_choices() -> None:
    from otamodel.env import get_scenario_names
    from otamodel.model import Variant

    text = run("check", "--help").stdout.replace("\n", " ")
    for variant in Variant:
        assert variant.value in text
    for name in get_scenario_names():
        assert name in text


def test_json_everywhere_takes_a_file(tmp_path: Path) -> None:
    source = tmp_path / "a.hex"
    source.write_text(IN_SLOT)
    summary = tmp_path / "s.json"
    result = run("hex2bin", "-i", source, "--json", summary)
    assert result.exit_code == 0, result.stderr
    assert json.loads(summary.read_text())["placed_records"] == 1


def test_link_to_dev_stdout_with_stdout_in_a_file(tmp_path: Path) -> None:
    """``--json LINK`` where LINK -> /dev/stdout and stdout is a regular file: the JSON goes
    into that file through the descriptor; neither the link nor the file is replaced."""
    manifest = tmp_path / "m.json"
    manifest.write_bytes(mf.make_manifest(2, "http://h/a.bin", DIGEST))
    link = tmp_path / "out"
    link.symlink_to("/dev/stdout")
    captured = tmp_path / "captured.txt"
    with captured.open("wb") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "otamodel",
                "manifest",
                "lint",
                str(manifest),
                "--json",
                str(link),
            ],
            stdout=handle,
            stderr=subprocess.PIPE,
            check=False,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == "/dev/stdout"
    assert captured.stat().st_ino == inode
    assert json.loads(captured.read_text()) == []


def test_patch_bound_default_is_the_device_slot() -> None:
    from otamodel.cli.patch import DEFAULT_MAX_SIZE
    from otamodel.model import REAL_GEOMETRY

    assert REAL_GEOMETRY.slot_size == DEFAULT_MAX_SIZE


def test_bare_group_prints_its_help() -> None:
    result = run("manifest")
    assert result.exit_code == 0 and "lint" in result.stdout


def test_large_budget_is_warned_with_an_estimate(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[budget]\npower_cut = 4\ntransfer_fail = 3\n")
    result = run("check", "--scenario", path, "-q", "--max-states", "10")
    assert result.exit_code == 3, result.stderr  # bounded, no finding yet (check --help)
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert len(warning) == 1 and "estimated" in warning[0] and "states with 7" in warning[0]


class _SlowCounter:
    """A line of states whose every expansion takes one tick of a fake clock."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock

    def init_states(self) -> list[int]:
        return [0]

    def actions(self, state: int) -> list[str]:
        self.clock[0] += 1.0  # one slow expansion
        return ["inc"]

    def next_state(self, state: int, action: str) -> int | None:
        return state + 1

    def properties(self) -> list[object]:
        from otamodel.checker import Property

        return [Property.always("small", lambda s: s < 10**9)]


def test_time_limit_is_honoured_with_slow_expansions(monkeypatch: pytest.MonkeyPatch) -> None:
    """BOUND-8 with a fake clock: the clock is read before every expansion and the search
    stops at 75 % of the limit, so a 1-second expansion cannot overrun a 10-second limit."""
    from otamodel.checker import _checker, _search, check

    clock = [0.0]
    monkeypatch.setattr(_search.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(_checker.time, "perf_counter", lambda: clock[0])
    report = check(_SlowCounter(clock), time_limit=10.0)  # type: ignore[arg-type]
    assert report.stop_reason.value == "time-limit"
    assert report.seconds <= 10.0 * 1.1
    assert report.unique_states <= 10


def test_output_set_restores_when_a_rename_fails(tmp_path: Path) -> None:
    """IO-5: the second rename fails after the first succeeded: the first file is put back."""
    (tmp_path / "a").write_bytes(b"old a")
    with _io.OutputSet() as out:
        out.add(tmp_path / "a", b"new a")
        out.add(tmp_path / "b", b"new b")
        (tmp_path / "b").mkdir()  # appears between staging and the renames
        (tmp_path / "b" / "x").write_bytes(b"")
        with pytest.raises(OutputError, match="cannot write"):
            out.commit()
    assert (tmp_path / "a").read_bytes() == b"old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_shipped_scenarios_are_within_the_bounds() -> None:
    from otamodel._limits import read_document
    from otamodel.errors import ScenarioError

    folder = Path(__file__).resolve().parent.parent / "otamodel" / "scenarios"
    for path in sorted(folder.glob("*.toml")):
        from otamodel._limits import check_scenario_spec

        check_scenario_spec(read_document(path, ScenarioError), str(path), ScenarioError)


def test_release_lint_of_an_unparseable_url(tmp_path: Path) -> None:
    """Found by the fuzz suite: ``urlsplit`` raises on ``http://[h/a.bin`` (exit 70 before)."""
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "ota.json").write_bytes(mf.make_manifest(2, "http://[h/a.bin", DIGEST))
    result = run("release", "lint", folder, "--json")
    assert result.exit_code == 1, result.stderr
    # REL-22: a hand-written manifest without "EraseVer": false is warned about too
    assert [p["rule"] for p in json.loads(result.stdout)] == ["REL-22", "REL-11"]
