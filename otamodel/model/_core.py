"""The OTA core machine, ``OTA_Tasks`` (research note §3), and its API used by the service."""

from __future__ import annotations

from otamodel.errors import ManifestError
from otamodel.formats import bootctl, otadb
from otamodel.formats import manifest as mf
from otamodel.model._callback import process_core_callback
from otamodel.model._core_io import (
    get_cleanup_deletes,
    process_download_step,
    process_patch_build,
    process_verify,
)
from otamodel.model._enums import CoreResult, CoreTask
from otamodel.model._machine import MachineSpec, Transition
from otamodel.model._product import Reply
from otamodel.model._state import OtaParams, World, replace
from otamodel.model._storage import (
    BOOT_ADDR,
    DB_NAME,
    FACTORY_FILE,
    enqueue,
    get_bootctl,
    get_bootctl_write_ops,
    get_db_save_ops,
    get_fs_view,
    load_db,
    make_page,
    process_exception,
    set_core,
    set_net,
)

C = CoreTask
R = CoreResult
VALID, DOWNLOADED, DISABLED = 0xF8, 0xFE, 0xF0

# ------------------------------------------------------------------ API used by the service


def is_url_accepted(url: str, *, enforce_tls: bool = False) -> bool:
    """CORE-2: ``HTTP_Client_ParseURI`` accepts only ``http://`` / ``https://`` (case-sensitive);
    SCN-19: with ``SYS_OTA_ENFORCE_TLS`` only ``https://``."""
    return url.startswith("https://") or (not enforce_tls and url.startswith("http://"))


def open_downloader(world: World, url: str) -> World:
    """CORE-3: the single downloader instance starts a GET; a 200 sets ``field_content_length``
    (ENV-6: an answer without the header leaves the previous value)."""
    answer = world.scenario.serve(world.published, url) if world.network_up else None
    if isinstance(answer, Reply):
        body: bytes | None = answer.body
        length = answer.content_length
    else:
        body = answer
        length = None if answer is None else len(answer)
    return set_net(
        world,
        url=url,
        open=True,
        failed=False,
        body=body,
        content_length=world.net.content_length if length is None else length,
    )


def register_callback(world: World) -> World:
    """CORE-4: ``OTA_CallBackReg``: the first registration succeeds."""
    return set_core(world, callback=True)


def is_core_idle_for_api(world: World) -> bool:
    """CORE-5: the core API calls are accepted only while the task is IDLE."""
    return world.core.task is C.IDLE


def is_start_accepted(world: World, params: OtaParams) -> bool:
    """CORE-6: ``OTA_Start`` fails unless IDLE and the URL opens."""
    enforce = world.scenario.config.enforce_tls
    return is_core_idle_for_api(world) and is_url_accepted(params.url, enforce_tls=enforce)


def ota_start(world: World, params: OtaParams) -> World:
    """CORE-6: copy the params (digest before URL, so a long URL runs into the digest), pick
    SEARCH_PATCH_BASEVERSION or DOWNLOAD_IMAGE, statuses FE/F0; the version is not written
    to the task parameters."""
    if not is_start_accepted(world, params):
        return world
    from otamodel.model._parse import copy_url

    old = world.core.params
    copied = replace(old, digest=params.digest[:64], version=params.version)
    if world.scenario.config.secure_boot:
        copied = replace(
            copied,
            signature_verification=params.signature_verification,
            signature=params.signature[:96] if params.signature_verification else old.signature,
        )
    copied = copy_url(copied, params.url)
    task = C.DOWNLOAD_IMAGE
    if params.patch_request:
        copied = replace(
            copied,
            patch_request=True,
            patch_base_version=params.patch_base_version,
            base_digest=params.base_digest,
            patch_digest=params.patch_digest,
        )
        task = C.SEARCH_PATCH_BASEVERSION
    world = open_downloader(world, params.url)
    return set_core(
        world, params=copied, task=task, sub="D_INIT", img_status=DOWNLOADED, pfm_status=DISABLED
    )


def ota_rollback(world: World) -> World:
    """CORE-7: ``OTA_Rollback``: nothing for a FACTORY_RESET type; otherwise SET_IMAGE_STATUS
    with F0/F0 for the boot-control version."""
    header = get_bootctl(world)
    if header.type == bootctl.ImageType.FACTORY_RESET:
        return world
    world = set_core(
        world,
        task=C.SET_IMAGE_STATUS,
        sub="S_INIT",
        param_version=header.version,
        img_status=DISABLED,
        pfm_status=DISABLED,
        rollback_initiated=True,
    )
    return replace(world, ghost=replace(world.ghost, max_validated=0))


