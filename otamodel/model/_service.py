"""The OTA service machine, ``SYS_OTA_Tasks`` (research note §2.2–§2.3).

One ``tick`` is one call of the service step. Control messages from the app are the
triggers ``ctrl_*``; they are accepted only in STATE_IDLE (SVC-40).
"""

from __future__ import annotations

from otamodel.model import _core as core
from otamodel.model._callback import (
    is_callback_registered,
    is_result_handled,
    process_core_result,
)
from otamodel.model._config import Defect, Variant
from otamodel.model._enums import SvcState, SvcStatus
from otamodel.model._machine import MachineDef, row, send
from otamodel.model._parse import is_version_newer
from otamodel.model._state import RuntimeConfig, World
from otamodel.model._storage import set_service
from otamodel.model._update_check import (
    Ck,
    get_app_version,
    get_manifest_outcome,
    is_check_finished,
    is_connected,
)

S = SvcState


def get_runtime_config(world: World) -> RuntimeConfig:
    """SCN-14: ``g_SysOtaConfig`` as the console left it, else as generated."""
    if world.service.runtime is not None:
        return world.service.runtime
    cfg = world.scenario.config
    return RuntimeConfig(
        periodic=cfg.periodic,
        autoreset=cfg.autoreset,
        auto_update=cfg.auto_update,
        interval=cfg.interval,
    )


RTCC_DAY = 86400


def get_alarm_delay(interval: int) -> int:
    """SVC-42: ``SYS_OTA_RTCset`` sets the clock to 23:59:58 and the alarm (mask HH:MM:SS) at
    ``interval mod 86400``: it fires that many seconds plus 2 after arming."""
    return interval % RTCC_DAY + 2


def process_arm_rtcc(w: World, *, armed: bool = True) -> World:
    """SVC-5, SVC-7, SVC-42: arm the RTCC with the interval in force now (a console change
    takes effect at the next arming)."""
    interval = get_runtime_config(w).interval if armed else w.service.rtcc_interval
    return set_service(w, rtcc_armed=armed, rtcc_interval=interval)


def _app_callback(world: World, status: SvcStatus) -> World:
    return world.note(f"app callback: {status.name}")


def run_check_step(world: World) -> World:
    """SVC-9: one call of ``SYS_OTA_Update_Check``: the event ``step`` of ``update_check``."""
    return send(world, "update_check", "step")


def is_check_returning(w: World) -> bool:
    """SVC-14: the call returns true only from DONE, with the stored parse result."""
    return w.service.check is Ck.DONE and w.service.parse_result


def is_check_parsing(w: World) -> bool:
    return w.service.check is Ck.JSON_CONTENT


def process_check_erase(w: World) -> World | None:
    """SVC-23: a manifest asking for an erase jumps the service to ERASE_IMAGE."""
    out = get_manifest_outcome(w)
    if out is None or not out.erase:
        return None
    return run_check_step(w)


def is_step_finishing(w: World) -> bool:
    """SVC-8: whether the check is finished once this step ran (the step decides only
    ``check_in_progress``: set in CNCT_TO_SRVR, cleared in DONE; and ``erase_request``:
    written by JSON_CONTENT)."""
    svc = w.service
    sub = svc.check
    if sub is Ck.CNCT_TO_SRVR:
        return False
    if sub is Ck.DONE:
        return not svc.erase_request
    if sub is Ck.READ_JSON or svc.check_in_progress:
        return is_check_finished(w)
    out = get_manifest_outcome(w)
    return is_check_finished(w) if out is None else not out.erase_request


# ------------------------------------------------------------------ guards


def is_network_up(w: World) -> bool:
    return w.network_up


def is_core_idle(w: World) -> bool:
    return w.core.idle


def is_periodic(w: World) -> bool:
    return get_runtime_config(w).periodic


def is_timer_triggered(w: World) -> bool:
    return get_runtime_config(w).periodic and w.service.timer_trigger


def is_check_allowed(w: World) -> bool:
    return not w.service.fw_in_progress and not w.service.download_success


