"""Intel HEX → OTA .bin (hex2bin rules) and the unified-image merge (otamodel.formats.hexfile)."""

from __future__ import annotations

import contextlib

import bincopy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otamodel.errors import HexFileError
from otamodel.formats import hexfile as hx
from otamodel.formats.digest import sha256_bytes

START = hx.DEFAULT_START  # 0x10020000
EOF = ":00000001FF"


def rec(kind: int, offset: int, data: bytes = b"") -> str:
    """One record, checksum computed here (independently of bincopy)."""
    body = bytes([len(data), offset >> 8, offset & 0xFF, kind]) + data
    return ":" + (body + bytes([-sum(body) & 0xFF])).hex().upper()


def ela(upper: int) -> str:
    return rec(4, 0, upper.to_bytes(2, "big"))


def hexfile(*lines: str) -> str:
    return "\n".join([*lines, EOF]) + "\n"


def data_at(address: int, data: bytes) -> list[str]:
    """An extended linear address record followed by one data record at ``address``."""
    return [ela(address >> 16), rec(0, address & 0xFFFF, data)]


# --------------------------------------------------------------------------- record syntax


def test_parse_records_basic() -> None:
    records = hx.parse_records(hexfile(ela(0x1002), rec(0, 0x10, b"\x01\x02")))
    assert [(r.line, r.kind, r.offset, r.data) for r in records] == [
        (1, 4, 0, b"\x10\x02"),
        (2, 0, 0x10, b"\x01\x02"),
        (3, 1, 0, b""),
    ]


def test_crlf_blank_lines_and_text_after_eof() -> None:
    text = "\r\n" + ela(0x1002) + "\r\n\r\n" + rec(0, 0, b"\xaa") + "\r\n" + EOF + "\r\ngarbage\n"
    records = hx.parse_records(text)
    assert [r.line for r in records] == [2, 4, 5]
    assert hx.hex_to_bin(text).data == b"\xaa"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (":10000000", "too short"),
        ("00000001FF", "':'"),
        (":0000000G1FF", "bad hex digit"),
        (":00000001F", "odd number"),
        (":00000001FE", "checksum"),
        (":0200000001FD", "byte count"),
        (rec(6, 0), "unknown record type"),
        (rec(4, 0, b"\x10"), "expected 2"),
        (rec(5, 0, b"\x00\x00"), "expected 4"),
        (rec(1, 0, b"\x00"), "expected 0"),
        (":00 000001FF", "bad hex digit"),
        (":00000001ＦＦ", "bad hex digit"),
    ],
)
def test_malformed_record_names_line(line: str, fragment: str) -> None:
    text = hexfile(ela(0x1002), rec(0, 0, b"\x00"), line)
    for parse in (hx.parse_records, hx.hex_to_bin, hx.load_hex):
        with pytest.raises(HexFileError) as info:
            parse(text)
        assert info.value.where == "line 3"
        assert fragment in info.value.reason
        assert "line 3" in str(info.value)


# --------------------------------------------------------------------------- hex2bin rules


def test_extended_linear_address_places_data() -> None:
    text = hexfile(*data_at(START + 0x1000, b"\x11\x22"), *data_at(START, b"\x33"))
    result = hx.hex_to_bin(text)
    assert result.data[0] == 0x33
    assert result.data[1:0x1000] == b"\xff" * 0xFFF
    assert result.data[0x1000:] == b"\x11\x22"
    assert result.written_end == START + 0x1002
    assert result.placed == 2 and result.dropped == ()


def test_records_straddling_either_edge_are_dropped_whole() -> None:
    size = 0x100
    end = START + size
    text = hexfile(
        *data_at(START - 2, b"\x01\x02\x03\x04"),  # straddles the start
        *data_at(START + 0x10, b"\x55"),  # inside
        *data_at(end - 2, b"\x05\x06\x07\x08"),  # straddles the end
        *data_at(end, b"\x09"),  # just past the end
        *data_at(0x1FC00000, b"\x0a"),  # boot flash, far away
    )
    result = hx.hex_to_bin(text, size=size)
    assert result.data == b"\xff" * 0x10 + b"\x55"
    assert [(d.line, d.address, d.length) for d in result.dropped] == [
        (2, START - 2, 4),
        (6, end - 2, 4),
        (8, end, 1),
        (10, 0x1FC00000, 1),
    ]
    assert result.placed == 1


