"""Ghost history (docs/spec/properties.md, PROP-*): after every accepted step, the
environment records what the properties need to remember, by comparing the world before
and after. The device's code never reads any of it."""

from __future__ import annotations

from otamodel.env._oracle import (
    DB_NAME,
    DISABLED,
    FACTORY_FILE,
    VALID,
    find_row_of,
    get_ctx,
    get_facts,
    get_rows,
    get_target,
    identify_file,
    is_publisher_image,
)
from otamodel.formats import bootctl
from otamodel.model import (
    Action,
    CoreResult,
    CoreTask,
    DeviceContext,
    Fs,
    Phase,
    StepResult,
    World,
)
from otamodel.model._enums import BlTask
from otamodel.model._physics import FlashProgram
from otamodel.model._record import get_evolve
from otamodel.model._state import STREAK_CAP, Expect, Ghost, replace

_evolve_world = get_evolve(World)

CALLBACK = "app callback: "
CORE_CALL = "core -> service: "

# PROP-30: per awaited request, the callbacks that may come on the way and the final ones.
_ON_THE_WAY = {
    Expect.CHECK: frozenset(),
    Expect.UPDATE: frozenset(
        {
            "DOWNLOAD_START",
            "DOWNLOAD_SUCCESS",
            "IMAGE_DIGEST_VERIFY_START",
            "IMAGE_DIGEST_VERIFY_SUCCESS",
            "PATCH_IMAGE_DIGEST_VERIFY_START",
            "PATCH_IMAGE_DIGEST_VERIFY_SUCCESS",
            "PATCH_EVENT_START",
            "PATCH_EVENT_COMPLETED",
        }
    ),
    Expect.ROLLBACK: frozenset(),
    Expect.FACTORY_RESET: frozenset(),
    Expect.ERASE: frozenset(),
}
_TERMINAL = {
    Expect.CHECK: frozenset({"UPDATE_CHECK_FAILED", "UPDATE_NOTAVAILABLE", "UPDATE_AVAILABLE"}),
    Expect.UPDATE: frozenset(
        {
            "DB_ENTRY_SUCCESS",
            "DOWNLOAD_FAILED",
            "IMAGE_DIGEST_VERIFY_FAILED",
            "PATCH_IMAGE_DIGEST_VERIFY_FAILED",
            "PATCH_BASEVERSION_NOTFOUND",
            "TRIGGER_OTA_FAILED",
        }
    ),
    Expect.ROLLBACK: frozenset({"ROLLBACK_SUCCESS", "ROLLBACK_FAILED"}),
    Expect.FACTORY_RESET: frozenset({"FACTORY_RESET_SUCCESS", "FACTORY_RESET_FAILED"}),
    Expect.ERASE: frozenset({"IMAGE_ERASED", "IMAGE_ERASE_FAILED"}),
}
_CTRL_EXPECT = {
    "update_check": Expect.CHECK,
    "initiate_ota": Expect.UPDATE,
    "rollback": Expect.ROLLBACK,
    "factory_reset": Expect.FACTORY_RESET,
}
# Core results ``_OTACallback`` has no case for: the result never reaches the app.
_DROPPED = frozenset({"IMAGE_DB_ENTRY_FAILED", "PATCH_IMAGE_FAILED"})
_QUIET = frozenset({"NONE", "IDLE"})


def update_ghost(before: World, result: StepResult) -> World:
    """Record the history of one accepted step (PROP-1, 3, 4, 8, 10, 11, 13, 15, 16, 20, 23,
    24). Cheap when nothing relevant happened."""
    after = result.world
    ghost = after.ghost
    g = ghost
    if g.event_fault or g.honesty_fault or g.intent_fault or g.erase_forged:
        # Faults of events are marks on the state right after the event (the always-property
        # fails there); later states forget them, so they do not double the state space.
        g = replace(g, event_fault="", honesty_fault="", intent_fault="", erase_forged=False)
    action = result.action
    kind = action.kind
    if kind == "publish":
        g = _on_publish(after, g)
    elif kind in ("power_cut", "power_cut_torn", "reset"):
        g = replace(g, program_streak=0, program_name="") if g.program_streak else g
    if after.phase is not Phase.APP and before.phase is Phase.APP and g.expect:
        g = replace(g, expect=Expect.NONE)  # the app restarts: it waits for nothing
    if kind in ("power_cut", "power_cut_torn", "reset") and g.factory_intent:
        g = replace(g, factory_intent=False)  # PROP-34: a fault cancels the request
    if kind == "ctrl":
        g = _on_ctrl(before, after, action, g)
    if kind == "tick":
        if before.pending:
            g = _on_op(before, after, g)
        elif before.phase is Phase.BOOTLOADER:
            g = _on_bootloader(before, after, g)
        elif before.phase is Phase.APP:
            g = _on_app(before, after, g)
    if g is ghost:
        return after
    return _evolve_world(after, ghost=g)


