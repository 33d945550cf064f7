"""jdiff 0.7 codec: shared vectors, worked examples, strict-mode rejections, the writer."""

from __future__ import annotations

import ast
import hashlib
import re
import tracemalloc
from pathlib import Path

import attrs
import pytest

from otamodel.errors import BoundError, PatchError
from otamodel.formats import _jdiff_core, _jdiff_decode, _jdiff_encode, jdiff
from otamodel.formats.jdiff import Op, OpKind

# Vectors where issue 4 requires encode() to be no larger than jdiff 0.7's patch.
FIRMWARE_LIKE = ("case15", "case17", "case20", "case24")


def read_index(vectors_dir: Path) -> list[dict[str, str]]:
    """The rows of ``jdiff/INDEX.tsv`` as dicts."""
    lines = (vectors_dir / "jdiff" / "INDEX.tsv").read_text().splitlines()
    header = next(line for line in lines if line.startswith("# case\t"))
    names = header[2:].split("\t")
    return [
        dict(zip(names, line.split("\t"), strict=True))
        for line in lines
        if line and not line.startswith("#")
    ]


def load_case(vectors_dir: Path, case: str) -> tuple[bytes, bytes, bytes]:
    """(old, new, patch) of one vector case."""
    folder = vectors_dir / "jdiff" / case
    return tuple((folder / n).read_bytes() for n in ("old.bin", "new.bin", "patch.jdf"))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def cases(vectors_dir: Path) -> dict[str, tuple[bytes, bytes, bytes]]:
    rows = read_index(vectors_dir)
    assert len(rows) >= 15
    loaded = {}
    for row in rows:
        old, new, patch = load_case(vectors_dir, row["case"])
        assert hashlib.sha256(old).hexdigest() == row["sha256(old)"]
        assert hashlib.sha256(new).hexdigest() == row["sha256(new)"]
        assert hashlib.sha256(patch).hexdigest() == row["sha256(patch)"]
        loaded[row["case"]] = (old, new, patch)
    return loaded


# ---------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("dialect", ["07", "085"])
@pytest.mark.parametrize("strict", [True, False])
def test_every_vector_decodes_in_both_dialects(
    cases: dict[str, tuple[bytes, bytes, bytes]], dialect: str, strict: bool
) -> None:
    # Every shared vector is a real 0.7 patch; 0.8.5 decoders read 0.7 patches unchanged
    # (jojodiff.md §6), so each one is meaningful in both dialects.
    for name, (old, new, patch) in cases.items():
        assert jdiff.decode(old, patch, dialect=dialect, strict=strict) == new, name


def test_every_vector_applies_streaming(
    cases: dict[str, tuple[bytes, bytes, bytes]], tmp_path: Path
) -> None:
    for name, (old, new, patch) in cases.items():
        (tmp_path / "old").write_bytes(old)
        (tmp_path / "patch").write_bytes(patch)
        for page in (7, 1024) if len(new) > 100_000 else (1, 7, 1024):
            out = tmp_path / f"{name}-{page}.out"
            size = jdiff.apply(tmp_path / "old", tmp_path / "patch", out, page_size=page)
            assert size == len(new)
            assert out.read_bytes() == new, (name, page)
        out = tmp_path / f"{name}-085.out"
        jdiff.apply(tmp_path / "old", tmp_path / "patch", out, dialect="085")
        assert out.read_bytes() == new
    assert not list(tmp_path.glob(".*.tmp"))


def test_every_vector_is_canonical_and_rewrites_byte_for_byte(
    cases: dict[str, tuple[bytes, bytes, bytes]],
) -> None:
    for name, (old, _new, patch) in cases.items():
        ops = jdiff.list_ops(patch, old_size=len(old))
        assert jdiff.write_ops(ops, old) == patch, name
        assert jdiff.is_canonical_07(patch), name
        assert jdiff.is_strict_07(patch, old_size=len(old)), name
        assert jdiff.get_dialect(patch) == "07", name
        assert jdiff.list_ops(patch, "085") == ops, name


