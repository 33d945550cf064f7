"""The OTA core machine, ``OTA_Tasks`` (research note §3), and its API used by the service."""

from __future__ import annotations

from otamodel.formats import bootctl, otadb
from otamodel.model._config import Defect
from otamodel.model._core_io import (
    get_cleanup_deletes,
    is_body_truncated,
    is_download_complete,
    is_first_buffer_short,
    is_image_name_bad,
    is_read_failed,
    process_download_chunk,
    process_download_close,
    process_download_crash,
    process_download_init,
    process_download_timeout,
    process_downloaded,
    process_patch_build,
    process_read_failed,
    process_verify,
)
from otamodel.model._core_tasks import (
    get_hex_version_db,
    is_sign_name_bad,
    process_db_entry,
    process_db_entry_failed,
    process_erase_task,
    process_factory_delete_db,
    process_factory_done,
    process_factory_erase_boot_control,
    process_search_base,
    process_sign_exception,
)
from otamodel.model._enums import (
    CoreResult,
    CoreStep,
    CoreTask,
    DownloadStep,
    FactoryResetStep,
    SetStatusStep,
)
from otamodel.model._machine import MachineDef, Nest, row, send
from otamodel.model._product import Reply
from otamodel.model._state import OtaParams, World, replace
from otamodel.model._storage import (
    BOOT_ADDR,
    FACTORY_FILE,
    enqueue,
    get_bootctl,
    get_bootctl_write_ops,
    get_db_save_ops,
    load_db,
    make_page,
    set_core,
    set_net,
)

C = CoreTask
R = CoreResult
VALID, DOWNLOADED, DISABLED = (
    bootctl.ImageStatus.VALID,
    bootctl.ImageStatus.DOWNLOADED,
    bootctl.ImageStatus.DISABLED,
)

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
    """CORE-5: the core API calls are accepted only while the task is IDLE (the API events
    below are accepted only in IDLE)."""
    return world.core.task is C.IDLE


def is_start_accepted(world: World, params: OtaParams) -> bool:
    """CORE-6: ``OTA_Start`` fails unless IDLE and the URL opens."""
    enforce = world.scenario.config.enforce_tls
    return is_core_idle_for_api(world) and is_url_accepted(params.url, enforce_tls=enforce)


def is_start_url_accepted(world: World, params: OtaParams) -> bool:
    """CORE-6: the event ``start`` is refused when the URL does not open."""
    return is_url_accepted(params.url, enforce_tls=world.scenario.config.enforce_tls)


def is_patch_start(world: World, params: OtaParams) -> bool:
    return params.patch_request


def process_start(world: World, params: OtaParams) -> World:
    """CORE-6: copy the params (digest before URL, so a long URL runs into the digest), pick
    SEARCH_PATCH_BASEVERSION or DOWNLOAD_IMAGE, statuses FE/F0; the version is not written
    to the task parameters."""
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
    if params.patch_request:
        copied = replace(
            copied,
            patch_request=True,
            patch_base_version=params.patch_base_version,
            base_digest=params.base_digest,
            patch_digest=params.patch_digest,
        )
    world = open_downloader(world, params.url)
    pfm = VALID if world.scenario.config.has(Defect.VALID_STATUS_AFTER_DOWNLOAD) else DISABLED
    return set_core(world, params=copied, img_status=DOWNLOADED, pfm_status=pfm)  # PROP-45


def is_rollback_possible(world: World) -> bool:
    """HARD-10: only a PRODUCTION image can be rolled back from (not the factory image, not
    an erased boot control)."""
    return get_bootctl(world).type == bootctl.ImageType.PRODUCTION


def process_rollback_start(world: World) -> World:
    """CORE-7: ``OTA_Rollback``: SET_IMAGE_STATUS with F0/F0 for the boot-control version
    (nothing for a FACTORY_RESET type: the event is refused)."""
    header = get_bootctl(world)
    world = set_core(
        world,
        param_version=header.version,
        img_status=DISABLED,
        pfm_status=DISABLED,
        rollback_initiated=True,
    )
    return replace(world, ghost=replace(world.ghost, max_validated=0))


def process_factory_reset_start(world: World) -> World:
    """CORE-8: ``OTA_FactoryReset``: task FACTORY_RESET when IDLE."""
    return replace(world, ghost=replace(world.ghost, max_validated=0))


