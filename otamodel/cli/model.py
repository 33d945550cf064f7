"""``otamodel simulate`` and ``otamodel diagram``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import click

from otamodel._io import read_input, write_output
from otamodel.cli import (
    get_cli_scenario,
    json_option,
    main,
    scenario_options,
    variant_choice,
)
from otamodel.errors import ScenarioError, TraceError
from otamodel.model import MACHINES

#: Largest ``simulate --actions`` file read (BOUND-5).
MAX_ACTIONS_BYTES = 16 * 1024 * 1024


@main.command()
@scenario_options()
@click.option(
    "--script",
    default=None,
    metavar="SCRIPT",
    help="Actions in the compact form the tools print, e.g. 'tick*29, timer, tick*95, power_cut'.",
)
@click.option(
    "--actions",
    "actions_file",
    type=click.Path(dir_okay=False),
    help="File with a script (one action per line, or the compact form; '#' comments).",
)
@click.option(
    "--until",
    "until_text",
    default=None,
    metavar="COND",
    help="Stop at the first step where COND holds: app-runs, bootloader-programs, "
    "update-done, hang, version:N, state:NAME (a service, core or bootloader state).",
)
@click.option(
    "--steps",
    default=400,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Steps when no script is given.",
)
@json_option("Print the timeline as JSON (to FILE if given; - is stdout).")
def simulate(
    scenario_name: str,
    variant: str | None,
    script: str | None,
    actions_file: str | None,
    until_text: str | None,
    steps: int,
    json_out: str | None,
) -> None:
    """Print a step-by-step timeline of a scenario (states, callbacks, persistent writes).

    Without a script the device runs on its own (``tick``, the RTCC alarm as soon as it is
    armed) until it is quiet on the newest image, ``--until`` holds, or ``--steps``. The run
    ends with its script in the compact form, ready for ``--script``.
    """
    from otamodel.env import format_actions, parse_actions, parse_until
    from otamodel.verify._tracefile import replay

    if script is not None and actions_file is not None:
        raise click.UsageError("--script and --actions exclude each other")
    until = parse_until(until_text) if until_text is not None else None
    scenario = get_cli_scenario(scenario_name, variant)
    if actions_file is not None:
        raw = read_input(actions_file, limit=MAX_ACTIONS_BYTES, option="--max-document-bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TraceError(
                f"not UTF-8 text ({exc.reason})", where=exc.start, source=actions_file
            ) from None
        actions = parse_actions(text, source=actions_file)
    elif script is not None:
        actions = parse_actions(script, source="--script")
    else:
        actions = _run_free(scenario, steps, until)
    replayed, problem = replay(scenario, actions)
    reached = None
    if until is not None:
        reached = _find_until(scenario, replayed, until)
        if reached is not None:
            replayed = replayed[:reached]
            problem = None
    if json_out is not None:
        write_timeline_json(json_out, scenario, replayed, problem)
    else:
        click.echo(
            f"scenario {scenario.name} ({scenario.config.variant.value}): {scenario.description}"
        )
        echo_timeline(replayed)
        click.echo(f"script: {format_actions(s.action for s in replayed)}")
    if problem is not None:
        click.echo(f"error: {problem}", err=True)
        sys.exit(1)
    if until is not None and reached is None:
        click.echo(f"error: --until {until.text}: {until.description} did not happen", err=True)
        sys.exit(1)


def _run_free(scenario: Any, steps: int, until: Any) -> list[Any]:
    """The device left alone: ``tick``, or ``timer`` as soon as the service waits for it."""
    from otamodel.env import TICK, enabled_actions, initial_world, step

    world = initial_world(scenario)
    actions = []
    for _ in range(steps):
        enabled = enabled_actions(world)
        timer = [a for a in enabled if a.kind == "timer"]
        action = timer[0] if timer else TICK
        result = step(world, action)
        if result.is_refused:
            break
        actions.append(action)
        if until is not None and until.is_met(world, result):
            break
        world = result.world
        if until is None and _is_quiet(world):
            break
    return actions


def _find_until(scenario: Any, replayed: list[Any], until: Any) -> int | None:
    """How many replayed steps it takes until ``until`` holds (None: never)."""
    from otamodel.env import initial_world

    before = initial_world(scenario)
    for count, s in enumerate(replayed, 1):
        if until.is_met(before, s.result):
            return count
        before = s.result.world
    return None


def write_timeline_json(target: str, scenario: Any, steps: list[Any], problem: str | None) -> None:
    """CLI-2: the timeline as JSON: scenario, variant, one object per step, and the refusal."""
    doc = {
        "scenario": scenario.name,
        "variant": scenario.config.variant.value,
        "steps": [
            {
                "index": s.index,
                "action": str(s.action),
                "transition": s.transition or s.result.transition,
                "notes": list(s.result.notes),
                "changes": list(s.changes),
                "state": s.summary,
            }
            for s in steps
        ],
        "problem": problem,
    }
    write_output(target, json.dumps(doc, indent=1) + "\n")


def echo_timeline(steps: list[Any]) -> None:
    """Print replayed steps: action, transition, callbacks/notes, persistent changes, state."""
    for s in steps:
        click.echo(f"{s.index:4d} {s.action!s:<18} {s.transition or s.result.transition or ''}")
        for note in s.result.notes:
            click.echo(f"{'':23}· {note}")
        for change in s.changes:
            click.echo(f"{'':23}» {change}")
        click.echo(f"{'':23}  [{s.summary}]")


def _is_quiet(world: object) -> bool:
    from otamodel.model import Phase, SvcState, World

    assert isinstance(world, World)
    if world.phase is not Phase.APP or world.pending:
        return False
    if (
        world.service.state is not SvcState.WAIT_FOR_OTA_TIMER_TRIGGER
        and world.service.state is not SvcState.STATE_IDLE
    ):
        return False
    return (
        world.running is not None
        and world.running.version >= max((i.version for i in world.scenario.images), default=0)
        and world.core.task.name == "IDLE"
    )


@main.command()
@click.argument("machine", type=click.Choice(list(MACHINES)))  # CLI-5: from the code
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
)
@click.option(
    "--variant",
    type=variant_choice(),
    default="harmony-3.9.1",
    show_default=True,
    help="Draw the edges of this variant only.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write to a file instead of stdout (- is stdout).",
)
def diagram(machine: str, fmt: str, variant: str, output: str | None) -> None:
    """Draw a machine with ``transitions``' own diagram support (the Machine ``step`` is
    compiled from)."""
    from otamodel.model import MACHINES, Variant
    from otamodel.model._machine import get_diagram

    defn = MACHINES[machine].defn
    chosen = Variant.from_name(variant)
    if fmt == "mermaid":
        text: str | bytes = get_diagram(defn, variant=chosen)
    else:
        text = get_diagram(defn, variant=chosen, engine="graphviz")
        if fmt == "svg":
            dot = shutil.which("dot")
            if dot is None:
                raise ScenarioError(
                    "--format svg needs Graphviz's 'dot' (apt-get install graphviz)"
                )
            done = subprocess.run(
                [dot, "-Tsvg"], input=text.encode(), capture_output=True, check=False
            )
            if done.returncode:
                message = done.stderr.decode("utf-8", "replace").strip().splitlines()
                raise ScenarioError(f"dot failed: {message[-1] if message else done.returncode}")
            text = done.stdout
    write_output(output or "-", text)
