"""``otamodel cuts`` (CUT-*): the per-write power-cut table on small scenarios."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner, Result

from otamodel.cli import main
from otamodel.env import build_scenario, format_actions, get_scenario, initial_world
from otamodel.errors import ScenarioError
from otamodel.model import Action
from otamodel.model._record import replace
from otamodel.verify._cuts import (
    CutPoint,
    CutWhen,
    Outcome,
    get_operations,
    get_update_schedule,
    recover,
)
from otamodel.verify._cuttable import get_cut_table, get_double_summary


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def tiny():  # type: ignore[no-untyped-def]
    """v1 -> v2, one write call per DB save (the checker's default granularity)."""
    return build_scenario({"name": "tiny", "releases": [{"version": 2}]})


@pytest.fixture(scope="module")
def tiny_table(tiny):  # type: ignore[no-untyped-def]
    return get_cut_table(tiny)


def test_the_schedule_is_the_fault_free_update(tiny) -> None:  # type: ignore[no-untyped-def]
    schedule = get_update_schedule(tiny)
    assert format_actions(schedule) == "tick*28, timer, tick*101"
    worlds, operations = get_operations(initial_world(tiny), schedule)
    assert worlds[-1].running is not None and worlds[-1].running.version == 2
    # the first boot (factory backup, 10 operations) then the 29 writes of the update
    assert len(operations) == 39
    assert [op.number for op in operations] == list(range(1, 40))
    first = operations[10]
    assert (first.medium, first.target, first.content) == (
        "FS",
        "app_v2.bin",
        "create/truncate to 0 B",
    )
    assert first.flow.startswith("app v1: core DOWNLOAD_IMAGE")
    f0 = [op for op in operations if "F0/t1/v2" in op.content]
    assert [op.target for op in f0] == ["boot control page 0 row 0", "boot control page 0 row 1"]
    assert f0[0].tear_modes == ("word", "bits")


def test_one_row_per_cut_point(tiny_table) -> None:  # type: ignore[no-untyped-def]
    table = tiny_table
    # before + after for each of 39 operations, one tear per erase/file write, two per program
    assert len(table.results) == 121
    assert table.baseline == ("flash-physics",)
    assert table.get_counts() == Counter(
        {
            "new image runs (v2)": 82,
            "new image runs (v2) via a factory restore": 37,
            "never boots (boot loop)": 2,
        }
    )
    loops = [str(r.point) for r in table.results if r.recovery.outcome is Outcome.BOOT_LOOP]
    assert loops == ["#16 after", "#17 before"]  # the F8 DB save truncated, not yet rewritten
    bricked = table.find(16, CutWhen.AFTER)
    assert "no-brick" in bricked.violated and "store-consistency" in bricked.violated
    assert table.find(1, CutWhen.BEFORE).violated == ()


def test_default_scenario_counts() -> None:
    table = get_cut_table(get_scenario("default"))
    assert (len(table.operations), len(table.results)) == (55, 169)
    assert table.get_counts()["never boots (boot loop)"] == 30
    torn = table.find(17, CutWhen.TORN, "half")
    assert torn.recovery.outcome is Outcome.BOOT_LOOP
    assert set(torn.violated) == {"no-brick", "progress", "no-stuck-service", "store-consistency"}


def test_hardened_variant_never_bricks() -> None:
    from otamodel.env import with_variant

    table = get_cut_table(with_variant(get_scenario("default"), "hardened"))
    assert len(table.results) == 173
    assert all(r.recovery.outcome is Outcome.NEW_IMAGE for r in table.results)


def test_two_cuts_are_summarised(tiny_table) -> None:  # type: ignore[no-untyped-def]
    summary = get_double_summary(tiny_table)
    assert summary.total == sum(summary.counts.values()) > len(tiny_table.results)
    assert summary.distinct <= summary.total
    assert summary.worst and summary.worst[0].recovery.outcome is Outcome.BOOT_LOOP


def test_recovery_classifies_a_hang_and_a_loop(tiny) -> None:  # type: ignore[no-untyped-def]
    world = initial_world(tiny)
    erased = [b"\xff" * len(p) for p in world.flash.pages]

    blank = replace(world, flash=replace(world.flash, pages=tuple(erased)))
    result = recover(blank, old=1, new=2)
    assert result.outcome in (Outcome.NEVER_BOOTS, Outcome.BOOT_LOOP)
    assert result.version is None


def test_scenario_without_an_update_is_refused() -> None:
    with pytest.raises(ScenarioError, match="no update"):
        get_update_schedule(build_scenario({"name": "none"}))


def test_cli_table_and_json(tiny_table) -> None:  # type: ignore[no-untyped-def]
    result = run("cuts", "--single")
    assert result.exit_code == 0, result.output
    assert "55 persistent operations" in result.stdout and "169 cut points" in result.stdout
    assert "17 torn(half)" in result.stdout and "never boots (boot loop)" in result.stdout
    result = run("cuts", "--json", "-")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert len(doc["operations"]) == 55 and len(doc["cuts"]) == 169
    assert doc["schedule"] == "tick*28, timer, tick*117"
    assert doc["double"]["pairs"] == sum(doc["double"]["counts"].values())
    assert doc["cuts"][0]["cut"] == "1 before"


def test_cli_story_of_one_cut() -> None:
    result = run("cuts", "--cut", "17", "--torn", "half")
    assert result.exit_code == 0, result.output
    assert "cut #17 torn(half)" in result.stdout
    assert "outcome: never boots (boot loop)" in result.stdout
    assert "reproduce: otamodel simulate" in result.stdout
    script = result.stdout.split("--script '", 1)[1].split("'", 1)[0]
    assert "power_cut_torn" in script
    # the printed script replays (with the scenario's budgets) into the same boot loop
    from otamodel.env import parse_actions
    from otamodel.verify import run as run_actions

    trace = run_actions(initial_world(get_scenario("default")), parse_actions(script))
    assert trace.last_state.phase.value == "bootloader"
    assert "bootctl=F0/t1/v2" in repr(trace.last_state)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--cut", "999"), "no operation 999"),
        (("--cut", "17", "--torn", "word"), "tears as: half"),
        (("--cut", "11", "--torn", "half"), "cannot be torn"),
        (("--variant", "nope"), "unknown variant"),
        (("--scenario", "nope"), "unknown scenario"),
    ],
)
def test_cli_errors(args: tuple[str, ...], needle: str) -> None:
    result = run("cuts", *args)
    assert result.exit_code == 2
    assert needle in result.stderr


