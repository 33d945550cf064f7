"""Streaming SHA-256 (otamodel.formats.digest)."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otamodel.formats import digest

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_known_answers() -> None:
    assert digest.sha256_hex(b"") == EMPTY
    assert digest.sha256_hex(b"abc") == ABC
    assert digest.sha256_bytes(b"abc") == bytes.fromhex(ABC)
    assert len(digest.sha256_bytes(b"abc")) == digest.DIGEST_SIZE
    assert digest.sha256_chunks([b"a", b"", b"bc"]) == bytes.fromhex(ABC)


def test_file_and_hex(tmp_path: Path) -> None:
    path = tmp_path / "abc.bin"
    path.write_bytes(b"abc")
    assert digest.sha256_file(path) == bytes.fromhex(ABC)
    assert digest.sha256_file_hex(str(path), 1) == ABC
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert digest.sha256_file_hex(empty) == EMPTY


@settings(max_examples=40)
@given(
    data=st.binary(max_size=600),
    chunk=st.integers(1, 300),
    length=st.none() | st.integers(0, 700),
)
def test_file_matches_hashlib_for_any_chunking(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, chunk: int, length: int | None
) -> None:
    path = tmp_path_factory.mktemp("d") / "f.bin"
    path.write_bytes(data)
    expected = hashlib.sha256(data if length is None else data[:length]).digest()
    assert digest.sha256_file(path, chunk, length=length) == expected


def test_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with pytest.raises(ValueError):
        digest.sha256_file(path, 0)
    with pytest.raises(ValueError):
        digest.sha256_file(path, length=-1)
    with pytest.raises(FileNotFoundError):
        digest.sha256_file(tmp_path / "missing")


def test_constant_memory(tmp_path: Path) -> None:
    """A 16 MiB file is hashed with a peak allocation of a few chunks, not the file size."""
    path = tmp_path / "big.bin"
    size = 16 * 1024 * 1024
    with open(path, "wb") as handle:
        handle.truncate(size)
    tracemalloc.start()
    try:
        result = digest.sha256_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == hashlib.sha256(bytes(size)).digest()
    assert peak < 4 * digest.DEFAULT_CHUNK


def test_vector_digests(vectors_dir: Path) -> None:
    """The sha256 column of SIGNATURES.tsv is the digest of each file."""
    folder = vectors_dir / "signature"
    lines = (folder / "SIGNATURES.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    seen = 0
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        assert digest.sha256_file_hex(folder / row["file"], 1000) == row["sha256"], row["file"]
        seen += 1
    assert seen >= 4
