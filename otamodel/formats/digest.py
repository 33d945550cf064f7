"""SHA-256 digests of OTA images, computed in constant memory.

The manifest's ``Digest`` is the SHA-256 of the whole ``.bin`` file, written as 64 lowercase hex
digits (the way ``hex2bin.py`` prints it). The OTA core hashes the downloaded file in fixed-size
chunks, and so do these helpers: memory use does not depend on the file size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

__all__ = [
    "DEFAULT_CHUNK",
    "DIGEST_SIZE",
    "sha256_bytes",
    "sha256_chunks",
    "sha256_file",
    "sha256_file_hex",
    "sha256_hex",
]

DIGEST_SIZE = 32
"""Length of a SHA-256 digest in bytes."""

DEFAULT_CHUNK = 64 * 1024
"""Default read size of :func:`sha256_file`; any positive size gives the same digest."""


def sha256_bytes(data: bytes) -> bytes:
    """The 32-byte SHA-256 digest of ``data`` (TOOL-10)."""
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits, the manifest form (TOOL-10)."""
    return hashlib.sha256(data).hexdigest()


def sha256_chunks(chunks: Iterable[bytes]) -> bytes:
    """The SHA-256 of the concatenation of ``chunks``, without concatenating them (TOOL-10)."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.digest()


def _check_chunk(chunk: int) -> None:
    if chunk <= 0:
        raise ValueError(f"chunk size must be positive, not {chunk}")


def sha256_file(
    path: str | os.PathLike[str],
    chunk: int = DEFAULT_CHUNK,
    *,
    length: int | None = None,
) -> bytes:
    """The 32-byte SHA-256 of the file at ``path``, read ``chunk`` bytes at a time (TOOL-10).

    With ``length``, only the first ``length`` bytes are hashed (fewer if the file is shorter):
    the OTA core hashes ``img_sz`` bytes from offset 0, not necessarily the whole file.
    Memory use is bounded by ``chunk``. ``OSError`` propagates unchanged.
    """
    _check_chunk(chunk)
    if length is not None and length < 0:
        raise ValueError(f"length must not be negative, not {length}")
    hasher = hashlib.sha256()
    remaining = length
    with open(path, "rb") as handle:
        while remaining is None or remaining > 0:
            want = chunk if remaining is None else min(chunk, remaining)
            block = handle.read(want)
            if not block:
                break
            hasher.update(block)
            if remaining is not None:
                remaining -= len(block)
    return hasher.digest()


def sha256_file_hex(
    path: str | os.PathLike[str],
    chunk: int = DEFAULT_CHUNK,
    *,
    length: int | None = None,
) -> str:
    """:func:`sha256_file` as 64 lowercase hex digits, the manifest ``Digest`` (TOOL-10)."""
    return sha256_file(path, chunk, length=length).hex()
