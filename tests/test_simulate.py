"""``otamodel simulate`` with compact scripts and ``--until`` (ENV-20, ENV-21)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otamodel.cli import main
from otamodel.env import format_actions, parse_actions, parse_until
from otamodel.errors import TraceError
from otamodel.model import Action


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_compact_form_round_trips() -> None:
    actions = [Action("tick")] * 29 + [Action("timer")] + [Action("tick")] * 95
    actions += [Action("power_cut"), Action("ctrl", "rollback"), Action("publish", "1")]
    text = format_actions(actions)
    assert text == "tick*29, timer, tick*95, power_cut, ctrl(rollback), publish(1)"
    assert parse_actions(text) == actions
    assert parse_actions("tick\n# a comment\ntick * 2 # more\n\n") == [Action("tick")] * 3
    assert format_actions([]) == ""


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("tick, jump", "item 2: unknown action 'jump'"),
        ("tick*0", "repeat count"),
        ("tick*x", "cannot read"),
        ("ctrl(reboot)", "unknown control message"),
        ("publish(x)", "release index"),
        ("tick,,timer", "empty item"),
        ("tick\nfoo(", "script:2"),
    ],
)
def test_bad_scripts_name_the_item(text: str, needle: str) -> None:
    with pytest.raises(TraceError, match=needle.replace("(", r"\(")):
        parse_actions(text)


def test_until_forms() -> None:
    assert parse_until("state:DOWNLOAD_IMAGE").description == "a machine is in DOWNLOAD_IMAGE"
    for bad in ("state:NOPE", "later", "version:x", "app-runs:3"):
        with pytest.raises(TraceError):
            parse_until(bad)


def test_simulate_until_the_bootloader_programs() -> None:
    result = run("simulate", "--until", "bootloader-programs")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == "script: tick*28, timer, tick*74"
    assert "NVM program page 1 row 0" in result.stdout.splitlines()[-4]


def test_simulate_script_with_variant_and_until() -> None:
    script = "tick*28, timer, tick*39, power_cut_torn, tick*14"
    result = run("simulate", "--variant", "hardened", "--script", script, "--until", "app-runs")
    assert result.exit_code == 0, result.output
    assert "(hardened)" in result.stdout.splitlines()[0]
    assert result.stdout.splitlines()[-1] == "script: tick*17"


def test_simulate_reads_a_script_file(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    path.write_text("tick*28\ntimer\n", encoding="utf-8")
    result = run("simulate", "--actions", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "script: tick*28, timer"


def test_simulate_errors() -> None:
    result = run("simulate", "--script", "tick*3, blah")
    assert result.exit_code == 2 and "--script:1, item 2" in result.stderr
    result = run("simulate", "--until", "version:7", "--steps", "50")
    assert result.exit_code == 1 and "did not happen" in result.stderr
    result = run("simulate", "--script", "timer")
    assert result.exit_code == 1 and "refused" in result.stderr
    assert run("simulate", "--variant", "nope").exit_code == 2
