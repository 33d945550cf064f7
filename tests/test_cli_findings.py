"""``otamodel check`` findings output, JSON, traces, baselines, exit codes and ``--property``;
the story view of ``otamodel replay`` (TRACE-30..TRACE-34)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from otamodel.checker import check
from otamodel.cli import main
from otamodel.env import get_scenario, initial_world, step
from otamodel.verify._properties import OtaModel
from otamodel.verify._story import get_machine_change, get_story_lines

REPO = Path(__file__).resolve().parent.parent


def user_never_hung(world: object) -> bool:
    """A user predicate for ``--property module:function``."""
    return world.phase.value != "hung"


def test_check_lists_findings_with_stories_and_hint(tmp_path: Path) -> None:
    traces = tmp_path / "tr"
    result = CliRunner().invoke(
        main, ["check", "--scenario", "erase", "-q", "--traces", str(traces)]
    )
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())  # stories are wrapped
    files = sorted(p.name for p in traces.iterdir())
    assert files and all(re.fullmatch(r"[A-Z]+-[0-9a-f]{4,8}\.json", n) for n in files)
    fp = next(n[:-5] for n in files if n.startswith("FP-"))
    assert "findings" in out and fp in out
    assert "the row program has to set bits that are already cleared" in out
    assert f"next: otamodel replay {traces}/" in out
    replayed = CliRunner().invoke(main, ["replay", str(traces / f"{fp}.json")])
    assert replayed.exit_code == 0, replayed.output
    assert replayed.output.startswith(f"{fp}: erase")
    assert "program boot-control row 0" in replayed.output
    full = CliRunner().invoke(main, ["replay", "--full", str(traces / f"{fp}.json")])
    assert full.exit_code == 0 and len(full.output.splitlines()) > len(replayed.output.splitlines())


def test_json_to_stdout_has_full_records() -> None:
    result = CliRunner().invoke(main, ["check", "--scenario", "erase", "-q", "--json", "-"])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    record = next(f for f in doc["findings"] if f["property"] == "flash-physics")
    assert record["id"].startswith("FP-") and record["key"][0] == "tick"
    assert record["key"][1] == "done: program boot-control header"
    assert record["story"] and record["trace_length"] == len(record["actions"]) == 12
    decisive = [s for s in record["steps"] if s.get("decisive")]
    assert decisive and decisive[0]["step"] == record["decisive_step"]
    assert any("NVM" in c for c in decisive[0]["changes"])
    progress = next(r for r in doc["results"] if r["property"] == "progress")
    assert progress["verdict"] == "violated" and len(progress["findings"]) >= 2


def test_baseline_new_still_gone_and_exit_codes(tmp_path: Path) -> None:
    base = tmp_path / "b.json"
    args = ["check", "--scenario", "erase", "-q"]
    result = CliRunner().invoke(main, [*args, "--write-baseline", str(base)])
    assert result.exit_code == 1
    result = CliRunner().invoke(main, [*args, "--baseline", str(base)])
    assert result.exit_code == 0, result.output
    assert "0 NEW" in result.output and "0 GONE" in result.output
    doc = json.loads(base.read_text())
    entries = doc["variants"]["harmony-3.9.1"]
    removed = entries.pop(0)
    entries.append({"id": "FP-0000", "property": "flash-physics", "key": []})
    base.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, [*args, "--baseline", str(base)])
    assert result.exit_code == 1
    assert "1 NEW" in result.output and "GONE FP-0000" in result.output
    assert f"NEW {removed['id']}" in result.output
    # a bounded search with nothing new: exit 3
    bounded = CliRunner().invoke(
        main, [*args, "--property", "boots-valid-image", "--max-states", "100"]
    )
    assert bounded.exit_code == 3, bounded.output
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = CliRunner().invoke(main, [*args, "--baseline", str(bad)])
    assert result.exit_code == 2 and "baseline" in result.output


def test_property_selection_and_user_predicates() -> None:
    result = CliRunner().invoke(
        main, ["check", "--scenario", "erase", "-q", "--property", "flash-physics", "--json", "-"]
    )
    doc = json.loads(result.output)
    assert [r["property"] for r in doc["results"]] == ["flash-physics"]
    spec = "tests.test_cli_findings:user_never_hung"
    result = CliRunner().invoke(main, ["check", "--scenario", "erase", "-q", "--property", spec])
    assert result.exit_code == 0, result.output
    for wrong in ("nope", "no_such_module_x:f", "tests.test_cli_findings:missing"):
        result = CliRunner().invoke(main, ["check", "--scenario", "erase", "--property", wrong])
        assert result.exit_code == 2, result.output
        assert "--property" in result.output


def test_help_documents_exit_codes() -> None:
    result = CliRunner().invoke(main, ["check", "--help"])
    for code in ("0 ", "1 ", "2 ", "3 ", "130"):
        assert code in result.output


def test_story_view_never_says_stay_on_a_state_change() -> None:
    scenario = get_scenario("erase")
    report = check(OtaModel(scenario), findings=True, cost=OtaModel(scenario).get_action_cost)
    finding = report.findings[0]
    actions = list(finding.trace.actions)
    lines = get_story_lines(initial_world(scenario), actions)
    full = get_story_lines(initial_world(scenario), actions, full=True)
    assert len(lines) < len(full) == len(actions) + 1  # every step, then the loop
    world = initial_world(scenario)
    changed = 0
    for action, line in zip(actions, full, strict=False):
        after = step(world, action).world
        if get_machine_change(world, after):
            changed += 1
            assert "(stay)" not in line.text, line.text
        world = after
    assert changed > 5
    assert lines[-1].text.startswith("left alone")


def test_story_view_merges_consecutive_writes() -> None:
    scenario = get_scenario("default")
    report = check(OtaModel(scenario), findings=True, max_states=20000)
    assert report.findings
    trace = report.findings[0].trace
    lines = get_story_lines(trace.init, list(trace.actions))
    writes = [line.text for line in lines if line.text.startswith("write factory_reset.bin")]
    assert len(writes) == 1 and writes[0].endswith("1024 B")


def test_stories_tell_a_withheld_release_as_a_freeze() -> None:
    from otamodel.model import Action
    from otamodel.verify._story import describe_action

    world = initial_world(get_scenario("server-freeze"))
    frozen = describe_action(world, Action("publish", "2"))
    assert frozen.startswith("the server freezes") and "publishes" not in frozen
    assert describe_action(world, Action("freeze")) == frozen
    assert describe_action(world, Action("publish", "1")).startswith(
        "the server publishes release 1 (full v3"
    )


def test_a_sub_state_change_is_never_told_as_stay() -> None:
    from otamodel.env import parse_actions
    from otamodel.verify._tracefile import replay

    scenario = get_scenario("server-freeze")
    actions = parse_actions("tick*21, publish(2), tick*11, timer, tick*10")
    steps, problem = replay(scenario, actions)
    assert problem is None
    checks = [s.transition for s in steps if "update_check:" in s.transition]
    assert checks and all("(stay)" not in text for text in checks)
    assert any("AUTO_UPDATE_CHECK (update_check: CNCT_TO_SRVR → " in text for text in checks)
    story = get_story_lines(initial_world(scenario), actions, full=True)
    assert not any("is_check_allowed]--> (stay)" in line.text for line in story)


def test_no_story_or_trace_in_the_report_has_a_refused_step() -> None:
    """Stories re-step environment inputs (freeze, tamper, console) through the environment's
    step; a refused step in the report would mean a story that does not replay."""
    from otamodel.verify._findings import collect, get_report_lines

    found, runs = collect(["server-freeze", "console"], time_limit=120, echo=lambda _t: None)
    assert found
    text = "\n".join(get_report_lines(found, runs))
    assert "refused" not in text
    assert any(
        a.kind in ("freeze", "console", "set_params", "publish")
        for o in found.values()
        for a in o.finding.trace.actions
    )
    committed = Path(__file__).parent.parent / "docs" / "findings.md"
    assert ": refused (" not in committed.read_text(encoding="utf-8")


def test_history_property_stories_say_what_went_wrong() -> None:
    """TRACE-32: a violation of a property over the ghost history is told in words (the
    event the app never hears of, the success whose effect is missing, what boot control
    and the DB row say), never as a bare "is violated"."""
    from otamodel.verify._findings import get_story

    wanted = {"event-delivery", "outcome-honesty", "boot-coherence", "no-data-loss"}
    stories: dict[str, list[str]] = {}
    for name in ("secure-bare-metal", "user-power-cut"):
        report = check(OtaModel(get_scenario(name)), findings=True)
        for finding in report.findings:
            if finding.property in wanted:
                stories.setdefault(finding.property, []).append(get_story(finding))
    assert set(stories) == wanted
    for prop, told in stories.items():
        assert not any(s.endswith(f"{prop} is violated.") for s in told), prop
    assert any("never hears of IMAGE_DIGEST_VERIFY_START" in s for s in stories["event-delivery"])
    assert any("the app is told DB_ENTRY_SUCCESS, but" in s for s in stories["outcome-honesty"])
    assert any("boot control says status" in s for s in stories["boot-coherence"])
    assert any("is no longer intact" in s for s in stories["no-data-loss"])
