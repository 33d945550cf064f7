"""Persistent operations and the physics of the two media.

Every effect of the machines that touches storage is a sequence of these operations; the
device performs them one per step so a power cut can fall between any two, or tear one.
"""

from __future__ import annotations

import attrs

from otamodel.model._config import Geometry, TearMode
from otamodel.model._state import OVERPROGRAM_CAP, Flash, Fs, replace


@attrs.frozen(cache_hash=True)
class FlashErase:
    """Erase one page of the slot to 0xFF."""

    page: int

    def describe(self) -> str:
        return f"NVM erase page {self.page}"


@attrs.frozen(cache_hash=True)
class FlashProgram:
    """Program one row of one page (NOR: only clears bits)."""

    page: int
    row: int
    data: bytes

    def describe(self) -> str:
        return f"NVM program page {self.page} row {self.row}"


@attrs.frozen(cache_hash=True)
class FsCreate:
    """Open with WRITE/WRITE_PLUS: create the file or truncate it to 0 bytes."""

    name: str

    def describe(self) -> str:
        return f"FS create/truncate {self.name}"


@attrs.frozen(cache_hash=True)
class FsWrite:
    """One write call of ``data`` at ``offset`` (the file grows as needed)."""

    name: str
    offset: int
    data: bytes

    def describe(self) -> str:
        return f"FS write {self.name} @{self.offset} ({len(self.data)} B)"


@attrs.frozen(cache_hash=True)
class FsClose:
    """Close a file handle (no content change in this model's FAT semantics)."""

    name: str

    def describe(self) -> str:
        return f"FS close {self.name}"


@attrs.frozen(cache_hash=True)
class FsDelete:
    """Delete a file (a missing file is a no-op failure)."""

    name: str

    def describe(self) -> str:
        return f"FS delete {self.name}"


@attrs.frozen(cache_hash=True)
class FsRename:
    """Rename ``source`` over ``target`` (atomic: the hardened variant's DB commit)."""

    source: str
    target: str

    def describe(self) -> str:
        return f"FS rename {self.source} -> {self.target}"


@attrs.frozen(cache_hash=True)
class FsFormat:
    """Format the volume: every file and directory is gone."""

    def describe(self) -> str:
        return "FS format"


@attrs.frozen(cache_hash=True)
class FsMkdir:
    """Create the ``ota`` directory."""

    def describe(self) -> str:
        return "FS mkdir ota"


PersistentOp = (
    FlashErase
    | FlashProgram
    | FsCreate
    | FsWrite
    | FsClose
    | FsDelete
    | FsFormat
    | FsMkdir
    | FsRename
)


def is_tearable(op: PersistentOp) -> bool:
    """A power cut can leave ``op`` half done (FS-3, FS-4, FS-6)."""
    return isinstance(op, FlashErase | FlashProgram | FsWrite)


