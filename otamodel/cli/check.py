"""``otamodel check``, ``otamodel replay`` and ``otamodel report``."""

from __future__ import annotations

import json
import shlex
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from otamodel._io import write_output
from otamodel.cli import (
    SCENARIO,
    about_input,
    get_cli_scenario,
    json_option,
    main,
    scenario_options,
)

EXIT_OK, EXIT_NEW, EXIT_BAD_INPUT, EXIT_BOUNDED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
PROGRESS_SECONDS = 5.0

VERDICT_STYLES = {
    "holds": "green",
    "witnessed": "green",
    "violated": "bold red",
    "no-witness": "bold red",
    "bounded": "yellow",
}


@contextmanager
def progress_hook(quiet: bool) -> Iterator[Any]:
    """A live status line on a terminal; elsewhere (CI logs) a plain line every few seconds,
    each ending with a newline; nothing when quiet."""
    if quiet:
        yield None
        return
    from rich.console import Console

    from otamodel.checker import get_progress_text, live_progress

    if sys.stderr.isatty():
        with live_progress(Console(stderr=True)) as hook:
            yield hook
        return
    last = [0.0]

    def plain(info: Any) -> None:
        now = time.monotonic()
        if info.is_final or now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            click.echo(f"progress: {get_progress_text(info).plain}", err=True)

    yield plain


def _write_text(target: str, text: str) -> None:
    write_output(target, text)


@main.command("check")
@scenario_options()
@click.option(
    "--property",
    "property_names",
    multiple=True,
    metavar="NAME",
    help="Check only this property (repeatable); module:function adds your own predicate "
    "over a World (an always-property) or a Property.",
)
@json_option("Write the full finding records as JSON (to FILE if given; - is stdout).", "json_file")
@click.option(
    "--traces",
    "traces_dir",
    type=click.Path(file_okay=False),
    help="Write one trace file per finding (ID.json) into this directory.",
)
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Compare with a baseline: print NEW / STILL / GONE; only NEW findings fail.",
)
@click.option(
    "--write-baseline",
    "write_baseline_file",
    type=click.Path(dir_okay=False),
    help="Record the findings of this variant in a baseline file (other variants kept).",
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
    property_names: tuple[str, ...],
    json_file: str | None,
    traces_dir: str | None,
    baseline_file: str | None,
    write_baseline_file: str | None,
    max_states: int | None,
    time_limit: float | None,
    workers: int,
    cluster: str | None,
    quiet: bool,
    shortest: bool,
) -> None:
    """Explore every reachable state of a scenario and list its findings: each distinct way a
    property fails, with a stable ID, a one-sentence story and its cheapest trace.

    \b
    Exit status:
      0    no new finding (every property holds, or every finding is in --baseline)
      1    new finding(s) (without --baseline: any finding)
      2    bad input (scenario, variant, property, baseline file...)
      3    no new finding, but a bound cut the search short (verdicts incomplete)
      130  interrupted (Ctrl-C)
    """
    from otamodel.verify._findings import (
        compare,
        get_baseline_ids,
        read_baseline,
        run_check,
        select_properties,
        update_baseline,
        write_finding_traces,
    )
    from otamodel.verify._properties import OtaModel

    scenario = get_cli_scenario(scenario_name, variant)
    baseline = None
    if baseline_file is not None:
        doc = read_baseline(baseline_file)
        baseline = get_baseline_ids(doc, scenario.config.variant.value, baseline_file)
    model = select_properties(OtaModel(scenario), property_names)
    options: dict[str, Any] = {
        "max_states": max_states,
        "time_limit": time_limit,
        "workers": workers,
        "cluster": cluster,
        "progress_interval": 0.5 if sys.stderr.isatty() else 1.0,
    }
    if shortest:
        options["shortest"] = True
    try:
        with progress_hook(quiet) as hook:
            report = run_check(model, progress=hook, **options)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    to_stdout = json_file == "-"
    comparison = None
    if baseline is not None:
        comparison = compare(report, baseline, [p.name for p in model.properties()])
    if not to_stdout:
        print_check(scenario, report, comparison, traces_dir, scenario_name, variant)
    if traces_dir:
        write_finding_traces(traces_dir, report, scenario)
    if json_file:
        _write_text(json_file, get_check_json(scenario, report, comparison))
    if write_baseline_file:
        update_baseline(write_baseline_file, scenario, report)
    new = comparison.new if comparison is not None else tuple(f.id for f in report.findings)
    failing = [r for r in report.results if r.is_failing and not report.get_findings(r.name)]
    if new or failing:
        sys.exit(EXIT_NEW)
    sys.exit(EXIT_OK if report.is_complete else EXIT_BOUNDED)


