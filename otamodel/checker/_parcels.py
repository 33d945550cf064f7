"""States sent from one worker process to another (CHK-14 rebalancing), packed compactly.

A state pickled on its own carries every byte string it holds. States of one level share
much content (flash pages, file chunks) but not always the objects, which pickle's memo
dedups by identity only: on the real geometry a given state pickled at about 80 KB with the
others of its level. A parcel keeps each large byte string once by content, and the
coordinator passes parcels on without opening them.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

_SHARED_SIZE = 512
"""Byte strings of at least this many bytes are kept once per parcel, by content."""


class _Packer(pickle.Pickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blobs: list[bytes] = []
        self.index: dict[bytes, int] = {}

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is not bytes or len(obj) < _SHARED_SIZE:
            return None
        found = self.index.get(obj)
        if found is None:
            found = self.index[obj] = len(self.blobs)
            self.blobs.append(obj)
        return found


class _Unpacker(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, blobs: list[bytes]) -> None:
        super().__init__(file)
        self.blobs = blobs

    def persistent_load(self, pid: Any) -> bytes:
        blob: bytes = self.blobs[pid]
        return blob


def pack_states(items: list[tuple[int, Any]]) -> bytes:
    """``(number, state)`` items as one parcel (see :func:`unpack_states`)."""
    body = io.BytesIO()
    packer = _Packer(body)
    packer.dump(items)
    return pickle.dumps((packer.blobs, body.getvalue()), protocol=pickle.HIGHEST_PROTOCOL)


def unpack_states(parcel: bytes) -> list[tuple[int, Any]]:
    """The items :func:`pack_states` packed (equal large byte strings one object again)."""
    blobs, body = pickle.loads(parcel)
    items: list[tuple[int, Any]] = _Unpacker(io.BytesIO(body), blobs).load()
    return items
