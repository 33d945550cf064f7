"""Intel HEX: the ``hex2bin.py`` conversion to an OTA ``.bin`` and the unified-image merge.

Records are decoded with :func:`bincopy.unpack_ihex` and merged images are written with
:meth:`bincopy.BinFile.as_ihex`; the placement rules are Harmony's own and are stated here rather
than inherited from the library. A malformed file raises :class:`~otamodel.errors.HexFileError`
whose ``where`` names the line.

``hex_to_bin`` reproduces ``hex2bin.py`` (Harmony ``system/ota/framework/tools/hex2bin``): a
window ``[start, start + size)``, default ``[0x10020000, 0x100FF000)``, pre-filled with 0xFF;
only data records that lie wholly inside the window are placed; the OTA image is trimmed to the
last written byte and the factory image is the full window with byte 0 forced to 0xF8.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence

import attrs
import bincopy

from otamodel.errors import BoundError, HexFileError
from otamodel.formats.digest import sha256_bytes

__all__ = [
    "DEFAULT_SIZE",
    "DEFAULT_START",
    "FACTORY_STATUS",
    "FILL_BYTE",
    "MAX_RECORDS",
    "MAX_WINDOW",
    "DroppedRecord",
    "HexConversion",
    "HexImage",
    "HexRecord",
    "RecordType",
    "hex_to_bin",
    "load_hex",
    "merge_hex",
    "parse_records",
    "physical_address",
]

DEFAULT_START = 0x1002_0000
"""hex2bin's default window start: the physical address of the boot-control area."""

DEFAULT_SIZE = 0xDF000
"""hex2bin's default window size (one image slot); the window ends at 0x100FF000."""

FILL_BYTE = 0xFF
"""Value of every window byte no placed record writes (erased flash)."""

FACTORY_STATUS = 0xF8
"""Byte 0 (the boot-control status) of a factory image."""

_ADDRESS_SPACE = 1 << 32

MAX_RECORDS = 1_000_000
"""Default bound on the records of one HEX file (BOUND-4): 60 times a full 0xDF000 slot in
16-byte records."""

MAX_WINDOW = 16 * 1024 * 1024
"""Default bound on a hex2bin window (BOUND-4): 16 MiB, above any PIC32MZ-W1 flash."""


class RecordType:
    """Intel HEX record types (the ``TT`` field)."""

    DATA = 0x00
    EOF = 0x01
    EXTENDED_SEGMENT_ADDRESS = 0x02
    START_SEGMENT_ADDRESS = 0x03
    EXTENDED_LINEAR_ADDRESS = 0x04
    START_LINEAR_ADDRESS = 0x05


_TYPE_NAMES = {
    RecordType.DATA: "data",
    RecordType.EOF: "end of file",
    RecordType.EXTENDED_SEGMENT_ADDRESS: "extended segment address",
    RecordType.START_SEGMENT_ADDRESS: "start segment address",
    RecordType.EXTENDED_LINEAR_ADDRESS: "extended linear address",
    RecordType.START_LINEAR_ADDRESS: "start linear address",
}

_FIXED_LENGTH = {
    RecordType.EOF: 0,
    RecordType.EXTENDED_SEGMENT_ADDRESS: 2,
    RecordType.START_SEGMENT_ADDRESS: 4,
    RecordType.EXTENDED_LINEAR_ADDRESS: 2,
    RecordType.START_LINEAR_ADDRESS: 4,
}

_RECORD_SYNTAX = re.compile(r":(?:[0-9A-Fa-f]{2}){5,}")
_NOT_HEX = re.compile(r"[^0-9A-Fa-f]")
_BLANK = " \t\r"


# --------------------------------------------------------------------------- records


@attrs.frozen
class HexRecord:
    """One decoded record: its 1-based ``line``, type, 16-bit address field and data bytes."""

    line: int
    kind: int
    offset: int
    data: bytes

    @property
    def type_name(self) -> str:
        return _TYPE_NAMES.get(self.kind, f"type {self.kind:#04x}")


