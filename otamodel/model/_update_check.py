"""``SYS_OTA_Update_Check`` (research note §2.3): its sub-state is a static that outlives the
service state that called it, so it is a machine of its own, ``update_check``, with one event:
``step`` (one call)."""

from __future__ import annotations

from otamodel.errors import ManifestError
from otamodel.formats import manifest as mf
from otamodel.model import _core as core
from otamodel.model._config import Defect
from otamodel.model._enums import CheckState
from otamodel.model._machine import MachineDef, row
from otamodel.model._parse import ParseOutcome, process_manifest
from otamodel.model._state import World, replace
from otamodel.model._storage import set_net, set_service

JSON_READ_LIMIT = mf.JSON_FILE_MAXSIZE - 10
Ck = CheckState


def get_json_read_limit(world: World) -> int:
    """SCN-6: reads stop at ``SYS_OTA_JSON_FILE_MAXSIZE - 10`` (the configured size)."""
    return int(world.scenario.config.json_max_size) - 10


def get_app_version(world: World) -> int:
    """The running image's compiled-in ``SYS_OTA_APP_VER_NUM``."""
    return world.running.version if world.running is not None else 0


def is_connected(w: World) -> bool:
    return w.service.dev_cnctd_to_nw


def is_check_finished(w: World) -> bool:
    return not w.service.check_in_progress and not w.service.erase_request


def _fail_check(world: World) -> World:
    return set_service(world, update_check_failed=True)


def get_manifest_url(w: World) -> str:
    """SCN-7, SCN-35: ``json_url``: the URL a ``sysota set`` typed (until the next boot), else
    the build's ``SYS_OTA_URL``."""
    runtime = w.service.runtime
    if runtime is not None and runtime.url is not None:
        return runtime.url
    return w.scenario.manifest_url


def is_manifest_url_bad(w: World) -> bool:
    enforce = w.scenario.config.enforce_tls
    return not core.is_url_accepted(get_manifest_url(w), enforce_tls=enforce)


def process_connect_failed(w: World) -> World:
    """SVC-10: a URL the HTTP client refuses fails at once."""
    return _fail_check(set_service(w, check_in_progress=True))


def process_connect(w: World) -> World:
    """SVC-10: open the manifest URL."""
    w = set_service(w, check_in_progress=True)
    return core.open_downloader(w, get_manifest_url(w))


def is_json_read_failed(w: World) -> bool:
    """SVC-11: a negative read. ENV-6: fewer bytes than Content-Length: the connection ends
    before READ_JSON has read field_content_length bytes, and the next read is negative."""
    net = w.net
    short = net.body is not None and len(net.body) < net.content_length
    return net.failed or net.body is None or short or not w.network_up


def process_json_read_failed(w: World) -> World:
    """SVC-11: a negative read closes, flags the failure; rx_len is not reset."""
    return _fail_check(set_net(w, open=False, failed=False))


def is_json_too_long(w: World) -> bool:
    return len(w.net.body or b"") > get_json_read_limit(w) - w.rx_len


def process_json_overflow(w: World) -> World:
    """SVC-12: the buffer fills; zero-byte reads run the 70000 counter out. rx_len stays."""
    w = replace(w, rx_len=max(get_json_read_limit(w), 0))
    return _fail_check(set_net(w, open=False))


def process_json_received(w: World) -> World:
    """SVC-11: the whole manifest arrived."""
    return replace(w, rx_len=0)


def get_manifest_outcome(w: World) -> ParseOutcome | None:
    """SVC-13, SVC-20: the parse of the received manifest (None: a JSON syntax error)."""
    body = w.net.body or b""
    try:
        mf.parse(body)
    except ManifestError:
        return None
    return process_manifest(w, body, get_app_version(w))


def is_json_syntax_error(w: World) -> bool:
    try:
        mf.parse(w.net.body or b"")
    except ManifestError:
        return True
    return False


def process_json_syntax_error(w: World) -> World:
    """SVC-13: a JSON syntax error is a failed check."""
    return _fail_check(set_net(w, open=False))


def process_json_content(w: World) -> World:
    """SVC-20: the manifest's fields into the service's parameters."""
    out = process_manifest(w, w.net.body or b"", get_app_version(w))
    w = w.note(f"manifest: {out.why}")
    return set_service(
        w,
        parse_result=out.result,
        erase_request=out.erase_request and not is_erase_request_forgotten(w),
        patch_request=out.patch_request,
        params=out.params,
    )


def is_erase_request_forgotten(w: World) -> bool:
    """HARD-16: the hardened service keeps no erase request past the manifest that made it
    (the erase itself is already handed to ERASE_IMAGE)."""
    config = w.scenario.config
    return bool(config.is_hardened) and not config.has(Defect.ERASE_REQUEST_STICKY)


def process_check_done(w: World) -> World:
    """SVC-14: DONE resets the sub-state, clears the in-progress flag, returns the stored result."""
    w = set_net(w, open=False)
    return set_service(w, check_in_progress=False)


CHECK_TRANSITIONS: tuple[dict[str, object], ...] = (
    row("step", Ck.CNCT_TO_SRVR, Ck.DONE, when=[is_manifest_url_bad], do=process_connect_failed),
    row("step", Ck.CNCT_TO_SRVR, Ck.READ_JSON, do=process_connect),
    row("step", Ck.READ_JSON, None, unless=[is_connected]),
    row("step", Ck.READ_JSON, Ck.DONE, when=[is_json_read_failed], do=process_json_read_failed),
    row("step", Ck.READ_JSON, Ck.DONE, when=[is_json_too_long], do=process_json_overflow),
    row("step", Ck.READ_JSON, Ck.JSON_CONTENT, do=process_json_received),
    row(
        "step", Ck.JSON_CONTENT, Ck.DONE, when=[is_json_syntax_error], do=process_json_syntax_error
    ),
    row("step", Ck.JSON_CONTENT, Ck.DONE, do=process_json_content),
    row("step", Ck.DONE, Ck.CNCT_TO_SRVR, do=process_check_done),
)


def _get_check(w: World) -> CheckState:
    return w.service.check


def _set_check(w: World, state: object) -> World:
    return set_service(w, check=state)


CHECK_DEF = MachineDef(
    name="update_check",
    states=tuple(CheckState),
    initial=Ck.CNCT_TO_SRVR,
    transitions=CHECK_TRANSITIONS,
    get_key=_get_check,
    set_key=_set_check,
)
