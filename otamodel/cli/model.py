"""``otamodel simulate`` and ``otamodel diagram``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import click

from otamodel._io import read_input, write_output
from otamodel.cli import SCENARIO, json_option, main
from otamodel.errors import ScenarioError, TraceError
from otamodel.model import MACHINES

#: Largest ``simulate --actions`` file read (BOUND-5).
MAX_ACTIONS_BYTES = 16 * 1024 * 1024


@main.command()
@click.option(
    "--scenario",
    "scenario_name",
    type=SCENARIO,
    default="default",
    show_default=True,
    help="Scenario name or TOML/JSON file.",
)
@click.option(
    "--actions",
    "actions_file",
    type=click.Path(dir_okay=False),
    help="File with one action per line (default: tick until quiet).",
)
@click.option(
    "--steps",
    default=400,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Steps when no action file is given.",
)
@json_option("Print the timeline as JSON (to FILE if given; - is stdout).")
def simulate(
    scenario_name: str, actions_file: str | None, steps: int, json_out: str | None
) -> None:
    """Print a step-by-step timeline of a scenario (states, callbacks, persistent writes)."""
    from otamodel.env import TICK, enabled_actions, get_scenario, initial_world, step
    from otamodel.model import Action
    from otamodel.verify._tracefile import replay

    scenario = get_scenario(scenario_name)
    if actions_file is not None:
        raw = read_input(actions_file, limit=MAX_ACTIONS_BYTES, option="--max-document-bytes")
        try:
            lines = raw.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise TraceError(
                f"not UTF-8 text ({exc.reason})", where=exc.start, source=actions_file
            ) from None
        actions = []
        for number, line in enumerate(lines, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            action = Action.parse(text)
            from otamodel.model import ACTION_KINDS

            if action.kind not in ACTION_KINDS:
                raise TraceError(
                    f"unknown action {action.kind!r}", where=f"line {number}", source=actions_file
                )
            actions.append(action)
    else:
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
            world = result.world
            if _is_quiet(world):
                break
    replayed, problem = replay(scenario, actions)
    if json_out is not None:
        write_timeline_json(json_out, scenario, replayed, problem)
    else:
        click.echo(
            f"scenario {scenario.name} ({scenario.config.variant.value}): {scenario.description}"
        )
        echo_timeline(replayed)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)
        sys.exit(1)


def write_timeline_json(target: str, scenario: Any, steps: list[Any], problem: str | None) -> None:
    """CLI-2: the timeline as JSON: scenario, variant, one object per step, and the refusal."""
    doc = {
        "scenario": scenario.name,
        "variant": scenario.config.variant.value,
        "steps": [
            {
                "index": s.index,
                "action": str(s.action),
                "transition": s.result.transition,
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
        click.echo(f"{s.index:4d} {s.action!s:<18} {s.result.transition or ''}")
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
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write to a file instead of stdout (- is stdout).",
)
def diagram(machine: str, fmt: str, output: str | None) -> None:
    """Draw a machine's transition table (generated from the same table ``step`` uses)."""
    from otamodel.model import MACHINES, get_dot, get_mermaid

    spec = MACHINES[machine]
    if fmt == "mermaid":
        text: str | bytes = get_mermaid(spec)
    else:
        text = get_dot(spec)
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
