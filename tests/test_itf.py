"""ITF export of traces (TRACE-21): the structure Apalache and Quint write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from otamodel.cli import main
from otamodel.env import build_scenario, parse_actions
from otamodel.errors import TraceError
from otamodel.model import Action
from otamodel.verify import write_trace
from otamodel.verify._itf import ITF_VARS, check_itf, get_itf, to_itf_value


@pytest.fixture(scope="module")
def scenario():  # type: ignore[no-untyped-def]
    return build_scenario(
        {"name": "tiny", "releases": [{"version": 2}], "budget": {"power_cut": 1}}
    )


def test_document_structure(scenario) -> None:  # type: ignore[no-untyped-def]
    actions = parse_actions("tick*28, timer, tick*39, power_cut, tick*3")
    doc = get_itf(scenario, actions, description="demo")
    check_itf(doc)
    assert doc["#meta"]["format"] == "ITF" and doc["#meta"]["description"] == "demo"
    assert doc["vars"] == list(ITF_VARS)
    states = doc["states"]
    assert len(states) == len(actions) + 1
    assert [s["#meta"]["index"] for s in states] == list(range(len(states)))
    assert states[0]["action"] == "init" and states[69]["action"] == "power_cut"
    assert all(set(s) == {"#meta", *ITF_VARS} for s in states)
    last = states[-1]
    assert states[69]["phase"] == "BOOTLOADER" and last["phase"] == "APP"
    assert last["budget"] == {"#map": [["power_cut", 0]]}
    assert "#set" in last["ghost"]["witnesses"]
    assert last["boot"]["db"] == {"#unserializable": "None"}
    names = [name for name, _ in last["fs"]["files"]["#map"]]
    assert "app_v2.bin" in names and "factory_reset.bin" in names
    assert last["flash"]["bootctl"]["status"] == 0xF8
    assert json.loads(json.dumps(doc)) == doc  # plain JSON, no floats or nulls


def test_value_encodings() -> None:
    assert to_itf_value(2**60) == {"#bigint": str(2**60)}
    assert to_itf_value(-(2**60)) == {"#bigint": str(-(2**60))}
    assert to_itf_value(7) == 7 and to_itf_value(True) is True
    assert to_itf_value(frozenset({"b", "a"})) == {"#set": ["a", "b"]}
    assert to_itf_value(b"\x01\x02") == "0102"
    assert set(to_itf_value(bytes(100))) == {"sha256"}
    assert to_itf_value(Action("tick")) == {"kind": "tick", "arg": ""}


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ([], "$"),
        ({"vars": "x", "states": [{}]}, "$.vars"),
        ({"vars": ["x"], "states": []}, "$.states"),
        ({"vars": ["x"], "states": [{"y": 1}]}, "$.states[0]"),
        ({"vars": ["x"], "states": [{"x": {"#bigint": 5}}]}, "$.states[0].x"),
        ({"vars": ["x"], "states": [{"x": {"#map": [[1]]}}]}, "$.states[0].x"),
        ({"vars": ["x"], "states": [{"x": {"#what": 1}}]}, "$.states[0].x"),
        ({"vars": ["x"], "states": [{"x": 1.5}]}, "$.states[0].x"),
    ],
)
def test_check_itf_names_the_problem(doc: object, where: str) -> None:
    with pytest.raises(TraceError, match=where.replace("[", r"\[").replace("$", r"\$")):
        check_itf(doc)


def test_refused_step_is_an_error(scenario) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TraceError, match="step 1"):
        get_itf(scenario, [Action("timer")])


def test_replay_exports_itf(tmp_path: Path, scenario) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "t.json"
    actions = parse_actions("tick*30")
    write_trace(
        trace, scenario=scenario, property_name="demo", verdict="witnessed", actions=actions
    )
    result = CliRunner().invoke(main, ["replay", str(trace), "--itf", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    check_itf(doc)
    assert len(doc["states"]) == 31
    out = tmp_path / "t.itf.json"
    result = CliRunner().invoke(main, ["replay", str(trace), "--itf", str(out)])
    assert result.exit_code == 0, result.output
    check_itf(json.loads(out.read_text()))