def is_trigger_allowed(w: World) -> bool:
    return w.service.dev_cnctd_to_nw and is_check_allowed(w)


def is_trigger_failing(w: World) -> bool:
    """SVC-16: ``OTA_Start`` refuses; HARD-17: the hardened service refuses too when no
    check found a version above the running one."""
    if not is_trigger_allowed(w):
        return False
    return not core.is_start_accepted(w, w.service.params) or is_start_version_stale(w)


def is_start_version_stale(w: World) -> bool:
    """HARD-17: the parameters hold no version above the running application's (no check
    found an update since boot, or the last one found none): a download with them would be
    recorded under that stale version, which the bootloader never selects."""
    config = w.scenario.config
    if not config.is_hardened or config.has(Defect.MANUAL_OTA_ANY_VERSION):
        return False
    return not is_version_newer(w, get_app_version(w), w.service.params.version)


def is_fw_idle(w: World) -> bool:
    return not w.service.fw_in_progress


def is_autoreset_due(w: World) -> bool:
    return get_runtime_config(w).autoreset and (w.service.download_success or is_intent_reset(w))


def is_intent_reset(w: World) -> bool:
    """HARD-14: the hardened service resets after a successful factory reset or rollback too
    (with auto-reset), so the request takes effect without the app's help."""
    return bool(w.scenario.config.is_hardened) and w.service.status in _TAKES_A_RESET


def is_hardened(w: World) -> bool:
    """HARD-10: the hardened service waits for the core's answer to an accepted request."""
    return bool(w.scenario.config.is_hardened)


def is_hardened_rollback_refused(w: World) -> bool:
    """HARD-10: the hardened service reports a refused rollback (ROLLBACK_FAILED reaches the
    app through UPDATE_USER): not allowed now, core busy, or nothing to roll back from."""
    if not w.scenario.config.is_hardened:
        return False
    allowed = is_check_allowed(w) and core.is_core_idle_for_api(w)
    return not (allowed and core.is_rollback_possible(w))


def is_hardened_factory_refused(w: World) -> bool:
    """HARD-10: a refused factory reset is reported too (FACTORY_RESET_FAILED)."""
    if not w.scenario.config.is_hardened:
        return False
    return w.service.fw_in_progress or not core.is_core_idle_for_api(w)


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
    return process_arm_rtcc(w)


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
    armed = not w.scenario.config.has(Defect.PERIODIC_NOT_REARMED)  # PROP-45
    return process_arm_rtcc(_report_check(w), armed=armed)


def process_server_check_done(w: World) -> World:
    """SVC-8: the manual check reports FAILED/NOTAVAILABLE directly; no RTCC."""
    return _report_check(w)


def process_check_step(w: World) -> World:
    """SVC-9: one update-check step while no download is in progress."""
    return run_check_step(w)


def process_check_available(w: World) -> World:
    """SVC-9: the check returned true: status UPDATE_AVAILABLE."""
    return set_service(run_check_step(w), status=SvcStatus.UPDATE_AVAILABLE)


def process_step_and_report(w: World) -> World:
    """SVC-8: in the manual check the step runs first, then the same tick may report."""
    w = run_check_step(w)
    assert is_check_finished(w)
    return process_server_check_done(w)


def process_manual_check_start(w: World) -> World:
    """SVC-15: a manual check starts with UPDATE_CHECK_START (direct call)."""
    w = set_service(w, check_in_progress=True)
    return _app_callback(w, SvcStatus.UPDATE_CHECK_START)


def process_trigger(w: World) -> World:
    """SVC-16: ``OTA_Start`` (the core's event ``start``) then ``otaFwInProgress = true``."""
    w = send(w, "core", "start", w.service.params)
    return set_service(w, fw_in_progress=True)


def process_trigger_failed(w: World) -> World:
    """SVC-16: an ``OTA_Start`` error reports TRIGGER_OTA_FAILED via UPDATE_USER."""
    w = set_service(w, fw_in_progress=True)
    return set_service(w, status=SvcStatus.TRIGGER_OTA_FAILED)