def test_cli_usage_errors() -> None:
    assert run("cuts", "--after").exit_code == 2
    assert run("cuts", "--cut", "3", "--after", "--torn", "half").exit_code == 2


def test_cut_point_text() -> None:
    assert str(CutPoint(3, CutWhen.TORN, "bits")) == "#3 torn(bits)"
    assert str(CutPoint(3, CutWhen.AFTER)) == "#3 after"
    assert Action.parse("power_cut") == Action("power_cut")


def test_finding_ids_are_those_otamodel_check_gives() -> None:
    """CUT-8: each cut's finding IDs are IDs of `otamodel check`'s findings for the same
    scenario (its budget allows one cut, before, after or tearing any operation)."""
    from otamodel.verify._findings import run_check
    from otamodel.verify._properties import OtaModel

    scenario = build_scenario(
        {"name": "tiny-cut", "releases": [{"version": 2}], "budget": {"power_cut": 1}}
    )
    table = get_cut_table(scenario)
    checked = {f.id: f.property for f in run_check(OtaModel(scenario)).findings}
    reachable = [r for r in table.results if r.point.mode in ("", "half", "word")]
    with_ids = [r for r in reachable if r.findings]
    assert len(with_ids) >= 8
    for result in with_ids:
        for fid in result.findings:
            assert fid in checked, (str(result.point), fid)
        # one ID per violated property at least, each of a violated property
        assert {checked[fid] for fid in result.findings} == set(result.violated)
    assert all(not r.findings for r in table.results if not r.violated)
    doc = json.loads(run("cuts", "--scenario", "default", "--single", "--json").output)
    by_point = {c["cut"]: c for c in doc["cuts"]}
    assert by_point["17 torn(half)"]["findings"][0].startswith("NB-")
    assert sum(doc["finding_counts"].values()) == sum(len(c["findings"]) for c in doc["cuts"])
    text = run("cuts", "--scenario", "default", "--single").output
    assert "finding IDs" in text and by_point["17 torn(half)"]["findings"][0] in text
