"""The OTA service machine, ``SYS_OTA_Tasks`` (research note §2.2–§2.3).

One ``tick`` is one call of the service step. Control messages from the app are the
triggers ``ctrl_*``; they are accepted only in STATE_IDLE (SVC-40).
"""

from __future__ import annotations

import attrs

from otamodel.errors import ManifestError
from otamodel.formats import manifest as mf
from otamodel.model import _core as core
from otamodel.model._enums import CheckState, SvcState, SvcStatus
from otamodel.model._machine import MachineSpec, Transition, memo_last
from otamodel.model._parse import process_manifest
from otamodel.model._state import RuntimeConfig, World, replace
from otamodel.model._storage import set_net, set_service

S = SvcState
JSON_READ_LIMIT = mf.JSON_FILE_MAXSIZE - 10


def get_json_read_limit(world: World) -> int:
    """SCN-6: reads stop at ``SYS_OTA_JSON_FILE_MAXSIZE - 10`` (the configured size)."""
    return int(world.scenario.config.json_max_size) - 10


def _app_callback(world: World, status: SvcStatus) -> World:
    return world.note(f"app callback: {status.name}")


def get_runtime_config(world: World) -> RuntimeConfig:
    """SCN-14: ``g_SysOtaConfig`` as the console left it, else as generated."""
    if world.service.runtime is not None:
        return world.service.runtime
    cfg = world.scenario.config
    return RuntimeConfig(
        periodic=cfg.periodic, autoreset=cfg.autoreset, auto_update=cfg.auto_update
    )


def get_app_version(world: World) -> int:
    """The running image's compiled-in ``SYS_OTA_APP_VER_NUM``."""
    return world.running.version if world.running is not None else 0


# ------------------------------------------------------------------ the update check (§2.3)


@attrs.frozen
class CheckStep:
    world: World
    returned: bool
    erase: bool


@memo_last
def run_check_step(world: World) -> CheckStep:
    """SVC-10..SVC-14: one step of ``SYS_OTA_Update_Check``."""
    svc = world.service
    sub = svc.check
    if sub is CheckState.CNCT_TO_SRVR:
        # SVC-10: open the manifest URL; a URL the HTTP client refuses fails at once.
        world = set_service(world, check_in_progress=True)
        url = world.scenario.manifest_url
        if not core.is_url_accepted(url, enforce_tls=world.scenario.config.enforce_tls):
            return CheckStep(
                set_service(world, update_check_failed=True, check=CheckState.DONE), False, False
            )
        world = core.open_downloader(world, url)
        return CheckStep(set_service(world, check=CheckState.READ_JSON), False, False)
    if sub is CheckState.READ_JSON:
        if not svc.dev_cnctd_to_nw:
            return CheckStep(world, False, False)
        net = world.net
        # ENV-6: fewer bytes than Content-Length: the connection ends before READ_JSON has
        # read field_content_length bytes, and the next read is negative (SVC-11).
        short = net.body is not None and len(net.body) < net.content_length
        if net.failed or net.body is None or short or not world.network_up:
            # SVC-11: a negative read closes, flags the failure; rx_len is not reset.
            world = set_net(world, open=False, failed=False)
            return CheckStep(
                set_service(world, update_check_failed=True, check=CheckState.DONE), False, False
            )
        limit = get_json_read_limit(world)
        capacity = limit - world.rx_len
        if len(net.body) > capacity:
            # SVC-12: the buffer fills; zero-byte reads run the 70000 counter out. rx_len stays.
            world = replace(world, rx_len=max(limit, 0))
            world = set_net(world, open=False)
            return CheckStep(
                set_service(world, update_check_failed=True, check=CheckState.DONE), False, False
            )
        world = replace(world, rx_len=0)
        return CheckStep(set_service(world, check=CheckState.JSON_CONTENT), False, False)
    if sub is CheckState.JSON_CONTENT:
        body = world.net.body or b""
        try:
            mf.parse(body)
        except ManifestError:
            # SVC-13: a JSON syntax error is a failed check.
            world = set_net(world, open=False)
            return CheckStep(
                set_service(world, update_check_failed=True, check=CheckState.DONE), False, False
            )
        out = process_manifest(world, body, get_app_version(world))
        world = world.note(f"manifest: {out.why}")
        world = set_service(
            world,
            parse_result=out.result,
            erase_request=out.erase_request,
            patch_request=out.patch_request,
            params=out.params,
            check=CheckState.DONE,
        )
        return CheckStep(world, False, out.erase)
    # SVC-14: DONE resets the sub-state, clears the in-progress flag, returns the stored result.
    world = set_net(world, open=False)
    world = set_service(world, check=CheckState.CNCT_TO_SRVR, check_in_progress=False)
    return CheckStep(world, svc.parse_result, False)