def process_erase_start(world: World, version: int) -> World:
    """CORE-9: ``OTA_EraseImage``: task ERASE_IMAGE when IDLE (later calls are refused)."""
    return set_core(world, erase_ver=version)


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
    return set_core(
        w,
        db_full=db_full,
        result=result_code,
        param_version=header.version,
        img_status=VALID,
        pfm_status=VALID,
        idle=False,
    )


def is_factory_type(w: World) -> bool:
    return get_bootctl(w).type == bootctl.ImageType.FACTORY_RESET


def is_mounted_factory_type(w: World) -> bool:
    return is_fs_mounted(w) and is_factory_type(w)


# ------------------------------------------------------------------ SET_IMAGE_STATUS (§3.3)


def process_finish_set_status(w: World) -> World:
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
    if witnesses != w.ghost.witnesses:
        w = replace(w, ghost=replace(w.ghost, witnesses=frozenset(witnesses)))
    if w.scenario.config.is_hardened:
        # HARD-11: the request is over: its flags do not leak into the next SET_IMAGE_STATUS.
        return set_core(w, result=result, rollback_initiated=False, new_downloaded_img=False)
    return set_core(w, result=result)


def _select_row(w: World) -> int:
    result, db = load_db(w)
    if result > 1 or db is None:
        return -1
    core = w.core
    if not core.new_downloaded_img or core.rollback_initiated:
        return otadb.get_image_row(db, core.param_version)
    return otadb.get_total_imgs(db) - 1


def is_set_status_error(w: World) -> bool:
    """CORE-20: no row for the version (or no DB)."""
    return _select_row(w) < 0


def process_set_status_error(w: World) -> World:
    """CORE-20: no row for the version (or no DB): nothing written, ERROR → result mapping."""
    return process_finish_set_status(w)


def process_select_row(w: World) -> World:
    """CORE-21: S_INIT picks the row."""
    return set_core(w, selected_row=_select_row(w))


def process_update_db(w: World) -> World | None:
    """CORE-22: S_UPDATE_DB rewrites the row's status if it differs (whole DB); a read error
    does not apply (CORE-20: it ends as ERROR)."""
    core = w.core
    _, db = load_db(w)
    if db is None:
        # SCN-13: only a tamper between S_INIT and here removes the DB the model reads again
        # (the C code keeps its S_INIT copy); taken as a read error.
        return None
    row = core.selected_row
    status = otadb.get_field_value(db, row, 1)
    version = otadb.get_field_value_32bit(db, row, 2)
    if status is None or version is None:
        return None
    if status != core.img_status:
        db = otadb.set_status(db, row, f"{core.img_status:x}")
        w = enqueue(w, get_db_save_ops(w, db))
    return set_core(w, row_version=version)


def process_write_boot_control(w: World) -> World:
    """CORE-23: erase and write the boot-control page (status ``pfm_status``, PRODUCTION, the
    row's version)."""
    core = w.core
    header = bootctl.BootControlHeader(
        status=core.pfm_status,
        slot=0,
        order=0xFF,
        type=bootctl.ImageType.PRODUCTION,
        sz=0,
        version=core.row_version,
        boot_addr=BOOT_ADDR,
        digest=bytes(32),
        rsvd=bytes(208),
    )
    page = make_page(w, header, b"")
    config = w.scenario.config
    skip = (core.rollback_initiated and config.has(Defect.ROLLBACK_SKIPS_BOOT_CONTROL)) or (
        core.new_downloaded_img and config.has(Defect.SUCCESS_BEFORE_BOOT_CONTROL)
    )
    if not skip:  # PROP-45
        w = enqueue(w, get_bootctl_write_ops(w, page, erase=True))
    return w


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


def is_next_verify_patch(w: World) -> bool:
    return get_next_task(w) is C.VERIFY_PATCH_IMAGE_DIGEST


def is_next_verify(w: World) -> bool:
    return get_next_task(w) is C.VERIFY_IMAGE_DIGEST


def is_next_patch_build(w: World) -> bool:
    return get_next_task(w) is C.PATCH_BUILD_IMAGE


def is_next_db_entry(w: World) -> bool:
    return get_next_task(w) is C.DATABASE_ENTRY


def is_next_download(w: World) -> bool:
    return get_next_task(w) is C.DOWNLOAD_IMAGE