def set_initial_ghost(world: World) -> World:
    """PROP-4: the release published at the start counts as published."""
    seen = frozenset({world.published})
    target = get_target(get_ctx(world), seen)
    return replace(world, ghost=replace(world.ghost, published_seen=seen, max_target=target))


# ------------------------------------------------------------------ per kind of step


def _on_publish(world: World, g: Ghost) -> Ghost:
    if world.published not in g.published_seen:
        seen = g.published_seen | {world.published}
        g = replace(g, published_seen=seen, max_target=get_target(get_ctx(world), seen))
    if g.declined:
        g = replace(g, declined=0)  # PROP-33: a rollback declines this release only
    return g


def _on_ctrl(before: World, after: World, action: Action, g: Ghost) -> Ghost:
    expect = _CTRL_EXPECT.get(action.arg)
    if g.program_streak:
        g = replace(g, program_streak=0, program_name="")
    if expect is None:
        return g
    if g.factory_intent and expect is not Expect.FACTORY_RESET:
        g = replace(g, factory_intent=False)  # PROP-34: a later request supersedes it
    if g.expect is not Expect.NONE and not g.event_fault:
        g = replace(g, event_fault=f"unanswered:{g.expect.name}")
    return replace(g, expect=expect)


def _on_op(before: World, after: World, g: Ghost) -> Ghost:
    op = before.pending[0]
    if (
        isinstance(op, FlashProgram)
        and op.page == 0
        and after.phase is Phase.APP
        and after.running is not None
    ):
        g = _on_validation(before, after, g)
    if not after.pending and g.kept:
        g = _reconcile_kept(after, g)
    return g


def _on_validation(before: World, after: World, g: Ghost) -> Ghost:
    """PROP-3: validation counts once boot control durably says F8 for the running build."""
    old = bootctl.unpack(before.flash.pages[0][: bootctl.HEADER_SIZE])
    new = bootctl.unpack(after.flash.pages[0][: bootctl.HEADER_SIZE])
    if old.status == VALID or new.status != VALID or new.type != bootctl.ImageType.PRODUCTION:
        return g
    running = after.running
    assert running is not None
    version = running.version
    changes: dict[str, object] = {
        "max_validated": max(g.max_validated, version),
        "validated": g.validated | {version},
        "program_streak": 0,
        "program_name": "",
    }
    row = find_row_of(after, running)
    if row is not None:
        changes["kept"] = g.kept | {(row.name, version)}
    return replace(g, **changes)


def _is_removal_authorised(world: World, name: str, version: int) -> bool:
    """PROP-35: an explicit erase, a factory reset, a rollback, or an eviction at the DB
    entry of a newer image."""
    if world.phase is not Phase.APP:
        return False
    core = world.core
    if core.task in (CoreTask.ERASE_IMAGE, CoreTask.FACTORY_RESET) or core.rollback_initiated:
        return True
    if core.result in (CoreResult.IMAGE_ERASED, CoreResult.FACTORY_RESET_SUCCESS):
        return True
    if not core.new_downloaded_img or name == FACTORY_FILE or version >= core.params.version:
        return False
    # an eviction takes the oldest stored image, not any other
    return version == min(v for n, v in world.ghost.kept if n != FACTORY_FILE)


def is_kept_present(world: World, name: str, version: int) -> bool:
    return is_kept_in(world.fs, world.scenario, name, version)


