"""The device as a whole: inputs (actions), the scheduler, persistent operations, resets,
the jump into the application, and the one ``step`` everything shares."""

from __future__ import annotations

import hashlib

from otamodel.model._action import (
    ACTION_KINDS,
    CTRL_MESSAGES,
    FAULT_KINDS,
    Action,
    ActionKind,
)
from otamodel.model._bootloader import BOOTLOADER_DEF
from otamodel.model._config import Defect, Scheduler
from otamodel.model._core import CORE_DEF
from otamodel.model._core_io import get_truncated_length, process_truncate
from otamodel.model._enums import BlTask, CoreTask, Phase, SvcState
from otamodel.model._machine import Compiled, Fired, compile_machine, fire, register
from otamodel.model._physics import (
    FlashErase,
    FlashProgram,
    PersistentOp,
    apply_flash_erase,
    apply_flash_program,
    apply_fs,
    is_tearable,
)
from otamodel.model._product import DeviceContext
from otamodel.model._record import get_evolve, record
from otamodel.model._service import SERVICE_DEF
from otamodel.model._state import (
    Bootloader,
    Core,
    Flash,
    Fs,
    Ghost,
    Service,
    Transfer,
    World,
    replace,
)
from otamodel.model._storage import BOOT_ADDR, get_bootctl, set_service
from otamodel.model._update_check import CHECK_DEF

SERVICE = compile_machine(SERVICE_DEF)
UPDATE_CHECK = compile_machine(CHECK_DEF)
CORE = compile_machine(CORE_DEF)
BOOTLOADER = compile_machine(BOOTLOADER_DEF)
register(SERVICE, UPDATE_CHECK, CORE, BOOTLOADER)
MACHINES: dict[str, Compiled] = {
    "service": SERVICE,
    "update_check": UPDATE_CHECK,
    "core": CORE,
    "bootloader": BOOTLOADER,
}


@record
class StepResult:
    """The outcome of :func:`step`: the new world and what happened, or a refusal."""

    world: World
    action: Action
    transition: str | None = None
    refusal: str | None = None
    notes: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()

    @property
    def is_refused(self) -> bool:
        return self.refusal is not None


# ------------------------------------------------------------------ resets and the jump


def process_reset(world: World, why: str) -> World:
    """DEV-1: any reset or power cut clears every volatile variable and runs the bootloader."""
    kept = world.scenario.config.has(Defect.STATE_KEPT_OVER_RESET)  # PROP-45
    return World(
        flash=world.flash,
        fs=world.fs.get_after_reset(),
        service=Service(fw_in_progress=world.service.fw_in_progress) if kept else Service(),
        phase=Phase.BOOTLOADER,
        published=world.published,
        network_up=world.network_up,
        budget=world.budget,
        ghost=world.ghost,
        scenario=world.scenario,
        notes=(*world.notes, why),
    )


def process_jump(world: World) -> World:
    """DEV-2: jump to the stored ``boot_addr``; the CPU runs whatever the slot holds. A known
    application starts its service and core; anything else hangs (no watchdog)."""
    ctx = world.scenario
    slot = world.flash.get_contents()
    header = get_bootctl(world)
    image = ctx.identify(slot) if header.boot_addr == BOOT_ADDR else None
    ghost = world.ghost
    witnesses = set(ghost.witnesses)
    if image is not None:
        programmed_now = world.boot.copy_len > 0
        if programmed_now and world.boot.factory_reset:
            witnesses.add("factory-restore")
        if programmed_now and not image.factory and world.boot.new_image:
            witnesses.add("patch-update" if "patch-entry" in ghost.witnesses else "full-update")
    ghost = replace(ghost, witnesses=frozenset(witnesses))
    world = replace(world, ghost=ghost)
    if image is None:
        return replace(
            world, phase=Phase.HUNG, running=None, notes=(*world.notes, "jump: not an application")
        )
    note = f"jump: running {image.describe()}"
    return replace(
        world,
        phase=Phase.APP,
        running=image,
        service=Service(fw_in_progress=world.service.fw_in_progress),
        core=Core(),
        boot=Bootloader(task=BlTask.JUMP_TO_APP),
        net=Transfer(),
        sched=0,
        notes=(*world.notes, note),
    )


# ------------------------------------------------------------------ persistent operations


def apply_op(world: World, op: PersistentOp, *, torn: bool = False) -> World:
    """FS-1..FS-6: perform one persistent operation (whole, or torn by a power cut)."""
    ctx = world.scenario
    if isinstance(op, FlashErase):
        return replace(world, flash=apply_flash_erase(world.flash, op, ctx.geometry, torn=torn))
    if isinstance(op, FlashProgram):
        flash = apply_flash_program(
            world.flash, op, ctx.geometry, torn=torn, tear_mode=ctx.config.tear_mode
        )
        return replace(world, flash=flash)
    options = getattr(ctx, "fs_options", None)
    if options is None:
        return replace(world, fs=apply_fs(world.fs, op, torn=torn))
    fs = apply_fs(
        world.fs,
        op,
        torn=torn,
        at_close=options.durability.value == "close",
        max_open=options.max_open,
    )
    return replace(world, fs=fs)


