"""State predicates of the properties added for issue 12 (docs/spec/properties.md,
PROP-30..PROP-44): what users care about (events, honesty, coherence, intent, data, wear)
and one property per threat of the TUF/Uptane list."""

from __future__ import annotations

import functools

from otamodel.env._ghost import is_kept_in
from otamodel.env._oracle import (
    DISABLED,
    VALID,
    find_row_in,
    get_ctx,
    get_max_publisher_version,
    get_rows,
)
from otamodel.env._scenario import Scenario, get_world_scenario
from otamodel.formats import bootctl
from otamodel.model import Action, AppImage, BlTask, CoreTask, DeviceContext, Fs, Phase, World
from otamodel.model._state import STREAK_CAP, Expect


def _header(world: World) -> bootctl.BootControlHeader:
    return bootctl.unpack(world.flash.pages[0][: bootctl.HEADER_SIZE])


# ------------------------------------------------------------------ events and honesty


def is_event_delivery_ok(world: World) -> bool:
    """PROP-30 event-delivery (always): no status lost in the single slot, no result without
    a case, no callback nobody asked for, no request left unanswered before the next."""
    return not world.ghost.event_fault


def is_nothing_awaited(world: World) -> bool:
    """PROP-30 event-response goal: the app waits for no terminal callback."""
    return world.ghost.expect is Expect.NONE


def is_outcome_honest(world: World) -> bool:
    """PROP-31 outcome-honesty (always): the success callback this step delivered (if any)
    found its persistent effect in place (the ghost marks only the state right after it)."""
    return not world.ghost.honesty_fault


# ------------------------------------------------------------------ boot coherence


def is_just_booted(world: World) -> bool:
    """The first application state after a bootloader pass: nothing of the app has run yet
    (storage is exactly what the bootloader left)."""
    return world.phase is Phase.APP and world.core.task is CoreTask.INIT and not world.core.sub


def is_boot_coherent(world: World) -> bool:
    """PROP-32 boot-coherence (always): right after a bootloader pass, boot control agrees
    with the DB row whose file holds the running image (type PRODUCTION, version = the
    build's compiled version, status = the row's status & 0xFC, the row's version as the code
    reads it = the compiled version, the row not F0); a factory image runs under a
    FACTORY_RESET-type, F8 boot control."""
    if not is_just_booted(world) or world.running is None:
        return True
    return _is_coherent(
        get_world_scenario(world), world.running, world.flash.pages[0], world.fs
    )


@functools.lru_cache(maxsize=4096)
def _is_coherent(ctx: Scenario, image: AppImage, page0: bytes, fs: Fs) -> bool:
    """Remembered by what it reads (not by the world: the cache would keep whole worlds)."""
    header = bootctl.unpack(page0[: bootctl.HEADER_SIZE])
    if image.factory:
        return header.type == bootctl.ImageType.FACTORY_RESET and header.status == VALID
    row = find_row_in(ctx, fs, image)
    if row is None or row.status is None or row.status == DISABLED:
        return False
    return (
        header.type == bootctl.ImageType.PRODUCTION
        and header.version == image.version
        and row.version == image.version
        and header.status == row.status & bootctl.ImageStatus.UNBOOTED
    )


# ------------------------------------------------------------------ intent


def is_intent_honoured(world: World) -> bool:
    """PROP-33 intent-honoured (always): an erase removed nothing but its target, and once a
    rollback the app accepted has taken effect the version it left does not run again while
    the same release stays published."""
    ghost = world.ghost
    if ghost.intent_fault:
        return False
    if ghost.declined and not ghost.rollback_to and world.running is not None:
        return world.running.version != ghost.declined
    return True


def is_factory_intent_done(world: World) -> bool:
    """PROP-34 goal: no accepted factory reset is still waiting for the factory image."""
    return not world.ghost.factory_intent


def is_intent_action(action: Action) -> bool:
    """PROP-34 edges: the device left alone (a new request would supersede the factory reset,
    a fault or reset cancels it)."""
    from otamodel.verify._properties import is_recovery_action

    return is_recovery_action(action)


# ------------------------------------------------------------------ data and wear


def is_no_data_loss(world: World) -> bool:
    """PROP-35 no-data-loss (always): with nothing queued, every image the ghost keeps (a
    validated image and its row, the factory backup) is intact."""
    if world.pending or not world.ghost.kept:
        return True
    return _is_all_kept(world.fs, world.ghost.kept, get_ctx(world))


