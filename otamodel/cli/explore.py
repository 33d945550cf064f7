"""``otamodel explore``: serve the explorer page on 127.0.0.1 (EXP-1)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from otamodel.cli import about_input, main, scenario_options


@main.command("explore")
@scenario_options("Code variant (default: the scenario's).")
@click.option(
    "--trace",
    "trace_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A trace file to open at its first step (its scenario is used).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="TCP port on 127.0.0.1 (0: any free port).",
)
def explore_command(
    scenario_name: str, variant: str | None, trace_file: str | None, port: int
) -> None:
    """Serve a local web page to walk the state space, step a device and open findings.

    The server binds 127.0.0.1 only and stops on Ctrl-C.
    \f
    Rules: EXP-1.
    """
    from otamodel.env import get_scenario, with_variant
    from otamodel.explore import Explorer
    from otamodel.verify import read_trace

    opening: list[str] = []
    property_name = ""
    if trace_file is not None:
        with about_input(trace_file):
            trace = read_trace(trace_file)
        scenario = trace.scenario
        opening = [str(a) for a in trace.actions]
        property_name = trace.property_name
    else:
        scenario = get_scenario(scenario_name)
    if variant is not None:
        scenario = with_variant(scenario, variant)
    explorer = Explorer(scenario)
    if opening:
        explorer.replay(tuple(explorer.parse_path(opening)))
        explorer.opening = {"path": opening, "property": property_name}
    try:
        asyncio.run(_serve(explorer, port))
    except KeyboardInterrupt:
        click.echo("explorer stopped", err=True)


async def _serve(explorer: Any, port: int) -> None:
    from aiohttp import web

    from otamodel.explore import create_app

    runner = web.AppRunner(create_app(explorer), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        click.echo(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror}", err=True)
        sys.exit(2)
    server = site._server  # the bound socket tells the real port when --port 0
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    click.echo(f"otamodel explorer: http://127.0.0.1:{bound}/  (Ctrl-C stops)", err=False)
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
