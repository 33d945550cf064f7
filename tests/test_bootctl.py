"""The boot-control header and page (otamodel.formats.bootctl)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otamodel.errors import BootControlError
from otamodel.formats import bootctl
from otamodel.formats.bootctl import BootControlHeader, ImageStatus, ImageType

u8 = st.integers(0, 0xFF)
u32 = st.integers(0, 0xFFFFFFFF)
headers = st.builds(
    BootControlHeader,
    status=u8,
    slot=u8,
    order=u8,
    type=u8,
    sz=u32,
    version=u32,
    boot_addr=u32,
    digest=st.binary(min_size=32, max_size=32),
    rsvd=st.binary(min_size=208, max_size=208),
)


def test_default_page_bytes() -> None:
    page = bootctl.get_default_page()
    assert len(page) == bootctl.PAGE_SIZE
    assert page[:16] == bytes.fromhex("ffffff03ffffffff01000000001002b0")
    assert page[16:4095] == bytes(4079)
    assert page[bootctl.SIGNATURE_BYTE_OFFSET] == 0xF8
    header, rest = bootctl.unpack_page(page)
    assert header == bootctl.get_default_header()
    assert header.get_status_name() == "INVALID" and header.get_type_name() == "FACTORY_RESET"
    assert len(rest) == bootctl.PAGE_SIZE - bootctl.HEADER_SIZE
    assert not bootctl.is_blank_prefix(page)


def test_dedicated_bootflash_default_changes_only_boot_addr() -> None:
    page = bootctl.get_default_page(dedicated_bootflash=True)
    assert bootctl.unpack_page(page)[0].boot_addr == 0xB0000200
    assert (
        page[:12] == bootctl.get_default_page()[:12]
        and page[16:] == bootctl.get_default_page()[16:]
    )


def test_header_layout_is_little_endian() -> None:
    header = BootControlHeader(
        status=ImageStatus.DISABLED,
        slot=1,
        order=2,
        type=ImageType.PRODUCTION,
        sz=0x11223344,
        version=0x10,
        boot_addr=0xB0021000,
        digest=bytes(range(32)),
    )
    data = header.pack()
    assert data[:16] == bytes.fromhex("f00102014433221110000000001002b0")
    assert data[16:48] == bytes(range(32)) and data[48:] == bytes(208)
    assert type(header.type) is int and header.type == ImageType.PRODUCTION


def test_raw_values_outside_the_enums_round_trip() -> None:
    data = bytes([0xF4, 0, 0, 0x07]) + bytes(252)
    header = bootctl.unpack(data)
    assert header.pack() == data
    assert header.get_status_name() == "0xF4" and header.get_type_name() == "0x07"
    assert bootctl.get_status_name(0xFC) == "UNBOOTED"


@settings(max_examples=100)
@given(headers)
def test_pack_unpack_round_trip(header: BootControlHeader) -> None:
    assert bootctl.unpack(header.pack()) == header
    hash(header)


@settings(max_examples=100)
@given(st.binary(min_size=256, max_size=256))
def test_every_256_bytes_unpack(data: bytes) -> None:
    assert bootctl.unpack(data).pack() == data


@settings(max_examples=100)
@given(st.binary(max_size=300))
def test_unpack_raises_only_the_typed_error(data: bytes) -> None:
    try:
        bootctl.unpack(data)
    except BootControlError as exc:
        assert len(data) != 256 and str(len(data)) in str(exc)


def test_invalid_field_values_are_refused() -> None:
    with pytest.raises(BootControlError, match="status"):
        bootctl.get_default_header().__class__(256, 0, 0, 0, 0, 0, 0)
    with pytest.raises(BootControlError, match="digest"):
        BootControlHeader(0, 0, 0, 0, 0, 0, 0, digest=b"x")
    with pytest.raises(BootControlError, match="page"):
        bootctl.unpack_page(bytes(100))


def test_with_header_replaces_only_the_first_256_bytes() -> None:
    page = bytes(range(256)) * 16
    header = bootctl.get_default_header()
    new = bootctl.with_header(page, header)
    assert new[:256] == header.pack() and new[256:] == page[256:]


def test_blank_prefix() -> None:
    assert bootctl.is_blank_prefix(b"\xff" * 4096)
    assert bootctl.is_blank_prefix(b"\xff" * 16 + b"\x00")
    assert not bootctl.is_blank_prefix(b"\xff" * 15 + b"\xfe")
    assert not bootctl.is_blank_prefix(b"\xff" * 15)


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (0xFE, 0xFC, True),
        (0xF0, 0xF8, False),
        (0xFF, 0xF8, True),
        (0xF8, 0xF8, True),
        (0xFC, 0xFE, False),
    ],
)
def test_can_program_status_transitions(old: int, new: int, ok: bool) -> None:
    assert bootctl.can_program(bytes([old]), bytes([new])) is ok


def test_program_result_is_bitwise_and() -> None:
    assert bootctl.program_result(b"\xf0\xff", b"\xf8\x0f") == b"\xf0\x0f"
    assert bootctl.get_set_bits_over_cleared(b"\xf0\x00", b"\xf8\xff") == 9
    with pytest.raises(BootControlError):
        bootctl.can_program(b"\xff", b"\xff\xff")


@settings(max_examples=100)
@given(
    st.binary(min_size=1, max_size=64).flatmap(
        lambda a: st.tuples(st.just(a), st.binary(min_size=len(a), max_size=len(a)))
    )
)
def test_nor_programming_properties(pair: tuple[bytes, bytes]) -> None:
    old, new = pair
    result = bootctl.program_result(old, new)
    assert bootctl.can_program(old, result)
    assert (result == new) == bootctl.can_program(old, new)
    assert (bootctl.get_set_bits_over_cleared(old, new) == 0) == bootctl.can_program(old, new)
    assert bootctl.can_program(b"\xff" * len(old), new)