def print_check(
    scenario: Any,
    report: Any,
    comparison: Any,
    traces_dir: str | None,
    scenario_name: str,
    variant: str | None,
) -> None:
    """Exploration figures, the coloured verdicts, the findings table, NEW/STILL/GONE and
    the ``next:`` hint."""
    from rich.console import Console
    from rich.table import Table

    from otamodel.verify._findings import get_faults, get_story

    console = Console(soft_wrap=True, highlight=False)
    complete = "complete" if report.is_complete else f"BOUNDED by {report.stop_reason.value}"
    console.print(
        f"{scenario.name} · {scenario.config.variant.value}: {report.unique_states:,} states, "
        f"{report.transitions:,} transitions, max depth {report.max_depth}, "
        f"{report.seconds:.1f} s ({report.states_per_second:,.0f} states/s), search {complete}"
    )
    verdicts = Table(title="verdicts", title_justify="left")
    for col in ("property", "kind", "verdict", "findings"):
        verdicts.add_column(col)
    for res in report.results:
        style = VERDICT_STYLES.get(res.verdict.value, "")
        count = len(report.get_findings(res.name))
        verdicts.add_row(
            res.name,
            res.kind.value,
            f"[{style}]{res.get_label().split(' at depth')[0]}[/]",
            str(count) if count else "",
        )
    console.print(verdicts)
    if not report.findings:
        console.print("[green]no findings[/]")
        return
    status = {}
    if comparison is not None:
        status.update({fid: "NEW" for fid in comparison.new})
        status.update({fid: "STILL" for fid in comparison.still})
    width = max(60, min(console.width, 120))
    console.print(f"[bold]{len(report.findings)} findings[/] (ID, property, trace steps, faults "
                  "used; then the story)")  # fmt: skip
    for finding in report.findings:
        mark = status.get(finding.id, "")
        mark = f"[bold red]{mark}[/] " if mark == "NEW" else (f"{mark} " if mark else "")
        faults = ", ".join(get_faults(finding)) or "none"
        console.print(
            f"{mark}[bold]{finding.id}[/]  {finding.property}  {len(finding.trace)} steps  "
            f"faults: {faults}"
        )
        for line in textwrap.wrap(get_story(finding), width - 4):
            console.print(f"    {line}", markup=False)
    if comparison is not None:
        console.print(
            f"baseline: {len(comparison.new)} NEW, {len(comparison.still)} STILL, "
            f"{len(comparison.gone)} GONE"
        )
        for fid in comparison.gone:
            bounded = "" if report.is_complete else " (search bounded: may lie beyond the bound)"
            console.print(f"  GONE {fid}{bounded}")
    first = report.findings[0]
    if traces_dir:
        path = f"{traces_dir.rstrip('/')}/{first.id}.json"
        hint = f"otamodel replay {shlex.quote(path)}"
    else:
        args = ["otamodel", "check", "--scenario", scenario_name]
        if variant:
            args += ["--variant", variant]
        args += ["--traces", "traces", "-q"]
        hint = f"{shlex.join(args)} && otamodel replay traces/{first.id}.json"
    console.print(f"next: {hint}", markup=False)


def get_check_json(scenario: Any, report: Any, comparison: Any) -> str:
    from otamodel.verify._findings import get_record

    doc: dict[str, Any] = {
        "scenario": scenario.name,
        "variant": scenario.config.variant.value,
        "unique_states": report.unique_states,
        "transitions": report.transitions,
        "max_depth": report.max_depth,
        "seconds": round(report.seconds, 3),
        "stop_reason": report.stop_reason.value,
        "complete": report.is_complete,
        "results": [
            {
                "property": res.name,
                "kind": res.kind.value,
                "verdict": res.verdict.value,
                "findings": [f.id for f in report.get_findings(res.name)],
            }
            for res in report.results
        ],
        "findings": [get_record(f, scenario) for f in report.findings],
    }
    if comparison is not None:
        doc["baseline"] = {
            "new": list(comparison.new),
            "still": list(comparison.still),
            "gone": list(comparison.gone),
        }
    return json.dumps(doc, indent=1) + "\n"


@main.command()
@click.argument("trace_file", type=click.Path(dir_okay=False))
@click.option(
    "--mermaid", is_flag=True, help="Print a Mermaid sequence diagram instead of the story."
)
@click.option("--full", is_flag=True, help="Print every step, not only the steps that matter.")
@click.option(
    "--itf",
    "itf_file",
    default=None,
    metavar="FILE",
    help="Write the trace in the Informal Trace Format (Apalache/Quint JSON; '-': stdout).",
)
@json_option("Print the replayed timeline as JSON (to FILE if given; - is stdout).")
def replay(
    trace_file: str, mermaid: bool, full: bool, itf_file: str | None, json_out: str | None
) -> None:
    """Re-execute a trace file and tell its story: inputs and faults, persistent writes,
    machine state changes and the loop it ends in (--full: every step)."""
    from otamodel.env import initial_world
    from otamodel.verify._story import get_story_lines
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
        title = f"{trace.scenario.name} · {trace.scenario.config.variant.value} · "
        title += f"{trace.property_name} ({trace.verdict})"
        if trace.finding_id:
            title = f"{trace.finding_id}: {title}"
        click.echo(title)
        if trace.story:
            click.echo(trace.story)
        if full:
            from otamodel.cli.model import echo_timeline

            echo_timeline(steps)
        else:
            done = [s.action for s in steps]
            for line in get_story_lines(initial_world(trace.scenario), done):
                click.echo(f"{line.step:4} {line.text}")
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
    "--baselines",
    "baselines_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write one baseline file per scenario (SCENARIO.json) into this directory.",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(1),
    default=300,
    show_default=True,
    help="Per scenario and variant.",
)
def report(
    output: str, scenarios: tuple[str, ...], baselines_dir: str | None, time_limit: float
) -> None:
    """Check every scenario and variant and write the findings report (Markdown): findings
    deduplicated across scenarios, grouped by property, each with its story, compact trace and
    where it occurs; released vs hardened at the top."""
    from otamodel.verify._findings import write_findings

    try:
        write_findings(
            output,
            scenarios=scenarios or None,
            time_limit=time_limit,
            echo=lambda text: click.echo(text, err=True),
            baselines=baselines_dir,
        )
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
