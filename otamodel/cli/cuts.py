"""``otamodel cuts``: what happens if power fails at each persistent write of an update."""

from __future__ import annotations

import json
from typing import Any

import click

from otamodel._io import write_output
from otamodel.cli import (
    get_cli_scenario,
    json_option,
    main,
    scenario_options,
)

AUTO_DOUBLE_LIMIT = 400


def _emit_json(target: str, doc: dict[str, Any]) -> None:
    write_output(target, json.dumps(doc, indent=1) + "\n")


@main.command("cuts")
@scenario_options()
@click.option(
    "--cut",
    "cut_number",
    type=click.IntRange(1),
    default=None,
    help="Tell the story of one cut: power fails before operation N (see --after, --torn).",
)
@click.option("--after", is_flag=True, help="With --cut: power fails right after operation N.")
@click.option(
    "--torn",
    "torn_mode",
    default=None,
    metavar="MODE",
    help="With --cut: power fails in the middle of operation N (word, bits: row programs; "
    "half: erases and file writes).",
)
@click.option(
    "--double/--single",
    default=None,
    help="Also cut a second time during each recovery, summarised (default: when the update "
    f"has at most {AUTO_DOUBLE_LIMIT} cut points).",
)
@json_option(
    "Write the table as JSON (to FILE if given; - or no FILE: stdout, instead of the text).",
    "json_file",
)
def cuts(
    scenario_name: str,
    variant: str | None,
    cut_number: int | None,
    after: bool,
    torn_mode: str | None,
    double: bool | None,
    json_file: str | None,
) -> None:
    """Cut power before, after and in the middle of every persistent operation of a
    scenario's fault-free update, and show what the device ends up running.

    Each row: the cut point (operation number in program order, before/after/torn), the
    operation (medium, file or region, content), where the code is, the outcome once the
    device recovers with power on and no further fault, and the properties the recovery
    violates beyond those the fault-free run already violates, with their finding IDs (the
    IDs otamodel check gives the same violations).
    """
    from otamodel.verify._cuts import CutPoint, CutWhen
    from otamodel.verify._cuttable import get_cut_table, get_double_summary
    from otamodel.verify._properties import OtaModel

    if (after or torn_mode is not None) and cut_number is None:
        raise click.UsageError("--after and --torn need --cut N")
    if after and torn_mode is not None:
        raise click.UsageError("--after and --torn exclude each other")
    scenario = get_cli_scenario(scenario_name, variant)
    model = OtaModel(scenario)
    if cut_number is not None:
        when = CutWhen.AFTER if after else CutWhen.TORN if torn_mode else CutWhen.BEFORE
        point = CutPoint(cut_number, when, torn_mode or "")
        table = get_cut_table(scenario, model=model, only=point)
        result = table.find(cut_number, when, torn_mode or "")
        if json_file:
            _emit_json(json_file, _get_cut_doc(table, result, story=True))
        else:
            _echo_story(table, result)
        return
    table = get_cut_table(scenario, model=model)
    if double is None:
        double = len(table.results) <= AUTO_DOUBLE_LIMIT
        if not double:
            click.echo(
                f"note: two cuts skipped ({len(table.results)} cut points; --double runs them)",
                err=True,
            )
    summary = get_double_summary(table, model=model) if double else None
    if json_file:
        doc = _get_table_doc(table, summary)
        _emit_json(json_file, doc)
        if json_file == "-":
            return
    _echo_table(table, summary)


def _echo_table(table: Any, summary: Any) -> None:
    from otamodel.env import format_actions

    scenario = table.scenario
    click.echo(
        f"cuts · {scenario.name} · {scenario.config.variant.value}: "
        f"{len(table.operations)} persistent operations in the fault-free update "
        f"v{table.old} -> v{table.new} ({len(table.schedule)} steps), "
        f"{len(table.results)} cut points"
    )
    click.echo(f"schedule: {format_actions(table.schedule)}")
    if table.baseline:
        click.echo(
            f"already violated without a cut (not repeated below): {', '.join(table.baseline)}"
        )
    rows = [("cut", "operation", "where", "outcome", "violated", "finding IDs")]
    for r in table.results:
        op = r.operation
        rows.append(
            (
                _point_text(r.point),
                f"{op.medium} {op.target}: {op.content}",
                op.where,
                r.recovery.get_label(),
                ", ".join(r.violated) or "-",
                " ".join(r.findings) or "-",
            )
        )
    caps = (13, 60, 64, 44, 60)
    widths = [min(max(len(row[i]) for row in rows), cap) for i, cap in enumerate(caps)]
    click.echo("")
    for row in rows:
        cells = [_fit(text, width) for text, width in zip(row[:5], widths, strict=True)]
        click.echo("  ".join(cells) + "  " + row[5])
    click.echo("")
    click.echo("outcomes:")
    for label, count in table.get_counts().most_common():
        click.echo(f"  {count:>5}  {label}")
    found = table.get_finding_counts()
    if found:
        click.echo("findings (cut points per finding ID, as otamodel check gives them):")
        for fid, count in found.most_common():
            click.echo(f"  {count:>5}  {fid}")
    if summary is not None:
        click.echo("")
        click.echo(
            f"two cuts (the second at each operation of the recovery from the first): "
            f"{summary.total} pairs, {summary.distinct} distinct worlds"
        )
        for label, count in summary.counts.items():
            click.echo(f"  {count:>5}  {label}")
        if summary.worst:
            click.echo("worst cases (one example per outcome and set of violated properties):")
            for item in summary.worst:
                click.echo(
                    f"  {item}: {item.operation.describe()} -> {item.recovery.get_label()}"
                    f"{'; violates ' + ', '.join(item.violated) if item.violated else ''}"
                )
    click.echo("")
    click.echo("next: otamodel cuts --cut N [--after | --torn MODE] tells the story of one cut")