# ------------------------------------------------------------------ guards


def is_network_up(w: World) -> bool:
    return w.network_up


def is_connected(w: World) -> bool:
    return w.service.dev_cnctd_to_nw


def is_core_idle(w: World) -> bool:
    return w.core.idle


def is_periodic(w: World) -> bool:
    return get_runtime_config(w).periodic


def is_timer_triggered(w: World) -> bool:
    return get_runtime_config(w).periodic and w.service.timer_trigger


def is_check_finished(w: World) -> bool:
    return not w.service.check_in_progress and not w.service.erase_request


def is_check_allowed(w: World) -> bool:
    return not w.service.fw_in_progress and not w.service.download_success


def is_check_available(w: World) -> bool:
    return is_check_allowed(w) and run_check_step(w).returned


def is_check_erase(w: World) -> bool:
    return is_check_allowed(w) and run_check_step(w).erase


def is_trigger_allowed(w: World) -> bool:
    return w.service.dev_cnctd_to_nw and is_check_allowed(w)


def is_trigger_failing(w: World) -> bool:
    return is_trigger_allowed(w) and not core.is_start_accepted(w, w.service.params)


def is_fw_idle(w: World) -> bool:
    return not w.service.fw_in_progress


def is_autoreset_due(w: World) -> bool:
    return get_runtime_config(w).autoreset and w.service.download_success


def is_autoreset_off(w: World) -> bool:
    return not get_runtime_config(w).autoreset


def is_hardened_periodic(w: World) -> bool:
    """HARD-3: in the hardened variant a periodic product never rests in STATE_IDLE."""
    config = w.scenario.config
    return bool(config.is_hardened and config.periodic)


def is_download_done(w: World) -> bool:
    return w.service.download_success


# ------------------------------------------------------------------ effects


def process_register_wifi(w: World) -> World:
    """SVC-1: a non-zero IP address marks the device connected."""
    return set_service(w, dev_cnctd_to_nw=True)


def process_wait_network(w: World) -> World:
    """SVC-2: status WAITING_FOR_NETWORK_CONNECTION (not delivered)."""
    return set_service(w, status=SvcStatus.WAITING_FOR_NETWORK_CONNECTION)


def process_wait_core(w: World) -> World:
    """SVC-3: status WAITING_FOR_OTACORE_IDLE until ``OTA_IsIdle``."""
    return set_service(w, status=SvcStatus.WAITING_FOR_OTACORE_IDLE)


def process_register_callback(w: World) -> World:
    """SVC-4: ``OTA_CallBackReg`` (only the first registration succeeds)."""
    return core.register_callback(w)


def process_arm_timer(w: World) -> World:
    """SVC-5: periodic checking arms the RTCC alarm."""
    return set_service(w, rtcc_armed=True)


def process_wait_timer(w: World) -> World:
    """SVC-6: status WAITING_FOR_USER_DEFINED_PERIOD; nothing else without a trigger."""
    return set_service(w, status=SvcStatus.WAITING_FOR_USER_DEFINED_PERIOD)


