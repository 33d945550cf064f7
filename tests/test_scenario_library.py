"""The scenario library (SCN-8): every shipped scenario is checked exhaustively, its state count
and the properties it violates are pinned; and ``otamodel sweep`` (SCN-9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from otamodel.checker import check
from otamodel.cli import main
from otamodel.cli.sweep import apply_params, parse_param, run_sweep
from otamodel.env import get_scenario, get_scenario_names
from otamodel.errors import ScenarioError
from otamodel.verify._properties import OtaModel

# name -> (unique states, the properties the check reports failing). ``default`` is pinned in
# test_model_check.py (it takes ~20 s).
LIBRARY: dict[str, tuple[int, frozenset[str]]] = {
    "tear-bits": (
        1968,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "patch-base-digest-upper": (705, frozenset({"flash-physics", "patch-update", "progress"})),
    "url-factory-sign-name": (
        12572,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "enforce-tls": (275, frozenset({"flash-physics", "progress"})),
    "attacker": (34549, frozenset({"flash-physics", "progress"})),
    "attacker-patch": (4381, frozenset({"flash-physics", "progress"})),
    "autoreset-off": (853, frozenset({"flash-physics", "progress", "store-consistency"})),
    "autoupdate-off": (354, frozenset({"flash-physics", "progress"})),
    "bare-metal": (
        2203,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "compiled-version-mismatch": (
        4584,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "console": (911, frozenset({"flash-physics", "progress"})),
    "erase": (3023, frozenset({"flash-physics", "progress"})),
    "factory-version-0": (
        1973,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "factory-version-255": (
        4125,
        frozenset(
            {"flash-physics", "no-brick", "no-stuck-service", "progress", "store-consistency"}
        ),
    ),
    "fail-boot": (
        1395,
        frozenset(
            {"flash-physics", "no-brick", "no-stuck-service", "progress", "store-consistency"}
        ),
    ),
    "fs-durable-at-close": (
        2023,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "fs-mount-damaged": (
        1976,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "fs-open-handles": (521, frozenset({"flash-physics", "progress"})),
    "fs-preload": (191, frozenset({"flash-physics"})),
    "image-oversize": (201, frozenset({"flash-physics"})),
    "image-tiny": (69, frozenset({"flash-physics", "full-update", "progress"})),
    "json-limit": (479, frozenset({"flash-physics", "progress"})),
    "manifest-over-limit": (479, frozenset({"flash-physics", "progress"})),
    "manifest-url-upper": (48, frozenset({"flash-physics", "full-update", "progress"})),
    "mitm": (1003, frozenset({"flash-physics", "progress"})),
    "mitm-secure": (990, frozenset({"flash-physics", "no-brick", "no-stuck-service", "progress"})),
    "num-imgs-0": (706, frozenset({"flash-physics", "progress"})),
    "num-imgs-1": (
        7448,
        frozenset(
            {
                "flash-physics",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "num-imgs-5": (4377, frozenset({"flash-physics", "progress"})),
    "patch": (
        6877,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "patch-update",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "periodic-off": (
        1951,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "relabel-signed": (1139, frozenset({"flash-physics", "progress", "store-consistency"})),
    "rollback": (
        74473,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "same-version-builds": (
        6676,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "secure": (
        42735,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "secure-patch": (
        405,
        frozenset(
            {
                "flash-physics",
                "full-update",
                "no-brick",
                "no-stuck-service",
                "patch-update",
                "progress",
            }
        ),
    ),
    "server-freeze": (6461, frozenset({"flash-physics", "progress"})),
    "set-parameters": (1058, frozenset({"flash-physics", "progress"})),
    "tamper": (
        2525,
        frozenset(
            {
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "tamper-secure": (
        12890,
        frozenset(
            {
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "url-factory-name": (
        1692,
        frozenset(
            {
                "factory-restore",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "url-long": (491, frozenset({"flash-physics", "progress"})),
    "url-same-name": (
        8714,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "url-upper-scheme": (
        206,
        frozenset({"factory-restore", "flash-physics", "full-update", "progress"}),
    ),
    "version-2-digits": (
        8394,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "version-3-digits": (
        1947,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "version-4-digits": (
        4125,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
}


def test_the_library_is_pinned() -> None:
    assert set(get_scenario_names()) - {"default"} == set(LIBRARY)


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_library_scenario(name: str) -> None:
    report = check(OtaModel(get_scenario(name)), time_limit=120)
    assert report.is_complete
    states, failing = LIBRARY[name]
    assert report.unique_states == states
    assert {r.name for r in report.results if r.is_failing} == failing


def test_parse_param_aliases_and_values() -> None:
    param = parse_param("NUM_IMGS=1,2,0x3")
    assert param.path == ("config", "num_imgs") and param.values == (1, 2, 3)
    param = parse_param("autoreset=on,off")
    assert param.path == ("config", "autoreset") and param.values == (True, False)
    param = parse_param("releases[0].version=2,three")
    assert param.path == ("releases", 0, "version") and param.values == (2, "three")


def test_apply_params_copies_and_refuses_missing_items() -> None:
    source = {"releases": [{"version": 2}]}
    spec = apply_params(source, [(parse_param("releases[0].version=5"), 5)])
    assert spec["releases"][0]["version"] == 5 and source["releases"][0]["version"] == 2
    with pytest.raises(ScenarioError, match="no item 3"):
        apply_params(source, [(parse_param("releases[3].version=5"), 5)])


def test_sweep_dedups_and_says_what_each_finding_needs() -> None:
    source = dict(get_scenario("autoreset-off").source)
    params = [parse_param("autoreset=on,off"), parse_param("NUM_IMGS=1,9")]
    lines: list[str] = []
    runs, findings = run_sweep(source, params, max_states=None, time_limit=60, echo=lines.append)
    assert len(runs) == 4 and sum("error" in r for r in runs) == 2  # NUM_IMGS=9 is refused
    assert any("NUM_IMGS=9" in line and "out of range" in line for line in lines)
    on = next(r for r in runs if r["params"] == {"autoreset": True, "NUM_IMGS": 1})
    off = next(r for r in runs if r["params"] == {"autoreset": False, "NUM_IMGS": 1})
    assert on["states"] != off["states"]
    for finding in findings.values():
        assert finding.runs and finding.key.startswith(finding.prop)
    assert len(findings) >= len(set(on["findings"]) | set(off["findings"])) > 0


def test_sweep_cli(tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    result = CliRunner().invoke(
        main,
        ["sweep", "--scenario", "periodic-off", "--param", "autoreset=on,off", "--json", str(out)],
    )
    assert result.exit_code == 1, result.output
    assert "2 of 2 combinations checked" in result.output
    doc = json.loads(out.read_text())
    assert len(doc["runs"]) == 2 and doc["findings"]
    assert all("needs" in f for f in doc["findings"])
    bad = CliRunner().invoke(main, ["sweep", "--param", "nonsense"])
    assert bad.exit_code == 2


def test_scenarios_command_lists_the_library_and_the_schema() -> None:
    result = CliRunner().invoke(main, ["scenarios"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == len(get_scenario_names())
    assert any(line.startswith("tamper: ") for line in lines)
    schema = CliRunner().invoke(main, ["scenarios", "--schema"])
    assert schema.exit_code == 0 and json.loads(schema.output)["title"] == "otamodel scenario"
