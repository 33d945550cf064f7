"""A 0/1 value per state, stored as bits (CHK-16: the verdict bits cost a bit a state).

The search appends each new state's value to :attr:`Bits.tail` (a ``bytearray`` of 0/1
bytes: the hot loop's ``append`` stays a C call) and, at the end of every level,
:meth:`Bits.flush` packs the tail's whole bytes into :attr:`Bits.packed`, eight states a
byte, bit ``i % 8`` of byte ``i // 8`` for state ``i``. The analysis after the search asks
for one property's values at a time as 0/1 bytes (:meth:`Bits.get_bytes`); packing and
unpacking go through ``int`` and its binary digits (C speed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import compress

FLIP = bytes([1, 0]) + bytes(254)
"""A ``translate`` table: 0/1 bytes flipped (other values to 0)."""
BIT_OF = [bytes((value >> bit) & 1 for value in range(256)) for bit in range(8)]
"""``translate`` tables: a byte to its bit ``bit`` (0/1)."""
_TO_DIGITS = bytes.maketrans(b"\x00\x01", b"01")
_FROM_DIGITS = bytes.maketrans(b"01", b"\x00\x01")


def pack(values: bytes | bytearray) -> bytes:
    """0/1 bytes (a multiple of 8 of them) as bits: value ``i`` is bit ``i % 8`` of byte
    ``i // 8``."""
    if not values:
        return b""
    return int(values.translate(_TO_DIGITS)[::-1], 2).to_bytes(len(values) // 8, "little")


def unpack(packed: bytes | bytearray) -> bytearray:
    """The 0/1 bytes of :func:`pack`'s bits."""
    if not packed:
        return bytearray()
    digits = format(int.from_bytes(packed, "little"), f"0{len(packed) * 8}b")
    return bytearray(digits[::-1].encode("ascii").translate(_FROM_DIGITS))


class Bits:
    """One 0/1 value per state number: packed whole bytes, then an unpacked tail."""

    __slots__ = ("packed", "tail")

    def __init__(self) -> None:
        self.packed = bytearray()
        self.tail = bytearray()
        """The values of the states after the packed ones, one byte each."""

    def __len__(self) -> int:
        return len(self.packed) * 8 + len(self.tail)

    def flush(self) -> None:
        """Pack the tail's whole bytes (the tail object stays the same: bound ``append``
        methods keep working)."""
        whole = len(self.tail) // 8 * 8
        if whole:
            self.packed += pack(self.tail[:whole])
            del self.tail[:whole]

    def extend_to(self, count: int) -> None:
        """Zeros up to ``count`` values."""
        self.tail.extend(bytes(count - len(self)))

    def set_ones(self, numbers: Iterable[int]) -> None:
        """Value 1 for each of ``numbers`` (all in the unpacked tail)."""
        base = len(self.packed) * 8
        tail = self.tail
        for number in numbers:
            tail[number - base] = 1

    def get_bytes(self) -> bytearray:
        """Every value as a 0/1 byte, in state order."""
        return unpack(self.packed) + self.tail

    def find_one(self) -> int:
        """The first state number whose value is 1, or -1."""
        first = len(self.packed) - len(self.packed.lstrip(b"\0"))
        if first < len(self.packed):
            byte = self.packed[first]
            return first * 8 + (byte & -byte).bit_length() - 1
        found = self.tail.find(1)
        return found if found < 0 else len(self.packed) * 8 + found

    def get_nbytes(self) -> int:
        """What the values take in memory (their buffers' lengths)."""
        return len(self.packed) + len(self.tail)


_ARRAY_SIZE = 4096
"""Byte strings of at least this many bytes are scanned in a whole-array operation."""


def get_ones(flags: bytes | bytearray | Sequence[int]) -> list[int]:
    """The positions of the non-zero entries of a byte string (or sequence)."""
    if isinstance(flags, (bytes, bytearray)) and len(flags) >= _ARRAY_SIZE:
        import numpy as np

        ones: list[int] = np.flatnonzero(np.frombuffer(flags, dtype=np.uint8)).tolist()
        return ones
    return list(compress(range(len(flags)), flags))


__all__ = ["BIT_OF", "FLIP", "Bits", "get_ones", "pack", "unpack"]