def process_timer_start(w: World) -> World:
    """SVC-6: a trigger starts a periodic check with UPDATE_CHECK_START (direct call)."""
    w = set_service(w, timer_trigger=False, check_in_progress=True)
    return _app_callback(w, SvcStatus.UPDATE_CHECK_START)


def _report_check(w: World) -> World:
    if w.service.update_check_failed:
        w = set_service(w, update_check_failed=False)
        return _app_callback(w, SvcStatus.UPDATE_CHECK_FAILED)
    return _app_callback(w, SvcStatus.UPDATE_NOTAVAILABLE)


def process_auto_check_done(w: World) -> World:
    """SVC-7: the periodic check reports FAILED/NOTAVAILABLE directly and re-arms the RTCC."""
    return set_service(_report_check(w), rtcc_armed=True)


def process_server_check_done(w: World) -> World:
    """SVC-8: the manual check reports FAILED/NOTAVAILABLE directly; no RTCC."""
    return _report_check(w)


def process_check_step(w: World) -> World:
    """SVC-9: one update-check step while no download is in progress."""
    return run_check_step(w).world


def process_check_available(w: World) -> World:
    """SVC-9: the check returned true: status UPDATE_AVAILABLE."""
    return set_service(run_check_step(w).world, status=SvcStatus.UPDATE_AVAILABLE)


def is_step_then_finished(w: World) -> bool:
    return is_check_allowed(w) and is_check_finished(run_check_step(w).world)


def process_step_and_report(w: World) -> World:
    """SVC-8: in the manual check the step runs first, then the same tick may report."""
    return process_server_check_done(run_check_step(w).world)


def process_manual_check_start(w: World) -> World:
    """SVC-15: a manual check starts with UPDATE_CHECK_START (direct call)."""
    w = set_service(w, check_in_progress=True)
    return _app_callback(w, SvcStatus.UPDATE_CHECK_START)


def process_trigger(w: World) -> World:
    """SVC-16: ``OTA_Start`` then ``otaFwInProgress = true`` whatever the result."""
    w = core.ota_start(w, w.service.params)
    return set_service(w, fw_in_progress=True)


def process_trigger_failed(w: World) -> World:
    """SVC-16: an ``OTA_Start`` error reports TRIGGER_OTA_FAILED via UPDATE_USER."""
    w = set_service(w, fw_in_progress=True)
    return set_service(w, status=SvcStatus.TRIGGER_OTA_FAILED)


def process_erase(w: World) -> World:
    """SVC-17: ``OTA_EraseImage`` on every tick (the core refuses unless IDLE)."""
    w = core.ota_erase_image(w, w.service.params.delete_img_version)
    return set_service(w, erase_in_progress=True)


def process_factory_reset(w: World) -> World:
    """SVC-18: ``OTA_FactoryReset``; an error sets FACTORY_RESET_FAILED; always ends in IDLE."""
    if w.service.fw_in_progress:
        return w
    accepted = core.is_core_idle_for_api(w)
    w = core.ota_factory_reset(w)
    if not accepted:
        w = set_service(w, status=SvcStatus.FACTORY_RESET_FAILED)
    return w


def process_rollback(w: World) -> World:
    """SVC-19: ``OTA_Rollback`` when allowed; otherwise or on error ROLLBACK_FAILED; then IDLE."""
    if is_check_allowed(w) and core.is_core_idle_for_api(w):
        return core.ota_rollback(w)
    return set_service(w, status=SvcStatus.ROLLBACK_FAILED)


_WAIT_COMPLETE = {
    SvcStatus.DOWNLOAD_START,
    SvcStatus.DOWNLOAD_SUCCESS,
    SvcStatus.IMAGE_DIGEST_VERIFY_START,
    SvcStatus.IMAGE_DIGEST_VERIFY_SUCCESS,
}


