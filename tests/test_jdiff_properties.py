"""Property tests of the jdiff 0.7 codec (Hypothesis)."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from otamodel.errors import BoundError, PatchError
from otamodel.formats import jdiff
from otamodel.formats.jdiff import OpKind

# Byte material rich in the special values 0xA2..0xA7, plus runs that the matcher indexes.
_PIECES = st.one_of(
    st.binary(min_size=1, max_size=160),
    st.lists(st.integers(0xA2, 0xA7), min_size=1, max_size=8).map(bytes),
    st.sampled_from(
        [
            b"\xa7",
            b"\xa7\xa7",
            b"\xa7\xa3",
            b"\xa7\xa7\xa3",
            b"\xa7\xa0",
            b"\xff" * 40,
            b"\x00" * 24,
            bytes(range(0xA0, 0xB0)) * 3,
        ]
    ),
)
RICH = st.lists(_PIECES, max_size=24).map(b"".join)
# Many low byte values become 0xA2..0xA7, so about one byte in eight is special.
_TO_SPECIAL = bytes.maketrans(bytes(range(32)), bytes(0xA2 + i % 6 for i in range(32)))
# Larger seeded random files (up to 6 KiB) so that the block index has work to do.
BIG = st.builds(
    lambda seed, size, tail: random.Random(seed).randbytes(size).translate(_TO_SPECIAL) + tail,
    st.integers(0, 2**32),
    st.integers(0, 6000),
    RICH,
)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(old, new): unrelated, empty, prefixes, or old with edits, moves and duplicates."""
    old = draw(st.one_of(st.just(b""), RICH, BIG))
    shape = draw(st.sampled_from(["edit", "edit", "edit", "unrelated", "prefix", "empty"]))
    if shape == "unrelated":
        return old, draw(RICH)
    if shape == "prefix":
        return old, old[: draw(st.integers(0, len(old)))]
    if shape == "empty":
        return old, b""
    new = bytearray(old)
    for _ in range(draw(st.integers(0, 6))):
        size = len(new)
        at = draw(st.integers(0, size))
        end = draw(st.integers(at, size))
        action = draw(st.sampled_from(["insert", "delete", "replace", "move", "duplicate"]))
        if action == "insert":
            new[at:at] = draw(RICH)
        elif action == "delete":
            del new[at:end]
        elif action == "replace":
            new[at:end] = draw(st.binary(max_size=max(1, end - at)))
        else:
            block = bytes(new[at:end])
            if action == "move":
                del new[at:end]
            dest = draw(st.integers(0, len(new)))
            new[dest:dest] = block
    return old, bytes(new)


@settings(max_examples=200, deadline=None)
@given(pairs())
def test_encode_round_trips_and_is_strict_07(pair: tuple[bytes, bytes]) -> None:
    old, new = pair
    patch = jdiff.encode(old, new)
    assert jdiff.decode(old, patch) == new
    assert jdiff.decode(old, patch, dialect="085") == new
    assert jdiff.is_strict_07(patch, old_size=len(old))
    assert jdiff.is_canonical_07(patch)
    for op in jdiff.list_ops(patch, old_size=len(old)):
        if op.kind is OpKind.MOD:  # never MOD past the end of old (PATCH-22)
            assert op.get_old_end() <= len(old)
        assert op.length > 0


@settings(max_examples=100, deadline=None)
@given(RICH, st.integers(0, 4))
def test_encode_finds_moved_blocks(body: bytes, cut: int) -> None:
    # A|B -> B|A with blocks long enough to be indexed costs far less than the data.
    old = body + bytes(range(256)) + body[::-1] + b"\x5a" * 300
    half = len(old) // 2 + cut
    new = old[half:] + old[:half]
    patch = jdiff.encode(old, new)
    assert jdiff.decode(old, patch) == new
    assert len(patch) < 64


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 1 << 40))
def test_length_codec_round_trips(value: int) -> None:
    field = jdiff.encode_length(value)
    assert jdiff.parse_length(field) == value
    assert jdiff.decode(b"", b"\xa7\xa4" + field, strict=False) == b""


