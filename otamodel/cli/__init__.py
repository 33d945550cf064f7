"""The ``otamodel`` command.

Subcommands live in sibling modules (``records``, ``crypto``, ``patch``, ``model``, ``check``);
each registers itself on :data:`main`. Errors are one line on stderr with exit 2
(bad input) unless a command documents another code.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from otamodel.errors import OtaModelError


class _OtaGroup(click.Group):
    """A click group that turns otamodel errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OtaModelError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:
            name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            click.echo(f"error:{name}: {exc.strerror or exc}", err=True)
            sys.exit(2)


@click.group(cls=_OtaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="otamodel")
def main() -> None:
    """Executable, model-checked specification of the Harmony PIC32MZ-W1 OTA system."""


def _register() -> None:
    import importlib

    for name in (
        "records",
        "crypto",
        "patch",
        "model",
        "check",
        "cuts",
        "explore",
        "release",
        "sweep",
        "scenarios",
    ):
        try:
            importlib.import_module(f"otamodel.cli.{name}")
        except ModuleNotFoundError as exc:  # a command family not written yet
            if exc.name != f"otamodel.cli.{name}":
                raise


_register()
