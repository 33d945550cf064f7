"""Shared pieces of the jdiff 0.7 codec: byte values, the op record, lengths, the writer.

Private module; the public names are re-exported by :mod:`otamodel.formats.jdiff`.
Rule IDs (``PATCH-n``) refer to ``docs/spec/patch.md``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

ESC = 0xA7
MOD = 0xA6
INS = 0xA5
DEL = 0xA4
EQL = 0xA3
BKT = 0xA2

#: Largest value the 9-byte length form can carry as a signed file offset (``off_t``).
MAX_OFFSET = (1 << 63) - 1

#: Equal runs of this many bytes or fewer are folded into MOD data by the 0.7 writer.
MAX_FOLDED_EQL = 4

Dialect = Literal["07", "085"]
DIALECTS: tuple[str, ...] = ("07", "085")


class OpKind(enum.IntEnum):
    """The five jdiff operations; the value is the opcode byte that follows ``ESC`` (PATCH-2)."""

    MOD = MOD
    INS = INS
    DEL = DEL
    EQL = EQL
    BKT = BKT

    @property
    def is_data(self) -> bool:
        """True for MOD and INS, the operations followed by literal data."""
        return self in (OpKind.MOD, OpKind.INS)


@attrs.frozen
class Op:
    """One decoded patch operation.

    ``length`` is the number of data bytes (MOD/INS) or the length field (EQL/DEL/BKT).
    ``old_offset`` and ``new_offset`` are the old-file cursor and the output size before
    the operation; ``patch_offset`` is where the operation starts in the patch (its ``ESC``,
    or its first data byte for an implicit 0.8.5 MOD). ``data`` holds the decoded literal
    bytes of MOD/INS and is empty for the others.
    """

    kind: OpKind
    length: int
    old_offset: int
    new_offset: int
    patch_offset: int = -1
    data: bytes = attrs.field(default=b"", repr=lambda d: f"<{len(d)} bytes>")

    def get_old_end(self) -> int:
        """The old-file cursor after this operation (PATCH-7)."""
        if self.kind in (OpKind.MOD, OpKind.EQL, OpKind.DEL):
            return self.old_offset + self.length
        if self.kind is OpKind.BKT:
            return self.old_offset - self.length
        return self.old_offset

    def get_new_end(self) -> int:
        """The output size after this operation (PATCH-7)."""
        if self.kind in (OpKind.MOD, OpKind.INS, OpKind.EQL):
            return self.new_offset + self.length
        return self.new_offset

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view (data as lowercase hex)."""
        return {
            "op": self.kind.name,
            "length": self.length,
            "old_offset": self.old_offset,
            "new_offset": self.new_offset,
            "patch_offset": self.patch_offset,
            "data": self.data.hex(),
        }


