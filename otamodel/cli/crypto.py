"""``otamodel keygen | sign | verify | hex2bin | hexmerge``: the image tools.

These replace Harmony's ``ecdsaSign.py`` and ``hex2bin.py`` plus the unified-image merge.
Output files go through :mod:`otamodel._io` (atomic, umask, devices written in place), so a
failed command never leaves a half-written file; ``keygen`` writes its two keys together or
not at all (IO-5). Exit status: 0 success, 1 ``verify`` found the signature invalid, 2 bad
input, 3 a bound hit (``--max-window``, ``--max-records``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from otamodel._io import OutputSet, read_input, write_output
from otamodel.cli import about_input, json_option, main
from otamodel.errors import HexFileError
from otamodel.formats.digest import sha256_file
from otamodel.formats.hexfile import (
    DEFAULT_SIZE,
    DEFAULT_START,
    MAX_RECORDS,
    MAX_WINDOW,
    hex_to_bin,
    merge_hex,
)
from otamodel.formats.signature import (
    decode_signature,
    generate_private_key_pem,
    load_public_key,
    public_key_pem,
    sign_digest,
    verify_digest,
)

__all__ = ["hex2bin", "hexmerge", "keygen", "sign", "verify"]

_F = TypeVar("_F", bound=Callable[..., Any])

EXIT_INVALID = 1

_PRIVATE_MODE = 0o600
#: Longest line of an Intel HEX record (255 data bytes) with CR LF: bounds the bytes read.
_MAX_LINE = 1 + 2 * (5 + 255) + 2
_KEY_MAX_BYTES = 64 * 1024


def _hex_number(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """Read ``-s``/``-z`` like hex2bin.py: a hex number, with or without ``0x`` (TOOL-13)."""
    text = value.strip()
    try:
        return int(text, 16)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a hex number", ctx, param) from None


def _read_hex(path: str, max_records: int) -> str:
    # latin-1 never fails, so a stray non-ASCII byte is reported with its line by the parser.
    limit = max_records * _MAX_LINE
    return read_input(path, limit=limit, option="--max-records").decode("latin-1")


def _read_key(path: str) -> bytes:
    return read_input(path, limit=_KEY_MAX_BYTES)


def _max_records_option() -> Callable[[_F], _F]:
    return click.option(
        "--max-records",
        type=click.IntRange(1),
        default=MAX_RECORDS,
        show_default=True,
        help="Refuse an input with more records (exit 3).",
    )


def _passphrase(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8")


def _public_path(key_path: Path) -> Path:
    return key_path.with_suffix(".pub")


@main.command()
@click.argument("out", metavar="OUT.key", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@click.option(
    "--pub/--no-pub",
    default=True,
    show_default=True,
    help="Also write the public key next to the private key, with the suffix .pub.",
)
def keygen(out: str, force: bool, pub: bool) -> None:
    """Generate a P-256 signing key.

    OUT.key gets the private key as unencrypted SEC1 PEM, as `openssl ecparam -genkey -name
    prime256v1 -noout` writes it (readable only by the owner); OUT.pub, unless --no-pub, the
    public key as `openssl ec -pubout` writes it. Existing files are refused unless --force.
    \f
    Rules: TOOL-20, TOOL-22.
    """
    if not out.strip() or out.endswith(("/", "\\")) or Path(out).name in ("", ".", ".."):
        raise click.BadParameter(f"{out!r} is not a file name", param_hint="OUT.key")
    key_path = Path(out)
    pub_path = _public_path(key_path)
    if pub and pub_path == key_path:
        raise click.UsageError(f"{out}: the key file must not end in .pub")
    targets = [key_path, pub_path] if pub else [key_path]
    existing = [str(path) for path in targets if path.exists()]
    if existing and not force:
        click.echo(f"error: {', '.join(existing)} exists (use --force to overwrite)", err=True)
        sys.exit(2)
    private_pem = generate_private_key_pem()
    with OutputSet() as outputs:  # both keys or neither (IO-5)
        outputs.add(key_path, private_pem, mode=_PRIVATE_MODE)
        if pub:
            outputs.add(pub_path, public_key_pem(private_pem))
        outputs.commit()
    for path in targets:
        click.echo(f"wrote {path}", err=True)


@main.command()
@click.option(
    "-k",
    "--key",
    "key",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="PEM private key.",
)
@click.option("-p", "--passphrase", default=None, help="Passphrase of an encrypted key.")
@click.option("--deterministic", is_flag=True, help="RFC 6979 signature (same input, same output).")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@json_option("Print the file, its digest and the signature as JSON (to FILE; - is stdout).")
def sign(
    key: str, passphrase: str | None, deterministic: bool, file: str, json_out: str | None
) -> None:
    """Print the base64 raw r||s ECDSA P-256 signature of FILE.

    The signature covers the SHA-256 of the whole file, as ecdsaSign.py makes it; paste it into
    the manifest's Signature field.
    \f
    Rules: TOOL-1, TOOL-2, TOOL-9, TOOL-21.
    """
    key_pem = _read_key(key)
    digest = sha256_file(file)
    with about_input(key):
        signature = sign_digest(
            digest,
            key_pem,
            deterministic=deterministic,
            password=_passphrase(passphrase),
        )
    if json_out is not None:
        doc = {"file": file, "digest": digest.hex(), "signature": signature}
        write_output(json_out, json.dumps(doc, indent=1) + "\n")
        return
    click.echo(signature)


@main.command()
@click.option(
    "-k",
    "--key",
    "key",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="PEM public or private key.",
)
@click.option(
    "-s",
    "--signature",
    "signature",
    required=True,
    help="Base64 raw r||s signature (88 characters).",
)
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@json_option("Print the verdict as JSON (to FILE if given; - is stdout).")
def verify(key: str, signature: str, file: str, json_out: str | None) -> None:
    """Check a signature of FILE: exit 0 if valid, 1 if invalid, 2 if malformed.

    \f
    Rules: TOOL-5, TOOL-21.
    """
    key_pem = _read_key(key)
    digest = sha256_file(file)
    with about_input("--signature"):
        decode_signature(signature.strip())
    with about_input(key):
        load_public_key(key_pem)
        ok = verify_digest(digest, signature.strip(), key_pem)
    if json_out is not None:
        doc = {"file": file, "digest": digest.hex(), "valid": ok}
        write_output(json_out, json.dumps(doc, indent=1) + "\n")
    else:
        click.echo("valid" if ok else "invalid")
    if not ok:
        sys.exit(EXIT_INVALID)


@main.command()
@click.option(
    "-i",
    "--input",
    "input_hex",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Intel HEX input.",
)
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False),
    help="Output .bin [default: the input name with .bin].",
)
@click.option(
    "-s",
    "--start",
    "start",
    callback=_hex_number,
    default=f"{DEFAULT_START:#x}",
    show_default=True,
    help="Window start address (hex).",
)
@click.option(
    "-z",
    "--size",
    "size",
    callback=_hex_number,
    default=f"{DEFAULT_SIZE:#x}",
    show_default=True,
    help="Window (slot) size (hex).",
)
@click.option("--factory", is_flag=True, help="Factory image: full window, byte 0 set to 0xF8.")
@json_option("Print a JSON summary instead (to FILE if given; - is stdout).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option(
    "--max-window",
    callback=_hex_number,
    default=f"{MAX_WINDOW:#x}",
    show_default=True,
    help="Refuse a larger -z window (hex; exit 3).",
)
@_max_records_option()
def hex2bin(
    *,
    input_hex: str,
    output: str | None,
    start: int,
    size: int,
    factory: bool,
    json_out: str | None,
    force: bool,
    max_window: int,
    max_records: int,
) -> None:
    """Convert Intel HEX to an OTA .bin as hex2bin.py does.

    Prints "Digest":"<sha256>" ready for the manifest. Data records not wholly inside the
    window are left out and counted on stderr; when none is inside, nothing is written (exit
    2). An existing output file is refused unless --force; -o - writes to stdout.
    \f
    Rules: TOOL-13, TOOL-17, TOOL-22, CLI-3, CLI-4.
    """
    out_path = Path(output) if output else Path(input_hex).with_suffix(".bin")
    to_file = output != "-"
    if to_file and out_path.resolve() == Path(input_hex).resolve():
        raise HexFileError(f"output {out_path} would overwrite the input")
    if to_file and out_path.is_file() and not force:
        raise click.UsageError(f"{out_path} exists (use --force to overwrite)")
    with about_input(input_hex):
        result = hex_to_bin(
            _read_hex(input_hex, max_records),
            start=start,
            size=size,
            factory=factory,
            max_window=max_window,
            max_records=max_records,
            require_eof=True,
        )
    if not result.placed:
        raise HexFileError(
            f"no data record inside the window [{result.start:#010x}, {result.end:#010x}) "
            f"({len(result.dropped)} left out); check -s/-z",
            source=input_hex,
        )
    write_output(out_path if to_file else "-", result.data)
    if json_out is not None:
        summary = {
            "input": input_hex,
            "output": str(out_path),
            "start": result.start,
            "end": result.start + len(result.data),
            "size": len(result.data),
            "factory": result.factory,
            "digest": result.digest_hex,
            "placed_records": result.placed,
            "dropped_records": [
                {"line": rec.line, "address": rec.address, "length": rec.length}
                for rec in result.dropped
            ],
        }
        write_output(json_out, json.dumps(summary, indent=2) + "\n")
        return
    if result.dropped:
        first = result.dropped[0]
        click.echo(
            f"note: {len(result.dropped)} data record(s) outside "
            f"[{result.start:#010x}, {result.end:#010x}) left out "
            f"(first at line {first.line}, address {first.address:#010x})",
            err=True,
        )
    click.echo(
        f"generated {out_path} ({result.start:08X} ~ {result.start + len(result.data):08X}, "
        f"{len(result.data)} bytes)",
        err=True,
    )
    click.echo(result.digest_line, err=not to_file)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Unified Intel HEX output (- is stdout).",
)
@_max_records_option()
def hexmerge(inputs: tuple[str, ...], output: str, max_records: int) -> None:
    """Merge bootloader and application HEX files into one unified HEX.

    Overlapping records must hold identical data; the first differing address is an error.
    \f
    Rules: TOOL-18, TOOL-22.
    """
    texts = [_read_hex(path, max_records) for path in inputs]
    merged = merge_hex(*texts, names=list(inputs), max_records=max_records, require_eof=True)
    write_output(output, merged)
    click.echo(f"wrote {output}", err=True)
