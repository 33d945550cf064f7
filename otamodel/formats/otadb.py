"""``image_database.csv``: the OTA image database, as ``csv.c`` reads and writes it.

A database is the raw CSV view the C code works on: rows of fields of text, exactly as
``csv_load`` builds them. Field text is a C string, so every ``str`` here holds one character
per byte (latin-1): ``len(text)`` is the C ``strlen`` and no field ever contains NUL.

The readers mirror the C helpers one for one (``GetFieldValue``, ``GetImageRow``, …) including
their integer widths; the writers return a new database (records are immutable) and
:func:`serialize_ops` lists the exact write calls ``csv_save`` makes, with its ``uint8_t``
write position. Rules: DB-1 … DB-21 in ``docs/spec/database.md``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import attrs

from otamodel.errors import DatabaseError

__all__ = [
    "COL_DIGEST",
    "COL_NAME",
    "COL_STATUS",
    "COL_TYPE",
    "COL_VERSION",
    "EVICTION_START",
    "IMAGE_TYPE_TEXT",
    "LOAD_NO_FILE",
    "LOAD_NO_MEMORY",
    "LOAD_OK",
    "NUMBER_LIMIT",
    "STATUS_NEW_TEXT",
    "STRING_LIMIT",
    "ImageDatabase",
    "ImageRow",
    "WriteOp",
    "apply_write_ops",
    "get_field_string",
    "get_field_value",
    "get_field_value_32bit",
    "get_image_row",
    "get_rows",
    "get_total_imgs",
    "get_version_text",
    "is_round_trip_safe",
    "is_version_text_overflow",
    "is_wrapped",
    "load",
    "new_entry",
    "parse",
    "remove_row",
    "serialize",
    "serialize_ops",
    "set_status",
    "strtol16",
]

LOAD_OK = 0
LOAD_NO_FILE = 1
LOAD_NO_MEMORY = 2

COL_NAME = 0
COL_STATUS = 1
COL_VERSION = 2
COL_TYPE = 3
COL_DIGEST = 4

NUMBER_LIMIT = 30
STRING_LIMIT = 100
STATUS_NEW_TEXT = "FE"
IMAGE_TYPE_TEXT = "0x01"
EVICTION_START = 0xFFFF

_LONG_MAX = 0x7FFFFFFF
_LONG_MIN = -0x80000000
_POSITION_MODULUS = 256

_QUOTE = 0x22
_COMMA = 0x2C
_LF = 0x0A
_NUL = 0x00
_INITIAL_CHAR = ord("a")

_NEXT_FIELD = 0
_NEXT_ROW = 1
_END = 2

_C_SPACE = " \t\n\v\f\r"
_DECIMAL = re.compile(r"-?[0-9]+")
_HEX_DIGITS = "0123456789abcdefABCDEF"


def _to_rows(value: Iterable[Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    if isinstance(value, tuple) and all(isinstance(row, tuple) for row in value):
        return value
    return tuple(tuple(row) for row in value)


@attrs.frozen
class ImageDatabase:
    """The in-memory ``CSV_BUFFER``: ``rows[r][c]`` is the text of field ``c`` of row ``r``.

    ``rows`` may be empty (the C buffer after deleting its only row); a loaded database never
    is (DB-2).
    """

    rows: tuple[tuple[str, ...], ...] = attrs.field(converter=_to_rows)


@attrs.frozen
class WriteOp:
    """One ``SYS_FS_FileWrite``/``FileCharacterPut`` call of ``csv_save``: ``data`` at
    ``offset``."""

    offset: int
    data: bytes


@attrs.frozen
class ImageRow:
    """A friendly view of one row: the texts as stored and the numbers the C code reads.

    ``version_read`` is what every C reader sees (base 16, 32-bit); ``version_written`` is the
    decimal number the app meant when it wrote the text (None if the text is not decimal).
    """

    row: int
    name: str | None
    status_text: str | None
    status: int | None
    version_text: str | None
    version_written: int | None
    version_read: int | None
    type_text: str | None
    digest: str | None


# --------------------------------------------------------------------------------------------
# strtol


#: The longest ``%d`` of a 32-bit int ("-2147483648"): a longer version text was not written
#: by the device and has no decimal reading (its strtol reading saturates, DB-8).
_MAX_DECIMAL_DIGITS = 11


def strtol16(text: str) -> int:
    """DB-8: C ``strtol(text, NULL, 16)`` with a 32-bit ``long`` (PIC32).

    Leading C white space is skipped, then one optional sign, then an optional ``0x``/``0X``
    (taken only when a hex digit follows it), then hex digits up to the first other character
    (or NUL). No digits gives 0. Out-of-range values saturate at ``LONG_MAX``/``LONG_MIN``.
    """
    i, n = 0, len(text)
    while i < n and text[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    if text.startswith(("0x", "0X"), i) and i + 2 < n and text[i + 2] in _HEX_DIGITS:
        i += 2
    start = i
    while i < n and text[i] in _HEX_DIGITS:
        i += 1
    if i == start:
        return 0
    digits = text[start:i].lstrip("0") or "0"
    if len(digits) > 9:  # beyond any 32-bit value: saturate without a huge int
        return _LONG_MIN if negative else _LONG_MAX
    value = int(digits, 16)
    if negative:
        value = -value
        return _LONG_MIN if value < _LONG_MIN else value
    return _LONG_MAX if value > _LONG_MAX else value


# --------------------------------------------------------------------------------------------
# csv_load


def _read_field(data: bytes, pos: int) -> tuple[str, int, int]:
    """``read_next_field``: one field's text, what follows it (field/row/end), the new position."""
    n = len(data)
    out = bytearray()
    in_text = esc = reset_pending = False
    last = _INITIAL_CHAR
    while pos < n:
        ch = data[pos]
        pos += 1
        last = ch
        if not in_text:
            if ch == _QUOTE:
                # ``c = 0`` without clearing the buffer: the next added char restarts the text.
                in_text = reset_pending = True
                continue
            if ch in (_COMMA, _LF):
                break
        elif esc:
            esc = False
            if ch != _QUOTE:
                break
        elif ch == _QUOTE:
            esc = True
            continue
        if reset_pending:
            out.clear()
            reset_pending = False
        out.append(ch)
    # The peek loop: skip to the next delimiter, then classify.
    ch = last
    while True:
        if ch == _COMMA:
            code = _NEXT_FIELD
            break
        if ch == _LF:
            code = _END if pos >= n else _NEXT_ROW
            break
        if pos >= n:
            code = _END
            break
        ch = data[pos]
        pos += 1
    nul = out.find(_NUL)
    if nul >= 0:
        del out[nul:]
    return out.decode("latin-1"), code, pos


