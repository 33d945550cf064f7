"""``image_database.csv`` as ``csv.c`` and the DB parser handle it (otamodel.formats.otadb)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otamodel.errors import DatabaseError
from otamodel.formats import otadb
from otamodel.formats.otadb import ImageDatabase, WriteOp

DIGEST = "0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789"
ROW = ("name.bin", "FE", "2", "0x01", DIGEST)


def db_of(*rows: tuple[str, ...]) -> ImageDatabase:
    return ImageDatabase(rows)


# -- csv_load ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "rows"),
    [
        (b"", [[""]]),
        (b"\n", [[""]]),
        (b"\nabc", [[""], ["abc"]]),
        (b"a\n", [["a"]]),
        (b"a\n\n", [["a"], [""]]),
        (b"a,b\nc", [["a", "b"], ["c"]]),
        (b",", [["", ""]]),
        (b'"a,b",c', [["a,b", "c"]]),
        (b'"a""b"', [['a"b']]),
        (b'"x\ny"', [["x\ny"]]),
        (b'ab"cd"xx,y', [["cd", "y"]]),
        (b'ab""', [["ab"]]),
        (b'"a,', [["a,", ""]]),
        (b"x\0y,z", [["x", "z"]]),
        (b"a\r\nb", [["a\r"], ["b"]]),
        (b"\xe9", [["\xe9"]]),
    ],
)
def test_parse_reproduces_csv_load(data: bytes, rows: list[list[str]]) -> None:
    assert otadb.parse(data).rows == tuple(tuple(row) for row in rows)


def test_load_result_codes() -> None:
    assert otadb.load(None) == (otadb.LOAD_NO_FILE, None)
    assert otadb.load(b"") == (otadb.LOAD_OK, db_of(("",)))


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_parse_accepts_every_byte_string(data: bytes) -> None:
    db = otadb.parse(data)
    assert db.rows and all(row for row in db.rows)
    assert all("\0" not in text for row in db.rows for text in row)
    hash(db)


# -- csv_save ---------------------------------------------------------------------------------


def test_new_entry_on_missing_file_writes_the_documented_row() -> None:
    db = otadb.new_entry(otadb.LOAD_NO_FILE, None, "/mnt/myDrive1/ota/name.bin", 2, DIGEST, False)
    assert db is not None
    assert otadb.serialize(db) == b"name.bin,FE,2,0x01," + DIGEST.encode()


def test_status_update_is_lower_case_hex_in_column_1() -> None:
    db = otadb.set_status(db_of(ROW), 0, f"{0xF8:x}")
    assert otadb.serialize(db) == b"name.bin,f8,2,0x01," + DIGEST.encode()
    assert otadb.get_field_value(db, 0, 1) == 0xF8


def test_set_status_creates_missing_rows_and_fields() -> None:
    assert otadb.set_status(db_of(("a",)), 1, "f0").rows == (("a",), ("", "f0"))


def test_rows_are_joined_without_trailing_newline() -> None:
    assert otadb.serialize(db_of(("a", "b"), ("c",))) == b"a,b\nc"
    assert otadb.serialize(db_of(("",), ("x",))) == b"\nx"


def test_delete_of_only_row_gives_empty_file_which_loads_as_one_empty_field() -> None:
    empty = otadb.remove_row(db_of(ROW), 0)
    assert empty.rows == ()
    assert otadb.serialize(empty) == b""
    assert otadb.parse(b"").rows == (("",),)


def test_remove_row_moves_later_rows_up() -> None:
    db = db_of(("a",), ("b",), ("c",))
    assert otadb.remove_row(db, 1).rows == (("a",), ("c",))
    with pytest.raises(DatabaseError, match="row 3"):
        otadb.remove_row(db, 3)


def test_quoted_field_is_written_a_byte_per_call() -> None:
    ops = otadb.serialize_ops(db_of(('a"b', ""), ("x",)))
    assert ops == (
        WriteOp(0, b'"'),
        WriteOp(1, b"a"),
        WriteOp(2, b'"'),
        WriteOp(3, b'"'),
        WriteOp(4, b"b"),
        WriteOp(5, b'"'),
        WriteOp(6, b","),
        WriteOp(7, b"\n"),
        WriteOp(8, b"x"),
    )
    assert otadb.serialize(db_of(('a"b', ""), ("x",))) == b'"a""b",\nx'


def test_write_position_wraps_at_256() -> None:
    db = db_of(("A" * 250, "B" * 10, "C"))
    ops = otadb.serialize_ops(db)
    assert ops == (
        WriteOp(0, b"A" * 250),
        WriteOp(250, b","),
        WriteOp(251, b"B" * 10),  # one call, not split at 256: the file grows to 261
        WriteOp(5, b","),  # (251 + 10) % 256
        WriteOp(6, b"C"),
    )
    assert otadb.serialize(db) == b"A" * 5 + b",C" + b"A" * 243 + b"," + b"B" * 10
    assert otadb.is_wrapped(db)
    assert not otadb.is_round_trip_safe(db)
    assert otadb.parse(otadb.serialize(db)).rows == (("AAAAA", "C" + "A" * 243, "B" * 10),)


def test_three_long_rows_wrap_and_reload_differently() -> None:
    names = [f"wifi_ota_app_upgrade_release_candidate_ver{i}.bin" for i in (1, 2, 3)]
    db: ImageDatabase | None = None
    result = otadb.LOAD_NO_FILE
    for version, name in enumerate(names, start=1):
        db = otadb.new_entry(result, db, name, version, DIGEST, False)
        result = otadb.LOAD_OK
    assert db is not None and len(db.rows) == 3
    data = otadb.serialize(db)
    naive = b"\n".join(b",".join(f.encode() for f in row) for row in db.rows)
    assert len(naive) > 256 and otadb.is_wrapped(db)
    assert data != naive and len(data) < len(naive)
    assert data == otadb.apply_write_ops(otadb.serialize_ops(db))
    assert otadb.parse(data) != db


def test_unencodable_character_is_a_database_error() -> None:
    with pytest.raises(DatabaseError, match="row 0, field 1"):
        otadb.serialize(db_of(("a", "\u20ac")))


# -- Readers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 16),
        ("FE", 254),
        ("f8", 248),
        ("0x01", 1),
        (" \t-1", -1),
        ("+f", 15),
        ("0x", 0),
        ("0x1g", 1),
        ("x1", 0),
        ("", 0),
        ("7fffffff", 0x7FFFFFFF),
        ("80000000", 0x7FFFFFFF),
        ("-80000000", -0x80000000),
        ("-80000001", -0x80000000),
        ("12\0" + "34", 0x12),
    ],
)
def test_strtol16(text: str, value: int) -> None:
    assert otadb.strtol16(text) == value


def test_version_written_decimal_reads_as_hex() -> None:
    db = db_of(("a.bin", "FE", "10", "0x01", DIGEST))
    assert otadb.get_field_value_32bit(db, 0, 2) == 16
    assert otadb.get_image_row(db, 16) == 0
    assert otadb.get_image_row(db, 10) == -1
    (row,) = otadb.get_rows(db)
    assert (row.version_text, row.version_written, row.version_read) == ("10", 10, 16)


def test_bootloader_casts_the_version_to_uint8() -> None:
    db = db_of(("a.bin", "F8", "100", "0x01", DIGEST))  # reads as 0x100
    assert otadb.get_image_row(db, 0x100) == 0
    assert otadb.get_image_row(db, 0x100, bootloader=True) == -1
    assert otadb.get_image_row(db, 0, bootloader=True) == 0


def test_get_image_row_returns_last_match_and_ignores_read_errors() -> None:
    db = db_of(("a", "FE", "2"), ("b",), ("c", "FE", "2"), ("d", "FE", "0"))
    assert otadb.get_image_row(db, 2) == 2
    assert otadb.get_image_row(db, 0) == 3  # row 1 has no version field: reads "" = 0, row 3 later
    long_version = "1" + "0" * 29 + "5"  # 31 chars: read as its first 30
    assert otadb.get_image_row(db_of(("x", "FE", long_version)), 0x7FFFFFFF) == 0


def test_field_readers_fail_on_missing_or_long_fields() -> None:
    db = db_of(("n" * 100, "F" * 31, "2"), ("n" * 101,))
    assert otadb.get_field_string(db, 0, 0) == "n" * 100
    assert otadb.get_field_string(db, 1, 0) is None
    assert otadb.get_field_string(db, 0, 7) is None
    assert otadb.get_field_value(db, 0, 1) is None
    assert otadb.get_field_value(db, 0, 2) == 2
    assert otadb.get_field_value(db, 5, 2) is None
    assert otadb.get_field_value(db_of(("x", "1FE")), 0, 1) == 0xFE
    assert otadb.get_field_value_32bit(db_of(("x", "-1")), 0, 1) == 0xFFFFFFFF


def test_get_rows_reads_odd_versions() -> None:
    rows = otadb.get_rows(db_of(("a", "x", "--1"), ("b", "FE", "-5"), ("c",)))
    assert [(r.version_written, r.version_read) for r in rows] == [
        (None, 0),
        (-5, 0xFFFFFFFB),
        (None, None),
    ]
    assert (rows[0].status, rows[1].status, rows[2].status_text) == (0, 0xFE, None)


def test_total_imgs_is_uint8() -> None:
    assert otadb.get_total_imgs(ImageDatabase(tuple(("x",) for _ in range(257)))) == 1


# -- OTADbNewEntry ----------------------------------------------------------------------------


def versions(db: ImageDatabase | None) -> list[str]:
    assert db is not None
    return [row[2] for row in db.rows]


def test_new_entry_appends_when_not_full() -> None:
    db = otadb.new_entry(otadb.LOAD_OK, db_of(ROW), "b.bin", 3, DIGEST, False)
    assert versions(db) == ["2", "3"]


def test_new_entry_evicts_lowest_version_first_row_on_tie() -> None:
    db = db_of(("a", "F8", "5", "0x01", "d"), ("b", "FE", "3"), ("c", "F8", "3", "0x01", "d", "x"))
    new = otadb.new_entry(otadb.LOAD_OK, db, "/x/n.bin", 7, DIGEST, True)
    assert new is not None
    assert new.rows[1] == ("n.bin", "FE", "7", "0x01", DIGEST)
    assert new.rows[2] == db.rows[2]
    # An overwritten row keeps fields beyond the fifth.
    wide = db_of(("a", "F8", "1", "0x01", "d", "extra"))
    assert otadb.new_entry(otadb.LOAD_OK, wide, "n", 2, "e", True) == db_of(
        ("n", "FE", "2", "0x01", "e", "extra")
    )


def test_new_entry_eviction_compares_hex_readings() -> None:
    db = db_of(("a", "F8", "10", "0x01", "d"), ("b", "F8", "9", "0x01", "d"))  # 0x10 > 0x9
    assert versions(otadb.new_entry(otadb.LOAD_OK, db, "n", 11, "e", True)) == ["10", "11"]


def test_new_entry_appends_when_every_version_reads_65535_or_more() -> None:
    db = db_of(("a", "F8", "ffff"), ("b", "F8", "10000"))
    assert versions(otadb.new_entry(otadb.LOAD_OK, db, "n", 1, "e", True)) == ["ffff", "10000", "1"]


def test_new_entry_errors() -> None:
    unreadable = db_of(
        ("a", "F8"),
    )
    assert otadb.new_entry(otadb.LOAD_OK, unreadable, "n", 1, "e", True) is None
    assert otadb.new_entry(otadb.LOAD_OK, unreadable, "n", 1, "e", False) is not None
    assert otadb.new_entry(otadb.LOAD_NO_MEMORY, db_of(ROW), "n", 1, "e", False) is None


def test_new_entry_version_text() -> None:
    assert otadb.get_version_text(999) == "999" and not otadb.is_version_text_overflow(999)
    assert otadb.get_version_text(1000) == "1000" and otadb.is_version_text_overflow(1000)
    assert otadb.get_version_text(0xFFFFFFFF) == "-1"
    assert otadb.get_version_text(-100) == "-100" and otadb.is_version_text_overflow(-100)


# -- Round trips ------------------------------------------------------------------------------

FIELD_CHARS = st.sampled_from(['"', ",", "\n", "\r", "a", "b", "0", "F", " ", "\xe9", "\0"])
fields = st.text(FIELD_CHARS, max_size=12)
databases = st.lists(st.lists(fields, min_size=1, max_size=6), min_size=1, max_size=6).map(
    lambda rows: ImageDatabase(tuple(tuple(r) for r in rows))
)
long_databases = st.lists(
    st.lists(st.text(st.sampled_from("ab,"), min_size=20, max_size=90), min_size=1, max_size=5),
    min_size=1,
    max_size=5,
).map(lambda rows: ImageDatabase(tuple(tuple(r) for r in rows)))


@settings(max_examples=200)
@given(st.one_of(databases, long_databases))
def test_round_trip_for_every_safe_database(db: ImageDatabase) -> None:
    data = otadb.serialize(db)
    assert data == otadb.apply_write_ops(otadb.serialize_ops(db))
    if otadb.is_round_trip_safe(db):
        assert otadb.parse(data) == db
        assert otadb.serialize(otadb.parse(data)) == data
    if otadb.is_wrapped(db):
        assert len(data) < sum(len(op.data) for op in otadb.serialize_ops(db))


@settings(max_examples=150)
@given(st.binary(max_size=200))
def test_reserialize_of_loaded_file_is_stable(data: bytes) -> None:
    db = otadb.parse(data)
    if otadb.is_round_trip_safe(db):
        assert otadb.parse(otadb.serialize(db)) == db


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2000), st.text(st.sampled_from("abc._-"), min_size=1, max_size=30)
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_new_entry_output_reloads_when_under_256_bytes(
    entries: list[tuple[int, str]], full: bool
) -> None:
    db: ImageDatabase | None = None
    result = otadb.LOAD_NO_FILE
    for version, name in entries:
        db = otadb.new_entry(result, db, name, version, DIGEST, full)
        assert db is not None
        result = otadb.LOAD_OK
        data = otadb.serialize(db)
        assert (otadb.parse(data) == db) == (not otadb.is_wrapped(db))
        if len(data) < 256:
            assert not otadb.is_wrapped(db)
