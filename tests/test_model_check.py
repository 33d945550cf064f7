"""Pinned state counts of small scenarios, and the check/replay/simulate/diagram commands
(the machines' conformance is in ``test_machines.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from otamodel.checker import CheckReport, check
from otamodel.cli import main
from otamodel.env import get_scenario, initial_world, step
from otamodel.model import Action, World
from otamodel.verify._properties import OtaModel
from otamodel.verify._tracefile import replay, write_trace

# Exact state counts of small scenarios (regression oracles, like stateright's examples).
PINNED = {"default": 350342, "erase": 3227, "patch": 6111}


_REPORTS: dict[str, CheckReport[World, Action]] = {}


def get_report(name: str) -> CheckReport[World, Action]:
    """One exhaustive check per scenario per test session (default takes ~20 s)."""
    if name not in _REPORTS:
        _REPORTS[name] = check(OtaModel(name))
    return _REPORTS[name]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_state_counts(name: str) -> None:
    report = get_report(name)
    assert report.is_complete
    assert report.unique_states == PINNED[name]


def test_default_verdicts_and_traces_replay(tmp_path: Path) -> None:
    scenario = get_scenario("default")
    report = get_report("default")
    verdicts = {r.name: r.verdict.value for r in report.results}
    assert verdicts["boots-valid-image"] == "holds"
    assert verdicts["full-update"] == "witnessed"
    assert verdicts["no-brick"] == "violated"
    brick = report.get_result("no-brick")
    assert brick.trace is not None
    path = tmp_path / "brick.json"
    write_trace(
        path,
        scenario=scenario,
        property_name="no-brick",
        verdict="violated",
        actions=list(brick.trace.actions),
    )
    steps, problem = replay(scenario, list(brick.trace.actions))
    assert problem is None and steps[-1].result.world == brick.trace.last_state
    result = CliRunner().invoke(main, ["replay", str(path)])
    assert result.exit_code == 0, result.output
    assert "power_cut" in result.output
    result = CliRunner().invoke(main, ["replay", str(path), "--mermaid"])
    assert result.output.startswith("sequenceDiagram")
    doc = json.loads(path.read_text())
    doc["actions"].insert(3, "ctrl(rollback)")
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["replay", str(path)])
    assert result.exit_code == 1
    assert "no longer reproduces" in result.output


def test_check_command_exit_codes_and_json(tmp_path: Path) -> None:
    out = tmp_path / "v.json"
    traces = tmp_path / "traces"
    result = CliRunner().invoke(
        main, ["check", "--scenario", "erase", "-q", "--json", str(out), "--traces", str(traces)]
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    assert doc["unique_states"] == PINNED["erase"]
    assert any(p.name.startswith("PG-") for p in traces.iterdir())  # one file per finding
    result = CliRunner().invoke(main, ["check", "--scenario", "nope"])
    assert result.exit_code == 2 and "unknown scenario" in result.output
    result = CliRunner().invoke(main, ["check", "--variant", "harmony-9"])
    assert result.exit_code == 2


def test_bad_trace_files_are_typed_errors(tmp_path: Path) -> None:
    for text in ("{", "[]", '{"format": "x"}', '{"format": "otamodel-trace/1", "actions": [1]}'):
        path = tmp_path / "t.json"
        path.write_text(text)
        result = CliRunner().invoke(main, ["replay", str(path)])
        assert result.exit_code == 2
        assert result.output.startswith(f"error: {path}: trace")
        assert result.output.count("\n") == 1


def test_simulate_and_diagram() -> None:
    result = CliRunner().invoke(main, ["simulate", "--scenario", "default"])
    assert result.exit_code == 0, result.output
    assert "app callback: DB_ENTRY_SUCCESS" in result.output
    assert "jump: running app_v2 (v2)" in result.output
    for machine in ("service", "update_check", "core", "bootloader"):
        result = CliRunner().invoke(main, ["diagram", machine])
        assert result.exit_code == 0 and "stateDiagram-v2" in result.output
        result = CliRunner().invoke(main, ["diagram", machine, "--format", "dot"])
        assert result.exit_code == 0 and result.output.startswith("digraph")


def test_step_is_total() -> None:
    world = initial_world(get_scenario("default"))
    for action in (
        Action("ctrl", "rollback"),
        Action("timer"),
        Action("publish", "9"),
        Action("bogus"),
        Action("corrupt"),
    ):
        result = step(world, action)
        assert result.is_refused and result.refusal


def test_hardened_variant_restores_no_brick_and_progress() -> None:
    from otamodel.env import with_variant

    scenario = with_variant(get_scenario("default"), "hardened")
    report = check(OtaModel(scenario))
    verdicts = {r.name: r.verdict.value for r in report.results}
    assert verdicts["no-brick"] == "holds"
    assert verdicts["progress"] == "holds"
    assert verdicts["no-stuck-service"] == "holds"
    assert verdicts["boots-valid-image"] == "holds"
    assert verdicts["flash-physics"] == "violated"  # HARD-* leaves the no-erase writes alone
