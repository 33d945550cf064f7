"""The environment's extra inputs (SCN-13..SCN-17) and the file-system switches (SCN-30..SCN-33).

Each input is budgeted (``tamper``, ``console``, ``mitm``, ``freeze``), offered by
:func:`get_extra_actions` and performed by :func:`process_extra`; the device's own ``step`` is
not involved. The file-system switches act around the device's step in ``env.step``.
"""

from __future__ import annotations

from otamodel.env._oracle import get_facts
from otamodel.env._scenario import get_world_scenario
from otamodel.model import Action, Phase, StepResult, World
from otamodel.model._action import ActionKind
from otamodel.model._enums import BlTask, CoreTask
from otamodel.model._physics import FsFormat
from otamodel.model._service import get_alarm_delay, get_runtime_config
from otamodel.model._state import Fs, replace
from otamodel.model._storage import set_net, set_service
from otamodel.model._update_check import get_manifest_url

_ctx = get_world_scenario
"""The world's scenario (the model types it as the narrower ``DeviceContext``)."""


#: The action kinds this module handles (their budgets are in ``ActionKind``'s metadata).
EXTRA_KINDS = frozenset(
    {
        ActionKind.TAMPER,
        ActionKind.CONSOLE,
        ActionKind.SET_PARAMS,
        ActionKind.MITM,
        ActionKind.FREEZE,
        ActionKind.REPLAY,
        ActionKind.RESUME,
    }
)

CONSOLE_FIELDS = ("periodic", "autoreset", "autoupdate")


# ---------------------------------------------------------------------------- offering


def get_extra_actions(world: World, budget: dict[str, int]) -> list[Action]:
    """SCN-13..SCN-17: the extra inputs the budgets still allow, in a fixed order."""
    out: list[Action] = []
    ctx = _ctx(world)
    if world.pending or not ctx.has_extra_inputs:
        return out
    if budget.get("tamper", 0) > 0:
        out.extend(get_tamper_actions(world))
    if budget.get("console", 0) > 0 and world.phase is Phase.APP:
        out.extend(get_console_actions(world))
    if budget.get("mitm", 0) > 0 and world.net.open:
        if world.net.url == get_manifest_url(world):
            if world.net.body != ctx.mitm_manifest:
                out.append(Action.of("mitm", "manifest"))
        elif ctx.mitm_image is not None and world.net.body != ctx.mitm_image.data:
            out.append(Action.of("mitm", "image"))
    frozen = ctx.get_frozen_index()
    if budget.get("freeze", 0) > 0 and frozen is not None:
        if world.published != frozen:
            out.append(Action.of("freeze"))
        out.extend(Action.of("replay", str(i)) for i in range(min(world.published, frozen)))
    if frozen is not None and get_resume_index(world) not in (None, world.published):
        out.append(Action.of("resume"))
    return out


def get_console_actions(world: World) -> list[Action]:
    """SCN-14, SCN-15, SCN-34, SCN-35: the console commands (each flag to its opposite value,
    each listed interval and URL that differs from the one in force) and the app's calls."""
    ctx = _ctx(world)
    offered = ctx.console_inputs
    runtime = get_runtime_config(world)
    out: list[Action] = []
    values = (runtime.periodic, runtime.autoreset, runtime.auto_update)
    for name, value in zip(CONSOLE_FIELDS, values, strict=True):
        if name in offered:
            out.append(Action("console", f"{name}={0 if value else 1}"))
    if "interval" in offered:
        intervals = (n for n in ctx.console_intervals if n != runtime.interval)
        out.extend(Action("console", f"interval={n}") for n in intervals)
    if "url" in offered:
        current = get_manifest_url(world)
        out.extend(
            Action("console", f"url={i}")
            for i, url in enumerate(ctx.console_urls)
            if url != current
        )
    if "set_params" in offered:
        out.extend(
            Action("set_params", str(i))
            for i in range(ctx.release_count)
            if ctx.get_release_params(i) is not None
        )
    return out


def get_resume_index(world: World) -> int | None:
    """SCN-17: the release the server serves again when a freeze or replay ends: among the
    releases the publisher has published so far (the ghost's record, which the device never
    reads), the newest one that carries the highest target (PROP-4); None when none has one."""
    ctx = _ctx(world)
    target = world.ghost.max_target
    if not target:
        return None
    best = None
    for i in world.ghost.published_seen:
        facts = get_facts(ctx, i)
        if facts.publisher and facts.target == target and not ctx.releases[i].withheld:
            best = i if best is None else max(best, i)
    return best


