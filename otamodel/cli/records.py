"""``otamodel manifest lint | db show | bootctl show``: the device's records, read as it reads them.

Exit status: 0 success (for ``lint``: no problems), 1 ``lint`` found problems, 2 unreadable
input (one line on stderr), 3 a bound hit (``--max-bytes``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from otamodel._io import get_size, read_input, write_output
from otamodel.cli import about_input, json_option, main
from otamodel.errors import BootControlError, BoundError
from otamodel.formats import bootctl, manifest, otadb

__all__ = ["bootctl_group", "db_group", "manifest_group"]

EXIT_PROBLEMS = 1
_WIDE = 200

_FILE = click.Path(dir_okay=False, path_type=Path)


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = _WIDE
    return console


def _emit_json(data: Any, target: str) -> None:
    write_output(target, json.dumps(data, indent=1) + "\n")


#: Default of ``manifest lint --max-bytes``: 32 times what the device reads (BOUND-2).
LINT_MAX_BYTES = 64 * 1024
#: Largest boot-control input read (a page).
_BOOTCTL_MAX = bootctl.PAGE_SIZE
#: Default of ``db show --max-bytes`` (the device's file is a few hundred bytes).
DB_MAX_BYTES = 1024 * 1024


# -- manifest ---------------------------------------------------------------------------------


@main.group("manifest")
def manifest_group() -> None:
    """OTA manifests (the JSON the service downloads)."""


@manifest_group.command("lint")
@click.argument("file", type=_FILE)
@json_option("Print the problems as a JSON list (to FILE if given; - is stdout).")
@click.option(
    "--max-bytes",
    type=click.IntRange(manifest.JSON_FILE_MAXSIZE),
    default=LINT_MAX_BYTES,
    show_default=True,
    help="Lint at most this many bytes; a larger file gets only the device's verdict, exit 3.",
)
def lint_command(file: Path, json_out: str | None, max_bytes: int) -> None:
    """List every problem a publisher should fix in FILE.

    Exit status 0 when there is none, 1 when there are problems, 2 when FILE cannot be read,
    3 when FILE is larger than --max-bytes (the device reads only its first bytes).
    \f
    Rules: MAN-30, MAN-31, MAN-32, BOUND-2.
    """
    size = get_size(file)
    if size > max_bytes:
        click.echo(
            f"{file}: error: $: {size} bytes: the service reads at most "
            f"{manifest.JSON_READ_LIMIT} (SYS_OTA_JSON_FILE_MAXSIZE - 10), so the update check "
            "fails and nothing after that is used"
        )
        raise BoundError(f"{file}: {size} bytes not linted", option="--max-bytes")
    with about_input(file):
        problems = manifest.lint(read_input(file, limit=max_bytes, option="--max-bytes"))
    if json_out is not None:
        _emit_json(
            [{"path": p.path, "severity": p.severity, "message": p.message} for p in problems],
            json_out,
        )
    elif not problems:
        click.echo(f"{file}: no problems")
    else:
        for p in problems:
            click.echo(f"{file}: {p.severity}: {p.path}: {p.message}")
        errors = sum(p.severity == "error" for p in problems)
        click.echo(f"{len(problems)} problem(s), {errors} error(s)")
    if problems:
        sys.exit(EXIT_PROBLEMS)


# -- db ---------------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The OTA image database (image_database.csv)."""


def _hex(value: int | None, width: int = 2) -> str:
    return "-" if value is None else f"0x{value:0{width}X}"


