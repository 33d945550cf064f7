"""``otamodel patch``: apply, create and show jdiff 0.7 patches.

Errors (a malformed patch, an unreadable file) are one line on stderr with exit 2, and
``apply``/``create`` never leave a partial output file (an existing one is untouched).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from otamodel._io import write_atomic
from otamodel.cli import main
from otamodel.formats import jdiff

_DIALECT = click.Choice(jdiff.DIALECTS)


@main.group()
def patch() -> None:
    """jdiff 0.7 patches (the OTA "patch" feature)."""


@patch.command("apply")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("patch_file", metavar="PATCH", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dialect",
    type=_DIALECT,
    default="07",
    show_default=True,
    help="07: explicit MOD (what the device accepts); 085: implicit MOD (jdiff 0.8.4+).",
)
@click.option(
    "--lenient",
    is_flag=True,
    help="Decode malformed constructs as the real decoders do instead of failing.",
)
def apply_command(old: Path, patch_file: Path, out: Path, dialect: str, lenient: bool) -> None:
    """Rebuild OUT from OLD and PATCH (streaming, fixed 1024-byte pages)."""
    size = jdiff.apply(old, patch_file, out, dialect=dialect, strict=not lenient)
    click.echo(f"wrote {size} bytes to {out}")


@patch.command("create")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("patch_file", metavar="PATCH", type=click.Path(dir_okay=False, path_type=Path))
def create_command(old: Path, new: Path, patch_file: Path) -> None:
    """Write a strict jdiff 0.7 PATCH that turns OLD into NEW."""
    old_bytes = old.read_bytes()
    new_bytes = new.read_bytes()
    data = jdiff.encode(old_bytes, new_bytes)
    write_atomic(patch_file, data)
    click.echo(f"wrote {len(data)}-byte patch to {patch_file} ({len(new_bytes)}-byte new file)")


@patch.command("show")
@click.argument("patch_file", metavar="PATCH", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dialect", type=_DIALECT, default="07", show_default=True)
@click.option("--lenient", is_flag=True, help="List what lenient decoding would do.")
@click.option("--json", "as_json", is_flag=True, help="Print the op list as JSON.")
def show_command(patch_file: Path, dialect: str, lenient: bool, as_json: bool) -> None:
    """List the operations of PATCH (op, length, old offset, new offset)."""
    raw = patch_file.read_bytes()
    ops = jdiff.list_ops(raw, dialect, strict=not lenient)
    if as_json:
        click.echo(json.dumps([op.to_dict() for op in ops], indent=1))
        return
    click.echo(f"{'patch@':>10} {'op':3} {'length':>10} {'old@':>10} {'new@':>10}  data")
    for op in ops:
        preview = op.data[:16].hex(" ") + (" ..." if len(op.data) > 16 else "")
        click.echo(
            f"{op.patch_offset:>10} {op.kind.name:3} {op.length:>10} {op.old_offset:>10} "
            f"{op.new_offset:>10}  {preview}"
        )
    new_size = ops[-1].get_new_end() if ops else 0
    click.echo(f"{len(ops)} ops, {len(raw)}-byte patch, {new_size}-byte new file")
