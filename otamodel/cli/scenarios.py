"""``otamodel scenarios``: the scenario library and the scenario file format (SCN-4, SCN-8)."""

from __future__ import annotations

import click

from otamodel.cli import main


@main.command("scenarios")
@click.option("--schema", is_flag=True, help="Print the JSON Schema of scenario files instead.")
def scenarios_command(schema: bool) -> None:
    """List the shipped scenarios with their descriptions (names for --scenario)."""
    if schema:
        from otamodel.env._schema import get_schema_text

        click.echo(get_schema_text(), nl=False)
        return
    from otamodel.env import get_scenario, get_scenario_names

    for name in get_scenario_names():
        click.echo(f"{name}: {get_scenario(name).description}")
