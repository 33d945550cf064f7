"""JojoDiff (jdiff) 0.7 patch codec, as used by the PIC32MZ-W1 OTA "patch" feature.

A patch is a headerless list of operations (``ESC`` = 0xA7 followed by an opcode):
MOD/INS carry literal data, EQL/DEL/BKT carry a length and work on one cursor into the
old file. The rules are numbered ``PATCH-n`` in ``docs/spec/patch.md``; each function
cites the rules it implements.

Public API:

* :func:`decode` — rebuild new from old + patch in memory (``dialect="07"`` or
  ``"085"``, ``strict`` mode with typed :class:`~otamodel.errors.PatchError`).
* :func:`apply` — the same, streaming from files with fixed 1024-byte pages; writes the
  output atomically.
* :func:`encode` — write a strict 0.7 patch for an (old, new) pair.
* :func:`list_ops` / :class:`Op` / :class:`OpKind` — the operation list of a patch.
* :func:`write_ops` — serialise an op list with the 0.7 writer rules.
* :func:`is_strict_07`, :func:`is_canonical_07`, :func:`get_dialect` — checks.
"""

from __future__ import annotations

from otamodel.formats._jdiff_core import (
    DIALECTS,
    Dialect,
    Op,
    OpKind,
    encode_length,
    escape_data,
    parse_length,
    write_ops,
)
from otamodel.formats._jdiff_decode import (
    DEFAULT_PAGE_SIZE,
    apply,
    decode,
    get_dialect,
    is_strict_07,
    list_ops,
)
from otamodel.formats._jdiff_encode import encode

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DIALECTS",
    "Dialect",
    "Op",
    "OpKind",
    "apply",
    "decode",
    "encode",
    "encode_length",
    "escape_data",
    "get_dialect",
    "is_canonical_07",
    "is_strict_07",
    "list_ops",
    "parse_length",
    "write_ops",
]


def is_canonical_07(patch: bytes | bytearray | memoryview) -> bool:
    """True if ``patch`` is exactly what the jdiff 0.7 writer rules produce for its ops.

    That is: it reads as strict 0.7 (PATCH-11, PATCH-15, PATCH-5) and re-writing its op
    list with the writer rules (PATCH-17 to PATCH-21) gives the same bytes — explicit
    ``ESC MOD``, no repeated operator, shortest lengths, no zero length, no short EQL next
    to MOD, and the pending-ESC escaping. Every real jdiff 0.7 patch passes.
    """
    raw = bytes(patch)
    try:
        ops = list_ops(raw, "07", strict=True)
        return write_ops(ops) == raw
    except (ValueError, KeyError):
        return False