def test_encoder_on_every_vector(cases: dict[str, tuple[bytes, bytes, bytes]]) -> None:
    for name, (old, new, patch) in cases.items():
        mine = jdiff.encode(old, new)
        assert jdiff.decode(old, mine) == new, name
        assert jdiff.is_canonical_07(mine), name
        if name in FIRMWARE_LIKE:
            assert len(mine) <= len(patch), (name, len(mine), len(patch))


def test_encoder_uses_bkt_and_del_for_reordered_blocks(
    cases: dict[str, tuple[bytes, bytes, bytes]],
) -> None:
    old, new, _patch = cases["case17"]
    kinds = [op.kind for op in jdiff.list_ops(jdiff.encode(old, new))]
    assert OpKind.BKT in kinds
    assert OpKind.DEL in kinds
    assert kinds.count(OpKind.EQL) == 3


# ---------------------------------------------------------------------------- worked examples


def test_example_a_op_list(cases: dict[str, tuple[bytes, bytes, bytes]]) -> None:
    _old, _new, patch = cases["case31"]
    assert jdiff.list_ops(patch) == [
        Op(OpKind.EQL, 8, 0, 0, 0),
        Op(OpKind.MOD, 1, 8, 8, 3, b"x"),
        Op(OpKind.EQL, 20, 9, 9, 6),
    ]


def test_example_d_op_list(cases: dict[str, tuple[bytes, bytes, bytes]]) -> None:
    _old, _new, patch = cases["case17"]
    got = [(o.kind.name, o.length, o.old_offset, o.new_offset) for o in jdiff.list_ops(patch)]
    assert got == [
        ("MOD", 1, 0, 0),
        ("DEL", 8192, 1, 1),
        ("EQL", 4095, 8193, 1),
        ("BKT", 8192, 12288, 4096),
        ("EQL", 4096, 4096, 4096),
        ("BKT", 8192, 8192, 8192),
        ("EQL", 4096, 0, 8192),
    ]


def test_example_a_in_085_form(cases: dict[str, tuple[bytes, bytes, bytes]]) -> None:
    old, new, _patch = cases["case31"]
    patch085 = bytes.fromhex("a7a307 78 a7a313")
    assert jdiff.decode(old, patch085, dialect="085") == new
    assert jdiff.get_dialect(patch085) == "085"
    with pytest.raises(PatchError) as err:
        jdiff.decode(old, patch085)
    assert err.value.where == 3
    # jptch 0.7 silently drops the byte and loses the final '.' (jojodiff.md §4 A).
    assert jdiff.decode(old, patch085, strict=False) == b"Hello, World! This is a test"


def test_example_b_escape_parsing() -> None:
    old = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    patch = bytes.fromhex("a7a307 a7a6 a7a7 a3 a7a7 a7a0 5152535455565758595a a7a7")
    want = bytes.fromhex("4142434445464748 a7a3a7a7a0 5152535455565758595a a7")
    assert jdiff.decode(old, patch) == want
    assert jdiff.escape_data(want[8:]) == patch[5:]


# ---------------------------------------------------------------------------- dialects


def test_repeated_operator_is_noop_in_07_and_data_in_085() -> None:
    patch = bytes.fromhex("a7a6 41 a7a6 42 a7a5 43 a7a5 44")
    assert jdiff.decode(b"", patch) == b"ABCD"
    assert jdiff.decode(b"", patch, dialect="085") == bytes.fromhex("41a7a642 43a7a544")
    ops = jdiff.list_ops(patch)
    assert [(o.kind, o.data) for o in ops] == [(OpKind.MOD, b"AB"), (OpKind.INS, b"CD")]


@pytest.mark.parametrize(
    ("patch", "want"),
    [
        ("41 42", "41 42"),
        ("a7a7 41", "a7 41"),
        ("a7 41 42", "a7 41 42"),
        ("a7a3 00 a7a7", "00 a7"),
        ("a7a3 00 a7 a0", "00 a7 a0"),
        ("a7a3 00 43 a7a5 44 a7a6 45", "00 43 44 45"),
    ],
)
def test_implicit_mod_in_085(patch: str, want: str) -> None:
    old = b"\x00\x01\x02"
    assert jdiff.decode(old, bytes.fromhex(patch), dialect="085") == bytes.fromhex(want)
    ops = jdiff.list_ops(bytes.fromhex(patch), "085")
    assert ops[-1].kind is OpKind.MOD or ops[-1].kind is OpKind.INS