def ota_factory_reset(world: World) -> World:
    """CORE-8: ``OTA_FactoryReset``: task FACTORY_RESET when IDLE."""
    if not is_core_idle_for_api(world):
        return world
    world = replace(world, ghost=replace(world.ghost, max_validated=0))
    return set_core(world, task=C.FACTORY_RESET, sub="F_INIT")


def ota_erase_image(world: World, version: int) -> World:
    """CORE-9: ``OTA_EraseImage``: task ERASE_IMAGE when IDLE (later calls are refused)."""
    if not is_core_idle_for_api(world):
        return world
    return set_core(world, task=C.ERASE_IMAGE, erase_ver=version)


# ------------------------------------------------------------------ boot-time path (§3.2)


def is_fs_mounted(w: World) -> bool:
    return w.fs.formatted


def process_init(w: World) -> World:
    """CORE-10: mount, ``OTA_CleanUp`` (CORE-11), ``OTA_Task_DbEntryCheck`` (CORE-12) and
    ``OTA_ImgStatus_Params`` (CORE-13): FACTORY_RESET type skips validation."""
    w = enqueue(w, get_cleanup_deletes(w))
    result, db = load_db(w)
    core = w.core
    result_code = core.result
    db_full = core.db_full
    if result == 0 and db is not None:
        db_full = otadb.get_total_imgs(db) >= w.scenario.config.num_imgs
        if db_full:
            result_code = R.IMAGE_DATABASE_FULL
    header = get_bootctl(w)
    w = set_core(
        w,
        db_full=db_full,
        result=result_code,
        param_version=header.version,
        img_status=VALID,
        pfm_status=VALID,
        idle=False,
        sub="S_INIT",
    )
    return w


def is_factory_type(w: World) -> bool:
    return get_bootctl(w).type == bootctl.ImageType.FACTORY_RESET


def is_mounted_factory_type(w: World) -> bool:
    return is_fs_mounted(w) and is_factory_type(w)


# ------------------------------------------------------------------ SET_IMAGE_STATUS (§3.3)


def _finish_set_status(w: World) -> World:
    """CORE-24: READY or ERROR map to NONE / IMAGE_STATUS_SET / ROLLBACK_DONE."""
    result = R.NONE
    if w.core.new_downloaded_img:
        result = R.IMAGE_STATUS_SET
    if w.core.rollback_initiated:
        result = R.ROLLBACK_DONE
    witnesses = set(w.ghost.witnesses)
    if w.core.new_downloaded_img:
        if w.core.params.patch_request:
            witnesses.add("patch-entry")
        else:
            witnesses.discard("patch-entry")
    if w.core.rollback_initiated:
        witnesses.add("rollback-done")
    if witnesses != w.ghost.witnesses:
        w = replace(w, ghost=replace(w.ghost, witnesses=frozenset(witnesses)))
    return set_core(w, result=result, sub="")


def _select_row(w: World) -> int:
    result, db = load_db(w)
    if result > 1 or db is None:
        return -1
    core = w.core
    if not core.new_downloaded_img or core.rollback_initiated:
        return otadb.get_image_row(db, core.param_version)
    return otadb.get_total_imgs(db) - 1


def is_set_status_error(w: World) -> bool:
    return w.core.sub == "S_INIT" and _select_row(w) < 0


def process_set_status_error(w: World) -> World:
    """CORE-20: no row for the version (or no DB): nothing written, ERROR → result mapping."""
    return _finish_set_status(w)