def test_records_touching_the_edges_are_placed() -> None:
    size = 0x40
    text = hexfile(*data_at(START, b"\xa0\xa1"), *data_at(START + size - 2, b"\xb0\xb1"))
    result = hx.hex_to_bin(text, size=size)
    assert len(result.data) == size
    assert result.data[:2] == b"\xa0\xa1" and result.data[-2:] == b"\xb0\xb1"
    assert result.written_end == START + size


def test_record_crossing_a_64k_boundary_is_linear() -> None:
    """A record whose 16-bit offset plus length passes 0xFFFF continues linearly."""
    text = hexfile(ela(0x1002), rec(0, 0xFFFE, b"\x01\x02\x03\x04"))
    result = hx.hex_to_bin(text)
    assert result.data[0xFFFE:] == b"\x01\x02\x03\x04"


def test_ota_mode_trims_to_highest_written_and_keeps_byte_0() -> None:
    text = hexfile(*data_at(START + 0x20, b"\x77"), *data_at(START + 4, b"\x12\x34"))
    result = hx.hex_to_bin(text)
    assert result.data == b"\xff" * 4 + b"\x12\x34" + b"\xff" * 26 + b"\x77"
    assert not result.factory
    compiled = hx.hex_to_bin(hexfile(*data_at(START, b"\x3c")))
    assert compiled.data == b"\x3c"  # byte 0 as compiled in OTA mode


def test_later_record_overwrites_earlier() -> None:
    text = hexfile(*data_at(START, b"\x01\x02\x03"), *data_at(START + 1, b"\xee"))
    assert hx.hex_to_bin(text).data == b"\x01\xee\x03"


def test_factory_mode_full_window_byte_0_forced() -> None:
    text = hexfile(*data_at(START, b"\x00\x11"), *data_at(START + 8, b"\x22"))
    result = hx.hex_to_bin(text, size=0x80, factory=True)
    assert len(result.data) == 0x80
    assert result.data[:2] == b"\xf8\x11"  # byte 0 forced even though the hex wrote 0x00
    assert result.data[8] == 0x22
    assert result.data[9:] == b"\xff" * (0x80 - 9)
    assert result.factory and result.written_end == START + 9


def test_factory_default_size_and_digest() -> None:
    result = hx.hex_to_bin(hexfile(*data_at(START + 0x1000, b"\x01")), factory=True)
    assert len(result.data) == 0xDF000 == hx.DEFAULT_SIZE
    assert result.end == 0x100FF000
    assert result.data[0] == hx.FACTORY_STATUS
    assert result.digest == sha256_bytes(result.data)
    assert result.digest_line == f'"Digest":"{result.digest.hex()}"'
    assert result.digest_hex == result.digest.hex()


def test_nothing_placed() -> None:
    text = hexfile(*data_at(0x1FC00000, b"\x01"))
    ota = hx.hex_to_bin(text)
    assert ota.data == b"" and ota.written_end is None
    assert ota.digest_hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    factory = hx.hex_to_bin(text, size=4, factory=True)
    assert factory.data == b"\xf8\xff\xff\xff"
    assert hx.hex_to_bin("").data == b""


def test_zero_length_data_record_counts_for_trimming() -> None:
    """hex2bin's arithmetic: a 0-byte record at a in the window sets the end to a."""
    text = hexfile(*data_at(START, b"\x01"), ela(0x1002), rec(0, 0x10))
    assert hx.hex_to_bin(text).data == b"\x01" + b"\xff" * 15


def test_window_can_be_moved() -> None:
    text = hexfile(*data_at(0x2000, b"\x01\x02"), *data_at(0x2010, b"\x03"))
    result = hx.hex_to_bin(text, start=0x2000, size=0x10)
    assert result.data == b"\x01\x02"
    assert len(result.dropped) == 1


@pytest.mark.parametrize("kind", [2, 3, 5])
def test_hex2bin_refuses_other_record_types(kind: int) -> None:
    payload = b"\x00\x00" if kind == 2 else b"\x9d\x00\x00\x00"
    text = hexfile(*data_at(START, b"\x01"), rec(kind, 0, payload))
    with pytest.raises(HexFileError) as info:
        hx.hex_to_bin(text)
    assert info.value.where == "line 3"