def _fit(text: str, width: int) -> str:
    if len(text) > width:
        return text[: width - 1] + "…"
    return text.ljust(width)


def _point_text(point: Any) -> str:
    text = str(point)
    return text[1:] if text.startswith("#") else text


def _echo_story(table: Any, result: Any) -> None:
    from otamodel.env import format_actions
    from otamodel.verify._timeline import get_story_lines

    op = result.operation
    scenario = table.scenario
    click.echo(f"cuts · {scenario.name} · {scenario.config.variant.value}: cut {result.point}")
    click.echo(f"operation {op.number}: {op.medium} {op.target}: {op.content}")
    click.echo(f"  where: {op.where}")
    click.echo(f"  machine states: {op.flow}")
    if op.queued_by:
        click.echo(f"  queued by: {op.queued_by}")
    steps = op.step + (1 if result.point.when.value == "after" else 0)
    click.echo(
        f"fault-free run to the cut ({steps} steps): {format_actions(table.schedule[:steps])}"
    )
    click.echo(f"power cut{' (torn: ' + result.point.mode + ')' if result.point.mode else ''};")
    click.echo(f"recovery ({len(result.recovery.actions)} steps, no further fault):")
    for line in get_story_lines(result.start, result.recovery.actions, first=1):
        click.echo(line)
    click.echo(f"outcome: {result.recovery.get_label()}")
    click.echo(f"violated: {', '.join(result.violated) or 'nothing beyond the fault-free run'}")
    if result.findings:
        click.echo(f"findings: {' '.join(result.findings)} (IDs as otamodel check gives them)")
    if table.baseline:
        click.echo(f"(the fault-free run already violates: {', '.join(table.baseline)})")
    script = _get_replay_script(table, result)
    if script is not None:
        click.echo(
            f"reproduce: otamodel simulate --scenario {scenario.name} "
            f"--variant {scenario.config.variant.value} --script '{script}'"
        )


def _get_replay_script(table: Any, result: Any) -> str | None:
    """The whole run as a script ``simulate`` accepts (when the scenario's budget and tear
    mode allow the cut)."""
    from otamodel.env import format_actions
    from otamodel.model import Action

    point = result.point
    scenario = table.scenario
    if dict(scenario.budget).get("power_cut", 0) < 1:
        return None
    if point.mode and point.mode not in ("half", scenario.config.tear_mode.value):
        return None
    steps = result.operation.step + (1 if point.when.value == "after" else 0)
    cut = Action("power_cut_torn" if point.mode else "power_cut")
    return format_actions([*table.schedule[:steps], cut, *result.recovery.actions])


def _get_cut_doc(table: Any, result: Any, *, story: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "cut": _point_text(result.point),
        "operation": result.operation.number,
        "when": result.point.when.value,
        "tear_mode": result.point.mode or None,
        "outcome": result.recovery.outcome.name.lower(),
        "outcome_text": result.recovery.get_label(),
        "version": result.recovery.version,
        "service_stuck": result.recovery.service_stuck,
        "violated": list(result.violated),
        "findings": list(result.findings),
        "recovery_steps": len(result.recovery.actions),
    }
    if story:
        from otamodel.env import format_actions

        doc["recovery"] = format_actions(result.recovery.actions)
        doc["replay_script"] = _get_replay_script(table, result)
    return doc


def _get_table_doc(table: Any, summary: Any) -> dict[str, Any]:
    from otamodel.env import format_actions

    scenario = table.scenario
    doc: dict[str, Any] = {
        "scenario": scenario.name,
        "variant": scenario.config.variant.value,
        "old_version": table.old,
        "new_version": table.new,
        "schedule": format_actions(table.schedule),
        "baseline_violations": list(table.baseline),
        "operations": [
            {
                "number": op.number,
                "step": op.step + 1,
                "medium": op.medium,
                "target": op.target,
                "content": op.content,
                "where": op.where,
                "states": op.flow,
                "queued_by": op.queued_by,
                "tear_modes": list(op.tear_modes),
            }
            for op in table.operations
        ],
        "cuts": [_get_cut_doc(table, r) for r in table.results],
        "counts": dict(table.get_counts().most_common()),
        "finding_counts": dict(table.get_finding_counts().most_common()),
    }
    if summary is not None:
        doc["double"] = {
            "pairs": summary.total,
            "distinct_worlds": summary.distinct,
            "counts": summary.counts,
            "worst": [
                {
                    "first": _point_text(d.first),
                    "second": _point_text(d.second),
                    "second_operation": d.operation.describe(),
                    "outcome_text": d.recovery.get_label(),
                    "violated": list(d.violated),
                }
                for d in summary.worst
            ],
        }
    return doc


__all__ = ["cuts"]