@functools.lru_cache(maxsize=4096)
def parse(data: bytes) -> ImageDatabase:
    """DB-1, DB-2, DB-3: the rows ``csv_load`` builds from the file's bytes.

    Every byte string loads (``csv_load`` only fails to open a file or to allocate), so this
    never raises: an empty file is one row of one empty field, a ``\\n`` directly before the
    end of the file ends the last row without starting another, and the quoting quirks of
    ``read_next_field`` are reproduced (see DB-3).
    """
    rows: list[list[str]] = [[""]]
    pos = 0
    while True:
        text, code, pos = _read_field(data, pos)
        rows[-1][-1] = text
        if code == _END:
            break
        if code == _NEXT_ROW:
            rows.append([""])
        else:
            rows[-1].append("")
    return ImageDatabase(tuple(tuple(row) for row in rows))


def load(data: bytes | None) -> tuple[int, ImageDatabase | None]:
    """DB-1: ``csv_load``'s result code and buffer: ``(1, None)`` when the file does not exist
    (``data is None``), otherwise ``(0, parse(data))``. Result 2 (allocation failure) is never
    produced: memory is not modelled."""
    if data is None:
        return LOAD_NO_FILE, None
    return LOAD_OK, parse(data)


# --------------------------------------------------------------------------------------------
# csv_save


