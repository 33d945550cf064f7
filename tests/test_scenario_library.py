"""The scenario library (SCN-8): every shipped scenario is checked exhaustively, its state count
and the properties it violates are pinned; and ``otamodel sweep`` (SCN-9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from otamodel.checker import check
from otamodel.cli import main
from otamodel.cli.sweep import Finding, apply_params, get_needs, parse_param, run_sweep
from otamodel.env import build_scenario, get_scenario, get_scenario_names
from otamodel.errors import ScenarioError
from otamodel.verify._findings import run_check
from otamodel.verify._properties import OtaModel

# name -> (unique states, the properties the check reports failing). ``default`` is pinned in
# test_model_check.py (it takes ~20 s).
LIBRARY: dict[str, tuple[int, frozenset[str]]] = {
    "attacker": (
        44991,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "progress",
                "sec-authenticity",
                "sec-erase-authenticity",
                "sec-fast-forward",
            }
        ),
    ),
    "attacker-patch": (
        4585,
        frozenset(
            {
                "boots-valid-image",
                "flash-physics",
                "progress",
                "sec-authenticity",
                "sec-fast-forward",
            }
        ),
    ),
    "autoreset-off": (
        853,
        frozenset({"flash-physics", "outcome-honesty", "progress", "store-consistency"}),
    ),
    "autoupdate-off": (354, frozenset({"flash-physics", "progress"})),
    "bad-image": (
        162,
        frozenset(
            {"bad-image-abandoned", "bounded-reprogram", "flash-physics", "no-stuck-service"}
        ),
    ),
    "bare-metal": (
        2053,
        frozenset(
            {
                "boot-coherence",
                "event-delivery",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "compiled-version-mismatch": (
        4597,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-needless-reprogram",
                "no-stuck-service",
                "no-unintended-downgrade",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "user-power-cut": (
        6259,
        frozenset(
            {
                "boot-coherence",
                "event-response",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "no-unintended-downgrade",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "secure-bare-metal": (
        38067,
        frozenset(
            {
                "boot-coherence",
                "event-delivery",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "console": (911, frozenset({"event-response", "flash-physics", "progress"})),
    "console-interval-url": (963, frozenset({"check-interval", "flash-physics", "progress"})),
    "enforce-tls": (275, frozenset({"flash-physics", "progress"})),
    "erase": (3227, frozenset({"flash-physics", "progress"})),
    "erase-replay": (8435, frozenset({"flash-physics", "progress", "sec-freeze-replay"})),
    "erase-secure": (779, frozenset({"flash-physics", "progress", "sec-erase-authenticity"})),
    "factory-version-0": (
        1835,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "factory-version-255": (
        4175,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-needless-reprogram",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "fail-boot": (
        1562,
        frozenset(
            {
                "bad-image-abandoned",
                "bounded-reprogram",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "fs-durable-at-close": (
        1854,
        frozenset(
            {"flash-physics", "no-brick", "no-stuck-service", "progress", "store-consistency"}
        ),
    ),
    "fs-mount-damaged": (
        1836,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "fs-open-handles": (521, frozenset({"flash-physics", "progress"})),
    "fs-preload": (191, frozenset({"flash-physics"})),
    "image-oversize": (201, frozenset({"flash-physics"})),
    "image-tiny": (69, frozenset({"flash-physics", "full-update"})),
    "json-limit": (479, frozenset({"flash-physics", "progress"})),
    "manifest-over-limit": (479, frozenset({"flash-physics", "progress"})),
    "manifest-url-upper": (48, frozenset({"flash-physics", "full-update", "progress"})),
    "mitm": (
        1003,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "progress",
                "sec-authenticity",
                "sec-fast-forward",
            }
        ),
    ),
    "mitm-secure": (990, frozenset({"flash-physics", "no-brick", "no-stuck-service", "progress"})),
    "num-imgs-0": (706, frozenset({"flash-physics", "progress"})),
    "num-imgs-1": (
        6679,
        frozenset(
            {
                "boot-coherence",
                "event-delivery",
                "event-response",
                "flash-physics",
                "no-data-loss",
                "no-stuck-service",
                "no-unintended-downgrade",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "num-imgs-5": (4581, frozenset({"flash-physics", "progress"})),
    "patch": (
        6111,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "patch-update",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "patch-base-digest-upper": (705, frozenset({"flash-physics", "patch-update", "progress"})),
    "periodic-off": (
        1811,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "relabel-signed": (
        1150,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "no-data-loss",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "rollback": (
        98876,
        frozenset(
            {
                "boot-coherence",
                "event-delivery",
                "event-response",
                "flash-physics",
                "intent-factory-reset",
                "intent-honoured",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "same-version-builds": (
        5910,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "secure": (
        42620,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "no-unintended-downgrade",
                "outcome-honesty",
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
    "server-freeze": (13139, frozenset({"flash-physics", "progress", "sec-freeze-replay"})),
    "set-parameters": (1058, frozenset({"flash-physics", "progress"})),
    "signed": (
        2252,
        frozenset(
            {
                "factory-restore",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "signed-attack": (
        9251,
        frozenset(
            {
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "store": (4585, frozenset({"flash-physics", "progress"})),
    "tamper": (
        2880,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "tamper-secure": (
        14552,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "tear-bits": (
        1827,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "transfer": (1135, frozenset({"flash-physics", "progress"})),
    "url-factory-name": (
        1665,
        frozenset(
            {
                "factory-restore",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "url-factory-sign-name": (
        12220,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "url-long": (491, frozenset({"flash-physics", "progress"})),
    "url-same-name": (
        7883,
        frozenset(
            {
                "boot-coherence",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "no-unintended-downgrade",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "url-upper-scheme": (
        206,
        frozenset({"factory-restore", "flash-physics", "full-update", "progress"}),
    ),
    "user": (
        29431,
        frozenset(
            {
                "event-delivery",
                "event-response",
                "flash-physics",
                "intent-factory-reset",
                "intent-honoured",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "version-2-digits": (
        7398,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-stuck-service",
                "no-unintended-downgrade",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "version-3-digits": (
        1829,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-needless-reprogram",
                "no-stuck-service",
                "outcome-honesty",
                "progress",
                "store-consistency",
            }
        ),
    ),
    "version-4-digits": (
        4175,
        frozenset(
            {
                "boot-coherence",
                "boots-valid-image",
                "flash-physics",
                "no-brick",
                "no-data-loss",
                "no-needless-reprogram",
                "no-stuck-service",
                "no-unintended-downgrade",
                "outcome-honesty",
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
    # Deduplicated by finding ID: the IDs otamodel check gives the same scenario.
    assert set(findings) == set(on["findings"]) | set(off["findings"])
    for autoreset, run in ((True, on), (False, off)):
        spec = apply_params(source, [(params[0], autoreset), (params[1], 1)])
        model = OtaModel(build_scenario(spec))
        report = run_check(model)
        assert sorted(run["findings"]) == sorted(f.id for f in report.findings)
    for finding in findings.values():
        assert finding.runs and finding.story
        needs = get_needs(finding, params, runs)
        assert "NUM_IMGS" not in dict(needs.values)  # only one NUM_IMGS value ran
        if finding.key in on["findings"] and finding.key in off["findings"]:
            assert needs.describe() == "in every run" and not needs.values
        elif finding.key in off["findings"]:
            assert needs.describe() == "whenever autoreset=off, and only then"
            assert dict(needs.values) == {"autoreset": ("off",)}


def test_sweep_needs_a_combination_when_no_single_value_decides() -> None:
    params = [parse_param("a=1,2"), parse_param("b=x,y")]
    runs = [{"params": {"a": a, "b": b}} for a in (1, 2) for b in ("x", "y")]
    only = Finding("PG-0000", "progress", [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    needs = get_needs(only, params, runs)
    assert not needs.exact and needs.describe() == "only in: a=1 b=x; a=2 b=y"
    three = Finding("PG-0001", "progress", [r["params"] for r in runs[:3]])
    assert get_needs(three, params, runs).describe() == "in every run except: a=2 b=y"
    one = Finding("PG-0002", "progress", [{"a": 2, "b": "y"}])
    assert get_needs(one, params, runs).describe() == "whenever a=2 and b=y, and only then"


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
    for finding in doc["findings"]:
        assert finding["id"] in result.output and finding["story"]
        assert {"values", "exact", "text", "combinations"} <= set(finding["needs"])
        assert sum(finding["id"] in r["findings"] for r in doc["runs"]) == finding["runs"]
    stdout = CliRunner().invoke(
        main, ["sweep", "--scenario", "periodic-off", "--param", "autoreset=on,off", "--json", "-"]
    )
    assert json.loads(stdout.stdout)["findings"] == doc["findings"]
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
