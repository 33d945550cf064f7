"""Write the sample inputs README.md uses (deterministic: the same bytes on every run).

    python examples/make_examples.py            # rewrites the files beside this script

``old.bin``/``new.bin`` an image pair (two application pages after the 4 KB boot-control
placeholder, as the model builds them), ``ota.json`` a manifest offering ``new.bin``,
``image_database.csv`` the database row the service writes for it, ``page.bin`` the
boot-control page after the app validated v2, ``app.hex``/``boot.hex`` Intel HEX files of
the application and a stand-in bootloader.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import bincopy

from otamodel.formats import bootctl, otadb
from otamodel.formats import manifest as mf
from otamodel.formats.hexfile import DEFAULT_START
from otamodel.model import REAL_GEOMETRY, make_image

BOOT_START = 0x1000_0000  # the boot flash the bootloader links to (physical address)
SERVER = "http://127.0.0.1:8000"


def get_image_pair() -> tuple[bytes, bytes]:
    """v1, and v2 = v1 with a new version byte and one changed row (a small patch)."""
    old = make_image(REAL_GEOMETRY, 1, "app", 2).data
    new = bytearray(old)
    offset = REAL_GEOMETRY.page_size
    new[offset + 4] = 2  # the version byte after the magic
    new[offset + 1024 : offset + 1024 + 64] = hashlib.sha256(b"v2 change").digest() * 2
    return old, bytes(new)


def get_hex(data: bytes, address: int) -> str:
    image = bincopy.BinFile()
    image.add_binary(data, address=address)
    return str(image.as_ihex())


def get_files() -> dict[str, bytes]:
    old, new = get_image_pair()
    digest = hashlib.sha256(new).hexdigest()
    header = bootctl.BootControlHeader(
        status=0xF8, slot=1, order=1, type=1, sz=len(new), version=2,
        boot_addr=bootctl.DEFAULT_BOOT_ADDR, digest=hashlib.sha256(new).digest(),
    )
    page = bootctl.with_header(bootctl.get_default_page(), header)
    db = otadb.ImageDatabase(rows=(("new.bin", "f8", "2", "0x01", digest),))
    bootloader = hashlib.sha256(b"stand-in bootloader").digest() * 64  # 2 KB
    return {
        "old.bin": old,
        "new.bin": new,
        "ota.json": mf.make_manifest(version=2, url=f"{SERVER}/new.bin", digest=digest),
        "image_database.csv": otadb.serialize(db),
        "page.bin": page,
        "app.hex": get_hex(new, DEFAULT_START).encode(),
        "boot.hex": get_hex(bootloader, BOOT_START).encode(),
    }


def main(folder: Path) -> None:
    for name, data in get_files().items():
        (folder / name).write_bytes(data)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