def _decode_line(text: str, line: int) -> HexRecord:
    where = f"line {line}"
    if not text.startswith(":"):
        raise HexFileError("record does not start with ':'", where=where)
    if not _RECORD_SYNTAX.fullmatch(text):
        bad = _NOT_HEX.search(text, 1)
        if bad is not None:
            raise HexFileError(
                f"bad hex digit {bad.group()!r} at column {bad.start() + 1}", where=where
            )
        if len(text) % 2 == 0:
            raise HexFileError("odd number of hex digits", where=where)
        raise HexFileError("record too short (needs at least 5 bytes)", where=where)
    try:
        kind, offset, _size, data = bincopy.unpack_ihex(text)
    except bincopy.Error as exc:
        raw = bytes.fromhex(text[1:])
        if raw[0] != len(raw) - 5:
            reason = f"byte count {raw[0]} but {len(raw) - 5} data bytes"
        else:
            reason = f"bad checksum {raw[-1]:#04x} (expected {bincopy.crc_ihex(text[1:-2]):#04x})"
        raise HexFileError(reason, where=where) from exc
    if kind > RecordType.START_LINEAR_ADDRESS:
        raise HexFileError(f"unknown record type {kind:#04x}", where=where)
    expected = _FIXED_LENGTH.get(kind)
    if expected is not None and len(data) != expected:
        raise HexFileError(
            f"{_TYPE_NAMES[kind]} record has {len(data)} data bytes, expected {expected}",
            where=where,
        )
    return HexRecord(line=line, kind=kind, offset=offset, data=bytes(data))


def parse_records(
    text: str, *, max_records: int | None = MAX_RECORDS, require_eof: bool = False
) -> tuple[HexRecord, ...]:
    """Decode the records of an Intel HEX text, up to and including the EOF record (TOOL-11).

    Lines are separated by ``\\n`` (a trailing ``\\r`` is allowed); surrounding blanks are
    ignored and blank lines skipped. Each other line must be ``:`` followed by pairs of hex
    digits: byte count, 16-bit address, type 00–05, data, and a checksum that makes the byte
    sum zero mod 256. Types 01–05 have their fixed data lengths. Anything after the EOF record is
    not read. Violations raise HexFileError naming the line; a text without an EOF record is
    refused when ``require_eof`` (the command line's default, CLI-4). More than
    ``max_records`` records raise :class:`~otamodel.errors.BoundError` (BOUND-4).
    """
    records: list[HexRecord] = []
    last = 0
    for index, raw_line in enumerate(text.split("\n")):
        line = raw_line.strip(_BLANK)
        if not line:
            continue
        last = index + 1
        if max_records is not None and len(records) >= max_records:
            raise BoundError(
                f"hex: line {last}: more than {max_records} records", option="--max-records"
            )
        record = _decode_line(line, index + 1)
        records.append(record)
        if record.kind == RecordType.EOF:
            return tuple(records)
    if require_eof:
        raise HexFileError(
            "no end-of-file record (:00000001FF): the file is truncated",
            where=f"line {last}" if last else None,
        )
    return tuple(records)


@attrs.frozen
class _Chunk:
    address: int
    data: bytes
    source: str
    line: int

    @property
    def end(self) -> int:
        return self.address + len(self.data)


def _where(source: str, line: int) -> str:
    return f"{source} line {line}" if source else f"line {line}"


def _resolve(
    records: Iterable[HexRecord], source: str, allowed: frozenset[int]
) -> Iterator[_Chunk | HexRecord]:
    """Absolute addresses of data records; start-address records are passed through."""
    base = 0
    for record in records:
        if record.kind not in allowed:
            raise HexFileError(
                f"{record.type_name} record (type {record.kind:02X}) is not supported here",
                where=_where(source, record.line),
            )
        if record.kind == RecordType.DATA:
            yield _Chunk(base + record.offset, record.data, source, record.line)
        elif record.kind == RecordType.EXTENDED_LINEAR_ADDRESS:
            base = int.from_bytes(record.data, "big") << 16
        elif record.kind == RecordType.EXTENDED_SEGMENT_ADDRESS:
            base = int.from_bytes(record.data, "big") << 4
        elif record.kind in (RecordType.START_LINEAR_ADDRESS, RecordType.START_SEGMENT_ADDRESS):
            yield record