@pytest.mark.parametrize(("start", "size"), [(START, 0), (START, -1), (-1, 16), (0xFFFFFFF0, 0x20)])
def test_invalid_window(start: int, size: int) -> None:
    with pytest.raises(HexFileError):
        hx.hex_to_bin(hexfile(), start=start, size=size)


# --------------------------------------------------------------------------- load and merge


def test_load_hex_coalesces_and_reads() -> None:
    text = hexfile(
        *data_at(0x1000, b"\x01\x02"),
        *data_at(0x1002, b"\x03"),
        *data_at(0x2000, b"\x04"),
        rec(5, 0, b"\x9d\x00\x10\x00"),
    )
    image = hx.load_hex(text)
    assert image.segments == ((0x1000, b"\x01\x02\x03"), (0x2000, b"\x04"))
    assert image.start_address == 0x9D001000
    assert image.read(0x0FFF, 5) == b"\xff\x01\x02\x03\xff"


def test_extended_segment_address_in_merge() -> None:
    text = hexfile(rec(2, 0, b"\x10\x00"), rec(0, 0x0004, b"\x42"))
    assert hx.load_hex(text).segments == ((0x10004, b"\x42"),)


def test_merge_disjoint_bootloader_and_app() -> None:
    boot = hexfile(*data_at(0x1FC00000, b"\xb0" * 20))
    app = hexfile(*data_at(START, b"\xa0" * 40))
    merged = hx.load_hex(hx.merge_hex(boot, app))
    assert merged.segments == ((START, b"\xa0" * 40), (0x1FC00000, b"\xb0" * 20))
    reference = bincopy.BinFile()
    reference.add_ihex(hx.merge_hex(boot, app))
    assert reference.as_binary(minimum_address=START, maximum_address=START + 40) == b"\xa0" * 40


def test_merge_identical_overlap_is_fine() -> None:
    a = hexfile(*data_at(START, b"\x01\x02\x03\x04"))
    b = hexfile(*data_at(START + 2, b"\x03\x04\x05"))
    merged = hx.load_hex(hx.merge_hex(a, b))
    assert merged.segments == ((START, b"\x01\x02\x03\x04\x05"),)


def test_merge_conflict_names_address_and_sources() -> None:
    a = hexfile(*data_at(START, b"\x01\x02\x03\x04"))
    b = hexfile(ela(0x1002), rec(0, 0x0002, b"\x03\x99"))
    with pytest.raises(HexFileError) as info:
        hx.merge_hex(a, b, names=["boot.hex", "app.hex"])
    assert info.value.where == "address 0x10020003"
    message = str(info.value)
    assert "boot.hex line 2" in message and "app.hex line 2" in message
    assert "0x04" in message and "0x99" in message
    with pytest.raises(HexFileError, match="file 2 line 2"):
        hx.merge_hex(a, b)


def test_conflict_within_one_file_and_with_a_long_earlier_record() -> None:
    text = hexfile(*data_at(0x100, bytes(32)), *data_at(0x104, b"\x00"), *data_at(0x110, b"\x01"))
    with pytest.raises(HexFileError) as info:
        hx.load_hex(text)
    assert info.value.where == "address 0x00000110"


def test_conflict_reported_is_the_lowest_address() -> None:
    base = bytes(32)
    late = bytearray(base[1:])
    late[-1] = 1  # differs at 0x11F, found first in sweep order
    text = hexfile(*data_at(0x100, base), *data_at(0x101, bytes(late)), *data_at(0x102, b"\x07"))
    with pytest.raises(HexFileError) as info:
        hx.load_hex(text)
    assert info.value.where == "address 0x00000102"


def test_merge_start_addresses() -> None:
    a = hexfile(*data_at(0, b"\x01"), rec(5, 0, b"\x9d\x00\x00\x00"))
    b = hexfile(*data_at(1, b"\x02"), rec(5, 0, b"\x9d\x00\x00\x00"))
    c = hexfile(rec(5, 0, b"\xbf\xc0\x00\x00"))
    assert hx.load_hex(hx.merge_hex(a, b)).start_address == 0x9D000000
    assert hx.load_hex(hx.merge_hex(a, hexfile())).start_address == 0x9D000000
    with pytest.raises(HexFileError, match="start address"):
        hx.merge_hex(a, c)
    with pytest.raises(HexFileError, match="not supported"):
        hx.merge_hex(hexfile(rec(3, 0, b"\x00\x00\x00\x00")))