def get_tamper_targets(world: World) -> list[str]:
    """Every file on the external flash, then the boot-control page and the application."""
    return [*(name for name, _ in world.fs.files), "nvm:bootctl", "nvm:slot"]


def get_tamper_actions(world: World) -> list[Action]:
    out = [Action.of("tamper", f"flip:{target}") for target in get_tamper_targets(world)]
    out.extend(Action.of("tamper", f"truncate:{name}") for name, data in world.fs.files if data)
    return out


# ---------------------------------------------------------------------------- effects


def process_extra(world: World, action: Action) -> StepResult:
    """Perform one extra input (no budget is spent here; ``env.step`` does that)."""
    kind = action.kind
    if kind == "tamper":
        return process_tamper(world, action)
    if kind in ("console", "set_params"):
        return process_console(world, action)
    if kind == "mitm":
        return process_mitm(world, action)
    return process_server(world, action)


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def process_tamper(world: World, action: Action) -> StepResult:
    """SCN-13: flip the lowest bit of the first byte of a file on the external flash (the DB's
    first name character, an image's boot-control status, the factory backup's F8, a signature
    or digest file's first character) or of internal flash (the boot-control status, the first
    byte of the application code), or replace a file by an empty one."""
    how, _, target = action.arg.partition(":")
    if world.pending:
        return StepResult(world, action, refusal="a persistent operation is in flight")
    if target.startswith("nvm:") and how == "flip":
        page = 0 if target == "nvm:bootctl" else 1
        if target not in ("nvm:bootctl", "nvm:slot"):
            return StepResult(world, action, refusal=f"no internal flash region {target!r}")
        pages = world.flash.pages
        new_pages = (*pages[:page], _flip(pages[page], 0), *pages[page + 1 :])
        new = replace(world, flash=replace(world.flash, pages=new_pages))
        return StepResult(new, action, transition=f"bit flip in internal flash ({target[4:]})")
    data = world.fs.get(target)
    if data is None or how not in ("flip", "truncate") or not data:
        return StepResult(world, action, refusal=f"no file {target!r} to {how or 'tamper'}")
    content = _flip(data, 0) if how == "flip" else b""
    new = replace(world, fs=world.fs.with_file(target, content))
    what = "bit flip in" if how == "flip" else "truncation of"
    return StepResult(new, action, transition=f"{what} {target} on external flash")


def process_console(world: World, action: Action) -> StepResult:
    """SCN-14: ``sysota set`` changes one of the runtime options (periodic, auto reset, auto
    update; SCN-34 interval, SCN-35 URL) until the next boot; SCN-15:
    ``SYS_OTA_SET_PARAMETERS(url, version, digest)`` writes a release's URL, Version and
    digest into the service's ``ota_params`` with no check."""
    if world.phase is not Phase.APP:
        return StepResult(world, action, refusal="no application is running")
    if action.kind == "set_params":
        try:
            params = _ctx(world).get_release_params(int(action.arg))
        except ValueError:
            params = None
        if params is None:
            return StepResult(world, action, refusal=f"no release {action.arg!r} to take from")
        url, version, digest = params
        current = world.service.params
        new_params = replace(current, url=url, version=version, digest=digest[:64])
        new = set_service(world, params=new_params)
        return StepResult(new, action, transition=f"app: SYS_OTA_SET_PARAMETERS(v{version})")
    name, _, value = action.arg.partition("=")
    if name == "interval":
        return process_console_interval(world, action, value)
    if name == "url":
        return process_console_url(world, action, value)
    if name not in CONSOLE_FIELDS or value not in ("0", "1"):
        return StepResult(world, action, refusal=f"unknown console setting {action.arg!r}")
    runtime = get_runtime_config(world)
    field = "auto_update" if name == "autoupdate" else name
    runtime = replace(runtime, **{field: value == "1"})
    new = set_service(world, runtime=runtime)
    return StepResult(new, action, transition=f"console: sysota set {name} {value}")