def process_set_status(w: World) -> World:
    """CORE-21..CORE-23: pick the row, rewrite its status if it differs (whole DB), then erase
    and write the boot-control page (status ``pfm_status``, PRODUCTION, the row's version)."""
    core = w.core
    if core.sub == "S_INIT":
        return set_core(w, selected_row=_select_row(w), sub="S_UPDATE_DB")
    if core.sub == "S_UPDATE_DB":
        _, db = load_db(w)
        if db is None:
            # SCN-13: only a tamper between S_INIT and here removes the DB the model reads
            # again (the C code keeps its S_INIT copy); taken as a read error.
            return set_core(w, sub="S_DONE")
        row = core.selected_row
        status = otadb.get_field_value(db, row, 1)
        version = otadb.get_field_value_32bit(db, row, 2)
        if status is None or version is None:
            return set_core(w, sub="S_DONE")  # CORE-20: a read error ends as ERROR
        if status != core.img_status:
            db = otadb.set_status(db, row, f"{core.img_status:x}")
            w = enqueue(w, get_db_save_ops(w, db))
        return set_core(w, sub="S_WRITE_BOOT_CONTROL", row_version=version)
    if core.sub == "S_WRITE_BOOT_CONTROL":
        version = core.row_version
        header = bootctl.BootControlHeader(
            status=core.pfm_status,
            slot=0,
            order=0xFF,
            type=bootctl.ImageType.PRODUCTION,
            sz=0,
            version=version,
            boot_addr=BOOT_ADDR,
            digest=bytes(32),
            rsvd=bytes(208),
        )
        page = make_page(w, header, b"")
        w = enqueue(w, get_bootctl_write_ops(w, page, erase=True))
        if core.pfm_status == VALID and w.running is not None:
            # Ghost: boot validation marks the *running* build (its compiled version) valid.
            ghost = w.ghost
            running = int(w.running.version)
            w = replace(w, ghost=replace(ghost, max_validated=max(ghost.max_validated, running)))
        return set_core(w, sub="S_DONE")
    return _finish_set_status(w)


# ------------------------------------------------------------------ UPDATE_USER pipeline


_NEXT_TASK = {
    R.PATCH_IMAGE_DIGEST_VERIFY_SUCCESS: C.PATCH_BUILD_IMAGE,
    R.IMAGE_DIGEST_VERIFY_SUCCESS: C.DATABASE_ENTRY,
    R.PATCH_EVENT_START: C.DOWNLOAD_IMAGE,
    R.PATCH_EVENT_COMPLETED: C.VERIFY_IMAGE_DIGEST,
}


def get_next_task(w: World) -> CoreTask:
    """CORE-30: the task that follows UPDATE_USER, from ``ota_result``."""
    result = w.core.result
    if result is R.IMAGE_DOWNLOADED:
        return C.VERIFY_PATCH_IMAGE_DIGEST if w.core.params.patch_request else C.VERIFY_IMAGE_DIGEST
    return _NEXT_TASK.get(result, C.IDLE)


def process_update_user(w: World) -> World:
    """CORE-30: close the downloader (except after DOWNLOAD_START / PATCH_EVENT_START) and
    call the service callback with the result."""
    result = w.core.result
    if result not in (R.IMAGE_DOWNLOAD_START, R.PATCH_EVENT_START):
        w = set_net(w, open=False)
    nxt = get_next_task(w)
    sub = {"DOWNLOAD_IMAGE": "D_INIT", "DATABASE_ENTRY": "", "VERIFY_IMAGE_DIGEST": ""}.get(
        nxt.name, ""
    )
    w = set_core(w, task=nxt, sub=sub)
    return process_core_callback(w, result)


def process_idle(w: World) -> World:
    """CORE-31: the IDLE task sets ``ota_idle``."""
    return set_core(w, idle=True) if not w.core.idle else w


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


def process_db_entry(w: World) -> World:
    """CORE-25: ``OTADbNewEntry`` (DB-6) then, in secure builds, the ``_sign.txt`` file;
    −1 gives IMAGE_DB_ENTRY_FAILED and UPDATE_USER."""
    core = w.core
    result, db = load_db(w)
    name = core.image_name
    new = otadb.new_entry(result, db, name, core.params.version, core.params.digest, core.db_full)
    if new is None:
        return set_core(w, result=R.IMAGE_DB_ENTRY_FAILED, task=C.UPDATE_USER, idle=False)
    if w.scenario.config.is_hardened:
        new = get_hex_version_db(new, name, core.params.version)
    w = enqueue(w, get_db_save_ops(w, new))
    if w.scenario.config.secure_boot and core.params.signature_verification:
        from otamodel.model._physics import get_file_write_ops

        try:
            sign_name = mf.get_sign_file_name(core.params.url)
        except ManifestError:
            return process_exception(w, f"sign file name of {core.params.url!r}")
        w = enqueue(w, get_file_write_ops(sign_name, [(0, core.params.signature.encode())]))
    return set_core(w, task=C.SET_IMAGE_STATUS, sub="S_INIT", idle=False)