def test_merge_rejects_data_past_4gib_and_bad_names() -> None:
    with pytest.raises(HexFileError, match="32-bit"):
        hx.merge_hex(hexfile(ela(0xFFFF), rec(0, 0xFFFF, b"\x01\x02")))
    with pytest.raises(ValueError):
        hx.merge_hex(hexfile(), names=["a", "b"])


def test_physical_address() -> None:
    assert hx.physical_address(0xB0021000) == 0x10021000
    assert hx.physical_address(0x9D000000) == 0x1D000000
    assert hx.physical_address(0xBFC00000) == 0x1FC00000
    assert hx.physical_address(0x10020000) == 0x10020000
    for bad in (0x20000000, 0xC0000000, -1):
        with pytest.raises(ValueError):
            hx.physical_address(bad)


# --------------------------------------------------------------------------- properties

_SEGMENTS = st.lists(
    st.tuples(st.integers(0, 0x3F0), st.binary(min_size=1, max_size=48)), min_size=0, max_size=6
)


def _bincopy_hex(segments: list[tuple[int, bytes]], base: int, per_record: int) -> str:
    binfile = bincopy.BinFile()
    for offset, data in segments:
        binfile.add_binary(data, address=base + offset, overwrite=True)
    text: str = binfile.as_ihex(number_of_data_bytes=per_record, address_length_bits=32)
    return text


def _expected_memory(segments: list[tuple[int, bytes]]) -> dict[int, int]:
    memory: dict[int, int] = {}
    for offset, data in segments:
        for i, byte in enumerate(data):
            memory[offset + i] = byte
    return memory


@settings(max_examples=40)
@given(
    segments=_SEGMENTS,
    per_record=st.sampled_from([1, 7, 16, 32]),
    base=st.sampled_from([START, START + 0xFFF0, 0x1FC00000]),
    factory=st.booleans(),
)
def test_bincopy_hex_round_trips_through_hex_to_bin(
    segments: list[tuple[int, bytes]], per_record: int, base: int, factory: bool
) -> None:
    """bincopy-written HEX of data inside the window converts to exactly that data."""
    text = _bincopy_hex(segments, base, per_record)
    result = hx.hex_to_bin(text, start=base, size=0x440, factory=factory)
    memory = _expected_memory(segments)
    length = 0x440 if factory else (max(memory) + 1 if memory else 0)
    expected = bytearray(b"\xff" * length)
    for offset, byte in memory.items():
        expected[offset] = byte
    if factory:
        expected[0] = 0xF8
    assert result.data == bytes(expected)
    assert result.dropped == ()
    assert result.digest == sha256_bytes(result.data)


@settings(max_examples=40)
@given(
    segments=_SEGMENTS,
    per_record=st.sampled_from([3, 16, 32]),
    base=st.sampled_from([0, START, 0x1000FFF0]),
)
def test_load_hex_and_to_ihex_round_trip(
    segments: list[tuple[int, bytes]], per_record: int, base: int
) -> None:
    text = _bincopy_hex(segments, base, per_record)
    reference = bincopy.BinFile()
    reference.add_ihex(text)
    image = hx.load_hex(text)
    assert image.segments == tuple(
        (segment.minimum_address, bytes(segment.data)) for segment in reference.segments
    )
    assert hx.load_hex(image.to_ihex(per_record)) == image
    assert hx.load_hex(hx.merge_hex(text, text)) == image  # a file overlaps itself identically


@st.composite
def _mutated_hex(draw: st.DrawFn) -> str:
    text = _bincopy_hex(draw(_SEGMENTS), START, 16)
    if not text:
        return text
    index = draw(st.integers(0, len(text) - 1))
    replacement = draw(st.text(alphabet=":0123456789ABCDEFabcdefgX \r\n", max_size=3))
    return text[:index] + replacement + text[index + 1 :]


@settings(max_examples=80)
@given(
    text=st.text(max_size=120)
    | st.text(alphabet=":0123456789ABCDEF\n", max_size=120)
    | _mutated_hex()
)
def test_hex_parsers_only_raise_typed(text: str) -> None:
    for parse in (hx.parse_records, hx.hex_to_bin, hx.load_hex, hx.merge_hex):
        with contextlib.suppress(HexFileError):
            parse(text)