# ------------------------------------------------------------------ the scheduler


def get_schedule(world: World) -> tuple[str, ...]:
    """DEV-3: FreeRTOS: service then core; bare metal: core, service, core per super loop."""
    if world.scenario.config.scheduler is Scheduler.BARE_METAL:
        return ("core", "service", "core")
    return ("service", "core")


_TICK = Action("tick")
_evolve_world = get_evolve(World)


def _tick(world: World) -> StepResult:
    action = _TICK
    if world.pending:
        op = world.pending[0]
        new = apply_op(_evolve_world(world, pending=world.pending[1:]), op)
        return StepResult(new, action, transition=op.describe(), ops=(op.describe(),))
    if world.phase is Phase.HUNG:
        return StepResult(
            world, action, refusal="the CPU is running code that is not an application"
        )
    if world.phase is Phase.APP and world.running is not None and world.running.crashes:
        # ENV-31: a build that fails at start-up, before its core validates it, at every boot.
        new = process_reset(world, "application crash (fails at start-up)")
        return StepResult(new, action, transition="crash at start-up", notes=new.notes)
    if world.phase is Phase.BOOTLOADER:
        fired: Fired = fire(BOOTLOADER, world, "tick")
        new = fired.world
    else:
        schedule = get_schedule(world)
        fired = fire(MACHINES[schedule[world.sched % len(schedule)]], world, "tick")
        new = fired.world
        if fired.transition is not None and world.phase is Phase.APP:
            new = _evolve_world(new, sched=(world.sched + 1) % len(schedule))
    row = fired.transition
    if row is None:
        return StepResult(world, action, refusal=fired.refusal)
    if new.service.state is SvcState.SOFTWARE_RESET or new.boot.task is BlTask.SOFTWARE_RESET:
        new = process_reset(new, "software reset")
    elif new.boot.task is BlTask.APPLICATION:
        new = process_jump(new)
    return StepResult(new, action, transition=row.get_title(), notes=new.notes)


def step(world: World, action: Action) -> StepResult:
    """DEV-4: the one transition function. Total: a refused action returns a reason."""
    world = _evolve_world(world, notes=()) if world.notes else world
    kind = action.kind
    if kind == "tick":
        return _tick(world)
    if kind in ("power_cut", "power_cut_torn"):
        torn = kind == "power_cut_torn"
        if torn and not (world.pending and is_tearable(world.pending[0])):
            return StepResult(world, action, refusal="no operation in progress to tear")
        ops: tuple[str, ...] = ()
        if torn:
            op = world.pending[0]
            world = apply_op(world, op, torn=True)
            ops = (f"{op.describe()} (torn)",)
        new = process_reset(world, "power cut")
        return StepResult(new, action, transition="power cut", notes=new.notes, ops=ops)
    if kind == "reset":
        # DEV-1: the reset pin (or a watchdog-less power cycle between operations): volatile
        # state is lost, nothing is torn, queued persistent operations are not performed.
        new = process_reset(world, "reset")
        return StepResult(new, action, transition="reset", notes=new.notes)
    if kind == "crash":
        if world.phase is not Phase.APP:
            return StepResult(world, action, refusal="no application is running")
        new = process_reset(world, "application crash")
        return StepResult(new, action, transition="crash", notes=new.notes)
    if kind == "timer":
        if world.phase is not Phase.APP or not world.service.rtcc_armed:
            return StepResult(world, action, refusal="the RTCC alarm is not armed")
        return StepResult(set_service(world, timer_trigger=True), action, transition="RTCC alarm")
    if kind in ("net_down", "net_up"):
        up = kind == "net_up"
        return StepResult(replace(world, network_up=up), action, transition=kind)
    if kind in ("transfer_fail", "corrupt"):
        if not world.net.open:
            return StepResult(world, action, refusal="no transfer in progress")
        net = (
            replace(world.net, failed=True)
            if kind == "transfer_fail"
            else replace(world.net, corrupt=True)
        )
        return StepResult(replace(world, net=net), action, transition=kind)
    if kind == "truncate":
        if get_truncated_length(world) is None:
            return StepResult(world, action, refusal="no image download to cut short")
        return StepResult(process_truncate(world), action, transition=kind)
    if kind == "publish":
        try:
            index = int(action.arg)
        except ValueError:
            return StepResult(world, action, refusal=f"bad release index {action.arg!r}")
        if not 0 <= index < world.scenario.release_count:
            return StepResult(world, action, refusal=f"no release {index}")
        return StepResult(
            replace(world, published=index),
            action,
            transition=f"server publishes release {index}",
        )
    if kind == "ctrl":
        if world.phase is not Phase.APP:
            return StepResult(world, action, refusal="no application is running")
        if action.arg not in CTRL_MESSAGES:
            return StepResult(world, action, refusal=f"unknown control message {action.arg!r}")
        fired = fire(SERVICE, world, f"ctrl_{action.arg}")
        if fired.transition is None:
            return StepResult(world, action, refusal=fired.refusal)
        return StepResult(fired.world, action, transition=f"service: {fired.transition.get_name()}")
    if kind == "factory_sign":
        return _factory_sign(world, action)
    return StepResult(world, action, refusal=f"unknown action {kind!r}")