def test_implicit_mod_advances_the_cursor_in_085() -> None:
    patch = bytes.fromhex("58 59 a7a3 01")  # MOD "XY" then EQL 2
    assert jdiff.decode(b"abcd", patch, dialect="085") == b"XYcd"


def test_unknown_dialect_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="dialect"):
        jdiff.decode(b"", b"", dialect="08")


# ---------------------------------------------------------------------------- strict mode


@pytest.mark.parametrize(
    ("old", "patch", "where", "reason"),
    [
        # data with no current MOD/INS (PATCH-11)
        (b"abc", "41", 0, "outside any MOD/INS"),
        (b"abc", "a7a7", 0, "outside any MOD/INS"),
        (b"abc", "a7 41", 0, "outside any MOD/INS"),
        (b"abc", "a7a3 00 42", 3, "outside any MOD/INS"),
        (b"abc", "a7a6 41 a7a4 00 a7a7", 6, "outside any MOD/INS"),
        # EQL past the end of old (PATCH-8)
        (b"abcd", "a7a6 41 41 a7a3 02", 4, "past the end"),
        (b"abcd", "a7a3 04", 0, "past the end"),
        (b"abcd", "a7a4 03 a7a3 00", 3, "past the end"),
        # BKT before the start (PATCH-9)
        (b"abcd", "a7a3 01 a7a2 02", 3, "before the start"),
        (b"abcd", "a7a2 00", 0, "before the start"),
        (b"abcd", "a7a5 41 a7a2 00", 3, "before the start"),
        # a lone trailing ESC (PATCH-15)
        (b"abcd", "a7", 0, "lone ESC"),
        (b"abcd", "a7a6 41 a7", 3, "lone ESC"),
        (b"abcd", "a7a6 a7a7 a7", 4, "lone ESC"),
        (b"abcd", "a7a3 00 a7", 3, "lone ESC"),
        # a truncated length (PATCH-5)
        (b"abcd", "a7a3", 0, "truncated length"),
        (b"abcd", "a7a3 fc", 0, "truncated length"),
        (b"abcd", "a7a6 41 a7a4 fd 00", 3, "truncated length"),
        (b"abcd", "a7a2 fe 00 00 00", 0, "truncated length"),
        (b"abcd", "a7a3 ff 00 00 00 00 00 00 00", 0, "truncated length"),
        # the 64-bit form where it cannot be honoured (PATCH-6)
        (b"abcd", "a7a3 ff 00 00 00 00 00 00 00 05", 0, "64-bit"),
        (b"abcd", "a7a6 41 a7a4 ff 00 00 00 01 00 00 00 00", 3, "64-bit"),
        (b"abcd", "a7a2 ff 80 00 00 00 00 00 00 00", 0, "64-bit"),
    ],
)
def test_strict_rejections_give_offset_and_reason(
    old: bytes, patch: str, where: int, reason: str
) -> None:
    raw = bytes.fromhex(patch)
    for dialect in ("07", "085"):
        if dialect == "085" and "outside any" in reason:
            continue  # 0.8.5 makes such data implicit MOD
        with pytest.raises(PatchError) as err:
            jdiff.decode(old, raw, dialect=dialect)
        assert err.value.where == where
        assert reason in err.value.reason
        assert f"offset {where}" in str(err.value)


def test_truncated_length_fails_even_when_lenient() -> None:
    with pytest.raises(PatchError) as err:
        jdiff.decode(b"abcd", bytes.fromhex("a7a6 41 a7a3 fd 01"), strict=False)
    assert err.value.where == 3


def test_64bit_value_above_off_t_fails_even_when_lenient() -> None:
    with pytest.raises(PatchError) as err:
        jdiff.decode(b"abcd", bytes.fromhex("a7a4 ff 80 00 00 00 00 00 00 00"), strict=False)
    assert "64-bit" in err.value.reason