def is_kept_in(fs: Fs, scenario: DeviceContext, name: str, version: int) -> bool:
    """PROP-35: the stored image is intact, and (unless it is the factory backup) its DB row
    names it with a status other than F0."""
    data = fs.get(name)
    if not data:
        return False
    image = scenario.identify(data.ljust(scenario.geometry.slot_size, b"\xff"))
    if image is None or image.version != version:
        return False
    if name == FACTORY_FILE:
        return bool(image.factory)
    return any(row.name == name and row.status != DISABLED for row in get_rows(fs) or ())


def _reconcile_kept(world: World, g: Ghost) -> Ghost:
    drop = {
        (name, version)
        for name, version in g.kept
        if not is_kept_present(world, name, version)
        and _is_removal_authorised(world, name, version)
    }
    return replace(g, kept=g.kept - drop) if drop else g


def _on_bootloader(before: World, after: World, g: Ghost) -> Ghost:
    task = before.boot.task
    if task is BlTask.SELECT_IMAGE and after.boot.task is BlTask.PROGRAM_IMAGE:
        name = after.boot.file_name
        streak = min(g.program_streak + 1, STREAK_CAP) if name == g.program_name else 1
        return replace(g, program_name=name, program_streak=streak)
    if task is BlTask.JUMP_TO_APP and after.phase is not Phase.BOOTLOADER:
        return _on_jump(before, after, g)
    return g


def _on_jump(before: World, after: World, g: Ghost) -> Ghost:
    """PROP-1 / PROP-40 oracles; PROP-8 rollback witness; PROP-33 factory intent."""
    ctx = get_ctx(after)
    image = after.running
    header = bootctl.unpack(before.flash.pages[0][: bootctl.HEADER_SIZE])
    authentic = image is None or is_publisher_image(ctx, image)
    ok = image is not None and authentic and (image.factory or header.version == image.version)
    changes: dict[str, object] = {"last_jump_ok": ok, "last_jump_authentic": authentic}
    if image is not None:
        if g.rollback_to:
            if image.version == g.rollback_to:
                changes["witnesses"] = g.witnesses | {"rollback"}
            changes["rollback_to"] = 0
        if image.factory:
            changes["factory_intent"] = False
            changes["validated"] = g.validated | {image.version}
            if identify_file(after, after.fs.get(FACTORY_FILE)) is not None:
                changes["kept"] = g.kept | {(FACTORY_FILE, image.version)}
    return replace(g, **changes)


def _on_app(before: World, after: World, g: Ghost) -> Ghost:
    notes = after.notes
    if (
        not notes
        and after.core.task is before.core.task
        and after.service.erase_in_progress == before.service.erase_in_progress
    ):
        return g
    core = after.core
    if (
        before.core.task is CoreTask.UPDATE_USER
        and core.task is not CoreTask.UPDATE_USER
        and before.core.result.name in _DROPPED
        and before.core.callback
    ):
        g = replace(g, event_fault=f"dropped:{before.core.result.name}")
    if before.core.task is not CoreTask.FACTORY_RESET and core.task is CoreTask.FACTORY_RESET:
        g = replace(g, factory_intent=True)
    if before.core.task is not CoreTask.ERASE_IMAGE and core.task is CoreTask.ERASE_IMAGE:
        g = _on_erase_start(after, g)
    if after.service.erase_in_progress and not before.service.erase_in_progress:
        if g.expect is Expect.CHECK:
            g = replace(g, expect=Expect.ERASE)
        if not get_facts(get_ctx(after), after.published).publisher:
            g = replace(g, erase_forged=True)
    for note in notes:
        if note.startswith(CORE_CALL):
            g = _on_core_call(before, note[len(CORE_CALL) :], g)
        elif note.startswith(CALLBACK):
            g = _on_callback(after, note[len(CALLBACK) :], g)
    return g


def _on_erase_start(world: World, g: Ghost) -> Ghost:
    """PROP-33: the rows an erase of ``erase_ver`` must keep (the target name first)."""
    target = ""
    keep = []
    for row in get_rows(world.fs) or ():
        if row.version == world.core.erase_ver and not target:
            target = row.name
        else:
            keep.append(row.name)
    return replace(g, erase_keep=(target, *keep))