def _factory_sign(world: World, action: Action) -> StepResult:
    """SVC-41: ``sysota set factory sign <b64>`` writes ``factory_image_sign.txt`` (secure)."""
    from otamodel.model._physics import get_file_write_ops
    from otamodel.model._storage import FACTORY_SIGN_FILE, enqueue

    if world.phase is not Phase.APP or not world.scenario.config.secure_boot:
        return StepResult(world, action, refusal="Secure OTA is not enabled")
    text = world.scenario.factory_signature.encode()
    new = enqueue(world, get_file_write_ops(FACTORY_SIGN_FILE, [(0, text)]))
    return StepResult(new, action, transition="console: sysota set factory sign")


def make_initial_world(ctx: DeviceContext, budget: tuple[tuple[str, int], ...]) -> World:
    """DEV-5: what the programmer leaves: the unified image in internal flash (boot control
    = compiled-in default: FACTORY_RESET, status FF, version 1), empty external flash."""
    from otamodel.formats import bootctl

    geometry = ctx.geometry
    factory = ctx.factory
    data = factory.data.ljust(geometry.slot_size, b"\xff")
    size = geometry.page_size
    page0 = bootctl.get_default_page()[:size]
    pages = (page0, *(data[i : i + size] for i in range(size, geometry.slot_size, size)))
    ghost = Ghost()
    return World(
        flash=Flash(pages=pages),
        fs=Fs(),
        phase=Phase.BOOTLOADER,
        budget=budget,
        ghost=ghost,
        scenario=ctx,
    )


def get_state_summary(world: World) -> str:
    """A one-line summary: phase, machine states, pending operations, boot control."""
    header = get_bootctl(world)
    parts = [world.phase.value]
    if world.phase is Phase.BOOTLOADER:
        parts.append(f"bl={world.boot.task.name}")
    elif world.phase is Phase.APP and world.running is not None:
        parts.append(f"app=v{world.running.version}")
        parts.append(f"svc={world.service.state.name}")
        parts.append(f"core={world.core.task.name}")
    if world.pending:
        parts.append(f"pending={len(world.pending)}")
    parts.append(f"bootctl={header.status:02X}/t{header.type}/v{header.version}")
    return " ".join(parts)


def get_fingerprint(world: World) -> str:
    """A short stable digest of a world (for traces)."""
    import pickle

    # The records' reprs are short on purpose (no bytes), so the digest reads the fields.
    flash, fs = world.flash, world.fs
    parts = (flash.pages, flash.overprograms, fs.formatted, fs.has_dir, fs.files)
    machines = (world.phase.value, world.service, world.core, world.boot)
    parts_all = (parts, machines)
    return hashlib.sha256(pickle.dumps(parts_all, protocol=4)).hexdigest()[:16]


def describe_transition(before: World, result: StepResult) -> str:
    """TRACE-33: the step's transition as the story tells it: a row that stays in its state
    but changes a machine's state (a nested check step, another machine it sent an event to)
    names the change instead of ``(stay)``."""
    text = result.transition or ""
    if "--> (stay)" not in text:
        return text
    after = result.world
    changes = []
    own = ""
    for name, spec in MACHINES.items():
        old, new = spec.defn.get_key(before), spec.defn.get_key(after)
        if text.startswith(f"{name}:"):
            own = spec.get_state_name(new)
        if old != new:
            changes.append(f"{name}: {spec.get_state_name(old)} → {spec.get_state_name(new)}")
    if not changes:
        return text
    return text.replace("(stay)", f"{own or '(same state)'} ({'; '.join(changes)})")


__all__ = [
    "ACTION_KINDS",
    "CTRL_MESSAGES",
    "FAULT_KINDS",
    "MACHINES",
    "Action",
    "ActionKind",
    "CoreTask",
    "StepResult",
    "SvcState",
    "describe_transition",
    "make_initial_world",
    "process_jump",
    "process_reset",
    "step",
]
