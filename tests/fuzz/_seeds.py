"""Seed inputs for the fuzz targets, made the way the unit tests make theirs (and from the shared
vectors when present)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from otamodel.formats import bootctl, jdiff, otadb
from otamodel.formats import manifest as mf

REPO = Path(__file__).resolve().parents[2]
DIGEST = "ab" * 32


def _shared() -> Path:
    override = os.environ.get("OTAMODEL_SHARED")
    return (Path(override) if override else REPO.parent / "shared") / "vectors"


def _files(folder: Path, pattern: str, limit: int = 1 << 16) -> list[bytes]:
    if not folder.is_dir():
        return []
    return [p.read_bytes() for p in sorted(folder.rglob(pattern)) if p.stat().st_size <= limit]


def _rec(kind: int, offset: int, data: bytes = b"") -> str:
    body = bytes([len(data), offset >> 8, offset & 0xFF, kind]) + data
    return ":" + (body + bytes([-sum(body) & 0xFF])).hex().upper()


@functools.cache
def manifests() -> list[bytes]:
    return [
        mf.make_manifest(2, "http://h/a.bin", DIGEST),
        mf.make_manifest(3, "http://h/b.bin", DIGEST, erase_ver=True),
        mf.make_manifest(4, "https://h/c.bin", DIGEST, signature="A" * 86 + "=="),
        b'{"ota": []}',
        b'{"ota": [{"Version": 1}, {"Version": 2, "URL": "http://x/y.bin"}]}',
    ]


@functools.cache
def databases() -> list[bytes]:
    return [
        b"img0,0xF3,1,1," + b"ab" * 32 + b"\n",
        b"img0,0xF3,1,1,00\nimg1,0xF1,2,1,11\n",
        b'"img0",0xFF,300,1,"x,y"\n',
        b"",
    ]


@functools.cache
def bootctl_pages() -> list[bytes]:
    page = bootctl.get_default_page()
    return [page, page[: bootctl.HEADER_SIZE], b"\xff" * bootctl.PAGE_SIZE]


@functools.cache
def patches() -> list[bytes]:
    old = bytes(range(256)) * 4
    new = old[100:] + b"new data" + old[:100]
    seeds = [jdiff.encode(old, new), jdiff.encode(b"", b"abc"), jdiff.encode(old, old)]
    seeds += _files(_shared() / "jdiff", "*.jdf")
    seeds += [bytes.fromhex("a7a3 fe ff ff ff ff"), bytes.fromhex("a7a6 01 a7a3 02")]
    return seeds


OLD_FILE = bytes(range(256)) * 4


@functools.cache
def hex_files() -> list[bytes]:
    eof = ":00000001FF"
    lines = [_rec(4, 0, b"\x10\x02"), _rec(0, 0, b"\x01\x02\x03\x04"), _rec(0, 4, b"\x05")]
    return [
        ("\n".join([*lines, eof]) + "\n").encode(),
        (
            "\n".join(
                [_rec(2, 0, b"\x10\x00"), _rec(0, 0x10, b"\xaa"), _rec(5, 0, b"\x00" * 4), eof]
            )
            + "\n"
        ).encode(),
        ("\n".join(lines) + "\n").encode(),
    ]


@functools.cache
def keys() -> list[bytes]:
    from otamodel.formats import signature

    pem = signature.derive_private_key_pem(12345)
    return [
        pem,
        signature.public_key_pem(pem),
        *_files(_shared() / "signature", "*.key"),
        *_files(_shared() / "signature", "*.pub"),
    ]


@functools.cache
def signatures() -> list[bytes]:
    from otamodel.formats import signature

    pem = signature.derive_private_key_pem(12345)
    return [signature.sign(b"data", pem, deterministic=True).encode(), b"A" * 88, b"=="]


@functools.cache
def scenarios() -> list[bytes]:
    folder = REPO / "otamodel" / "scenarios"
    return [p.read_bytes() for p in sorted(folder.glob("*.toml"))] + [
        b'name = "g"\ngeometry = { page_size = 512, row_size = 128, slot_pages = 5 }\n',
        b'{"name": "j", "budget": {"power_cut": 1}, "releases": [{"version": 2}]}',
    ]


@functools.cache
def traces() -> list[bytes]:
    import json

    doc = {
        "format": "otamodel-trace/1",
        "scenario": "default",
        "variant": "harmony-3.9.1",
        "property": "p",
        "verdict": "violated",
        "actions": ["tick", "timer", "tick"],
        "steps": [],
    }
    with_source = dict(doc, scenario_source={"name": "default", "budget": {"power_cut": 1}})
    return [json.dumps(doc).encode(), json.dumps(with_source).encode()]


def actions_files() -> list[bytes]:
    return [b"tick\ntimer\ntick\n", b"# comment\npower_cut\nctrl(rollback)\n", b"publish(1)\n"]


__all__ = ["OLD_FILE", "otadb"]