def process_update_user(w: World) -> World:
    """CORE-30: close the downloader (except after DOWNLOAD_START / PATCH_EVENT_START) and
    call the service callback with the result (the service's event ``core_result``)."""
    result = w.core.result
    if result not in (R.IMAGE_DOWNLOAD_START, R.PATCH_EVENT_START):
        w = set_net(w, open=False)
    return send(w, "service", "core_result", result)


def process_idle(w: World) -> World:
    """CORE-31: the IDLE task sets ``ota_idle``."""
    return set_core(w, idle=True) if not w.core.idle else w


# ------------------------------------------------------------------ the machine

D, S, F = DownloadStep, SetStatusStep, FactoryResetStep
CORE_TRANSITIONS: tuple[dict[str, object], ...] = (
    # API events the service sends (CORE-5: accepted only in IDLE).
    row(
        "start",
        C.IDLE,
        C.SEARCH_PATCH_BASEVERSION,
        when_arg=[is_start_url_accepted, is_patch_start],
        do_arg=process_start,
    ),
    row("start", C.IDLE, C.DOWNLOAD_IMAGE, when_arg=[is_start_url_accepted], do_arg=process_start),
    row(
        "rollback", C.IDLE, C.SET_IMAGE_STATUS, unless=[is_factory_type], do=process_rollback_start
    ),
    row("factory_reset", C.IDLE, C.FACTORY_RESET, do=process_factory_reset_start),
    row("erase_image", C.IDLE, C.ERASE_IMAGE, do_arg=process_erase_start),
    # One call of OTA_Tasks.
    row("tick", C.INIT, C.UPDATE_USER, when=[is_mounted_factory_type], do=process_init),
    row("tick", C.INIT, C.SET_IMAGE_STATUS, when=[is_fs_mounted], do=process_init),
    row("tick", C.INIT, None),
    row(
        "tick",
        (C.SET_IMAGE_STATUS, S.S_INIT),
        C.UPDATE_USER,
        when=[is_set_status_error],
        do=process_set_status_error,
    ),
    row(
        "tick",
        (C.SET_IMAGE_STATUS, S.S_INIT),
        (C.SET_IMAGE_STATUS, S.S_UPDATE_DB),
        do=process_select_row,
    ),
    row(
        "tick",
        (C.SET_IMAGE_STATUS, S.S_UPDATE_DB),
        (C.SET_IMAGE_STATUS, S.S_WRITE_BOOT_CONTROL),
        attempt=process_update_db,
    ),
    row("tick", (C.SET_IMAGE_STATUS, S.S_UPDATE_DB), (C.SET_IMAGE_STATUS, S.S_DONE)),
    row(
        "tick",
        (C.SET_IMAGE_STATUS, S.S_WRITE_BOOT_CONTROL),
        (C.SET_IMAGE_STATUS, S.S_DONE),
        do=process_write_boot_control,
    ),
    row("tick", (C.SET_IMAGE_STATUS, S.S_DONE), C.UPDATE_USER, do=process_finish_set_status),
    row(
        "tick",
        C.UPDATE_USER,
        C.VERIFY_PATCH_IMAGE_DIGEST,
        when=[is_next_verify_patch],
        do=process_update_user,
    ),
    row(
        "tick", C.UPDATE_USER, C.VERIFY_IMAGE_DIGEST, when=[is_next_verify], do=process_update_user
    ),
    row(
        "tick",
        C.UPDATE_USER,
        C.PATCH_BUILD_IMAGE,
        when=[is_next_patch_build],
        do=process_update_user,
    ),
    row("tick", C.UPDATE_USER, C.DATABASE_ENTRY, when=[is_next_db_entry], do=process_update_user),
    row("tick", C.UPDATE_USER, C.DOWNLOAD_IMAGE, when=[is_next_download], do=process_update_user),
    row("tick", C.UPDATE_USER, C.IDLE, do=process_update_user),
    row("tick", C.IDLE, None, do=process_idle),
    row("tick", C.SEARCH_PATCH_BASEVERSION, C.UPDATE_USER, do=process_search_base),
    row(
        "tick",
        (C.DOWNLOAD_IMAGE, D.D_INIT),
        None,
        when=[is_image_name_bad],
        do=process_download_crash,
    ),
    row(
        "tick",
        (C.DOWNLOAD_IMAGE, D.D_INIT),
        (C.DOWNLOAD_IMAGE, D.D_GET_CONTENT_LENGTH),
        do=process_download_init,
    ),
    row(
        "tick",
        [(C.DOWNLOAD_IMAGE, D.D_GET_CONTENT_LENGTH), (C.DOWNLOAD_IMAGE, D.D_DOWNLOAD)],
        (C.DOWNLOAD_IMAGE, D.D_DONE),
        when=[is_read_failed],
        do=process_read_failed,
    ),
    row(
        "tick",
        (C.DOWNLOAD_IMAGE, D.D_GET_CONTENT_LENGTH),
        (C.DOWNLOAD_IMAGE, D.D_DONE),
        when=[is_first_buffer_short],
        do=process_download_timeout,
    ),
    row(
        "tick",
        [(C.DOWNLOAD_IMAGE, D.D_GET_CONTENT_LENGTH), (C.DOWNLOAD_IMAGE, D.D_DOWNLOAD)],
        (C.DOWNLOAD_IMAGE, D.D_DONE),
        when=[is_download_complete],
        do=process_downloaded,
    ),
    row(
        "tick",
        [(C.DOWNLOAD_IMAGE, D.D_GET_CONTENT_LENGTH), (C.DOWNLOAD_IMAGE, D.D_DOWNLOAD)],
        (C.DOWNLOAD_IMAGE, D.D_DONE),
        when=[is_body_truncated],
        do=process_download_timeout,
    ),
    row(
        "tick",
        (C.DOWNLOAD_IMAGE, D.D_GET_CONTENT_LENGTH),
        (C.DOWNLOAD_IMAGE, D.D_DOWNLOAD),
        do=process_download_chunk,
    ),
    row("tick", (C.DOWNLOAD_IMAGE, D.D_DOWNLOAD), None, do=process_download_chunk),
    row("tick", (C.DOWNLOAD_IMAGE, D.D_DONE), C.UPDATE_USER, do=process_download_close),
    row(
        "tick",
        [C.VERIFY_IMAGE_DIGEST, C.VERIFY_PATCH_IMAGE_DIGEST],
        C.UPDATE_USER,
        do=process_verify,
    ),
    row("tick", C.PATCH_BUILD_IMAGE, C.UPDATE_USER, do=process_patch_build),
    row("tick", C.DATABASE_ENTRY, C.UPDATE_USER, attempt=process_db_entry_failed),
    row("tick", C.DATABASE_ENTRY, None, when=[is_sign_name_bad], do=process_sign_exception),
    row("tick", C.DATABASE_ENTRY, C.SET_IMAGE_STATUS, do=process_db_entry),
    row(
        "tick",
        (C.FACTORY_RESET, F.F_INIT),
        (C.FACTORY_RESET, F.F_INVALIDATE_BOOT_CTL),
        do=process_factory_delete_db,
    ),
    row(
        "tick",
        (C.FACTORY_RESET, F.F_INVALIDATE_BOOT_CTL),
        (C.FACTORY_RESET, F.F_DONE),
        do=process_factory_erase_boot_control,
    ),
    row("tick", (C.FACTORY_RESET, F.F_DONE), C.UPDATE_USER, do=process_factory_done),
    row("tick", C.ERASE_IMAGE, C.UPDATE_USER, do=process_erase_task),
)


def get_core_key(w: World) -> tuple[CoreTask, CoreStep | None]:
    core = w.core
    return (core.task, core.sub)


def set_core_key(w: World, key: object) -> World:
    assert isinstance(key, tuple)
    return set_core(w, task=key[0], sub=key[1])


CORE_DEF = MachineDef(
    name="core",
    states=(
        C.INIT,
        C.IDLE,
        C.SEARCH_PATCH_BASEVERSION,
        Nest(C.DOWNLOAD_IMAGE, DownloadStep),
        C.VERIFY_IMAGE_DIGEST,
        C.VERIFY_PATCH_IMAGE_DIGEST,
        C.PATCH_BUILD_IMAGE,
        C.DATABASE_ENTRY,
        Nest(C.SET_IMAGE_STATUS, SetStatusStep),
        Nest(C.FACTORY_RESET, FactoryResetStep),
        C.ERASE_IMAGE,
        C.UPDATE_USER,
    ),
    initial=C.INIT,
    transitions=CORE_TRANSITIONS,
    get_key=get_core_key,
    set_key=set_core_key,
    nested=True,
)

__all__ = ["CORE_DEF", "FACTORY_FILE", "get_hex_version_db"]