# --------------------------------------------------------------------------- hex2bin


@attrs.frozen
class DroppedRecord:
    """A data record hex2bin leaves out because it is not wholly inside the window."""

    line: int
    address: int
    length: int

    @property
    def end(self) -> int:
        return self.address + self.length


@attrs.frozen
class HexConversion:
    """The result of :func:`hex_to_bin`.

    ``data`` is the ``.bin`` content and ``digest`` its SHA-256. ``written_end`` is one past the
    highest byte any placed record covers (hex2bin's ``address_highest``), or ``None`` if no data
    record was placed. ``dropped`` lists the data records outside or straddling the window.
    """

    data: bytes = attrs.field(repr=False)
    digest: bytes
    start: int
    size: int
    factory: bool
    written_end: int | None
    placed: int
    dropped: tuple[DroppedRecord, ...]

    @property
    def end(self) -> int:
        """One past the last window address."""
        return self.start + self.size

    @property
    def digest_hex(self) -> str:
        return self.digest.hex()

    @property
    def digest_line(self) -> str:
        """What hex2bin prints, ready for the manifest: ``"Digest":"<hex>"`` (TOOL-17)."""
        return f'"Digest":"{self.digest.hex()}"'


def _check_window(start: int, size: int, max_window: int | None) -> None:
    """TOOL-13: a non-empty window inside the 32-bit address space; BOUND-4: at most
    ``max_window`` bytes."""
    if start < 0 or size <= 0 or start + size > _ADDRESS_SPACE:
        raise HexFileError(
            f"invalid window: start {start:#x}, size {size:#x} (size must be positive and "
            "the window must lie below 4 GiB)"
        )
    if max_window is not None and size > max_window:
        raise BoundError(
            f"hex: window size {size:#x} is above {max_window:#x} bytes", option="--max-window"
        )


def hex_to_bin(
    hex_text: str,
    start: int = DEFAULT_START,
    size: int = DEFAULT_SIZE,
    factory: bool = False,
    *,
    max_window: int | None = MAX_WINDOW,
    max_records: int | None = MAX_RECORDS,
    require_eof: bool = False,
) -> HexConversion:
    """Convert Intel HEX to an OTA ``.bin`` by ``hex2bin.py``'s rules (TOOL-12 to TOOL-17).

    Only data, extended-linear-address and EOF records are accepted (TOOL-12). The window is
    ``[start, start + size)`` filled with 0xFF (TOOL-13, TOOL-14). A data record at absolute
    address ``a`` with ``n`` bytes is placed iff ``start <= a`` and ``a + n <= start + size``;
    a record straddling either edge is dropped whole, and a later record overwrites an earlier
    one (TOOL-14). The OTA image (``factory=False``) ends at the highest placed end, empty if
    nothing was placed (TOOL-15); the factory image is the whole window with byte 0 set to 0xF8
    (TOOL-16). ``digest`` is the SHA-256 of the result (TOOL-17).
    """
    _check_window(start, size, max_window)
    end = start + size
    allowed = frozenset({RecordType.DATA, RecordType.EOF, RecordType.EXTENDED_LINEAR_ADDRESS})
    placed: list[_Chunk] = []
    dropped: list[DroppedRecord] = []
    written_end: int | None = None
    records = parse_records(hex_text, max_records=max_records, require_eof=require_eof)
    for item in _resolve(records, "", allowed):
        if not isinstance(item, _Chunk):  # pragma: no cover - start records are refused
            continue
        if start <= item.address and item.end <= end:
            placed.append(item)
            if written_end is None or item.end > written_end:
                written_end = item.end
        else:
            dropped.append(DroppedRecord(item.line, item.address, len(item.data)))
    trimmed = 0 if written_end is None else written_end - start
    length = size if factory else trimmed
    image = bytearray([FILL_BYTE]) * length
    for chunk in placed:
        offset = chunk.address - start
        image[offset : offset + len(chunk.data)] = chunk.data
    if factory:
        image[0] = FACTORY_STATUS
    data = bytes(image)
    return HexConversion(
        data=data,
        digest=sha256_bytes(data),
        start=start,
        size=size,
        factory=factory,
        written_end=written_end,
        placed=len(placed),
        dropped=tuple(dropped),
    )


