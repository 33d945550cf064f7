"""Helpers shared by the machines: evolving sub-states, queueing persistent operations,
and the database and boot-control views of storage."""

from __future__ import annotations

from collections.abc import Sequence

from otamodel.formats import bootctl, otadb
from otamodel.model._config import Defect
from otamodel.model._physics import FsClose, FsCreate, FsWrite, PersistentOp, get_page_program_ops
from otamodel.model._record import get_evolve
from otamodel.model._state import Bootloader, Core, Fs, Service, Transfer, World, replace

DB_NAME = "image_database.csv"
FACTORY_FILE = "factory_reset.bin"
FACTORY_SIGN_FILE = "factory_image_sign.txt"
FACTORY_DIGEST_FILE = "factory_image_digest.txt"
BOOT_ADDR = 0xB0021000


_evolve_world = get_evolve(World)
_evolve_service = get_evolve(Service)
_evolve_core = get_evolve(Core)
_evolve_boot = get_evolve(Bootloader)
_evolve_net = get_evolve(Transfer)


def set_service(world: World, **changes: object) -> World:
    return _evolve_world(world, service=_evolve_service(world.service, **changes))


def set_core(world: World, **changes: object) -> World:
    return _evolve_world(world, core=_evolve_core(world.core, **changes))


def set_boot(world: World, **changes: object) -> World:
    return _evolve_world(world, boot=_evolve_boot(world.boot, **changes))


def set_net(world: World, **changes: object) -> World:
    return _evolve_world(world, net=_evolve_net(world.net, **changes))


def process_exception(world: World, why: str) -> World:
    """DEV-6: undefined C behaviour (a write through NULL) raises a CPU exception whose
    handler spins: the device hangs until the next reset."""
    from otamodel.model._enums import Phase

    return replace(
        world,
        phase=Phase.HUNG,
        running=None,
        pending=(),
        notes=(*world.notes, f"CPU exception: {why}"),
    )


def enqueue(world: World, ops: Sequence[PersistentOp]) -> World:
    """Queue operations; the device performs them one per step before its code runs on."""
    return replace(world, pending=(*world.pending, *ops))


def get_fs_view(world: World) -> Fs:
    """The FS as the code will find it once the queued operations are done."""
    from otamodel.model._physics import FlashErase, FlashProgram, apply_fs

    fs = world.fs
    options = getattr(world.scenario, "fs_options", None)
    max_open = options.max_open if options is not None else None
    for op in world.pending:
        if not isinstance(op, FlashErase | FlashProgram):
            fs = apply_fs(fs, op, torn=False, max_open=max_open)
    return fs


DB_TEMP = "image_database.tmp"


def load_db(world: World) -> tuple[int, otadb.ImageDatabase | None]:
    """DB-1: ``csv_load``: 1 when the file cannot be opened, else 0 and the rows.
    HARD-2: the hardened variant reads an empty file as no database."""
    data = get_fs_view(world).get(DB_NAME)
    if data == b"" and world.scenario.config.is_hardened:
        return 1, None
    return otadb.load(data)


def get_db_save_ops(world: World, db: otadb.ImageDatabase) -> list[PersistentOp]:
    """DB-5: ``csv_save`` = truncate, one write per call at its (uint8) position, close.
    HARD-1: the hardened variant writes a temporary file and renames it over the DB (and
    deletes the DB instead of leaving an empty file)."""
    from otamodel.model._physics import FsDelete, FsRename

    hardened = world.scenario.config.is_hardened
    if hardened and not db.rows:
        return [FsDelete(DB_NAME)]
    name = DB_TEMP if hardened else DB_NAME
    ops: list[PersistentOp] = [FsCreate(name)]
    if world.scenario.fs_write_calls:
        ops.extend(FsWrite(name, w.offset, w.data) for w in otadb.serialize_ops(db))
    else:
        data = otadb.serialize(db)
        if data:
            ops.append(FsWrite(name, 0, data))
    ops.append(FsClose(name))
    if hardened and world.scenario.config.has(Defect.DB_DELETE_BEFORE_RENAME):
        ops.append(FsDelete(DB_NAME))  # PROP-45: the old DB goes before the new one is in place
    if hardened:
        ops.append(FsRename(DB_TEMP, DB_NAME))
    return ops


def get_bootctl(world: World) -> bootctl.BootControlHeader:
    return bootctl.unpack(world.flash.pages[0][: bootctl.HEADER_SIZE])


def get_bootctl_write_ops(world: World, page: bytes, *, erase: bool) -> list[PersistentOp]:
    """BC-w: a 4 KB boot-control write: optionally the page erase, then its row programs."""
    from otamodel.model._physics import FlashErase

    geometry = world.scenario.geometry
    ops: list[PersistentOp] = [FlashErase(0)] if erase else []
    ops.extend(get_page_program_ops(0, page, geometry))
    return ops


def make_page(world: World, header: bootctl.BootControlHeader, rest: bytes) -> bytes:
    size = world.scenario.geometry.page_size
    return (header.pack() + rest)[:size].ljust(size, b"\x00")