def test_64bit_form_is_honoured_within_old() -> None:
    old = b"0123456789"
    patch = bytes.fromhex("a7a3 ff 00 00 00 00 00 00 00 05")
    assert jdiff.decode(old, patch) == b"01234"
    assert jdiff.list_ops(patch) == [Op(OpKind.EQL, 5, 0, 0, 0)]


def test_lenient_mode_decodes_like_the_real_decoders() -> None:
    old = b"abcd"
    # EQL past the end reads 0xFF (device decoder)
    assert jdiff.decode(old, bytes.fromhex("a7a4 01 a7a3 03"), strict=False) == b"cd\xff\xff"
    # BKT before the start, then EQL: bytes before old read 0xFF
    assert jdiff.decode(old, bytes.fromhex("a7a2 00 a7a3 02"), strict=False) == b"\xffab"
    # lone trailing ESC dropped; orphan data dropped (jptch 0.7)
    assert jdiff.decode(old, bytes.fromhex("a7a6 41 a7"), strict=False) == b"A"
    assert jdiff.decode(old, bytes.fromhex("41 a7a3 00 42"), strict=False) == b"a"
    # MOD may run past the end of old and DEL past it is not an error (PATCH-7, PATCH-10)
    assert jdiff.decode(old, bytes.fromhex("a7a6 31323334 35 a7a4 09")) == b"12345"


def test_max_size_bounds_lenient_output() -> None:
    patch = bytes.fromhex("a7a4 fe 10 00 00 00 a7a3 fe 10 00 00 00")
    with pytest.raises(BoundError, match="exceed 1048576 bytes"):
        jdiff.decode(b"", patch, strict=False, max_size=1 << 20)


@pytest.mark.parametrize(
    ("field", "value", "minimal"),
    [
        ("00", 1, True),
        ("fb", 252, True),
        ("fc 00", 253, True),
        ("fc ff", 508, True),
        ("fd 01 fd", 509, True),
        ("fd ff ff", 65535, True),
        ("fe 00 01 00 00", 65536, True),
        ("fe 01 01 df a0", 16_900_000, True),
        ("ff 00 00 00 01 00 00 00 00", 1 << 32, True),
        # non-minimal forms and zero decode as the real decoders do (PATCH-4)
        ("fd 00 03", 3, False),
        ("fd 00 00", 0, False),
        ("fc 00", 253, True),
        ("fe 00 00 00 fc", 252, False),
        ("ff 00 00 00 00 00 00 00 00", 0, False),
    ],
)
def test_length_forms(field: str, value: int, minimal: bool) -> None:
    raw = bytes.fromhex(field)
    assert jdiff.parse_length(raw) == value
    if value:
        assert (jdiff.encode_length(value) == raw) is minimal
    if value <= 70_000:
        old = bytes(range(256)) * 300
        assert jdiff.decode(old, b"\xa7\xa3" + raw) == old[:value]


def test_non_minimal_and_zero_lengths_decode() -> None:
    old = bytes(range(200))
    patch = bytes.fromhex("a7a3 fd 00 03 a7a3 fd 00 00 a7a4 fe 00 00 00 00 a7a2 fc 00")
    # EQL 3, EQL 0, DEL 0, BKT 253 -> before start in strict mode
    with pytest.raises(PatchError) as err:
        jdiff.decode(old, patch)
    assert err.value.where == 17
    patch = bytes.fromhex("a7a3 fd 00 03 a7a3 fd 00 00 a7a4 fe 00 00 00 00 a7a2 fd 00 02 a7a3 00")
    assert jdiff.decode(old, patch) == bytes((0, 1, 2, 1))
    ops = jdiff.list_ops(patch)
    assert [o.length for o in ops] == [3, 0, 0, 2, 1]
    assert jdiff.is_strict_07(patch)
    assert not jdiff.is_canonical_07(patch)


