"""``otamodel release make | lint`` and ``otamodel serve``: publish OTA releases.

Exit status: 0 success (``lint``: no problems), 1 ``lint`` found problems, 2 bad input (one line
on stderr). ``make`` never overwrites without ``--force`` and never leaves a partial directory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import click

from otamodel._io import write_output
from otamodel.cli import json_option, main
from otamodel.errors import OtaModelError
from otamodel.formats import signature
from otamodel.formats.hexfile import DEFAULT_SIZE, DEFAULT_START
from otamodel.release._lint import (
    REAL_CHUNK,
    REAL_SLOT,
    LintContext,
    ReleaseProblem,
    lint_directory,
    lint_release,
    load_bases,
)
from otamodel.release._make import Overrides, ReleaseInfo, make_release

__all__ = ["release_group", "serve_command"]

EXIT_PROBLEMS = 1
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_DIR = click.Path(file_okay=False, path_type=Path)


def _hex_number(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return int(value.strip(), 16)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a hex number", ctx, param) from None


@main.group("release")
def release_group() -> None:
    """Make and lint OTA releases (manifest, image, patches, signature)."""


def _print_summary(info: ReleaseInfo, out: Path, problems: list[ReleaseProblem]) -> None:
    click.echo(f"release v{info.version} in {out}")
    image = info.get_image(str(out))
    click.echo(f"  image     {image.file}  {image.size} B  sha256 {image.sha256}")
    click.echo(f"            {image.url}")
    for p in info.patches:
        click.echo(
            f"  patch     {p.patch.file}  {p.patch.size} B  from v{p.base_version} "
            f"(base sha256 {p.base_digest[:16]}…)"
        )
    click.echo(f"  manifest  {info.manifest}  signed: {'yes' if info.signed else 'no'}")
    _print_problems(problems, prefix="  lint: ")


def _print_problems(problems: list[ReleaseProblem], prefix: str = "") -> None:
    for p in problems:
        click.echo(f"{prefix}{p.severity}: {p.rule}: {p.where}: {p.message}")
        if p.effect is not None:
            click.echo(f"{prefix}    on a device: {p.effect.describe()}")
    errors = sum(p.severity == "error" for p in problems)
    click.echo(f"{prefix}{len(problems)} problem(s), {errors} error(s)")


def _print_erase(info: ReleaseInfo, out: Path, problems: list[ReleaseProblem]) -> None:
    click.echo(f"EraseVer release of v{info.version} in {out}")
    click.echo(f"  manifest  {info.manifest}  (devices delete their copy of v{info.version})")
    _print_problems(problems, prefix="  lint: ")


def _split_paths(paths: tuple[Path, ...], erase: bool) -> tuple[Path | None, Path]:
    """``SOURCE OUT``, or only ``OUT`` with --erase-version (REL-9)."""
    wanted = 1 if erase else 2
    if len(paths) != wanted:
        usage = "OUT (with --erase-version)" if erase else "SOURCE OUT"
        raise click.UsageError(f"expected {usage}, got {len(paths)} path(s)")
    return (None, paths[0]) if erase else (paths[0], paths[1])


@release_group.command("make")
@click.argument("paths", nargs=-1, metavar="[SOURCE] OUT", type=click.Path(path_type=Path))
@click.option(
    "--version",
    "version",
    type=click.IntRange(1, 255),
    help="The release's version (the application's compiled-in version).",
)
@click.option(
    "--erase-version",
    type=click.IntRange(1, 255),
    help="Make an EraseVer release instead: devices delete their copy of this version (no SOURCE).",
)
@click.option("--base-url", help="Where the files will be hosted (http/https).")
@click.option("--name", help="File stem of the image [default: SOURCE stem + _v<version>].")
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM private key: add a Signature (deterministic, RFC 6979).",
)
@click.option("--password", help="Passphrase of the private key.")
@click.option(
    "--base",
    "bases",
    multiple=True,
    type=_DIR,
    help="An earlier release directory to add a jdiff 0.7 patch from (repeatable).",
)
@click.option(
    "--min-patch-size",
    type=click.IntRange(0, 1 << 20),
    default=4096,
    show_default=True,
    help="Pad smaller patches to this size (the device's first download buffer; 0: never).",
)
@click.option(
    "--manifest-size",
    type=click.IntRange(1, 1 << 20),
    help="Pad the manifest with spaces to this many bytes.",
)
@click.option(
    "--unchecked",
    is_flag=True,
    help="Make a deliberately wrong release to test devices: allow a --name or --base-url "
    "the device mishandles and the field overrides below (lint still reports them).",
)
@click.option(
    "--manifest-version",
    type=click.IntRange(0, (1 << 31) - 1),
    help="[--unchecked] Version to write.",
)
@click.option("--digest", "digest_text", help="[--unchecked] Digest to write.")
@click.option(
    "--base-version",
    type=click.IntRange(0, (1 << 31) - 1),
    help="[--unchecked] BaseVersion to write.",
)
@click.option("--base-digest", help="[--unchecked] BaseVerDigest to write.")
@click.option("--force", is_flag=True, help="Replace OUT if it is a release directory.")
@json_option("Print the summary as JSON (to FILE if given; - is stdout).")
@click.option(
    "-s",
    "--start",
    default=f"{DEFAULT_START:x}",
    callback=_hex_number,
    show_default=True,
    help="hex2bin window start (hex), for a .hex SOURCE.",
)
@click.option(
    "-z",
    "--size",
    default=f"{DEFAULT_SIZE:x}",
    callback=_hex_number,
    show_default=True,
    help="hex2bin window size (hex), for a .hex SOURCE.",
)
def make_command(
    paths: tuple[Path, ...],
    version: int | None,
    erase_version: int | None,
    base_url: str | None,
    name: str | None,
    key_file: Path | None,
    password: str | None,
    bases: tuple[Path, ...],
    min_patch_size: int,
    manifest_size: int | None,
    unchecked: bool,
    manifest_version: int | None,
    digest_text: str | None,
    base_version: int | None,
    base_digest: str | None,
    force: bool,
    json_out: str | None,
    start: int,
    size: int,
) -> None:
    """Build the release directory OUT from an application SOURCE (.hex or .bin), or with
    --erase-version an EraseVer release (OUT only).

    OUT gets the .bin, ota.json (Version, URL, Digest, "EraseVer": false, Signature with --key,
    one Patch entry per --base), from-v<N>/<name>.patch for each base, and release.json (the
    summary).
    \f
    Rules: REL-1..REL-9.
    """
    erase = erase_version is not None
    source, out = _split_paths(paths, erase)
    if erase and version is not None:
        raise click.UsageError("--version and --erase-version exclude each other")
    if not erase and (version is None or base_url is None):
        raise click.UsageError("--version and --base-url are required (or --erase-version)")
    key_pem = key_file.read_bytes() if key_file is not None else None
    secret = password.encode() if password is not None else None
    overrides = Overrides(manifest_version, digest_text, base_version, base_digest)
    release_version = erase_version if erase_version is not None else version
    assert release_version is not None
    info = make_release(
        source,
        out,
        version=release_version,
        base_url=base_url or "",
        name=name,
        key_pem=key_pem,
        password=secret,
        bases=bases,
        force=force,
        start=start,
        size=size,
        min_patch=min_patch_size,
        manifest_size=manifest_size,
        overrides=overrides,
        unchecked=unchecked,
        erase=erase,
    )
    public = signature.public_key_pem(key_pem, password=secret) if key_pem is not None else None
    ctx = LintContext(public_key_pem=public, bases=load_bases(bases))
    problems = lint_directory(out, ctx)
    if json_out is not None:
        data = info.to_json()
        data["lint"] = [p.to_json() for p in problems]
        write_output(json_out, json.dumps(data, indent=1, sort_keys=True) + "\n")
    elif info.image is None:
        _print_erase(info, out, problems)
    else:
        _print_summary(info, out, problems)


def _fetch_url(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return bytes(answer.read())
    except (urllib.error.URLError, OSError):
        return None


@release_group.command("lint")
@click.argument("target")
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The device's public key (PEM; a private key also works).",
)
@click.option(
    "--base",
    "bases",
    multiple=True,
    type=_DIR,
    help="A release the device may hold (patch bases, current version; repeatable).",
)
@click.option(
    "--device-version", type=click.IntRange(0, 255), help="The version the device runs now."
)
@click.option(
    "--geometry",
    type=click.Choice(["real", "small"]),
    default="real",
    show_default=True,
    help="Flash geometry: slot size and download chunk.",
)
@click.option(
    "--variant",
    type=click.Choice(["harmony-3.9.1", "harmony-3.9.0", "hardened"]),
    default="harmony-3.9.1",
    show_default=True,
    help="The device's code.",
)
@json_option("Print the problems as JSON (to FILE if given; - is stdout).")
def lint_command(
    target: str,
    key_file: Path | None,
    bases: tuple[Path, ...],
    device_version: int | None,
    geometry: str,
    variant: str,
    json_out: str | None,
) -> None:
    """Check the release in directory TARGET (or served at a loopback manifest URL).

    Everything `manifest lint` checks, plus the hosted files, each problem with what the model
    says it does to a device. Exit status 0: no problem, 1: problems, 2: unreadable input.
    \f
    Rules: REL-10..REL-18.
    """
    from otamodel.model import SMALL_GEOMETRY

    public = None
    if key_file is not None:
        public = signature.public_key_pem(key_file.read_bytes())
    chunk, slot = (
        (SMALL_GEOMETRY.chunk, SMALL_GEOMETRY.slot_size)
        if geometry == "small"
        else (REAL_CHUNK, REAL_SLOT)
    )
    ctx = LintContext(public, load_bases(bases), chunk, slot, variant, device_version)
    if target.startswith(("http://", "https://")):
        if urlsplit(target).hostname not in _LOOPBACK:
            raise click.BadParameter(
                "only a loopback URL (127.0.0.1, localhost)", param_hint="TARGET"
            )
        manifest = _fetch_url(target)
        if manifest is None:
            raise click.BadParameter(f"cannot fetch {target}", param_hint="TARGET")
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(target))

        def fetch(url: str) -> bytes | None:
            # REL-19: the files are fetched by path from the server that served the manifest.
            try:
                path = urlsplit(url).path or "/"
            except ValueError:  # an unparseable URL: the device's download fails too
                return None
            return _fetch_url(origin + path)

        problems = lint_release(manifest, fetch, ctx, target)
    else:
        folder = Path(target)
        if not folder.is_dir():
            raise click.BadParameter(f"{target} is not a directory", param_hint="TARGET")
        problems = lint_directory(folder, ctx)
    if json_out is not None:
        write_output(json_out, json.dumps([p.to_json() for p in problems], indent=1) + "\n")
    elif not problems:
        click.echo(f"{target}: no problems")
    else:
        _print_problems(problems)
    if problems:
        sys.exit(EXIT_PROBLEMS)


@main.command("serve")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--tls", is_flag=True, help="HTTPS with a self-signed certificate (or --cert).")
@click.option("--cert", type=click.Path(dir_okay=False, path_type=Path), help="PEM certificate.")
@click.option(
    "--cert-key", type=click.Path(dir_okay=False, path_type=Path), help="PEM key of --cert."
)
@click.option(
    "--cert-dir",
    type=_DIR,
    help="Where to write the self-signed cert.pem/key.pem [default: a new temp dir].",
)
@click.option("--publish", default="", help="Serve this sub-directory of ROOT at / (a release).")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    help="PATH:KIND[:key=value,...], e.g. /app_v2.bin:drop:bytes=5000 (repeatable).",
)
@click.option(
    "--faults",
    "fault_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A TOML file of [[fault]] tables (and publish = NAME).",
)
@click.option("--max-connections", type=click.IntRange(1, 10000), default=32, show_default=True)
@click.option("--idle-timeout", type=click.FloatRange(0.1, 3600), default=10.0, show_default=True)
@click.option("--no-control", is_flag=True, help="Disable the /_otamodel/ control endpoint.")
def serve_command(
    root: Path,
    host: str,
    port: int,
    tls: bool,
    cert: Path | None,
    cert_key: Path | None,
    cert_dir: Path | None,
    publish: str,
    faults: tuple[str, ...],
    fault_file: Path | None,
    max_connections: int,
    idle_timeout: float,
    no_control: bool,
) -> None:
    """Serve the releases under ROOT over HTTP (or HTTPS), with faults on demand.

    Faults: drop (after bytes=N), stall (after bytes=N, seconds=S), length (length=N or
    missing), status (status=404), switch (release=DIR, after serving the path), flip
    (offset=N), throttle (rate=B/s); each may take after=PATH (only once PATH was served) and
    times=N. Change them at runtime: POST /_otamodel/faults, /_otamodel/publish,
    /_otamodel/reset; GET /_otamodel/state. Each request is logged on stderr.
    \f
    Rules: REL-30..REL-39.
    """
    from otamodel.release._faults import ServeConfig, load_config, parse_fault

    try:
        from otamodel.release._serve import ServerOptions, serve_forever
    except (ImportError, AttributeError) as exc:  # no aiohttp, or one older than 3.14
        raise OtaModelError(
            f"serve needs aiohttp>=3.14 ({exc}): pip install 'otamodel[serve]'"
        ) from None
    from otamodel.release._tls import make_self_signed, server_context

    config = load_config(fault_file) if fault_file is not None else ServeConfig()
    extra = tuple(parse_fault(f, f"--fault {f}") for f in faults)
    config = ServeConfig(config.faults + extra, publish or config.publish)
    context = None
    if tls or cert is not None:
        if cert is None:
            if cert_dir is not None and cert_dir.resolve().is_relative_to(root.resolve()):
                raise click.BadParameter(
                    "must not lie inside ROOT (the key would be served)", param_hint="--cert-dir"
                )
            folder = cert_dir or Path(tempfile.mkdtemp(prefix="otamodel-serve-"))
            cert, cert_key = make_self_signed(folder, host)
            click.echo(f"self-signed certificate: {cert} (trust it as a CA)", err=True)
        if cert_key is None:
            raise click.BadParameter("--cert needs --cert-key", param_hint="--cert-key")
        context = server_context(cert, cert_key)
    if host not in _LOOPBACK:
        click.echo(f"warning: binding {host}: reachable from other machines", err=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    options = ServerOptions(
        host=host,
        port=port,
        ssl_context=context,
        max_connections=max_connections,
        idle_timeout=idle_timeout,
        control=not no_control,
    )
    try:
        asyncio.run(serve_forever(root, options, config))
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        raise OtaModelError(f"serve: cannot listen on {host}:{port}: {exc.strerror}") from None
