"""The boot-control area: the 256-byte ``FIRMWARE_IMAGE_HEADER`` and its 4 KB flash page.

The header is packed little-endian exactly as the C struct lies in memory. Integer fields are
kept as plain ``int`` so that values outside :class:`ImageStatus`/:class:`ImageType` (a
half-programmed page, an AND of two headers) still round-trip byte for byte. The page helpers
model NOR programming, which can only clear bits. Rules: BC-1 … BC-6 in
``docs/spec/bootctl.md``.
"""

from __future__ import annotations

import enum
import functools
import struct

import attrs

from otamodel.errors import BootControlError

__all__ = [
    "BLANK_PREFIX_SIZE",
    "DEDICATED_BOOTFLASH_BOOT_ADDR",
    "DEFAULT_BOOT_ADDR",
    "DIGEST_SIZE",
    "HEADER_SIZE",
    "PAGE_SIZE",
    "RSVD_SIZE",
    "SIGNATURE_BYTE_OFFSET",
    "BootControlHeader",
    "ImageStatus",
    "ImageType",
    "can_program",
    "get_default_header",
    "get_default_page",
    "get_set_bits_over_cleared",
    "get_status_name",
    "get_type_name",
    "is_blank_prefix",
    "program_result",
    "unpack",
    "unpack_page",
    "with_header",
]

PAGE_SIZE = 4096
HEADER_SIZE = 256
DIGEST_SIZE = 32
RSVD_SIZE = 208
SIGNATURE_BYTE_OFFSET = 4095
BLANK_PREFIX_SIZE = 16
DEFAULT_BOOT_ADDR = 0xB0021000
DEDICATED_BOOTFLASH_BOOT_ADDR = 0xB0000200

_STRUCT = struct.Struct("<BBBBIII32s208s")
_U8 = 0xFF
_U32 = 0xFFFFFFFF


class ImageStatus(enum.IntEnum):
    """``IMG_STATUS``: each step clears more bits, so NOR flash can move down the list."""

    INVALID = 0xFF
    DOWNLOADED = 0xFE
    UNBOOTED = 0xFC
    VALID = 0xF8
    DISABLED = 0xF0


class ImageType(enum.IntEnum):
    """``IMG_TYPE``."""

    FLASH_PROGRAMMER = 0x00
    PRODUCTION = 0x01
    DEBUG = 0x02
    FACTORY_RESET = 0x03


def get_status_name(value: int) -> str:
    """BC-2: the ``IMG_STATUS`` name of ``value``, or ``0xNN`` for a value outside it."""
    try:
        return ImageStatus(value).name
    except ValueError:
        return f"0x{value:02X}"


def get_type_name(value: int) -> str:
    """BC-2: the ``IMG_TYPE`` name of ``value``, or ``0xNN`` for a value outside it."""
    try:
        return ImageType(value).name
    except ValueError:
        return f"0x{value:02X}"


@attrs.frozen
class BootControlHeader:
    """BC-1: ``FIRMWARE_IMAGE_HEADER``: status, slot, order, type (``uint8_t`` each), sz,
    version, boot_addr (``uint32_t`` each), digest[32], rsvd[208]."""

    status: int = attrs.field(converter=int)
    slot: int = attrs.field(converter=int)
    order: int = attrs.field(converter=int)
    type: int = attrs.field(converter=int)
    sz: int = attrs.field(converter=int)
    version: int = attrs.field(converter=int)
    boot_addr: int = attrs.field(converter=int)
    digest: bytes = attrs.field(default=bytes(DIGEST_SIZE), converter=bytes)
    rsvd: bytes = attrs.field(default=bytes(RSVD_SIZE), converter=bytes)

    def __attrs_post_init__(self) -> None:
        for name, value, limit in (
            ("status", self.status, _U8),
            ("slot", self.slot, _U8),
            ("order", self.order, _U8),
            ("type", self.type, _U8),
            ("sz", self.sz, _U32),
            ("version", self.version, _U32),
            ("boot_addr", self.boot_addr, _U32),
        ):
            if not 0 <= value <= limit:
                raise BootControlError(f"{value} does not fit the field", where=name)
        if len(self.digest) != DIGEST_SIZE:
            raise BootControlError(f"{len(self.digest)} bytes, need {DIGEST_SIZE}", where="digest")
        if len(self.rsvd) != RSVD_SIZE:
            raise BootControlError(f"{len(self.rsvd)} bytes, need {RSVD_SIZE}", where="rsvd")

    def pack(self) -> bytes:
        """BC-1: the 256 bytes of the header, little-endian."""
        return _pack(self)

    def get_status_name(self) -> str:
        """BC-2: the status as an ``IMG_STATUS`` name (or hex)."""
        return get_status_name(self.status)

    def get_type_name(self) -> str:
        """BC-2: the type as an ``IMG_TYPE`` name (or hex)."""
        return get_type_name(self.type)