# --------------------------------------------------------------------------- images and merge


@attrs.frozen
class HexImage:
    """The memory an Intel HEX file describes.

    ``segments`` are ``(address, data)`` pairs, sorted, non-empty, neither overlapping nor
    touching. ``start_address`` is the value of the start-linear-address record, if any.
    """

    segments: tuple[tuple[int, bytes], ...] = attrs.field(repr=False)
    start_address: int | None = None

    def to_ihex(self, bytes_per_record: int = 16) -> str:
        """Intel HEX text with extended linear address records, written by bincopy."""
        binfile = bincopy.BinFile()
        for address, data in self.segments:
            binfile.add_binary(data, address=address)
        if self.start_address is not None:
            binfile.execution_start_address = self.start_address
        text: str = binfile.as_ihex(number_of_data_bytes=bytes_per_record, address_length_bits=32)
        return text

    def read(self, address: int, length: int, fill: int = FILL_BYTE) -> bytes:
        """``length`` bytes from ``address``, with ``fill`` where no segment has data."""
        out = bytearray([fill]) * length
        for seg_address, data in self.segments:
            lo = max(address, seg_address)
            hi = min(address + length, seg_address + len(data))
            if lo < hi:
                out[lo - address : hi - address] = data[lo - seg_address : hi - seg_address]
        return bytes(out)


def _first_difference(a: bytes, b: bytes) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            return index
    raise AssertionError("no difference")  # pragma: no cover


def _combine(
    sources: Sequence[tuple[str, str]],
    max_records: int | None = MAX_RECORDS,
    require_eof: bool = False,
) -> HexImage:
    """TOOL-18: the union of the sources' data.

    Records are swept in address order and each is compared with the bytes already merged at
    its addresses; the record that first wrote each merged run is found by bisection, so the
    merge is O(n log n) in the number of records (BOUND-4). The lowest address where two
    records disagree is reported.
    """
    allowed = frozenset(
        {
            RecordType.DATA,
            RecordType.EOF,
            RecordType.EXTENDED_LINEAR_ADDRESS,
            RecordType.EXTENDED_SEGMENT_ADDRESS,
            RecordType.START_LINEAR_ADDRESS,
        }
    )
    chunks: list[_Chunk] = []
    start_address: int | None = None
    start_where = ""
    for label, text in sources:
        try:
            records = parse_records(text, max_records=max_records, require_eof=require_eof)
        except HexFileError as exc:
            exc.name_source(label)
            raise
        for item in _resolve(records, label, allowed):
            where = _where(label, item.line)
            if isinstance(item, HexRecord):
                value = int.from_bytes(item.data, "big")
                if start_address is not None and value != start_address:
                    raise HexFileError(
                        f"start address {value:#010x} differs from {start_address:#010x} "
                        f"({start_where})",
                        where=where,
                    )
                start_address, start_where = value, where
            elif item.data:
                if item.end > _ADDRESS_SPACE:
                    raise HexFileError("data runs past the 32-bit address space", where=where)
                chunks.append(item)
    chunks.sort(key=lambda chunk: chunk.address)
    return HexImage(segments=_sweep(chunks), start_address=start_address)


