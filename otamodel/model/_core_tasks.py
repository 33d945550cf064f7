"""The OTA core's tasks that run once per call: the patch base search, the database entry,
the factory reset and the erase (research note §3.3, §3.5–§3.7)."""

from __future__ import annotations

from otamodel.errors import ManifestError
from otamodel.formats import manifest as mf
from otamodel.formats import otadb
from otamodel.model._config import Defect
from otamodel.model._enums import CoreResult
from otamodel.model._state import World
from otamodel.model._storage import (
    DB_NAME,
    enqueue,
    get_db_save_ops,
    get_fs_view,
    load_db,
    process_exception,
    set_core,
)

R = CoreResult


# ------------------------------------------------------------------ the other tasks


def process_search_base(w: World) -> World:
    """CORE-40: SEARCH_PATCH_BASEVERSION: PATCH_EVENT_START or PATCH_BASEVERSION_NOTFOUND."""
    from otamodel.model._parse import search_image_version

    params = w.core.params
    name = search_image_version(w, params.patch_base_version, params.base_digest)
    if name is None:
        return set_core(w, result=R.PATCH_BASEVERSION_NOTFOUND, idle=False)
    return set_core(w, result=R.PATCH_EVENT_START, patch_source=name, idle=False)


def get_hex_version_db(db: otadb.ImageDatabase, name: str, version: int) -> otadb.ImageDatabase:
    """HARD-6: the hardened variant writes the version in hex, the base every reader uses."""
    rows = tuple(
        (*row[:2], f"{version:x}", *row[3:]) if row and row[0] == name and len(row) > 2 else row
        for row in db.rows
    )
    return otadb.ImageDatabase(rows=rows)


def _new_db_entry(w: World) -> otadb.ImageDatabase | None:
    core = w.core
    result, db = load_db(w)
    if w.scenario.config.is_hardened and result == 0 and db is not None:
        result, db = get_db_without(db, core.image_name)  # HARD-12
    if w.scenario.config.has(Defect.EVICTS_NEWEST) and core.db_full and db is not None:
        return get_newest_evicted(db, core.image_name, core.params.version, core.params.digest)
    return otadb.new_entry(
        result, db, core.image_name, core.params.version, core.params.digest, core.db_full
    )


def get_db_without(db: otadb.ImageDatabase, name: str) -> tuple[int, otadb.ImageDatabase | None]:
    """HARD-12: the rows naming the file about to be entered are dropped first, so an image
    downloaded again replaces its row instead of adding a duplicate."""
    short = name.rsplit("/", 1)[-1]
    rows = tuple(row for row in db.rows if not row or row[0] != short)
    if rows == db.rows:
        return 0, db
    if not rows:
        return 1, None
    return 0, otadb.ImageDatabase(rows=rows)


def get_newest_evicted(
    db: otadb.ImageDatabase, name: str, version: int, digest: str
) -> otadb.ImageDatabase:
    """PROP-45 (evicts-newest): a full store overwrites its highest-version row."""
    versions = [otadb.get_field_value_32bit(db, i, 2) or 0 for i in range(otadb.get_total_imgs(db))]
    victim = versions.index(max(versions))
    rows = list(db.rows)
    rows[victim] = (name.rsplit("/", 1)[-1], "FE", str(version), "0x01", digest)
    return otadb.ImageDatabase(rows=tuple(rows))


def process_db_entry_failed(w: World) -> World | None:
    """CORE-25: ``OTADbNewEntry`` returns −1: IMAGE_DB_ENTRY_FAILED and UPDATE_USER."""
    if _new_db_entry(w) is not None:
        return None
    return set_core(w, result=R.IMAGE_DB_ENTRY_FAILED, idle=False)


def is_sign_name_bad(w: World) -> bool:
    """CORE-25: a URL without a name for the ``_sign.txt`` file (secure builds)."""
    core = w.core
    if not (w.scenario.config.secure_boot and core.params.signature_verification):
        return False
    try:
        mf.get_sign_file_name(core.params.url)
    except ManifestError:
        return True
    return False


def process_sign_exception(w: World) -> World:
    """DEV-6: naming the sign file writes through NULL: the CPU hangs (nothing is saved)."""
    return process_exception(w, f"sign file name of {w.core.params.url!r}")


def process_db_entry(w: World) -> World:
    """CORE-25: ``OTADbNewEntry`` (DB-6) then, in secure builds, the ``_sign.txt`` file."""
    core = w.core
    new = _new_db_entry(w)
    assert new is not None
    if w.scenario.config.is_hardened:
        new = get_hex_version_db(new, core.image_name, core.params.version)
    w = enqueue(w, get_db_save_ops(w, new))
    if w.scenario.config.secure_boot and core.params.signature_verification:
        from otamodel.model._physics import get_file_write_ops

        sign_name = mf.get_sign_file_name(core.params.url)
        w = enqueue(w, get_file_write_ops(sign_name, [(0, core.params.signature.encode())]))
    return set_core(w, idle=False)


def process_factory_delete_db(w: World) -> World:
    """CORE-26: F_INIT deletes the DB."""
    from otamodel.model._physics import FsDelete

    if w.scenario.config.has(Defect.FACTORY_RESET_REPORTS_ONLY):
        return set_core(w, idle=False)  # PROP-45: nothing is deleted
    return set_core(enqueue(w, [FsDelete(DB_NAME)]), idle=False)


def process_factory_erase_boot_control(w: World) -> World:
    """CORE-26: F_INVALIDATE_BOOT_CTL erases the boot-control page (no write)."""
    from otamodel.model._physics import FlashErase

    if w.scenario.config.has(Defect.FACTORY_RESET_REPORTS_ONLY):
        return w  # PROP-45: boot control is kept
    return enqueue(w, [FlashErase(0)])


def process_factory_done(w: World) -> World:
    """CORE-26: the result is always FACTORY_RESET_SUCCESS."""
    return set_core(w, result=R.FACTORY_RESET_SUCCESS)


def process_erase_task(w: World) -> World:
    """CORE-27: find the row by version (no check against the running version), delete the
    row and rewrite the DB, then delete the file; the sign file stays."""
    from otamodel.model._physics import FsDelete

    result, db = load_db(w)
    fail = set_core(w, result=R.IMAGE_ERASE_FAILED, idle=False)
    if result > 1 or db is None:
        return fail
    row = otadb.get_image_row(db, w.core.erase_ver)
    if row < 0:
        return fail
    if w.scenario.config.has(Defect.ERASE_WRONG_ROW):
        row = otadb.get_total_imgs(db) - 1  # PROP-45: the last row, not the found one
    name = otadb.get_field_string(db, row, 0)
    if name is None:
        return fail
    if not w.scenario.config.has(Defect.ERASE_KEEPS_ROW):  # PROP-45
        w = enqueue(w, get_db_save_ops(w, otadb.remove_row(db, row)))
    if not get_fs_view(w).is_present(name):
        return set_core(w, result=R.IMAGE_ERASE_FAILED, idle=False)
    w = enqueue(w, [FsDelete(name)])
    return set_core(w, result=R.IMAGE_ERASED, idle=False)