def process_factory_reset_task(w: World) -> World:
    """CORE-26: delete the DB, erase the boot-control page (no write), FACTORY_RESET_SUCCESS."""
    sub = w.core.sub
    if sub == "F_INIT":
        from otamodel.model._physics import FsDelete

        return set_core(enqueue(w, [FsDelete(DB_NAME)]), sub="F_INVALIDATE_BOOT_CTL", idle=False)
    if sub == "F_INVALIDATE_BOOT_CTL":
        from otamodel.model._physics import FlashErase

        return set_core(enqueue(w, [FlashErase(0)]), sub="F_DONE")
    return set_core(w, result=R.FACTORY_RESET_SUCCESS, task=C.UPDATE_USER, sub="")


def process_erase_task(w: World) -> World:
    """CORE-27: find the row by version (no check against the running version), delete the
    row and rewrite the DB, then delete the file; the sign file stays."""
    from otamodel.model._physics import FsDelete

    result, db = load_db(w)
    fail = set_core(w, result=R.IMAGE_ERASE_FAILED, task=C.UPDATE_USER, idle=False)
    if result > 1 or db is None:
        return fail
    row = otadb.get_image_row(db, w.core.erase_ver)
    if row < 0:
        return fail
    name = otadb.get_field_string(db, row, 0)
    if name is None:
        return fail
    w = enqueue(w, get_db_save_ops(w, otadb.remove_row(db, row)))
    if not get_fs_view(w).is_present(name):
        return set_core(w, result=R.IMAGE_ERASE_FAILED, task=C.UPDATE_USER, idle=False)
    w = enqueue(w, [FsDelete(name)])
    return set_core(w, result=R.IMAGE_ERASED, task=C.UPDATE_USER, idle=False)


def is_sub(name: str):  # type: ignore[no-untyped-def]
    def guard(w: World) -> bool:
        return w.core.sub == name

    guard.__name__ = f"sub_{name}"
    return guard


def is_download_done(w: World) -> bool:
    return w.core.sub == "D_DONE"


T = Transition
CORE_TRANSITIONS: tuple[Transition, ...] = (
    T(C.INIT, "tick", C.UPDATE_USER, is_mounted_factory_type, process_init),
    T(C.INIT, "tick", C.SET_IMAGE_STATUS, is_fs_mounted, process_init),
    T(C.INIT, "tick", None),
    T(C.SET_IMAGE_STATUS, "tick", C.UPDATE_USER, is_set_status_error, process_set_status_error),
    T(C.SET_IMAGE_STATUS, "tick", C.UPDATE_USER, is_sub("S_DONE"), process_set_status),
    T(C.SET_IMAGE_STATUS, "tick", None, None, process_set_status),
    T(C.UPDATE_USER, "tick", None, None, process_update_user),
    T(C.IDLE, "tick", None, None, process_idle),
    T(C.SEARCH_PATCH_BASEVERSION, "tick", C.UPDATE_USER, None, process_search_base),
    T(C.DOWNLOAD_IMAGE, "tick", C.UPDATE_USER, is_download_done, process_download_step),
    T(C.DOWNLOAD_IMAGE, "tick", None, None, process_download_step),
    T(C.VERIFY_IMAGE_DIGEST, "tick", C.UPDATE_USER, None, process_verify),
    T(C.VERIFY_PATCH_IMAGE_DIGEST, "tick", C.UPDATE_USER, None, process_verify),
    T(C.PATCH_BUILD_IMAGE, "tick", C.UPDATE_USER, None, process_patch_build),
    T(C.DATABASE_ENTRY, "tick", None, None, process_db_entry),
    T(C.FACTORY_RESET, "tick", None, None, process_factory_reset_task),
    T(C.ERASE_IMAGE, "tick", None, None, process_erase_task),
)


def _get_state(w: World) -> CoreTask:
    return w.core.task


def _set_state(w: World, state: object) -> World:
    assert isinstance(state, CoreTask)
    return set_core(w, task=state)


CORE = MachineSpec(
    name="core",
    states=CoreTask,
    initial=C.INIT,
    transitions=CORE_TRANSITIONS,
    get_state=_get_state,
    set_state=_set_state,
)

__all__ = ["CORE", "FACTORY_FILE"]