def process_erase(w: World) -> World:
    """SVC-17: ``OTA_EraseImage`` on every tick (the core refuses unless IDLE)."""
    w = send(w, "core", "erase_image", w.service.params.delete_img_version)
    return set_service(w, erase_in_progress=True)


def process_factory_reset(w: World) -> World:
    """SVC-18: ``OTA_FactoryReset``; an error sets FACTORY_RESET_FAILED; always ends in IDLE."""
    if w.service.fw_in_progress:
        return w
    accepted = core.is_core_idle_for_api(w)
    w = send(w, "core", "factory_reset")
    if not accepted:
        w = set_service(w, status=SvcStatus.FACTORY_RESET_FAILED)
    return w


def process_rollback_refused(w: World) -> World:
    """HARD-10: status ROLLBACK_FAILED, delivered by UPDATE_USER."""
    return set_service(w, status=SvcStatus.ROLLBACK_FAILED)


def process_factory_refused(w: World) -> World:
    """HARD-10: status FACTORY_RESET_FAILED, delivered by UPDATE_USER."""
    return set_service(w, status=SvcStatus.FACTORY_RESET_FAILED)


def process_rollback(w: World) -> World:
    """SVC-19: ``OTA_Rollback`` when allowed; otherwise or on error ROLLBACK_FAILED; then IDLE."""
    if is_check_allowed(w) and core.is_core_idle_for_api(w):
        return send(w, "core", "rollback")
    return set_service(w, status=SvcStatus.ROLLBACK_FAILED)


_TAKES_A_RESET = frozenset({SvcStatus.FACTORY_RESET_SUCCESS, SvcStatus.ROLLBACK_SUCCESS})
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
    if w.service.download_success or (is_intent_reset(w) and get_runtime_config(w).autoreset):
        dest = S.AUTORESET
    if status is SvcStatus.UPDATE_AVAILABLE and get_runtime_config(w).auto_update:
        dest = S.TRIGGER_OTA
    return dest


def process_update_user(w: World) -> World:
    """SVC-34: deliver the pending status to the app (unless NONE)."""
    if w.service.status is not SvcStatus.NONE:
        w = _app_callback(w, w.service.status)
        if w.scenario.config.has(Defect.CALLBACK_TWICE):
            w = _app_callback(w, w.service.status)  # PROP-45
    return w


def is_user_to_idle(w: World) -> bool:
    return get_update_user_dest(w) is S.STATE_IDLE


def is_user_to_wait(w: World) -> bool:
    return get_update_user_dest(w) is S.WAIT_FOR_OTA_COMPLETE


def is_user_to_autoreset(w: World) -> bool:
    return get_update_user_dest(w) is S.AUTORESET


def is_user_to_trigger(w: World) -> bool:
    return get_update_user_dest(w) is S.TRIGGER_OTA


def process_idle(w: World) -> World:
    """SVC-36: STATE_IDLE writes status IDLE each tick."""
    return set_service(w, status=SvcStatus.IDLE)


def process_refused_reset(w: World) -> World:
    """SVC-37: SYSTEM_RESET without a finished download prints and goes IDLE."""
    return w.note("OTA DB entry is not yet done")