@db_group.command("show")
@click.argument("file", type=_FILE)
@json_option("Print the rows as JSON (to FILE if given; - is stdout).")
@click.option(
    "--max-bytes",
    type=click.IntRange(1),
    default=DB_MAX_BYTES,
    show_default=True,
    help="Refuse a larger file (exit 3).",
)
def db_show_command(file: Path, json_out: str | None, max_bytes: int) -> None:
    """Show the rows of FILE as the device loads them.

    Versions are shown as written (decimal) and as every C reader reads them (base 16).
    \f
    Rules: DB-20, DB-21.
    """
    with about_input(file):
        db = otadb.parse(read_input(file, limit=max_bytes, option="--max-bytes"))
        rows = otadb.get_rows(db)
    if json_out is not None:
        _emit_json(
            {
                "rows": [
                    {
                        "row": r.row,
                        "name": r.name,
                        "status": r.status_text,
                        "status_read": r.status,
                        "version": r.version_text,
                        "version_written": r.version_written,
                        "version_read": r.version_read,
                        "type": r.type_text,
                        "digest": r.digest,
                        "fields": list(db.rows[r.row]),
                    }
                    for r in rows
                ],
                "total_imgs": otadb.get_total_imgs(db),
            },
            json_out,
        )
        return
    table = Table(title=str(file))
    for title in ("row", "name", "status", "version", "read as", "type", "digest"):
        table.add_column(title, no_wrap=True)
    for r in rows:
        status = (
            f"{r.status_text} ({bootctl.get_status_name(r.status)})"
            if r.status is not None
            else (r.status_text if r.status_text is not None else "-")
        )
        table.add_row(
            str(r.row),
            r.name if r.name is not None else "-",
            status,
            r.version_text if r.version_text is not None else "-",
            "-" if r.version_read is None else f"{r.version_read} (0x{r.version_read:X})",
            r.type_text if r.type_text is not None else "-",
            r.digest if r.digest is not None else "-",
        )
    _console().print(table)


# -- bootctl ----------------------------------------------------------------------------------


@main.group("bootctl")
def bootctl_group() -> None:
    """The boot-control header and page."""


def _describe_bytes(data: bytes) -> str:
    if not data:
        return "empty"
    if data == bytes(len(data)):
        return "all 0x00"
    if data == b"\xff" * len(data):
        return "all 0xFF"
    return data.hex()


@bootctl_group.command("show")
@click.argument("file", type=_FILE)
@json_option("Print the fields as JSON (to FILE if given; - is stdout).")
def bootctl_show_command(file: Path, json_out: str | None) -> None:
    """Show FILE: a 256-byte header or a 4096-byte boot-control page.
    \f
    Rules: BC-6.
    """
    size = get_size(file)
    data = b"" if size > _BOOTCTL_MAX else read_input(file, limit=_BOOTCTL_MAX)
    if len(data) not in (bootctl.HEADER_SIZE, bootctl.PAGE_SIZE):
        raise BootControlError(
            f"is {size or len(data)} bytes; expected a {bootctl.HEADER_SIZE}-byte header "
            f"or a {bootctl.PAGE_SIZE}-byte page",
            source=str(file),
        )
    with about_input(file):
        header, rest = bootctl.unpack_page(data)
    info: dict[str, Any] = {
        "size": len(data),
        "status": header.status,
        "status_name": header.get_status_name(),
        "slot": header.slot,
        "order": header.order,
        "type": header.type,
        "type_name": header.get_type_name(),
        "sz": header.sz,
        "version": header.version,
        "boot_addr": header.boot_addr,
        "digest": header.digest.hex(),
        "rsvd": header.rsvd.hex(),
        "blank_prefix": bootctl.is_blank_prefix(data),
    }
    if len(data) == bootctl.PAGE_SIZE:
        info["signature_byte"] = data[bootctl.SIGNATURE_BYTE_OFFSET]
        info["is_default_page"] = data == bootctl.get_default_page()
        info["reserved"] = _describe_bytes(
            rest[: bootctl.SIGNATURE_BYTE_OFFSET - bootctl.HEADER_SIZE]
        )
    if json_out is not None:
        _emit_json(info, json_out)
        return
    lines = [
        ("status", f"{_hex(header.status)} {header.get_status_name()}"),
        ("slot", _hex(header.slot)),
        ("order", _hex(header.order)),
        ("type", f"{_hex(header.type)} {header.get_type_name()}"),
        ("sz", f"{_hex(header.sz, 8)} ({header.sz})"),
        ("version", f"{header.version} ({_hex(header.version, 8)})"),
        ("boot_addr", _hex(header.boot_addr, 8)),
        ("digest", _describe_bytes(header.digest)),
        ("rsvd", _describe_bytes(header.rsvd)),
        ("blank (first 16 bytes 0xFF)", "yes" if info["blank_prefix"] else "no"),
    ]
    if len(data) == bootctl.PAGE_SIZE:
        lines += [
            ("bytes 256-4094", str(info["reserved"])),
            ("byte 4095", _hex(info["signature_byte"])),
            ("compiled-in default page", "yes" if info["is_default_page"] else "no"),
        ]
    click.echo(f"{file}: {len(data)}-byte {'page' if len(data) == bootctl.PAGE_SIZE else 'header'}")
    for name, value in lines:
        click.echo(f"  {name:28} {value}")
