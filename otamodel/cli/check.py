"""``otamodel check``, ``otamodel replay`` and ``otamodel report``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from otamodel._io import OutputSet, get_child_path, write_output
from otamodel.cli import SCENARIO, about_input, json_option, main, variant_choice


def _run_check(
    scenario: Any,
    *,
    max_states: int | None,
    time_limit: float | None,
    workers: int,
    quiet: bool,
    shortest: bool = False,
    cluster: str | None = None,
) -> Any:
    """Run the checker on ``scenario`` with a live progress line on stderr (unless quiet)."""
    from rich.console import Console

    from otamodel.checker import check, live_progress
    from otamodel.verify._properties import OtaModel

    model = OtaModel(scenario)
    options: dict[str, Any] = {
        "max_states": max_states,
        "time_limit": time_limit,
        "workers": workers,
        "cost": None if shortest else model.get_action_cost,
        "cluster": cluster,
        "shortest": shortest,
    }
    if quiet:
        return check(model, **options)
    with live_progress(Console(stderr=True)) as hook:
        return check(model, progress=hook, **options)


@main.command("check")
@click.option(
    "--scenario",
    "scenario_name",
    type=SCENARIO,
    default="default",
    show_default=True,
    help="Scenario name or TOML/JSON file.",
)
@click.option("--variant", type=variant_choice(), default=None, help="Code variant.")
@json_option("Write the verdicts as JSON (to FILE if given; - is stdout).", "json_file")
@click.option(
    "--traces",
    "traces_dir",
    type=click.Path(file_okay=False),
    help="Write a trace file per violation/witness.",
)
@click.option(
    "--max-states", type=click.IntRange(1), default=None, help="Stop after this many states."
)
@click.option(
    "--time-limit", type=click.FloatRange(0.1), default=None, help="Stop after this many seconds."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes for expansion.",
)
@click.option(
    "--cluster",
    metavar="ADDRESS",
    default=None,
    help="Run on the Dask scheduler at ADDRESS (tcp://host:8786); see docs/cluster.md.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option(
    "--shortest",
    is_flag=True,
    help="Report the shortest traces instead of the ones with the fewest faults.",
)
def check_command(
    scenario_name: str,
    variant: str | None,
    json_file: str | None,
    traces_dir: str | None,
    max_states: int | None,
    time_limit: float | None,
    workers: int,
    cluster: str | None,
    quiet: bool,
    shortest: bool,
) -> None:
    """Explore every reachable state of a scenario and report which properties hold.

    Exit 0 when every property holds, 1 when one is violated (or has no witness).
    """
    from rich.console import Console
    from rich.table import Table

    from otamodel.env import get_scenario, with_variant
    from otamodel.model import Variant
    from otamodel.verify._tracefile import get_trace_text

    scenario = get_scenario(scenario_name)
    if variant is not None:
        try:
            Variant.from_name(variant)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--variant") from None
        scenario = with_variant(scenario, variant)
    report = _run_check(
        scenario,
        max_states=max_states,
        time_limit=time_limit,
        workers=workers,
        quiet=quiet,
        shortest=shortest,
        cluster=cluster,
    )
    console = Console(soft_wrap=True, stderr=json_file == "-")
    table = Table(title=f"{scenario.name} · {scenario.config.variant.value}")
    for col in ("property", "kind", "verdict", "trace"):
        table.add_column(col)
    rows = []
    for res in report.results:
        trace_len = len(res.trace) if res.trace is not None else None
        table.add_row(
            res.name, res.kind.value, res.verdict.value, "" if trace_len is None else str(trace_len)
        )
        rows.append(
            {
                "property": res.name,
                "kind": res.kind.value,
                "verdict": res.verdict.value,
                "trace_length": trace_len,
                "actions": [str(a) for a in res.trace.actions] if res.trace is not None else None,
            }
        )
    console.print(table)
    console.print(
        f"{report.unique_states:,} states, {report.transitions:,} transitions, "
        f"max depth {report.max_depth}, {report.seconds:.1f} s "
        f"({report.states_per_second:,.0f} states/s), stop: {report.stop_reason.value}"
    )
    with OutputSet() as outputs:  # the JSON and the traces together or not at all (IO-5)
        if json_file:
            doc = {
                "scenario": scenario.name,
                "variant": scenario.config.variant.value,
                "unique_states": report.unique_states,
                "transitions": report.transitions,
                "max_depth": report.max_depth,
                "seconds": round(report.seconds, 3),
                "stop_reason": report.stop_reason.value,
                "results": rows,
            }
            outputs.add(json_file, json.dumps(doc, indent=1) + "\n")
        if traces_dir:
            folder = Path(traces_dir)
            folder.mkdir(parents=True, exist_ok=True)
            for res in report.results:
                if res.trace is None:
                    continue
                name = f"{scenario.name}-{scenario.config.variant.value}-{res.name}"
                outputs.add(
                    get_child_path(folder, name, ".json"),
                    get_trace_text(
                        scenario=scenario,
                        property_name=res.name,
                        verdict=res.verdict.value,
                        actions=list(res.trace.actions),
                    ),
                )
        outputs.commit()
    sys.exit(0 if report.is_ok else 1)


@main.command()
@click.argument("trace_file", type=click.Path(dir_okay=False))
@click.option(
    "--mermaid", is_flag=True, help="Print a Mermaid sequence diagram instead of the timeline."
)
@click.option(
    "--itf",
    "itf_file",
    default=None,
    metavar="FILE",
    help="Write the trace in the Informal Trace Format (Apalache/Quint JSON; '-': stdout).",
)
@json_option("Print the replayed timeline as JSON (to FILE if given; - is stdout).")
def replay(trace_file: str, mermaid: bool, itf_file: str | None, json_out: str | None) -> None:
    """Re-execute a trace file and print what changed in persistent state at each step."""
    from otamodel.verify._tracefile import get_mermaid_sequence, read_trace
    from otamodel.verify._tracefile import replay as run_replay

    with about_input(trace_file):
        trace = read_trace(trace_file)
    if itf_file is not None:
        from otamodel.verify._itf import get_itf

        doc = get_itf(
            trace.scenario,
            trace.actions,
            description=f"{trace.property_name} ({trace.verdict}) from {trace_file}",
        )
        write_output(itf_file, json.dumps(doc, indent=1) + "\n")
        return
    steps, problem = run_replay(trace.scenario, trace.actions)
    if json_out is not None:
        from otamodel.cli.model import write_timeline_json

        write_timeline_json(json_out, trace.scenario, steps, problem)
    elif mermaid:
        click.echo(get_mermaid_sequence(steps), nl=False)
    else:
        click.echo(
            f"{trace.scenario.name} · {trace.scenario.config.variant.value} · "
            f"{trace.property_name} ({trace.verdict})"
        )
        from otamodel.cli.model import echo_timeline

        echo_timeline(steps)
        if problem is None and len(trace.recorded) == len(steps):
            drift = [
                i + 1
                for i, (rec, s) in enumerate(zip(trace.recorded, steps, strict=True))
                if rec.get("state") != s.summary
            ]
            if drift:  # another scenario or another model version: a negative result
                click.echo(
                    f"error: {trace_file}: the states differ from the recorded ones at steps "
                    f"{drift[:10]}",
                    err=True,
                )
                sys.exit(1)
    if problem is not None:
        click.echo(f"error: the trace no longer reproduces: {problem}", err=True)
        sys.exit(1)


@main.command()
@click.option(
    "-o", "--output", default="docs/findings.md", show_default=True, type=click.Path(dir_okay=False)
)
@click.option(
    "--scenario",
    "scenarios",
    type=SCENARIO,
    multiple=True,
    help="Limit to these scenarios (default: all).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(1),
    default=300,
    show_default=True,
    help="Per scenario and variant.",
)
def report(output: str, scenarios: tuple[str, ...], time_limit: float) -> None:
    """Check every scenario and variant and write the findings report (Markdown)."""
    from otamodel.verify._findings import write_findings

    write_findings(
        output,
        scenarios=scenarios or None,
        time_limit=time_limit,
        echo=lambda text: click.echo(text, err=True),
    )
