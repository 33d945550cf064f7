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

_COMMANDS = {
    "manifest": "records",
    "db": "records",
    "bootctl": "records",
    "keygen": "crypto",
    "sign": "crypto",
    "verify": "crypto",
    "hex2bin": "crypto",
    "hexmerge": "crypto",
    "patch": "patch",
    "simulate": "model",
    "diagram": "model",
    "check": "check",
    "replay": "check",
    "report": "check",
    "explore": "explore",
}
"""Which module defines a command: a command imports only its own module (and what that
needs), so ``otamodel patch apply`` starts without the model, rich or cryptography. A
command missing here is found by importing every command module."""


class _OtaGroup(click.Group):
    """A click group that turns otamodel errors into one-line messages and imports a
    command's module only when the command is used."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = _COMMANDS.get(cmd_name)
            if module is not None:
                _load(module)
            if cmd_name not in self.commands:
                _register()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)

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
    for name in ("records", "crypto", "patch", "model", "check", "cuts", "explore", "release"):
        _load(name)


def _load(name: str) -> None:
    import importlib

    try:
        importlib.import_module(f"otamodel.cli.{name}")
    except ModuleNotFoundError as exc:  # a command family not written yet
        if exc.name != f"otamodel.cli.{name}":
            raise
