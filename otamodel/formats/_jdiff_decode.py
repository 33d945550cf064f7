"""jdiff patch reader: the shared scanner, in-memory decode, op listing and streaming apply.

Private module; the public names are re-exported by :mod:`otamodel.formats.jdiff`.
Rule IDs (``PATCH-n``) refer to ``docs/spec/patch.md``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

from otamodel._io import open_output
from otamodel.errors import BoundError, PatchError
from otamodel.formats._jdiff_core import (
    BKT,
    DEL,
    EQL,
    ESC,
    INS,
    MAX_OFFSET,
    MOD,
    Op,
    OpKind,
    get_length_size,
    is_085_dialect,
    parse_length,
)

#: Page size of the streaming :func:`apply` (the device decoder uses 1024-byte pages).
DEFAULT_PAGE_SIZE = 1024

# An ESC that is followed by an opcode or another ESC, or that ends the buffer. Every other
# byte (including ``A7 x`` with x outside A2..A7) is plain data, so a left-to-right search
# for this token finds exactly the places where the parser has to act (PATCH-3).
_SPECIAL = re.compile(rb"\xa7(?:[\xa2-\xa7]|\Z)")

_NAMES = {MOD: "MOD", INS: "INS", DEL: "DEL", EQL: "EQL", BKT: "BKT"}

# One scanner event: (code, length, old_offset, new_offset, patch_offset, data).
# code 0 is a run of data bytes for the current MOD/INS; MOD/INS codes announce the start
# of a data operation (length 0); EQL/DEL/BKT carry their length.
Event = tuple[int, int, int, int, int, memoryview]

_DATA = 0
_NO_DATA = memoryview(b"")


class _Pages:
    """The patch bytes, whole in memory or read from a file one page at a time.

    Only the unread tail of a page (at most one operator and its length, 11 bytes) is
    carried into the next page, so memory stays bounded by the page size (PATCH-23).
    """

    __slots__ = ("base", "buf", "handle", "page", "pos", "view")

    def __init__(self, data: bytes, handle: BinaryIO | None = None, page: int = 0) -> None:
        self.buf = data
        self.view = memoryview(data)
        self.pos = 0
        self.base = 0
        self.handle = handle
        self.page = page

    def fill(self) -> bool:
        """Append the next page to the unread tail; False at the end of the patch."""
        if self.handle is None:
            return False
        chunk = self.handle.read(self.page)
        if not chunk:
            self.handle = None
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos :] + chunk
        self.view = memoryview(self.buf)
        self.pos = 0
        return True


def _too_big(limit: int, max_size: int | None, offset: int) -> Exception:
    """The output would pass ``limit``: the caller's bound (BOUND-3) or the format's."""
    if max_size is None:
        return PatchError("output exceeds the size limit", where=offset)
    return BoundError(
        f"patch: at byte offset {offset}: the output would exceed {max_size} bytes",
        option="--max-size",
    )


def _scan(
    pages: _Pages,
    is_085: bool,
    strict: bool,
    old_size: int | None,
    max_size: int | None,
) -> Iterator[Event]:
    """Parse a patch left to right and yield its events (PATCH-1 to PATCH-16).

    Implements the framing (PATCH-1, PATCH-2), data escapes (PATCH-3), lengths and their
    failures (PATCH-4, PATCH-5, PATCH-6), the old cursor and its bounds (PATCH-7 to
    PATCH-10), the two dialects' handling of data outside MOD/INS and of a repeated
    operator (PATCH-11 to PATCH-14), the lone trailing ESC (PATCH-15) and the end of the
    patch (PATCH-16). ``old_size`` None skips the checks that need the old file.
    """
    cur = 0  # current data operation (MOD or INS); 0 = none (PATCH-11)
    cursor = 0  # old-file cursor (PATCH-7)
    new = 0  # output size so far
    search = _SPECIAL.search
    limit = MAX_OFFSET if max_size is None else max_size

    while True:
        buf = pages.buf
        pos = pages.pos
        end = len(buf)
        if pos >= end:
            if pages.fill():
                continue
            return  # PATCH-16
        match = search(buf, pos)
        stop = end if match is None else match.start()
        if stop > pos:
            if cur == 0:
                if is_085:  # PATCH-13
                    cur = MOD
                    yield (MOD, 0, cursor, new, pages.base + pos, _NO_DATA)
                elif strict:  # PATCH-11
                    raise PatchError(
                        "data byte outside any MOD/INS operation (a 0.8.4+ patch?)",
                        where=pages.base + pos,
                    )
            if cur:
                size = stop - pos
                if new + size > limit:
                    raise _too_big(limit, max_size, pages.base + pos)
                yield (_DATA, size, cursor, new, pages.base + pos, pages.view[pos:stop])
                new += size
                if cur == MOD:
                    cursor += size
            pages.pos = stop
        if match is None:
            continue
        offset = pages.base + stop
        if stop + 1 >= end:
            if pages.fill():
                continue
            if strict:  # PATCH-15
                raise PatchError("lone ESC byte (0xA7) at the end of the patch", where=offset)
            pages.pos = end
            return
        code = buf[stop + 1]
        if code == ESC or (is_085 and code == cur):
            # ``A7 A7`` is one ESC data byte (PATCH-3); in 0.8.5 ``ESC <current op>`` is the
            # two data bytes themselves (PATCH-14).
            if cur == 0:
                if is_085:  # PATCH-13
                    cur = MOD
                    yield (MOD, 0, cursor, new, offset, _NO_DATA)
                elif strict:  # PATCH-11
                    raise PatchError(
                        "data byte outside any MOD/INS operation (a 0.8.4+ patch?)",
                        where=offset,
                    )
            if cur:
                piece = pages.view[stop : stop + 1] if code == ESC else pages.view[stop : stop + 2]
                if new + len(piece) > limit:
                    raise _too_big(limit, max_size, offset)
                yield (_DATA, len(piece), cursor, new, offset, piece)
                new += len(piece)
                if cur == MOD:
                    cursor += len(piece)
            pages.pos = stop + 2
            continue
        if code in (MOD, INS):
            if code != cur:  # in 0.7 ``ESC <current op>`` is a no-op (PATCH-12)
                cur = code
                yield (code, 0, cursor, new, offset, _NO_DATA)
            pages.pos = stop + 2
            continue
        # EQL, DEL or BKT followed by a length (PATCH-4)
        at = stop + 2
        size = get_length_size(buf[at]) if at < end else 1
        if at + size > end:
            if pages.fill():
                continue
            raise PatchError(  # PATCH-5
                f"truncated length of {_NAMES[code]} (patch ends inside it)", where=offset
            )
        value = parse_length(pages.view[at : at + size])
        if size == 9 and (
            value > MAX_OFFSET or (strict and old_size is not None and value > old_size)
        ):
            raise PatchError(  # PATCH-6
                f"64-bit length {value} of {_NAMES[code]} cannot be honoured", where=offset
            )
        cur = 0  # EQL/DEL/BKT end the data operation (PATCH-11, PATCH-13)
        if code == EQL:
            if strict and old_size is not None and cursor + value > old_size:  # PATCH-8
                raise PatchError(
                    f"EQL of {value} bytes at old offset {cursor} runs past the end of "
                    f"the old file ({old_size} bytes)",
                    where=offset,
                )
            if new + value > limit:
                raise _too_big(limit, max_size, offset)
            yield (EQL, value, cursor, new, offset, _NO_DATA)
            cursor += value
            new += value
        elif code == DEL:  # PATCH-10
            yield (DEL, value, cursor, new, offset, _NO_DATA)
            cursor += value
        else:
            if strict and value > cursor:  # PATCH-9
                raise PatchError(
                    f"BKT of {value} bytes at old offset {cursor} moves before the start "
                    "of the old file",
                    where=offset,
                )
            yield (BKT, value, cursor, new, offset, _NO_DATA)
            cursor -= value
        pages.pos = at + size


def _outside_old(old: memoryview, cursor: int, length: int) -> bytes:
    """Bytes of an EQL that reaches outside the old file, read as 0xFF (PATCH-8, PATCH-9)."""
    size = len(old)
    start = min(max(cursor, 0), size)
    stop = min(max(cursor + length, 0), size)
    before = min(max(-cursor, 0), length)
    after = length - before - (stop - start)
    return b"\xff" * before + bytes(old[start:stop]) + b"\xff" * after


def decode(
    old: bytes | bytearray | memoryview,
    patch: bytes | bytearray | memoryview,
    dialect: str = "07",
    strict: bool = True,
    *,
    max_size: int | None = None,
) -> bytes:
    """Rebuild the new file from ``old`` and a jdiff ``patch``, in memory.

    ``dialect`` is ``"07"`` (explicit MOD, what the device accepts) or ``"085"`` (implicit
    MOD, jdiff 0.8.4+). With ``strict`` (the default) every malformed construct raises
    :class:`~otamodel.errors.PatchError` with the patch offset (PATCH-5, PATCH-6, PATCH-8,
    PATCH-9, PATCH-11, PATCH-15); lenient mode decodes them as the real decoders do.
    ``max_size`` bounds the output (useful for lenient decoding of untrusted patches).

    Data runs are copied in bulk between escape tokens (PATCH-3); EQL copies from the
    old cursor (PATCH-7), reading 0xFF outside the old file in lenient mode (PATCH-8,
    PATCH-9); the output ends where the patch ends (PATCH-1, PATCH-16).
    """
    is_085 = is_085_dialect(dialect)
    old_view = memoryview(old).cast("B") if not isinstance(old, bytes) else memoryview(old)
    patch_bytes = patch if isinstance(patch, bytes) else bytes(patch)
    old_size = len(old_view)
    # Pieces are views into old and the patch; one join copies each byte once.
    pieces: list[bytes | memoryview] = []
    add = pieces.append
    for code, length, cursor, _new, _off, chunk in _scan(
        _Pages(patch_bytes), is_085, strict, old_size, max_size
    ):
        if code == _DATA:
            add(chunk)
        elif code == EQL:
            if cursor >= 0 and cursor + length <= old_size:
                add(old_view[cursor : cursor + length])
            else:
                add(_outside_old(old_view, cursor, length))
    return b"".join(pieces)


def list_ops(
    patch: bytes | bytearray | memoryview,
    dialect: str = "07",
    strict: bool = True,
    *,
    old_size: int | None = None,
) -> list[Op]:
    """Decode a patch into its list of :class:`Op` records (PATCH-1 to PATCH-16).

    Without ``old_size`` the checks that need the old file (EQL past its end, PATCH-8;
    the 64-bit bound, PATCH-6) are skipped. In 0.7 a repeated ``ESC MOD``/``ESC INS``
    does not start a new op (PATCH-12).
    """
    is_085 = is_085_dialect(dialect)
    patch_bytes = patch if isinstance(patch, bytes) else bytes(patch)
    ops: list[Op] = []
    pending: tuple[int, int, int, int] | None = None  # data op: kind, old, new, patch offset
    chunks: list[bytes] = []

    def close() -> None:
        """Finish the pending MOD/INS op with the data collected so far."""
        if pending is not None:
            kind, old_off, new_off, patch_off = pending
            data = b"".join(chunks)
            ops.append(Op(OpKind(kind), len(data), old_off, new_off, patch_off, data))
            chunks.clear()

    for code, length, cursor, new, off, chunk in _scan(
        _Pages(patch_bytes), is_085, strict, old_size, None
    ):
        if code == _DATA:
            chunks.append(bytes(chunk))
            continue
        close()
        if code in (MOD, INS):
            pending = (code, cursor, new, off)
        else:
            pending = None
            ops.append(Op(OpKind(code), length, cursor, new, off))
    close()
    return ops


def is_strict_07(patch: bytes | bytearray | memoryview, old_size: int | None = None) -> bool:
    """True if ``patch`` reads without error as a strict jdiff 0.7 patch (PATCH-11 etc.)."""
    try:
        list_ops(patch, "07", strict=True, old_size=old_size)
    except PatchError:
        return False
    return True


def get_dialect(patch: bytes | bytearray | memoryview) -> str:
    """Guess the dialect of a patch: ``"085"`` if it has data outside MOD/INS, else ``"07"``.

    This is a heuristic (the format has no version field): a 0.7 writer always announces
    its data with ``ESC MOD``/``ESC INS`` (PATCH-11, PATCH-17), a 0.8.4+ writer usually
    does not (PATCH-13).
    """
    try:
        list_ops(patch, "07", strict=True)
    except PatchError as exc:
        if exc.reason.startswith("data byte outside"):
            return "085"
    return "07"


def apply(
    old_path: str | os.PathLike[str],
    patch_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    dialect: str = "07",
    strict: bool = True,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_size: int | None = None,
) -> int:
    """Apply a patch file to an old file and write the new file, streaming (PATCH-23).

    The patch is read and the old file copied in ``page_size`` pages (1024 bytes, like the
    device), so memory does not grow with the file sizes. The output goes to a temporary
    file beside ``out_path`` that replaces it only on success: on any error no partial
    output is left and an existing ``out_path`` is untouched. Decoding rules and errors are
    those of :func:`decode`. Returns the size of the new file.
    """
    is_085 = is_085_dialect(dialect)
    if page_size < 1:
        raise ValueError("page_size must be positive")
    with (
        open(old_path, "rb", buffering=0) as old_file,
        open(patch_path, "rb", buffering=0) as patch_file,
        open_output(out_path, buffering=max(page_size, 64)) as out_file,
    ):
        old_size = os.fstat(old_file.fileno()).st_size
        return _stream(
            old_file=old_file,
            old_size=old_size,
            patch_file=patch_file,
            out_file=out_file,
            is_085=is_085,
            strict=strict,
            page_size=page_size,
            max_size=max_size,
        )


def _stream(
    *,
    old_file: BinaryIO,
    old_size: int,
    patch_file: BinaryIO,
    out_file: BinaryIO,
    is_085: bool,
    strict: bool,
    page_size: int,
    max_size: int | None,
) -> int:
    """Run the scanner over a patch file and write the output (PATCH-7, PATCH-23)."""
    page = bytearray(page_size)
    page_view = memoryview(page)
    write = out_file.write
    new = 0
    for code, length, cursor, _new, _off, chunk in _scan(
        _Pages(b"", patch_file, page_size), is_085, strict, old_size, max_size
    ):
        if code == _DATA:
            write(chunk)
            new += length
        elif code == EQL:
            new += length
            remaining = length
            if cursor < 0:  # lenient: bytes before the old file read as 0xFF (PATCH-9)
                before = min(-cursor, remaining)
                _write_ff(write, before, page_size)
                remaining -= before
                cursor = 0
            if remaining and cursor < old_size:
                old_file.seek(cursor)
                while remaining and cursor < old_size:
                    want = min(remaining, page_size, old_size - cursor)
                    got = old_file.readinto(page_view[:want])  # type: ignore[attr-defined]
                    if not got:
                        break
                    write(page_view[:got])
                    remaining -= got
                    cursor += got
            if remaining:  # lenient: past the end of old (PATCH-8)
                _write_ff(write, remaining, page_size)
    return new


def _write_ff(write: Callable[[bytes], object], count: int, page_size: int) -> None:
    """Write ``count`` 0xFF bytes in pages (lenient out-of-range EQL, PATCH-8, PATCH-9)."""
    fill = b"\xff" * min(count, page_size)
    while count > 0:
        step = min(count, len(fill))
        write(fill[:step])
        count -= step