def test_empty_patch_gives_empty_output(tmp_path: Path) -> None:
    assert jdiff.decode(b"abc", b"") == b""
    assert jdiff.list_ops(b"") == []
    (tmp_path / "old").write_bytes(b"abc")
    (tmp_path / "patch").write_bytes(b"")
    assert jdiff.apply(tmp_path / "old", tmp_path / "patch", tmp_path / "out") == 0
    assert (tmp_path / "out").read_bytes() == b""


# ---------------------------------------------------------------------------- the writer


def test_encode_length_uses_the_shortest_form() -> None:
    for value, size in [
        (1, 1),
        (252, 1),
        (253, 2),
        (508, 2),
        (509, 3),
        (65535, 3),
        (65536, 5),
        (0xFFFFFFFF, 5),
        (1 << 32, 9),
    ]:
        assert len(jdiff.encode_length(value)) == size
        assert jdiff.parse_length(jdiff.encode_length(value)) == value
    with pytest.raises(ValueError):
        jdiff.encode_length(0)


def test_writer_folds_short_equal_runs_next_to_mod() -> None:
    old = b"abcdefghij"
    ops = [
        Op(OpKind.MOD, 1, 0, 0, data=b"X"),
        Op(OpKind.EQL, 4, 1, 1),
        Op(OpKind.MOD, 1, 5, 5, data=b"Y"),
        Op(OpKind.EQL, 5, 6, 6),  # longer than 4: stays an EQL even next to MOD
    ]
    patch = jdiff.write_ops(ops, old)
    assert patch == bytes.fromhex("a7a6 58 62636465 59 a7a3 04")
    # a short run not next to MOD stays an EQL
    ops = [Op(OpKind.INS, 1, 0, 0, data=b"X"), Op(OpKind.EQL, 2, 0, 1), Op(OpKind.DEL, 3, 2, 3)]
    assert jdiff.write_ops(ops, old) == bytes.fromhex("a7a5 58 a7a3 01 a7a4 02")
    # a short run before MOD is folded even after INS (the next op is MOD)
    ops = [
        Op(OpKind.INS, 1, 0, 0, data=b"X"),
        Op(OpKind.EQL, 2, 0, 1),
        Op(OpKind.MOD, 1, 2, 3, data=b"Z"),
    ]
    assert jdiff.write_ops(ops, old) == bytes.fromhex("a7a5 58 a7a6 6162 5a")
    # without the old bytes a fold is impossible
    with pytest.raises(ValueError):
        jdiff.write_ops(ops)


def test_writer_pending_esc_rules() -> None:
    assert jdiff.escape_data(b"\xa7") == b"\xa7\xa7"
    assert jdiff.escape_data(b"\xa7A") == b"\xa7A"
    assert jdiff.escape_data(b"\xa7\xa2") == b"\xa7\xa7\xa2"
    assert jdiff.escape_data(b"\xa7\xa7\xa0") == b"\xa7\xa7\xa7\xa0"
    assert jdiff.escape_data(b"\xa7\xa7") == b"\xa7\xa7\xa7\xa7"
    assert jdiff.escape_data(b"\xa8\xa1") == b"\xa8\xa1"
    # a pending ESC is flushed as A7 A7 before an operator
    ops = [Op(OpKind.INS, 1, 0, 0, data=b"\xa7"), Op(OpKind.MOD, 1, 0, 1, data=b"\xa7")]
    assert jdiff.write_ops(ops) == bytes.fromhex("a7a5 a7a7 a7a6 a7a7")


def test_encode_shapes_of_jdiff07() -> None:
    data = bytes(range(256)) * 8
    assert jdiff.encode(data, data) == b"\xa7\xa3" + jdiff.encode_length(len(data))
    assert jdiff.encode(data, b"") == b""
    assert jdiff.encode(b"", b"\xa7\x41") == b"\xa7\xa5\xa7\x41"
    assert jdiff.encode(b"", b"") == b""
    # a truncation is a single EQL, no DEL at the end
    assert jdiff.list_ops(jdiff.encode(data, data[:1000])) == [Op(OpKind.EQL, 1000, 0, 0, 0)]
    # data past the end of old is INS, never MOD past EOF (PATCH-22)
    ops = jdiff.list_ops(jdiff.encode(b"abc", b"xyzuvw"))
    assert [(o.kind, o.length) for o in ops] == [(OpKind.MOD, 3), (OpKind.INS, 3)]