def is_085_dialect(dialect: str) -> bool:
    """True for the 0.8.5 (implicit MOD) dialect, False for 0.7; ValueError for others."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown jdiff dialect {dialect!r} (expected '07' or '085')")
    return dialect == "085"


# ---------------------------------------------------------------------------- lengths


def get_length_size(first: int) -> int:
    """Total size in bytes of a length field whose first byte is ``first`` (PATCH-4)."""
    if first < 252:
        return 1
    return (2, 3, 5, 9)[first - 252]


def parse_length(field: bytes | memoryview) -> int:
    """Value of a complete length field (PATCH-4).

    The short forms are biased (``b0 + 1``, ``253 + x``); the 3/5/9-byte forms are
    big-endian absolute values, so non-minimal encodings and 0 are possible.
    """
    first = field[0]
    if first < 252:
        return first + 1
    if first == 252:
        return 253 + field[1]
    return int.from_bytes(field[1:], "big")


def encode_length(value: int) -> bytes:
    """Shortest length field for ``value`` as the 0.7 writer picks it (PATCH-18)."""
    if value < 1 or value > 0xFFFFFFFFFFFFFFFF:
        raise ValueError(f"length {value} cannot be written by a jdiff 0.7 writer")
    if value <= 252:
        return bytes((value - 1,))
    if value <= 508:
        return bytes((252, value - 253))
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "big")
    if value <= 0xFFFFFFFF:
        return b"\xfe" + value.to_bytes(4, "big")
    return b"\xff" + value.to_bytes(8, "big")


# ---------------------------------------------------------------------------- escaping

# An ESC data byte is doubled when the next data byte is an opcode or ESC, or when the
# data run ends right after it (the pending-ESC flush).
_NEEDS_DOUBLE = re.compile(rb"\xa7(?=[\xa2-\xa7]|\Z)")


def escape_data(data: bytes | bytearray | memoryview) -> bytes:
    """Escape one MOD/INS data run with the 0.7 pending-ESC rules (PATCH-19).

    Works on the whole run at once: an ``A7`` followed by a byte in ``A2..A7``, or ending
    the run, is written as ``A7 A7``; any other ``A7`` is written as it is.
    """
    raw = bytes(data)
    if b"\xa7" not in raw:
        return raw
    return _NEEDS_DOUBLE.sub(b"\xa7\xa7", raw)


# ---------------------------------------------------------------------------- the writer

# Internal op tuple used by the writer: (kind, length, old_offset, data).
# For EQL, ``data`` holds the equal bytes when the run is short enough to be folded
# (it may be empty for longer runs); for DEL/BKT it is empty.
RawOp = tuple[int, int, int, bytes]


def write_raw_ops(ops: Iterable[RawOp]) -> bytes:
    """Serialise operations with the jdiff 0.7 writer rules (PATCH-17 to PATCH-21).

    * every change to MOD or INS is announced by an explicit ``ESC MOD``/``ESC INS``, and
      an operator is never repeated for the current data op (PATCH-17);
    * adjacent EQL runs are merged; a run of at most 4 bytes is folded into MOD data when
      the current op is MOD or the next op is MOD, otherwise written as ``ESC EQL``
      (PATCH-20);
    * lengths use the shortest form (PATCH-18), data runs use the pending-ESC escaping
      (PATCH-19), and zero-length operations are not written (PATCH-21).
    """
    out: list[bytes] = []
    cur = ESC  # the writer starts with no operation
    run: list[bytes] = []  # data of the current MOD/INS run (escaped when the run ends)
    eql_len = 0  # pending equal bytes
    eql_data: list[bytes] = []

    def close_run() -> None:
        """Escape and write the current data run."""
        if run:
            out.append(escape_data(b"".join(run)))
            run.clear()

    def switch(kind: int) -> None:
        """Write ``ESC kind`` (after closing the data run) and make it current."""
        nonlocal cur
        close_run()
        out.append(bytes((ESC, kind)))
        cur = kind

    def flush_eql(next_kind: int) -> None:
        """Write the pending equal run as EQL or fold it into MOD data (PATCH-20)."""
        nonlocal eql_len
        if eql_len == 0:
            return
        if eql_len <= MAX_FOLDED_EQL and MOD in (cur, next_kind):
            folded = b"".join(eql_data)
            if len(folded) != eql_len:
                raise ValueError("the bytes of a short EQL run are needed to fold it into MOD")
            if cur != MOD:
                switch(MOD)
            run.append(folded)
        else:
            switch(EQL)
            out.append(encode_length(eql_len))
        eql_len = 0
        eql_data.clear()

    for kind, length, _old, data in ops:
        if length == 0:
            continue
        if kind == EQL:
            eql_len += length
            if eql_len <= MAX_FOLDED_EQL:
                eql_data.append(data[:length])
            continue
        flush_eql(kind)
        if kind in (MOD, INS):
            if cur != kind:
                switch(kind)
            run.append(data)
        elif kind in (DEL, BKT):
            switch(kind)
            out.append(encode_length(length))
        else:
            raise ValueError(f"unknown operation code {kind:#x}")
    flush_eql(ESC)
    close_run()
    return b"".join(out)


def write_ops(ops: Iterable[Op], old: bytes | bytearray | memoryview | None = None) -> bytes:
    """Write a list of :class:`Op` as a strict 0.7 patch (PATCH-17 to PATCH-21).

    ``old`` is only needed when an EQL of 4 bytes or fewer must be folded into MOD data.
    Re-writing the ops that :func:`list_ops` reads from a jdiff 0.7 patch gives back the
    same bytes.
    """
    view = memoryview(old) if old is not None else memoryview(b"")

    def raw() -> Iterable[RawOp]:
        """The ops as writer tuples, with the old bytes a short EQL may need."""
        for op in ops:
            if op.kind is OpKind.EQL:
                start = op.old_offset
                data = bytes(view[start : start + min(op.length, 8)]) if start >= 0 else b""
                yield (EQL, op.length, op.old_offset, data)
            else:
                yield (int(op.kind), op.length, op.old_offset, op.data)

    return write_raw_ops(raw())


def ops_to_dicts(ops: Sequence[Op]) -> list[dict[str, object]]:
    """JSON-ready list of operations."""
    return [op.to_dict() for op in ops]