def _on_core_call(before: World, name: str, g: Ghost) -> Ghost:
    """PROP-30: a result written over an undelivered status, or one with no case."""
    if g.event_fault:
        return g
    svc = before.service
    from otamodel.model import SvcState

    if name in _DROPPED:
        return replace(g, event_fault=f"dropped:{name}")
    if svc.state is SvcState.UPDATE_USER and svc.status.name not in _QUIET:
        return replace(g, event_fault=f"overwritten:{svc.status.name}")
    return g


def _on_callback(world: World, name: str, g: Ghost) -> Ghost:
    g = _check_honesty(world, name, g)
    running = world.running
    if name == "ROLLBACK_SUCCESS" and running is not None and not running.factory:
        # PROP-8 / PROP-33: the version to end with, and the one the user declined.
        below = [v for v in g.validated if v < running.version]
        g = replace(
            g,
            rollback_to=max(below) if below else world.scenario.factory.version,
            declined=running.version,
        )
    if name == "UPDATE_CHECK_START":
        if g.expect is Expect.CHECK:
            return g  # the start of the manual check the app asked for
        if g.expect is not Expect.NONE and not g.event_fault:
            g = replace(g, event_fault=f"unanswered:{g.expect.name}")
        return replace(g, expect=Expect.CHECK)
    expect = g.expect
    if expect is not Expect.NONE and name in _TERMINAL[expect]:
        nxt = Expect.NONE
        if name == "UPDATE_AVAILABLE" and world.scenario.config.auto_update:
            nxt = Expect.UPDATE
        return replace(g, expect=nxt)
    if expect is not Expect.NONE and name in _ON_THE_WAY[expect]:
        return g
    if not g.event_fault:
        g = replace(g, event_fault=f"unrequested:{name}")
    return g


def _check_honesty(world: World, name: str, g: Ghost) -> Ghost:
    """PROP-31 (and the erase part of PROP-33): a success callback's persistent effect."""
    problem = ""
    if name == "DB_ENTRY_SUCCESS":
        problem = _check_db_entry(world)
    elif name == "ROLLBACK_SUCCESS":
        header = bootctl.unpack(world.flash.pages[0][: bootctl.HEADER_SIZE])
        row = find_row_of(world, world.running) if world.running is not None else None
        if header.status != DISABLED or (row is not None and row.status != DISABLED):
            problem = "rollback"
    elif name == "FACTORY_RESET_SUCCESS":
        if world.fs.is_present(DB_NAME) or not bootctl.is_blank_prefix(world.flash.pages[0]):
            problem = "factory-reset"
    elif name == "IMAGE_ERASED":
        problem, g = _check_erase(world, g)
    if problem and not g.honesty_fault:
        version = world.running.version if world.running is not None else 0
        status = world.flash.pages[0][0]
        g = replace(g, honesty_fault=f"{name}:{problem}:v{version}:bc{status:02X}")
    return g


def _check_db_entry(world: World) -> str:
    if world.pending:
        return "queued"
    name = world.core.image_name.rsplit("/", 1)[-1]
    rows = get_rows(world.fs) or ()
    import hashlib

    from otamodel.formats import manifest as mf

    for row in rows:
        if row.name == name:
            data = world.fs.get(name)
            if data is None or row.digest is None:
                return "no-file"
            if hashlib.sha256(data).digest() != mf.get_digest_bytes(row.digest):
                return "digest"
            header = bootctl.unpack(world.flash.pages[0][: bootctl.HEADER_SIZE])
            if header.status == VALID:
                return "boot-control"
            return ""
    return "no-row"


def _check_erase(world: World, g: Ghost) -> tuple[str, Ghost]:
    keep = g.erase_keep
    g = replace(g, erase_keep=None)
    if keep is None:
        return "", g
    target, *others = keep
    names = {row.name for row in get_rows(world.fs) or ()}
    problem = ""
    if world.pending or target in names or (target and world.fs.is_present(target)):
        problem = "still-there"
    lost = [n for n in others if n not in names or not world.fs.is_present(n)]
    if lost and not g.intent_fault:
        g = replace(g, intent_fault=f"erase-removed:{','.join(lost)}")
    return problem, g


__all__ = ["is_kept_in", "is_kept_present", "set_initial_ghost", "update_ghost"]