def _needs_quotes(raw: bytes) -> bool:
    return b'"' in raw or b"," in raw or b"\n" in raw


@functools.lru_cache(maxsize=4096)
def serialize_ops(db: ImageDatabase) -> tuple[WriteOp, ...]:
    """DB-4, DB-5: the write calls of ``csv_save`` after it truncated the file, in order.

    Each op is written at the current position, which is a ``uint8_t`` advanced by the bytes
    just written (so it wraps to 0 after 255) and then seeked to. An unquoted field is one call
    with its whole text; a quoted one is a call per quote and per character. Zero-length writes
    (an empty unquoted field) change nothing and are left out.
    """
    ops: list[WriteOp] = []
    position = 0

    def emit(chunk: bytes) -> None:
        nonlocal position
        if chunk:
            ops.append(WriteOp(position, chunk))
            position = (position + len(chunk)) % _POSITION_MODULUS

    last_row = len(db.rows) - 1
    for i, row in enumerate(db.rows):
        last_field = len(row) - 1
        for j, text in enumerate(row):
            raw = _encode_field(text, i, j)
            if _needs_quotes(raw):
                emit(b'"')
                for byte in raw:
                    if byte == _QUOTE:
                        emit(b'"')
                    emit(bytes((byte,)))
                emit(b'"')
            else:
                emit(raw)
            if j < last_field:
                emit(b",")
            elif i < last_row:
                emit(b"\n")
    return tuple(ops)


def _encode_field(text: str, row: int, col: int) -> bytes:
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise DatabaseError(
            f"character {text[exc.start]!r} is not one byte", where=f"row {row}, field {col}"
        ) from None
    nul = raw.find(b"\0")
    return raw if nul < 0 else raw[:nul]


def apply_write_ops(ops: Iterable[WriteOp], initial: bytes = b"") -> bytes:
    """DB-5: the file content after the given writes, starting from ``initial`` (a seek never
    goes past the end, so no gap is ever filled)."""
    buf = bytearray(initial)
    for op in ops:
        end = op.offset + len(op.data)
        if op.offset > len(buf):
            buf.extend(b"\0" * (op.offset - len(buf)))
        buf[op.offset : end] = op.data
    return bytes(buf)


@functools.lru_cache(maxsize=4096)
def serialize(db: ImageDatabase) -> bytes:
    """DB-4, DB-5: the bytes ``csv_save`` leaves in the (truncated) file, wrap-around included.

    No header line and no newline after the last row. When the write position wraps (a write
    would start at or beyond byte 256), later writes overwrite the start of the file; a single
    field written across byte 256 is not split, so the file can be longer than 256 bytes.
    """
    return apply_write_ops(serialize_ops(db))


def is_wrapped(db: ImageDatabase) -> bool:
    """DB-5: True iff some write of ``csv_save`` starts at a wrapped position, i.e. the file
    differs from the plain concatenation of the rows."""
    true_position = 0
    for op in serialize_ops(db):
        if op.offset != true_position:
            return True
        true_position += len(op.data)
    return False


def is_round_trip_safe(db: ImageDatabase) -> bool:
    """DB-6: True iff ``parse(serialize(db)) == db``.

    That holds exactly when: the database has at least one row and every row at least one
    field; no field holds NUL or a character above U+00FF; the last row is not a single empty
    field unless it is the only row (its ``\\n`` is the last byte and ``csv_load`` ignores a
    final newline); and no write wraps (:func:`is_wrapped`).
    """
    if not db.rows or any(not row for row in db.rows):
        return False
    for row in db.rows:
        for text in row:
            if "\0" in text or any(ord(ch) > 0xFF for ch in text):
                return False
    if len(db.rows) > 1 and db.rows[-1] == ("",):
        return False
    return not is_wrapped(db)


# --------------------------------------------------------------------------------------------
# Field readers (ota_database_parser.c)


def _csv_get_field(db: ImageDatabase, row: int, col: int, limit: int) -> tuple[int, str]:
    """``csv_get_field``: (2, "") for a missing row/field; else the first ``limit`` chars and
    1 if the text was longer than ``limit``, 0 otherwise."""
    if row < 0 or row >= len(db.rows) or col < 0 or col >= len(db.rows[row]):
        return 2, ""
    text = db.rows[row][col]
    return (1 if len(text) > limit else 0), text[:limit]