def get_update_user_dest(w: World) -> SvcState:
    """SVC-34: UPDATE_USER picks IDLE, WAIT_FOR_OTA_COMPLETE (four statuses), AUTORESET
    (download done) or TRIGGER_OTA (available + auto update), in that order of override."""
    status = w.service.status
    dest = S.WAIT_FOR_OTA_COMPLETE if status in _WAIT_COMPLETE else S.STATE_IDLE
    if w.service.download_success:
        dest = S.AUTORESET
    if status is SvcStatus.UPDATE_AVAILABLE and get_runtime_config(w).auto_update:
        dest = S.TRIGGER_OTA
    return dest


def process_update_user(w: World) -> World:
    """SVC-34: deliver the pending status to the app (unless NONE)."""
    if w.service.status is not SvcStatus.NONE:
        w = _app_callback(w, w.service.status)
    return w


def is_user_to_idle(w: World) -> bool:
    return get_update_user_dest(w) is S.STATE_IDLE


def is_user_to_wait(w: World) -> bool:
    return get_update_user_dest(w) is S.WAIT_FOR_OTA_COMPLETE


def is_user_to_autoreset(w: World) -> bool:
    return get_update_user_dest(w) is S.AUTORESET


def is_user_to_trigger(w: World) -> bool:
    return get_update_user_dest(w) is S.TRIGGER_OTA


def process_software_reset(w: World) -> World:
    """SVC-35: AUTORESET / SYSTEM_RESET perform a software reset (the device reboots)."""
    return w


def process_idle(w: World) -> World:
    """SVC-36: STATE_IDLE writes status IDLE each tick."""
    return set_service(w, status=SvcStatus.IDLE)


def process_refused_reset(w: World) -> World:
    """SVC-37: SYSTEM_RESET without a finished download prints and goes IDLE."""
    return w.note("OTA DB entry is not yet done")