def _sweep(chunks: Sequence[_Chunk]) -> tuple[tuple[int, bytes], ...]:
    """Merge address-sorted chunks into segments; raise on the lowest conflicting address."""
    segments: list[tuple[int, bytes]] = []
    seg_start = 0
    buffer = bytearray()
    owners: list[int] = []  # start address of each run of ``buffer`` ...
    owner_chunks: list[_Chunk] = []  # ... and the chunk that wrote it
    conflict: HexFileError | None = None
    conflict_at = _ADDRESS_SPACE
    for chunk in chunks:
        if chunk.address >= conflict_at:
            break  # no later record can disagree at a lower address
        seg_end = seg_start + len(buffer)
        if not owners or chunk.address > seg_end:
            if owners:
                segments.append((seg_start, bytes(buffer)))
            seg_start, buffer = chunk.address, bytearray(chunk.data)
            owners, owner_chunks = [chunk.address], [chunk]
            continue
        hi = min(seg_end, chunk.end)
        mine = chunk.data[: hi - chunk.address]
        theirs = bytes(buffer[chunk.address - seg_start : hi - seg_start])
        if mine != theirs:
            at = chunk.address + _first_difference(mine, theirs)
            if at < conflict_at:
                other = owner_chunks[bisect.bisect_right(owners, at) - 1]
                conflict_at = at
                conflict = HexFileError(
                    f"overlapping data differs: {theirs[at - chunk.address]:#04x} from "
                    f"{_where(other.source, other.line)}, {mine[at - chunk.address]:#04x} from "
                    f"{_where(chunk.source, chunk.line)}",
                    where=f"address {at:#010x}",
                )
        if chunk.end > seg_end:
            buffer += chunk.data[seg_end - chunk.address :]
            owners.append(seg_end)
            owner_chunks.append(chunk)
    if conflict is not None:
        raise conflict
    if owners:
        segments.append((seg_start, bytes(buffer)))
    return tuple(segments)


def load_hex(
    hex_text: str,
    name: str = "",
    *,
    max_records: int | None = MAX_RECORDS,
    require_eof: bool = False,
) -> HexImage:
    """The memory described by one Intel HEX text (TOOL-11, TOOL-18).

    Data, EOF, extended segment/linear address and start linear address records are read.
    Records of the file that overlap with different data raise HexFileError naming the lowest
    such address.
    """
    return _combine([(name, hex_text)], max_records, require_eof)


def merge_hex(
    *texts: str,
    names: Sequence[str] | None = None,
    max_records: int | None = MAX_RECORDS,
    require_eof: bool = False,
) -> str:
    """Merge Intel HEX files (bootloader and application) into one unified HEX text (TOOL-18).

    Every data byte of every input is kept. Inputs may overlap only where they hold identical
    data; the lowest differing address raises HexFileError naming it and both sources. Start
    linear addresses must agree. Gaps are not filled. ``names`` label the inputs in errors
    (default ``file 1``, ``file 2``, ...).
    """
    if names is not None and len(names) != len(texts):
        raise ValueError("names must match texts one to one")
    labels = list(names) if names is not None else [f"file {i + 1}" for i in range(len(texts))]
    return _combine(list(zip(labels, texts, strict=True)), max_records, require_eof).to_ihex()


# --------------------------------------------------------------------------- addresses


_KSEG0 = 0x8000_0000
_KSEG2 = 0xC000_0000
_PHYSICAL_MASK = 0x1FFF_FFFF


def physical_address(address: int) -> int:
    """The physical address of a PIC32 KSEG0/KSEG1 virtual address (TOOL-19).

    KSEG0 (0x8000_0000–0x9FFF_FFFF) and KSEG1 (0xA000_0000–0xBFFF_FFFF) map to physical by
    clearing the top three bits, so the boot address 0xB0021000 is physical 0x10021000, offset
    0x1000 of an image starting at 0x10020000. Physical addresses (below 0x2000_0000) are
    returned unchanged; anything else raises ValueError.
    """
    if _KSEG0 <= address < _KSEG2:
        return address & _PHYSICAL_MASK
    if 0 <= address <= _PHYSICAL_MASK:
        return address
    raise ValueError(f"{address:#x} is neither physical nor in KSEG0/KSEG1")