_REGISTERED = [
    S.AUTO_CONFIGURATION_CHECK,
    S.SERVER_UPDATE_CHECK,
    S.WAIT_FOR_OTA_TIMER_TRIGGER,
    S.AUTO_UPDATE_CHECK,
    S.TRIGGER_OTA,
    S.WAIT_FOR_OTA_COMPLETE,
    S.ERASE_IMAGE,
    S.FACTORY_RESET,
    S.ROLLBACK,
    S.UPDATE_USER,
    S.AUTORESET,
    S.SYSTEM_RESET,
    S.STATE_IDLE,
    S.SERVER_UPDATE_CHECK_TRIGGER,
]
SERVICE_TRANSITIONS: tuple[dict[str, object], ...] = (
    row(
        "tick",
        S.REGWIFISRVCALLBCK,
        S.WAITFOR_NETWORK_CONNECTION,
        when=[is_network_up],
        do=process_register_wifi,
    ),
    row("tick", S.REGWIFISRVCALLBCK, None),
    row(
        "tick",
        S.WAITFOR_NETWORK_CONNECTION,
        S.WAITFOR_OTAIDLE,
        when=[is_connected],
        do=process_wait_network,
    ),
    row("tick", S.WAITFOR_NETWORK_CONNECTION, None, do=process_wait_network),
    row("tick", S.WAITFOR_OTAIDLE, S.REGOTACALLBCK, when=[is_core_idle], do=process_wait_core),
    row("tick", S.WAITFOR_OTAIDLE, None, do=process_wait_core),
    row("tick", S.REGOTACALLBCK, S.AUTO_CONFIGURATION_CHECK, do=process_register_callback),
    row(
        "tick",
        S.AUTO_CONFIGURATION_CHECK,
        S.WAIT_FOR_OTA_TIMER_TRIGGER,
        when=[is_periodic],
        do=process_arm_timer,
    ),
    row("tick", S.AUTO_CONFIGURATION_CHECK, S.STATE_IDLE),
    row(
        "tick",
        S.WAIT_FOR_OTA_TIMER_TRIGGER,
        S.AUTO_UPDATE_CHECK,
        when=[is_timer_triggered],
        do=process_timer_start,
    ),
    row("tick", S.WAIT_FOR_OTA_TIMER_TRIGGER, None, do=process_wait_timer),
    row(
        "tick",
        S.AUTO_UPDATE_CHECK,
        S.WAIT_FOR_OTA_TIMER_TRIGGER,
        when=[is_check_finished],
        do=process_auto_check_done,
    ),
    row(
        "tick",
        S.AUTO_UPDATE_CHECK,
        S.UPDATE_USER,
        when=[is_check_allowed, is_check_returning],
        do=process_check_available,
    ),
    row(
        "tick",
        S.AUTO_UPDATE_CHECK,
        S.ERASE_IMAGE,
        when=[is_check_allowed, is_check_parsing],
        attempt=process_check_erase,
    ),
    row("tick", S.AUTO_UPDATE_CHECK, None, when=[is_check_allowed], do=process_check_step),
    row("tick", S.AUTO_UPDATE_CHECK, None),
    row(
        "tick", S.SERVER_UPDATE_CHECK, S.SERVER_UPDATE_CHECK_TRIGGER, do=process_manual_check_start
    ),
    row(
        "tick",
        S.SERVER_UPDATE_CHECK_TRIGGER,
        S.UPDATE_USER,
        when=[is_check_allowed, is_check_returning],
        do=process_check_available,
    ),
    row(
        "tick",
        S.SERVER_UPDATE_CHECK_TRIGGER,
        S.ERASE_IMAGE,
        when=[is_check_allowed, is_check_parsing],
        attempt=process_check_erase,
    ),
    row(
        "tick",
        S.SERVER_UPDATE_CHECK_TRIGGER,
        S.STATE_IDLE,
        when=[is_check_allowed, is_step_finishing],
        do=process_step_and_report,
    ),
    row(
        "tick", S.SERVER_UPDATE_CHECK_TRIGGER, None, when=[is_check_allowed], do=process_check_step
    ),
    row(
        "tick",
        S.SERVER_UPDATE_CHECK_TRIGGER,
        S.STATE_IDLE,
        when=[is_check_finished],
        do=process_server_check_done,
    ),
    row("tick", S.SERVER_UPDATE_CHECK_TRIGGER, None),
    row("tick", S.TRIGGER_OTA, S.UPDATE_USER, when=[is_trigger_failing], do=process_trigger_failed),
    row("tick", S.TRIGGER_OTA, None, when=[is_trigger_allowed], do=process_trigger),
    row("tick", S.TRIGGER_OTA, None),
    row("tick", S.WAIT_FOR_OTA_COMPLETE, None),
    row("tick", S.ERASE_IMAGE, None, when=[is_fw_idle], do=process_erase),
    row("tick", S.ERASE_IMAGE, None),
    row(
        "tick",
        S.FACTORY_RESET,
        S.UPDATE_USER,
        when=[is_hardened_factory_refused],
        do=process_factory_refused,
        only=Variant.HARDENED,
    ),
    row(
        "tick",
        S.FACTORY_RESET,
        S.WAIT_FOR_OTA_COMPLETE,
        when=[is_hardened],
        do=process_factory_reset,
        only=Variant.HARDENED,
    ),
    row("tick", S.FACTORY_RESET, S.STATE_IDLE, do=process_factory_reset),
    row(
        "tick",
        S.ROLLBACK,
        S.UPDATE_USER,
        when=[is_hardened_rollback_refused],
        do=process_rollback_refused,
        only=Variant.HARDENED,
    ),
    row(
        "tick",
        S.ROLLBACK,
        S.WAIT_FOR_OTA_COMPLETE,
        when=[is_hardened],
        do=process_rollback,
        only=Variant.HARDENED,
    ),
    row("tick", S.ROLLBACK, S.STATE_IDLE, do=process_rollback),
    row("tick", S.UPDATE_USER, S.TRIGGER_OTA, when=[is_user_to_trigger], do=process_update_user),
    row("tick", S.UPDATE_USER, S.AUTORESET, when=[is_user_to_autoreset], do=process_update_user),
    row(
        "tick",
        S.UPDATE_USER,
        S.WAIT_FOR_OTA_COMPLETE,
        when=[is_user_to_wait],
        do=process_update_user,
    ),
    row("tick", S.UPDATE_USER, S.STATE_IDLE, when=[is_user_to_idle], do=process_update_user),
    # SVC-35: AUTORESET / SYSTEM_RESET perform a software reset (the device reboots).
    row("tick", S.AUTORESET, S.SOFTWARE_RESET, when=[is_autoreset_due]),
    row("tick", S.AUTORESET, S.STATE_IDLE, when=[is_autoreset_off]),
    row("tick", S.AUTORESET, None),
    row("tick", S.SYSTEM_RESET, S.SOFTWARE_RESET, when=[is_download_done]),
    row("tick", S.SYSTEM_RESET, S.STATE_IDLE, do=process_refused_reset),
    row(
        "tick",
        S.STATE_IDLE,
        S.WAIT_FOR_OTA_TIMER_TRIGGER,
        when=[is_hardened_periodic],
        do=process_arm_timer,
        only=Variant.HARDENED,
    ),
    row("tick", S.STATE_IDLE, None, do=process_idle),
    # SVC-40: control messages are accepted only in STATE_IDLE.
    row("ctrl_update_check", S.STATE_IDLE, S.SERVER_UPDATE_CHECK),
    row("ctrl_initiate_ota", S.STATE_IDLE, S.TRIGGER_OTA),
    row("ctrl_system_reset", S.STATE_IDLE, S.SYSTEM_RESET),
    row("ctrl_factory_reset", S.STATE_IDLE, S.FACTORY_RESET),
    row("ctrl_rollback", S.STATE_IDLE, S.ROLLBACK),
    # SVC-30: the core's callback, synchronous, in whatever state the service is.
    row(
        "core_result",
        _REGISTERED,
        S.UPDATE_USER,
        when=[is_callback_registered],
        when_arg=[is_result_handled],
        do_arg=process_core_result,
    ),
)


def _get_state(w: World) -> SvcState:
    return w.service.state


def _set_state(w: World, state: object) -> World:
    return set_service(w, state=state)


SERVICE_DEF = MachineDef(
    name="service",
    states=tuple(SvcState),
    initial=S.REGWIFISRVCALLBCK,
    transitions=SERVICE_TRANSITIONS,
    get_key=_get_state,
    set_key=_set_state,
    finals=(S.SOFTWARE_RESET,),
)