def get_field_string(
    db: ImageDatabase, row: int, col: int, limit: int = STRING_LIMIT
) -> str | None:
    """DB-7: ``GetFieldString``: the field's text, or None (the C status 1) when the field does
    not exist or is longer than ``limit`` (100) characters. ``row`` is a ``uint8_t``."""
    status, text = _csv_get_field(db, row & 0xFF, col, limit)
    return text if status == 0 else None


def get_field_value(db: ImageDatabase, row: int, col: int) -> int | None:
    """DB-7, DB-8: ``GetFieldValue``: ``(uint8_t) strtol(text, 16)`` of a field of at most 30
    characters; None when it does not exist or is longer."""
    status, text = _csv_get_field(db, row & 0xFF, col, NUMBER_LIMIT)
    return strtol16(text) & 0xFF if status == 0 else None


def get_field_value_32bit(db: ImageDatabase, row: int, col: int) -> int | None:
    """DB-7, DB-8: ``GetFieldValue_32Bit``: ``(uint32_t) strtol(text, 16)``, same errors."""
    status, text = _csv_get_field(db, row & 0xFF, col, NUMBER_LIMIT)
    return strtol16(text) & 0xFFFFFFFF if status == 0 else None


def get_total_imgs(db: ImageDatabase) -> int:
    """DB-9: ``GetTotalImgs``: the row count as ``uint8_t``."""
    return len(db.rows) & 0xFF


def get_image_row(db: ImageDatabase, version: int, *, bootloader: bool = False) -> int:
    """DB-10: ``GetImageRow``: the last row whose version text, read base 16, equals
    ``version`` (a ``uint32_t``); -1 if none.

    Read errors are ignored: a missing field reads as "" (0) and a longer one as its first 30
    characters. The app copy compares the ``uint32_t`` value; the bootloader copy
    (``bootloader=True``) first casts it to ``uint8_t``. Only the first ``uint8_t`` row count
    rows are scanned.
    """
    wanted = version & 0xFFFFFFFF
    mask = 0xFF if bootloader else 0xFFFFFFFF
    selected = -1
    for r in range(get_total_imgs(db)):
        _, text = _csv_get_field(db, r, COL_VERSION, NUMBER_LIMIT)
        if strtol16(text) & mask == wanted:
            selected = r
    return selected


def get_version_text(version: int) -> str:
    """DB-13: the version text ``OTADbNewEntry`` writes: ``sprintf("%d")`` of the value as a
    signed 32-bit int, in full (see :func:`is_version_text_overflow`)."""
    value = version & 0xFFFFFFFF
    if value > _LONG_MAX:
        value -= 1 << 32
    return str(value)


def is_version_text_overflow(version: int) -> bool:
    """DB-13: True iff ``sprintf(ver, "%d", version)`` overruns ``char ver[4]`` (more than 3
    characters: versions >= 1000 or <= -100). The C behaviour is then undefined."""
    return len(get_version_text(version)) > 3


def get_rows(db: ImageDatabase) -> tuple[ImageRow, ...]:
    """DB-20: one :class:`ImageRow` per row, with both readings of the version."""
    result = []
    for r in range(len(db.rows)):
        version_text = _field_or_none(db, r, COL_VERSION)
        written: int | None = None
        if (
            version_text is not None
            and len(version_text) <= _MAX_DECIMAL_DIGITS
            and _DECIMAL.fullmatch(version_text)
        ):
            written = int(version_text)  # longer texts were never written by sprintf("%d")
        status_text = _field_or_none(db, r, COL_STATUS)
        result.append(
            ImageRow(
                row=r,
                name=_field_or_none(db, r, COL_NAME),
                status_text=status_text,
                status=_read_number(db, r, COL_STATUS, 0xFF),
                version_text=version_text,
                version_written=written,
                version_read=_read_number(db, r, COL_VERSION, 0xFFFFFFFF),
                type_text=_field_or_none(db, r, COL_TYPE),
                digest=_field_or_none(db, r, COL_DIGEST),
            )
        )
    return tuple(result)