def process_console_interval(world: World, action: Action, value: str) -> StepResult:
    """SCN-34: ``sysota set`` stores the interval in ``g_SysOtaConfig.periodic_check_interval``
    as typed (no range check); the RTCC reads it at its next arming (SVC-42), not now."""
    if not value.isdigit() or int(value) not in _ctx(world).console_intervals:
        return StepResult(world, action, refusal=f"interval {value!r} is not a console value")
    interval = int(value)
    runtime = replace(get_runtime_config(world), interval=interval)
    new = set_service(world, runtime=runtime)
    delay = get_alarm_delay(interval)
    return StepResult(
        new,
        action,
        transition=(
            f"console: sysota set interval {interval} (from the next RTCC arming the alarm "
            f"fires {delay} s after it)"
        ),
    )


def process_console_url(world: World, action: Action, value: str) -> StepResult:
    """SCN-35: ``sysota set`` copies the URL into ``json_url_cli`` and points ``json_url`` at
    it: every later update check opens it (SVC-10); nothing checks it here, and the TLS flag
    is not recomputed; the build's ``SYS_OTA_URL`` comes back at the next boot."""
    urls = _ctx(world).console_urls
    if not value.isdigit() or not 0 <= int(value) < len(urls):
        return StepResult(world, action, refusal=f"no console URL {value!r}")
    url = urls[int(value)]
    runtime = replace(get_runtime_config(world), url=url)
    new = set_service(world, runtime=runtime)
    return StepResult(new, action, transition=f"console: sysota set url {url}")


def process_mitm(world: World, action: Action) -> StepResult:
    """SCN-16: a man in the middle answers the open transfer himself: the manifest with one
    for his own build (Version 200, its true digest, a signature by another key), or the image
    with his build."""
    ctx = _ctx(world)
    if not world.net.open:
        return StepResult(world, action, refusal="no transfer in progress")
    manifest_url = get_manifest_url(world)
    if action.arg == "manifest" and world.net.url == manifest_url:
        body = ctx.mitm_manifest
    elif action.arg == "image" and world.net.url != manifest_url and ctx.mitm_image:
        body = ctx.mitm_image.data
    else:
        return StepResult(world, action, refusal=f"cannot substitute {action.arg!r} now")
    new = set_net(world, body=body, content_length=len(body))
    return StepResult(new, action, transition=f"man in the middle substitutes the {action.arg}")


def process_server(world: World, action: Action) -> StepResult:
    """SCN-17: the server freezes (answers nothing: every request fails), replays the
    manifest and files of an earlier release, or resumes serving the publisher's newest
    release (the attack ends)."""
    frozen = _ctx(world).get_frozen_index()
    if frozen is None:
        return StepResult(world, action, refusal="the scenario has no freeze budget")
    if action.kind == "resume":
        index = get_resume_index(world)
        if index is None or index == world.published:
            why = "the server already serves its newest release"
            return StepResult(world, action, refusal=why)
        new = replace(world, published=index)
        what = f"the attack ends: the server serves release {index} again"
        return StepResult(new, action, transition=what)
    if action.kind == "freeze":
        if world.published == frozen:
            return StepResult(world, action, refusal="the server is already frozen")
        return StepResult(replace(world, published=frozen), action, transition="server freezes")
    try:
        index = int(action.arg)
    except ValueError:
        return StepResult(world, action, refusal=f"bad release index {action.arg!r}")
    if not 0 <= index < min(world.published, frozen):
        return StepResult(world, action, refusal=f"release {action.arg} is not an earlier one")
    new = replace(world, published=index)
    return StepResult(new, action, transition=f"server replays release {index}")


# ---------------------------------------------------------------------------- around the step


def is_mount_failing(world: World) -> bool:
    """SCN-32: with the switch on, a mount of a damaged volume fails; the bootloader (and the
    core) retry it forever."""
    if not world.fs.damaged or not _ctx(world).fs_options.mount_fails_damaged:
        return False
    if world.pending:
        return False
    if world.phase is Phase.BOOTLOADER:
        return world.boot.task is BlTask.INIT
    return world.phase is Phase.APP and world.core.task is CoreTask.INIT


def is_format_tearable(world: World) -> bool:
    """SCN-32: with the switch on, a power cut can tear the first-boot format."""
    return bool(
        _ctx(world).fs_options.mount_fails_damaged
        and world.pending
        and isinstance(world.pending[0], FsFormat)
    )


def process_torn_format(world: World) -> World:
    """SCN-32: a torn format leaves a damaged volume (no directory, no files)."""
    return replace(world, pending=world.pending[1:], fs=Fs(formatted=False, damaged=True))