T = Transition
SERVICE_TRANSITIONS: tuple[Transition, ...] = (
    T(
        S.REGWIFISRVCALLBCK,
        "tick",
        S.WAITFOR_NETWORK_CONNECTION,
        is_network_up,
        process_register_wifi,
    ),
    T(S.REGWIFISRVCALLBCK, "tick", None),
    T(S.WAITFOR_NETWORK_CONNECTION, "tick", S.WAITFOR_OTAIDLE, is_connected, process_wait_network),
    T(S.WAITFOR_NETWORK_CONNECTION, "tick", None, None, process_wait_network),
    T(S.WAITFOR_OTAIDLE, "tick", S.REGOTACALLBCK, is_core_idle, process_wait_core),
    T(S.WAITFOR_OTAIDLE, "tick", None, None, process_wait_core),
    T(S.REGOTACALLBCK, "tick", S.AUTO_CONFIGURATION_CHECK, None, process_register_callback),
    T(
        S.AUTO_CONFIGURATION_CHECK,
        "tick",
        S.WAIT_FOR_OTA_TIMER_TRIGGER,
        is_periodic,
        process_arm_timer,
    ),
    T(S.AUTO_CONFIGURATION_CHECK, "tick", S.STATE_IDLE),
    T(
        S.WAIT_FOR_OTA_TIMER_TRIGGER,
        "tick",
        S.AUTO_UPDATE_CHECK,
        is_timer_triggered,
        process_timer_start,
    ),
    T(S.WAIT_FOR_OTA_TIMER_TRIGGER, "tick", None, None, process_wait_timer),
    T(
        S.AUTO_UPDATE_CHECK,
        "tick",
        S.WAIT_FOR_OTA_TIMER_TRIGGER,
        is_check_finished,
        process_auto_check_done,
    ),
    T(S.AUTO_UPDATE_CHECK, "tick", S.UPDATE_USER, is_check_available, process_check_available),
    T(S.AUTO_UPDATE_CHECK, "tick", S.ERASE_IMAGE, is_check_erase, process_check_step),
    T(S.AUTO_UPDATE_CHECK, "tick", None, is_check_allowed, process_check_step),
    T(S.AUTO_UPDATE_CHECK, "tick", None),
    T(
        S.SERVER_UPDATE_CHECK,
        "tick",
        S.SERVER_UPDATE_CHECK_TRIGGER,
        None,
        process_manual_check_start,
    ),
    T(
        S.SERVER_UPDATE_CHECK_TRIGGER,
        "tick",
        S.UPDATE_USER,
        is_check_available,
        process_check_available,
    ),
    T(S.SERVER_UPDATE_CHECK_TRIGGER, "tick", S.ERASE_IMAGE, is_check_erase, process_check_step),
    T(
        S.SERVER_UPDATE_CHECK_TRIGGER,
        "tick",
        S.STATE_IDLE,
        is_step_then_finished,
        process_step_and_report,
    ),
    T(S.SERVER_UPDATE_CHECK_TRIGGER, "tick", None, is_check_allowed, process_check_step),
    T(
        S.SERVER_UPDATE_CHECK_TRIGGER,
        "tick",
        S.STATE_IDLE,
        is_check_finished,
        process_server_check_done,
    ),
    T(S.SERVER_UPDATE_CHECK_TRIGGER, "tick", None),
    T(S.TRIGGER_OTA, "tick", S.UPDATE_USER, is_trigger_failing, process_trigger_failed),
    T(S.TRIGGER_OTA, "tick", None, is_trigger_allowed, process_trigger),
    T(S.TRIGGER_OTA, "tick", None),
    T(S.WAIT_FOR_OTA_COMPLETE, "tick", None),
    T(S.ERASE_IMAGE, "tick", None, is_fw_idle, process_erase),
    T(S.ERASE_IMAGE, "tick", None),
    T(S.FACTORY_RESET, "tick", S.STATE_IDLE, None, process_factory_reset),
    T(S.ROLLBACK, "tick", S.STATE_IDLE, None, process_rollback),
    T(S.UPDATE_USER, "tick", S.TRIGGER_OTA, is_user_to_trigger, process_update_user),
    T(S.UPDATE_USER, "tick", S.AUTORESET, is_user_to_autoreset, process_update_user),
    T(S.UPDATE_USER, "tick", S.WAIT_FOR_OTA_COMPLETE, is_user_to_wait, process_update_user),
    T(S.UPDATE_USER, "tick", S.STATE_IDLE, is_user_to_idle, process_update_user),
    T(S.AUTORESET, "tick", None, is_autoreset_due, process_software_reset, label="reset"),
    T(S.AUTORESET, "tick", S.STATE_IDLE, is_autoreset_off),
    T(S.AUTORESET, "tick", None),
    T(S.SYSTEM_RESET, "tick", None, is_download_done, process_software_reset, label="reset"),
    T(S.SYSTEM_RESET, "tick", S.STATE_IDLE, None, process_refused_reset),
    T(S.STATE_IDLE, "tick", S.WAIT_FOR_OTA_TIMER_TRIGGER, is_hardened_periodic, process_arm_timer),
    T(S.STATE_IDLE, "tick", None, None, process_idle),
    # SVC-40: control messages are accepted only in STATE_IDLE.
    T(S.STATE_IDLE, "ctrl_update_check", S.SERVER_UPDATE_CHECK),
    T(S.STATE_IDLE, "ctrl_initiate_ota", S.TRIGGER_OTA),
    T(S.STATE_IDLE, "ctrl_system_reset", S.SYSTEM_RESET),
    T(S.STATE_IDLE, "ctrl_factory_reset", S.FACTORY_RESET),
    T(S.STATE_IDLE, "ctrl_rollback", S.ROLLBACK),
)


def _get_state(w: World) -> SvcState:
    return w.service.state


def _set_state(w: World, state: object) -> World:
    assert isinstance(state, SvcState)
    return set_service(w, state=state)


SERVICE = MachineSpec(
    name="service",
    states=SvcState,
    initial=S.REGWIFISRVCALLBCK,
    transitions=SERVICE_TRANSITIONS,
    get_state=_get_state,
    set_state=_set_state,
)