def test_op_record_is_frozen_and_serialisable() -> None:
    op = Op(OpKind.MOD, 2, 5, 7, 9, b"\xa7\x00")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        op.length = 3  # type: ignore[misc]
    assert op.get_old_end() == 7
    assert op.get_new_end() == 9
    assert op.kind.is_data
    assert op.to_dict() == {
        "op": "MOD",
        "length": 2,
        "old_offset": 5,
        "new_offset": 7,
        "patch_offset": 9,
        "data": "a700",
    }
    assert Op(OpKind.BKT, 3, 5, 7).get_old_end() == 2
    assert Op(OpKind.INS, 3, 5, 7).get_old_end() == 5


# ---------------------------------------------------------------------------- streaming


def test_apply_memory_stays_bounded(tmp_path: Path) -> None:
    old = bytes(range(256)) * (8 * 1024)  # 2 MiB
    new = old[1000:] + old[:1000] + bytes(range(255, -1, -1)) * 256
    patch = jdiff.encode(old, new)
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "patch").write_bytes(patch)
    del old
    tracemalloc.start()
    try:
        jdiff.apply(tmp_path / "old", tmp_path / "patch", tmp_path / "out")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "out").read_bytes() == new
    assert peak < 64 * 1024, peak


def test_apply_failure_leaves_no_partial_file(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"abcd" * 1000)
    # 3000 good bytes, then an EQL past the end
    (tmp_path / "patch").write_bytes(bytes.fromhex("a7a3 fd 0b b8 a7a3 fd 0b b8"))
    out = tmp_path / "out"
    with pytest.raises(PatchError) as err:
        jdiff.apply(tmp_path / "old", tmp_path / "patch", out, page_size=16)
    assert err.value.where == 5
    assert not out.exists()
    out.write_bytes(b"previous")
    with pytest.raises(PatchError):
        jdiff.apply(tmp_path / "old", tmp_path / "patch", out)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old", "out", "patch"]


def test_apply_rejects_bad_page_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="page_size"):
        jdiff.apply(tmp_path / "a", tmp_path / "b", tmp_path / "c", page_size=0)


def test_apply_can_replace_the_old_file(tmp_path: Path) -> None:
    # The output goes to a separate temporary file, so naming OLD as OUT is safe.
    old = bytes(range(256)) * 64
    new = old[4096:] + old[:4096]
    (tmp_path / "img").write_bytes(old)
    (tmp_path / "patch").write_bytes(jdiff.encode(old, new))
    jdiff.apply(tmp_path / "img", tmp_path / "patch", tmp_path / "img", page_size=100)
    assert (tmp_path / "img").read_bytes() == new


def test_buffer_inputs_are_accepted() -> None:
    old = bytearray(b"0123456789")
    patch = memoryview(bytes.fromhex("a7a3 03 a7a5 41"))
    assert jdiff.decode(old, patch) == b"0123A"
    assert jdiff.decode(memoryview(old), bytearray(patch)) == b"0123A"
    assert jdiff.decode(old, jdiff.encode(old, bytearray(b"0123A"))) == b"0123A"
    assert jdiff.is_canonical_07(patch)


def test_every_patch_rule_is_cited_by_a_docstring() -> None:
    repo = Path(__file__).resolve().parent.parent
    spec = (repo / "docs" / "spec" / "patch.md").read_text()
    rules = re.findall(r"^- \*\*(PATCH-\d+)\*\* — .+", spec, re.MULTILINE)
    assert rules == [f"PATCH-{i}" for i in range(1, len(rules) + 1)]
    cited: set[str] = set()
    for module in (_jdiff_core, _jdiff_decode, _jdiff_encode, jdiff):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                cited.update(re.findall(r"PATCH-\d+\b", ast.get_docstring(node) or ""))
    assert set(rules) <= cited
    assert cited <= set(rules)