@functools.lru_cache(maxsize=4096)
def _is_all_kept(fs: Fs, kept: frozenset[tuple[str, int]], scenario: DeviceContext) -> bool:
    return all(is_kept_in(fs, scenario, name, version) for name, version in kept)


def is_good_image_running(world: World) -> bool:
    """PROP-36 goal: an application runs that does not fail at start-up."""
    return world.phase is Phase.APP and world.running is not None and not world.running.crashes


def is_reprogram_bounded(world: World) -> bool:
    """PROP-37 bounded-reprogram (always): the bootloader never programs the same file more
    than ``STREAK_CAP - 1`` times in a row without a fault, a user request or a validation."""
    return world.ghost.program_streak < STREAK_CAP


def is_reprogram_needed(world: World) -> bool:
    """PROP-38 no-needless-reprogram (always): on entering program mode, the slot does not
    already hold an image whose DB row is F8 under an F8 PRODUCTION boot control."""
    if world.phase is not Phase.BOOTLOADER or world.boot.task is not BlTask.PROGRAM_IMAGE:
        return True
    if world.pending or world.boot.copy_len:
        return True
    return not _is_needless(get_world_scenario(world), world.flash.pages, world.fs)


@functools.lru_cache(maxsize=1024)
def _is_needless(ctx: Scenario, pages: tuple[bytes, ...], fs: Fs) -> bool:
    """Remembered by what it reads (not by the world: the cache would keep whole worlds)."""
    header = bootctl.unpack(pages[0][: bootctl.HEADER_SIZE])
    if header.status != VALID or header.type != bootctl.ImageType.PRODUCTION:
        return False
    image = ctx.identify(b"".join(pages))
    if image is None or image.factory:
        return False
    row = find_row_in(ctx, fs, image)
    return row is not None and row.status == VALID


# ------------------------------------------------------------------ security (TUF/Uptane)


def is_authentic(world: World) -> bool:
    """PROP-40 sec-authenticity (always): every jump ran the factory image or a build the
    publisher made (signed with the publisher's key in secure builds)."""
    return world.ghost.last_jump_authentic


def is_no_rollback_attack(world: World) -> bool:
    """PROP-41 sec-anti-rollback (always): no installed (non-factory) image runs below the
    highest version validated since the user last asked for a rollback or factory reset."""
    running = world.running
    if running is None or running.factory:
        return True
    return running.version >= world.ghost.max_validated


def is_no_fast_forward(world: World) -> bool:
    """PROP-42 sec-fast-forward (always): the running build's version is not above every
    version the publisher makes (an inflated version would block every later release)."""
    running = world.running
    if running is None:
        return True
    return running.version <= get_max_publisher_version(get_ctx(world))


def is_not_frozen(world: World) -> bool:
    """PROP-43 sec-freeze-replay goal: no freeze or replay has happened yet (PROP-4 judges
    those states), or PROP-4's goal holds: an application runs whose compiled version is at
    least the newest valid target the publisher has published so far. The property's edges
    add the end of the attack (``resume``), so a freeze or replay fails it only when it leaves
    lasting damage on the device."""
    if not is_attacked(world):
        return True
    return world.running is not None and world.running.version >= world.ghost.max_target


def is_attacked(world: World) -> bool:
    """Whether the server has frozen or replayed (SCN-17): each spends the ``freeze`` budget,
    so no ghost flag is needed."""
    initial: int = dict(get_ctx(world).budget).get("freeze", 0)
    return world.get_budget("freeze") < initial


def is_attack_over_action(action: Action) -> bool:
    """PROP-43 edges: PROP-4's (the device left alone, the user asking for an update) and the
    end of a freeze or replay (SCN-17 ``resume``)."""
    return action.is_recovery() or action.is_update_request() or action.kind == "resume"



def is_erase_authentic(world: World) -> bool:
    """PROP-44 sec-erase-authenticity (always): the erase started in this step (if any) was
    asked for by a manifest the publisher made."""
    return not world.ghost.erase_forged


def get_rows_summary(world: World) -> str:
    """The DB rows as (name, status, version) for stories and tests."""
    return ", ".join(f"{r.name}:{r.status}:{r.version}" for r in get_rows(world.fs) or ())