def apply_flash_erase(flash: Flash, op: FlashErase, geometry: Geometry, *, torn: bool) -> Flash:
    """FS-2: erase sets the page to 0xFF; torn, only the first half of the page is erased."""
    old = flash.pages[op.page]
    size = geometry.page_size
    new = b"\xff" * size if not torn else b"\xff" * (size // 2) + old[size // 2 :]
    if op.page >= len(flash.pages):
        return flash  # SCN-11: the bootloader erases only the slot
    return replace(flash, pages=_replace(flash.pages, op.page, new))


def apply_flash_program(
    flash: Flash, op: FlashProgram, geometry: Geometry, *, torn: bool, tear_mode: TearMode
) -> Flash:
    """FS-1 / FS-3: a row program ANDs the data into the row and records set-over-cleared bits.

    Torn in ``WORD`` mode the first half of the row's 32-bit words are programmed; in
    ``BITS`` mode only every other byte takes its cleared bits.
    """
    if op.page >= len(flash.pages):
        return _program_beyond(flash, op, geometry, torn=torn, tear_mode=tear_mode)
    page = flash.pages[op.page]
    start = op.row * geometry.row_size
    old = page[start : start + len(op.data)]
    data = op.data
    if torn:
        if tear_mode is TearMode.WORD:
            cut = (len(data) // 8) * 4
            data = data[:cut] + b"\xff" * (len(data) - cut)
        else:
            data = bytes(b if i % 2 == 0 else 0xFF for i, b in enumerate(data))
    over = int.from_bytes(data, "big") & ~int.from_bytes(old, "big")
    written = (int.from_bytes(old, "big") & int.from_bytes(data, "big")).to_bytes(len(old), "big")
    new_page = page[:start] + written + page[start + len(written) :]
    if not over:
        return Flash(
            pages=_replace(flash.pages, op.page, new_page),
            beyond=flash.beyond,
            overprograms=flash.overprograms,
            overprogrammed=flash.overprogrammed,
        )
    # PROP-7: saturating count and the location, so distinct over-programs stay distinct.
    return Flash(
        pages=_replace(flash.pages, op.page, new_page),
        beyond=flash.beyond,
        overprograms=min(flash.overprograms + 1, OVERPROGRAM_CAP),
        overprogrammed=flash.overprogrammed | {(op.page, op.row)},
    )


def _program_beyond(
    flash: Flash, op: FlashProgram, geometry: Geometry, *, torn: bool, tear_mode: TearMode
) -> Flash:
    """SCN-11: a row program past the slot lands in the one page of flash after it (never
    erased by the bootloader, so NOR rules apply); further pages do not exist and the NVM
    controller refuses the address (model choice: nothing is written)."""
    if op.page > len(flash.pages):
        return flash
    page = flash.beyond or b"\xff" * geometry.page_size
    shadow = replace(flash, pages=(*flash.pages, page), beyond=b"")
    done = apply_flash_program(shadow, op, geometry, torn=torn, tear_mode=tear_mode)
    return replace(done, pages=flash.pages, beyond=done.pages[-1])


def apply_fs(
    fs: Fs,
    op: PersistentOp,
    *,
    torn: bool,
    at_close: bool = False,
    max_open: int | None = None,
) -> Fs:
    """FS-5 / FS-6: external FS operations; a torn write keeps a prefix of its data.
    SCN-30: ``at_close``: written data becomes durable only when the file is closed.
    SCN-31: ``max_open``: an open beyond the limit fails, and writes without a handle fail."""
    if max_open is not None:
        tracked = _track_handles(fs, op, max_open)
        if tracked is None:
            return fs
        fs = tracked
    new = _apply_fs(fs, op, torn=torn)
    if at_close:
        new = _track_dirty(fs, new, op)
    return new


def _track_handles(fs: Fs, op: PersistentOp, max_open: int) -> Fs | None:
    """SCN-31: None when the operation fails for want of a handle."""
    if isinstance(op, FsCreate):
        if len(fs.handles) >= max_open:
            return None
        return replace(fs, handles=(*fs.handles, op.name))
    if isinstance(op, FsWrite) and op.name not in fs.handles:
        return None
    if isinstance(op, FsClose) and op.name in fs.handles:
        rest = list(fs.handles)
        rest.remove(op.name)
        return replace(fs, handles=tuple(rest))
    return fs


def _track_dirty(before: Fs, after: Fs, op: PersistentOp) -> Fs:
    """SCN-30: remember what an unclosed file falls back to; a close or delete forgets it."""
    dirty = dict(before.dirty)
    if isinstance(op, FsWrite) and op.name not in dirty:
        old = before.get(op.name)
        if old is not None:
            dirty[op.name] = old
    elif isinstance(op, FsClose | FsDelete | FsCreate):
        dirty.pop(op.name, None)
    elif isinstance(op, FsFormat):
        dirty = {}
    return replace(after, dirty=tuple(sorted(dirty.items())))


def _apply_fs(fs: Fs, op: PersistentOp, *, torn: bool) -> Fs:
    if isinstance(op, FsFormat):
        return Fs(formatted=True, has_dir=False, handles=fs.handles)
    if isinstance(op, FsMkdir):
        return replace(fs, has_dir=True)
    if not fs.has_dir:
        return fs  # every path is under ota/: without the directory the call fails
    if isinstance(op, FsCreate):
        return fs.with_file(op.name, b"")
    if isinstance(op, FsDelete):
        return fs.without(op.name)
    if isinstance(op, FsRename):
        parts = fs.get_chunks(op.source)
        if parts is None:
            return fs
        return fs.without(op.source).with_chunks(op.target, parts)
    if isinstance(op, FsWrite):
        data = op.data[: len(op.data) // 2] if torn else op.data
        return fs.with_write(op.name, op.offset, data)
    return fs  # FsClose


def _replace(pages: tuple[bytes, ...], index: int, page: bytes) -> tuple[bytes, ...]:
    return (*pages[:index], page, *pages[index + 1 :])


def get_page_program_ops(page_index: int, data: bytes, geometry: Geometry) -> list[PersistentOp]:
    """A page write as the code does it: one program per row (four 1 KB rows on the device)."""
    data = data[: geometry.page_size].ljust(geometry.page_size, b"\xff")
    size = geometry.row_size
    return [
        FlashProgram(page_index, row, data[row * size : (row + 1) * size])
        for row in range(geometry.rows_per_page)
    ]


def get_file_write_ops(name: str, chunks: list[tuple[int, bytes]]) -> list[PersistentOp]:
    """Create/truncate, the writes, then close."""
    ops: list[PersistentOp] = [FsCreate(name)]
    ops.extend(FsWrite(name, offset, data) for offset, data in chunks)
    ops.append(FsClose(name))
    return ops