@functools.lru_cache(maxsize=4096)
def _pack(header: BootControlHeader) -> bytes:
    return _STRUCT.pack(
        header.status,
        header.slot,
        header.order,
        header.type,
        header.sz,
        header.version,
        header.boot_addr,
        header.digest,
        header.rsvd,
    )


def unpack(data: bytes) -> BootControlHeader:
    """BC-1: the header in exactly 256 bytes; any other length is a BootControlError."""
    if len(data) != HEADER_SIZE:
        raise BootControlError(f"a header is {HEADER_SIZE} bytes, got {len(data)}")
    return _unpack(bytes(data))


@functools.lru_cache(maxsize=4096)
def _unpack(data: bytes) -> BootControlHeader:
    return BootControlHeader(*_STRUCT.unpack(data))


def unpack_page(page: bytes) -> tuple[BootControlHeader, bytes]:
    """BC-1: a page's header and the bytes after it (offset 256 to the end of the page)."""
    if len(page) < HEADER_SIZE:
        raise BootControlError(f"a page holds at least {HEADER_SIZE} bytes, got {len(page)}")
    return unpack(page[:HEADER_SIZE]), bytes(page[HEADER_SIZE:])


def with_header(page: bytes, header: BootControlHeader) -> bytes:
    """BC-1: ``page`` with its first 256 bytes replaced by ``header`` (what the writers build
    in RAM by copying the header over the start of a 4 KB buffer)."""
    if len(page) < HEADER_SIZE:
        raise BootControlError(f"a page holds at least {HEADER_SIZE} bytes, got {len(page)}")
    return header.pack() + bytes(page[HEADER_SIZE:])


def get_default_header(*, dedicated_bootflash: bool = False) -> BootControlHeader:
    """BC-3: the header of the compiled-in ``BOOT_CONTROL_INSTANCE``.

    Status, slot and order 0xFF, type FACTORY_RESET, sz 0xFFFFFFFF, version 1, boot address
    0xB0021000 (0xB0000200 with the hidden dedicated-boot-flash option); the digest and the
    reserved bytes are zero, because C zero-fills what an initializer leaves out.
    """
    return BootControlHeader(
        status=ImageStatus.INVALID,
        slot=0xFF,
        order=0xFF,
        type=ImageType.FACTORY_RESET,
        sz=_U32,
        version=1,
        boot_addr=DEDICATED_BOOTFLASH_BOOT_ADDR if dedicated_bootflash else DEFAULT_BOOT_ADDR,
    )


@functools.lru_cache(maxsize=2)
def get_default_page(*, dedicated_bootflash: bool = False) -> bytes:
    """BC-3: the 4096 bytes of ``BOOT_CONTROL_INSTANCE``: the default header, zeros up to
    offset 4094 (the empty ``{}`` initializer) and 0xF8 (IMG_STATUS_VALID) at offset 4095."""
    header = get_default_header(dedicated_bootflash=dedicated_bootflash).pack()
    filler = bytes(SIGNATURE_BYTE_OFFSET - HEADER_SIZE)
    return header + filler + bytes((ImageStatus.VALID,))


def is_blank_prefix(page: bytes) -> bool:
    """BC-4: the bootloader's "uninitialized" test: the first 16 bytes are all 0xFF."""
    prefix = page[:BLANK_PREFIX_SIZE]
    return len(prefix) == BLANK_PREFIX_SIZE and prefix == b"\xff" * BLANK_PREFIX_SIZE


def _same_length(old: bytes, new: bytes) -> None:
    if len(old) != len(new):
        raise BootControlError(f"cannot program {len(new)} bytes over {len(old)} bytes")


def can_program(old: bytes, new: bytes) -> bool:
    """BC-5: True iff writing ``new`` over ``old`` without an erase gives exactly ``new``:
    programming only clears bits, so ``new`` may not set a bit that ``old`` has cleared."""
    _same_length(old, new)
    return get_set_bits_over_cleared(old, new) == 0


def program_result(old: bytes, new: bytes) -> bytes:
    """BC-5: what the flash holds after writing ``new`` over ``old`` without an erase: the
    bitwise AND (the assumption of harmony-behaviour.md §11)."""
    _same_length(old, new)
    value = int.from_bytes(old, "little") & int.from_bytes(new, "little")
    return value.to_bytes(len(old), "little")


def get_set_bits_over_cleared(old: bytes, new: bytes) -> int:
    """BC-5: how many bits ``new`` would have to set (0 → 1) over ``old``; 0 iff
    :func:`can_program`."""
    _same_length(old, new)
    stuck = int.from_bytes(new, "little") & ~int.from_bytes(old, "little")
    return stuck.bit_count()