def _read_number(db: ImageDatabase, row: int, col: int, mask: int) -> int | None:
    status, text = _csv_get_field(db, row, col, NUMBER_LIMIT)
    return strtol16(text) & mask if status == 0 else None


def _field_or_none(db: ImageDatabase, row: int, col: int) -> str | None:
    fields = db.rows[row]
    return fields[col] if col < len(fields) else None


# --------------------------------------------------------------------------------------------
# Writers


def _csv_set_field(rows: list[list[str]], row: int, col: int, text: str) -> None:
    """``csv_set_field``: append empty rows/fields as needed, then set the text."""
    while row >= len(rows):
        rows.append([""])
    fields = rows[row]
    while col >= len(fields):
        fields.append("")
    fields[col] = text


def _mutable(db: ImageDatabase) -> list[list[str]]:
    return [list(row) for row in db.rows]


def _frozen(rows: list[list[str]]) -> ImageDatabase:
    return ImageDatabase(tuple(tuple(row) for row in rows))


def set_status(db: ImageDatabase, row: int, text: str) -> ImageDatabase:
    """DB-11: ``SetFieldValue``: writes ``text`` into column 1 (the status) of ``row`` (a
    ``uint8_t``) whatever field was asked for; a missing row or field is created first."""
    rows = _mutable(db)
    _csv_set_field(rows, row & 0xFF, COL_STATUS, text)
    return _frozen(rows)


def remove_row(db: ImageDatabase, row: int) -> ImageDatabase:
    """DB-12: ``OTADbDeleteEntry`` (``csv_remove_row``): the later rows move up one place.

    Deleting the only row leaves a database with no rows, which ``csv_save`` writes as an
    empty file. A row beyond the last is refused by the C code (-1): DatabaseError here.
    """
    index = row & 0xFF
    if index >= len(db.rows):
        raise DatabaseError("no such row to delete", where=f"row {index}")
    return ImageDatabase(db.rows[:index] + db.rows[index + 1 :])


def new_entry(
    load_result: int,
    db: ImageDatabase | None,
    name: str,
    version: int,
    digest: str,
    db_full: bool,
    *,
    eviction_start: int = EVICTION_START,
) -> ImageDatabase | None:
    """DB-13, DB-14, DB-15: ``OTADbNewEntry``: the database it saves, or None for its -1.

    Eviction reads only the version column (DB-15).

    ``name`` is the image path or file name; the text after its last ``/`` is stored. The row
    is chosen from ``load_result`` (``csv_load`` on the file, given as ``db``):

    * 1 (no file): row 0 of a fresh database;
    * 0 and not ``db_full``: a new row after the last (append);
    * 0 and ``db_full``: the row with the lowest version read base 16, found with a minimum
      that starts at ``eviction_start`` (65535) and is replaced only by a strictly smaller
      value (so the first of equal rows wins, and if every version reads >= 65535 the entry is
      appended); an unreadable version field gives None;
    * anything else: None.

    Fields 0-4 of that row become name, ``FE``, the decimal version, ``0x01`` and the digest;
    further fields of an overwritten row are kept.
    """
    if load_result == LOAD_NO_FILE:
        rows: list[list[str]] = []
        row = 0
    elif load_result == LOAD_OK and db is not None:
        rows = _mutable(db)
        row = len(rows)
        if db_full:
            lowest = eviction_start
            for i in range(get_total_imgs(db)):
                value = get_field_value_32bit(db, i, COL_VERSION)
                if value is None:
                    return None
                if lowest > value:
                    lowest = value
                    row = i
    else:
        return None
    base = name.rsplit("/", 1)[-1]
    for col, text in enumerate(
        (base, STATUS_NEW_TEXT, get_version_text(version), IMAGE_TYPE_TEXT, digest)
    ):
        _csv_set_field(rows, row, col, text)
    return _frozen(rows)
