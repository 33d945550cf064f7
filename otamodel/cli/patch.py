"""``otamodel patch``: apply, create and show jdiff 0.7 patches.

Errors (a malformed patch, an unreadable file) are one line on stderr with exit 2, and
``apply``/``create`` never leave a partial output file (an existing one is untouched). The
output of ``apply`` is bounded by ``--max-size`` (default: the device's image slot), exit 3
when a patch would pass it (BOUND-3).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from otamodel._io import read_input, write_output
from otamodel.cli import about_input, json_option, main
from otamodel.formats import jdiff

_DIALECT = click.Choice(jdiff.DIALECTS)


#: Default of ``patch apply --max-size``: the device's image slot (0xDF000 bytes, hex2bin's
#: window); the device cannot hold a larger new image (BOUND-3).
DEFAULT_MAX_SIZE = 0xDF000
"""The application slot (``hexfile.DEFAULT_SIZE``; not imported: hexfile loads bincopy)."""
#: Default of ``--max-patch-bytes`` for the commands that read a whole patch into memory.
MAX_PATCH_BYTES = 64 * 1024 * 1024


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
@click.option(
    "--max-size",
    type=click.IntRange(0),
    default=DEFAULT_MAX_SIZE,
    show_default=True,
    help="Largest output in bytes (default: the device's image slot); exit 3 beyond it.",
)
def apply_command(
    old: Path, patch_file: Path, out: Path, dialect: str, lenient: bool, max_size: int
) -> None:
    """Rebuild OUT from OLD and PATCH (streaming, fixed 1024-byte pages; OUT - is stdout).
    \f
    Rules: BOUND-3.
    """
    with about_input(patch_file):
        size = jdiff.apply(
            old, patch_file, out, dialect=dialect, strict=not lenient, max_size=max_size
        )
    click.echo(f"wrote {size} bytes to {out}", err=str(out) == "-")


@patch.command("create")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("patch_file", metavar="PATCH", type=click.Path(dir_okay=False, path_type=Path))
def create_command(old: Path, new: Path, patch_file: Path) -> None:
    """Write a strict jdiff 0.7 PATCH that turns OLD into NEW."""
    old_bytes = read_input(old, limit=MAX_PATCH_BYTES, option="--max-patch-bytes")
    new_bytes = read_input(new, limit=MAX_PATCH_BYTES, option="--max-patch-bytes")
    data = jdiff.encode(old_bytes, new_bytes)
    write_output(patch_file, data)
    click.echo(f"wrote {len(data)}-byte patch to {patch_file} ({len(new_bytes)}-byte new file)")


@patch.command("show")
@click.argument("patch_file", metavar="PATCH", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dialect", type=_DIALECT, default="07", show_default=True)
@click.option("--lenient", is_flag=True, help="List what lenient decoding would do.")
@json_option("Print the op list as JSON (to FILE if given; - is stdout).")
@click.option(
    "--max-patch-bytes",
    type=click.IntRange(1),
    default=MAX_PATCH_BYTES,
    show_default=True,
    help="Refuse a larger patch (exit 3).",
)
def show_command(
    patch_file: Path, dialect: str, lenient: bool, json_out: str | None, max_patch_bytes: int
) -> None:
    """List the operations of PATCH (op, length, old offset, new offset)."""
    raw = read_input(patch_file, limit=max_patch_bytes, option="--max-patch-bytes")
    with about_input(patch_file):
        ops = jdiff.list_ops(raw, dialect, strict=not lenient)
    if json_out is not None:
        write_output(json_out, json.dumps([op.to_dict() for op in ops], indent=1) + "\n")
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