@settings(max_examples=150, deadline=None)
@given(RICH)
def test_escaped_data_reads_back(data: bytes) -> None:
    patch = b"\xa7\xa5" + jdiff.escape_data(data)
    assert jdiff.decode(b"", patch) == data
    assert jdiff.list_ops(patch) == (
        [jdiff.Op(OpKind.INS, len(data), 0, 0, 0, data)]
        if data
        else [jdiff.Op(OpKind.INS, 0, 0, 0, 0)]
    )


# Malformed patches: bytes biased to ESC, opcodes and the multi-byte length prefixes.
_PATCH_BYTES = st.lists(
    st.one_of(st.integers(0xA2, 0xA7), st.integers(0xFC, 0xFF), st.integers(0, 255)),
    max_size=48,
).map(bytes)


@st.composite
def mangled(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(old, patch) where the patch is random or a valid patch damaged in one place."""
    old = draw(st.binary(max_size=64))
    if draw(st.booleans()):
        return old, draw(_PATCH_BYTES)
    patch = bytearray(jdiff.encode(old, draw(st.binary(max_size=64))))
    at = draw(st.integers(0, len(patch)))
    action = draw(st.sampled_from(["cut", "insert", "flip"]))
    if action == "cut":
        del patch[at:]
    elif action == "insert":
        patch[at:at] = draw(_PATCH_BYTES)
    elif patch:
        patch[min(at, len(patch) - 1)] = draw(st.integers(0xA2, 0xFF))
    return old, bytes(patch)


@settings(max_examples=200, deadline=None)
@given(mangled(), st.sampled_from(["07", "085"]), st.booleans())
@example(case=(b"", b"\xa7\xa3\xfe\xa5\x00\x00\x00"), dialect="07", strict=False)
def test_malformed_patches_raise_only_patch_error(
    case: tuple[bytes, bytes], dialect: str, strict: bool
) -> None:
    """A mangled patch decodes, or raises PatchError at a patch offset, or (a length past
    ``max_size``) BoundError naming the option that raises the bound."""
    old, patch = case
    try:
        out = jdiff.decode(old, patch, dialect=dialect, strict=strict, max_size=1 << 16)
    except PatchError as exc:
        assert isinstance(exc.where, int)
        assert 0 <= exc.where < max(len(patch), 1)
    except BoundError as exc:
        assert exc.option == "--max-size"
    else:
        assert isinstance(out, bytes)
    try:
        jdiff.list_ops(patch, dialect, strict=strict)
    except PatchError as exc:
        assert isinstance(exc.where, int)


def _outcome(fn: object) -> tuple[str, object]:
    assert callable(fn)
    try:
        return ("ok", fn())
    except PatchError as exc:
        return ("error", (exc.reason, exc.where))
    except BoundError as exc:  # e.g. a length field past max_size: both ways stop alike
        return ("bound", str(exc))


@settings(max_examples=80, deadline=None)
@given(
    mangled(), st.sampled_from(["07", "085"]), st.booleans(), st.sampled_from([1, 2, 3, 7, 1024])
)
@example(case=(b"", b"\xa7\xa3\xfe\xa5\x00\x00\x00"), dialect="07", strict=False, page=1)
def test_streaming_apply_equals_decode(
    case: tuple[bytes, bytes], dialect: str, strict: bool, page: int
) -> None:
    old, patch = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "old").write_bytes(old)
        (folder / "patch").write_bytes(patch)
        out = folder / "out"

        def streamed() -> bytes:
            jdiff.apply(
                folder / "old",
                folder / "patch",
                out,
                dialect=dialect,
                strict=strict,
                page_size=page,
                max_size=1 << 16,
            )
            return out.read_bytes()

        def in_memory() -> bytes:
            return jdiff.decode(old, patch, dialect=dialect, strict=strict, max_size=1 << 16)

        want = _outcome(in_memory)
        assert _outcome(streamed) == want
        if want[0] != "ok":
            assert not out.exists()
        assert sorted(os.listdir(folder)) == sorted(
            ["old", "patch"] + (["out"] if want[0] == "ok" else [])
        )
