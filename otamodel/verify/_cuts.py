"""The per-write power-cut table (CUT-*): run a scenario's fault-free update, number every
persistent operation in program order, cut power before, after and in the middle of each
one, let the device recover with no further fault, and say what it ends up running and
which properties the recovery violates.

The fault-free schedule (CUT-1) is chosen by a fixed policy, not searched: from the initial
world, ``net_up`` when the network is down, the RTCC alarm (``timer``) as soon as the
service waits for it, ``ctrl(update_check)`` when the service sits idle on a product
without periodic checks and the scenario lets the user ask, otherwise ``tick``; until the
version the first published release offers runs and the device is quiet (no persistent
operation queued, core idle, service ready for a new check).

A recovery (CUT-3) uses the same policy restricted to the device left alone with power on
(``tick``, ``timer``, ``net_up``) until the world repeats (the device has settled into a
cycle), nothing is enabled (a hang), or a step bound.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs

from otamodel.checker import PropertyKind, check
from otamodel.checker._classify import get_finding_id
from otamodel.checker._model import Property
from otamodel.env import Scenario, enabled_actions, initial_world
from otamodel.env import step as env_step
from otamodel.env._actions import step_without_budget as device_step
from otamodel.errors import ScenarioError
from otamodel.formats import bootctl
from otamodel.model import Action, Phase, SvcState, TearMode, World, is_tearable
from otamodel.model._physics import (
    FlashErase,
    FlashProgram,
    FsClose,
    FsCreate,
    FsDelete,
    FsFormat,
    FsMkdir,
    FsRename,
    FsWrite,
    PersistentOp,
)
from otamodel.model._record import replace
from otamodel.verify._properties import (
    OtaModel,
    is_progress_action,
    is_service_ready,
)

MAX_UPDATE_STEPS = 5000
MAX_RECOVERY_STEPS = 3000
TEAR_HALF = "half"


class Outcome(enum.Enum):
    """Where the device ends up after a cut and a fault-free recovery (CUT-4)."""

    NEW_IMAGE = "new image runs"
    OLD_IMAGE = "old image runs"
    FACTORY_RESTORED = "factory image restored"
    OTHER_IMAGE = "another image runs"
    NEVER_BOOTS = "never boots (jumps into a non-application)"
    BOOT_LOOP = "never boots (boot loop)"
    RESET_LOOP = "reset loop"
    APP_HANGS = "hangs (CPU exception)"
    UNDECIDED = "undecided (step bound)"

    @property
    def severity(self) -> int:
        """For "worst cases": higher is worse."""
        return _SEVERITY[self]


_SEVERITY = {
    Outcome.NEW_IMAGE: 0,
    Outcome.OLD_IMAGE: 1,
    Outcome.FACTORY_RESTORED: 2,
    Outcome.OTHER_IMAGE: 3,
    Outcome.UNDECIDED: 4,
    Outcome.RESET_LOOP: 5,
    Outcome.APP_HANGS: 6,
    Outcome.BOOT_LOOP: 7,
    Outcome.NEVER_BOOTS: 8,
}


class CutWhen(enum.Enum):
    """Where a cut falls relative to its operation (CUT-2)."""

    BEFORE = "before"
    AFTER = "after"
    TORN = "torn"


@attrs.frozen
class Operation:
    """One persistent operation of the fault-free run, numbered from 1 in program order."""

    number: int
    step: int  # index into the schedule of the ``tick`` that performs it
    op: PersistentOp
    medium: str  # "NVM" (internal flash) or "FS" (external file system)
    target: str
    content: str
    flow: str  # the machine states while it is performed
    queued_by: str  # the machine transition that queued it
    tear_modes: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.medium} {self.op.describe().split(' ', 1)[1]}"

    @property
    def where(self) -> str:
        """CUT-2: the step of the flow that queued the operation (``core: DATABASE_ENTRY``,
        ``bootloader: PROGRAM_IMAGE``) and, in the application, the running version and the
        service's state."""
        machine, _, rest = self.queued_by.partition(": ")
        source = rest.split(" --", 1)[0]
        if not source:
            return self.flow
        if machine == "bootloader" or not self.flow.startswith("app v"):
            return f"{machine}: {source}"
        version = self.flow.split(":", 1)[0].removeprefix("app ")
        service = self.flow.rsplit("service ", 1)[-1]
        if machine == "service":
            return f"service: {source} (app {version})"
        return f"{machine}: {source} (app {version}, service {service})"


@attrs.frozen
class CutPoint:
    """One place to cut: before, after, or tearing operation ``number`` (in ``mode``)."""

    number: int
    when: CutWhen
    mode: str = ""

    def __str__(self) -> str:
        if self.when is CutWhen.TORN:
            return f"#{self.number} torn({self.mode})"
        return f"#{self.number} {self.when.value}"


@attrs.frozen
class Recovery:
    """What the device does after a cut when left alone (CUT-3, CUT-4)."""

    outcome: Outcome
    version: int | None  # the version running at the end (None: no application)
    service_stuck: bool
    actions: tuple[Action, ...]  # the recovery schedule
    end: World
    detail: str = ""
    cycle: int = 1  # how many of the last states form the cycle the device settles in

    def get_label(self) -> str:
        """``new image runs (v2)``, ``old image runs (v1), service stuck``, ..."""
        text = self.outcome.value
        if self.version is not None and self.outcome in _RUNNING:
            text += f" (v{self.version})"
        if self.detail:
            text += f" {self.detail}"
        if self.service_stuck:
            text += ", service stuck"
        return text


_RUNNING = frozenset(
    {Outcome.NEW_IMAGE, Outcome.OLD_IMAGE, Outcome.FACTORY_RESTORED, Outcome.OTHER_IMAGE}
)


@attrs.frozen
class CutResult:
    """One row of the table: the cut, the operation, the recovery and violated properties."""

    point: CutPoint
    operation: Operation
    start: World  # the world right after the cut (the device is off)
    recovery: Recovery
    violated: tuple[str, ...]
    findings: tuple[str, ...] = ()  # CUT-8: the finding IDs of those violations

    @property
    def finding(self) -> str:
        """CUT-8: the finding IDs as one text (``""``: none)."""
        return ", ".join(self.findings)

    @property
    def is_bad(self) -> bool:
        return bool(self.violated) or self.recovery.outcome.severity >= Outcome.UNDECIDED.severity


# ---------------------------------------------------------------------------- the schedule


def get_target_version(scenario: Scenario) -> int:
    """The version the first published release should install (CUT-1)."""
    from otamodel.verify._properties import get_release_targets

    target = get_release_targets(scenario)[0]
    if target <= scenario.factory.version:
        raise ScenarioError(
            f"scenario {scenario.name!r}: its first release offers no update the device "
            "installs, so there is no update to cut power in",
            where="releases[0]",
        )
    return target


def choose_action(world: World, *, user_check: bool) -> Action | None:
    """The fixed policy of CUT-1/CUT-3: ``net_up``, ``timer``, an update check (when
    ``user_check`` and the service is idle), else ``tick``; None when nothing applies."""
    enabled = enabled_actions(world)
    for kind in ("net_up", "timer"):
        for action in enabled:
            if action.kind == kind:
                return action
    if user_check and world.phase is Phase.APP and world.service.state is SvcState.STATE_IDLE:
        wanted = Action("ctrl", "update_check")
        if wanted in enabled:
            return wanted
    return Action("tick") if Action("tick") in enabled else None


def is_update_done(world: World, target: int) -> bool:
    """CUT-1: the target version runs and the device is quiet."""
    return (
        world.phase is Phase.APP
        and world.running is not None
        and world.running.version >= target
        and not world.pending
        and world.core.task.name == "IDLE"
        and is_service_ready(world)
    )


def get_update_schedule(scenario: Scenario) -> tuple[Action, ...]:
    """CUT-1: the actions of the scenario's fault-free first update (see the module doc)."""
    target = get_target_version(scenario)
    world = initial_world(scenario)
    actions: list[Action] = []
    checked = False
    for _ in range(MAX_UPDATE_STEPS):
        if is_update_done(world, target):
            return tuple(actions)
        action = choose_action(world, user_check=not checked)
        if action is None:
            break
        checked = checked or action.kind == "ctrl"
        result = env_step(world, action)
        if result.is_refused:
            break
        actions.append(action)
        world = result.world
    raise ScenarioError(
        f"scenario {scenario.name!r}: the fault-free update to v{target} does not complete "
        f"within {MAX_UPDATE_STEPS} steps (stopped after {len(actions)})"
    )


# ---------------------------------------------------------------------------- operations


def get_flow(world: World) -> str:
    """Where the code is: the bootloader's task, or the app's service and core states."""
    if world.phase is Phase.BOOTLOADER:
        sub = f"/{world.boot.sub}" if world.boot.sub else ""
        return f"bootloader {world.boot.task.name}{sub}"
    if world.phase is Phase.APP and world.running is not None:
        sub = f"/{world.core.sub}" if world.core.sub else ""
        return (
            f"app v{world.running.version}: core {world.core.task.name}{sub}, "
            f"service {world.service.state.name}"
        )
    return str(world.phase.value)


def _image_label(scenario: Scenario, offset: int, data: bytes) -> str:
    for image in (*scenario.images, scenario.factory):
        if image.data[offset : offset + len(data)] == data:
            return f"{image.describe()} bytes {offset:#x}..{offset + len(data) - 1:#x}"
    if data == b"\xff" * len(data):
        return "all 0xFF"
    return f"{len(data)} B"


def _short(data: bytes, limit: int = 48) -> str:
    text = data.decode("latin-1")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def describe_op(op: PersistentOp, before: World, after: World) -> tuple[str, str, str]:
    """(medium, target, content) of one operation performed fault-free."""
    scenario = before.scenario
    assert isinstance(scenario, Scenario)  # the model's DeviceContext, as env implements it
    geometry = scenario.geometry
    if isinstance(op, FlashErase):
        where = "boot control page 0" if op.page == 0 else f"page {op.page}"
        return "NVM", where, "erase to 0xFF"
    if isinstance(op, FlashProgram):
        if op.page == 0:
            h = bootctl.unpack(after.flash.pages[0][: bootctl.HEADER_SIZE])
            content = f"boot control {h.status:02X}/t{h.type}/v{h.version}"
            return "NVM", f"boot control page 0 row {op.row}", content
        offset = op.page * geometry.page_size + op.row * geometry.row_size
        return "NVM", f"page {op.page} row {op.row}", _image_label(scenario, offset, op.data)
    if isinstance(op, FsWrite):
        if op.name.endswith((".csv", ".txt", ".tmp")):
            content = f"@{op.offset} {_short(op.data)}"
        else:
            content = f"@{op.offset} {_image_label(scenario, op.offset, op.data)}"
        return "FS", op.name, content
    if isinstance(op, FsCreate):
        return "FS", op.name, "create/truncate to 0 B"
    if isinstance(op, FsClose):
        return "FS", op.name, "close"
    if isinstance(op, FsDelete):
        return "FS", op.name, "delete"
    if isinstance(op, FsRename):
        return "FS", op.target, f"rename from {op.source}"
    if isinstance(op, FsFormat):
        return "FS", "volume", "format"
    if isinstance(op, FsMkdir):
        return "FS", "ota/", "mkdir"
    return "?", "?", op.describe()


def get_tear_modes(op: PersistentOp) -> tuple[str, ...]:
    """CUT-2: the ways a cut can leave ``op`` half done: a row program in either of the
    flash tear modes (FS-3), an erase or a file write with its first half done (FS-2, FS-6)."""
    if not is_tearable(op):
        return ()
    if isinstance(op, FlashProgram):
        return tuple(mode.value for mode in TearMode)
    return (TEAR_HALF,)


def get_operations(start: World, actions: Sequence[Action]) -> tuple[list[World], list[Operation]]:
    """CUT-2: replay ``actions`` from ``start`` (the environment's step with the properties'
    history, no budget);
    every world visited and every persistent operation performed, numbered from 1."""
    world = start
    worlds = [world]
    operations: list[Operation] = []
    queued_by = ""
    for index, action in enumerate(actions):
        op = world.pending[0] if action.kind == "tick" and world.pending else None
        result = device_step(world, action)
        if result.is_refused:
            raise ScenarioError(f"step {index + 1} ({action}) is refused: {result.refusal}")
        if op is None:
            if result.world.pending and result.transition:
                queued_by = result.transition
        else:
            medium, target, content = describe_op(op, world, result.world)
            operations.append(
                Operation(
                    number=len(operations) + 1,
                    step=index,
                    op=op,
                    medium=medium,
                    target=target,
                    content=content,
                    flow=get_flow(world),
                    queued_by=queued_by,
                    tear_modes=get_tear_modes(op),
                )
            )
        world = result.world
        worlds.append(world)
    return worlds, operations


# ---------------------------------------------------------------------------- cutting


def get_cut_points(operation: Operation) -> list[CutPoint]:
    points = [CutPoint(operation.number, CutWhen.BEFORE), CutPoint(operation.number, CutWhen.AFTER)]
    points.extend(CutPoint(operation.number, CutWhen.TORN, m) for m in operation.tear_modes)
    return points


def cut_power(world: World, *, torn: str = "") -> World:
    """CUT-2: power fails now (``torn``: in the middle of the next operation, in that mode).
    The scenario's fault budget does not apply: the table asks for the cut."""
    if not torn:
        return device_step(world, Action("power_cut")).world
    scenario = world.scenario
    assert isinstance(scenario, Scenario)  # the model's DeviceContext, as env implements it
    config = scenario.config
    if torn not in (TEAR_HALF, config.tear_mode.value):
        other = attrs.evolve(scenario, config=attrs.evolve(config, tear_mode=TearMode(torn)))
        world = replace(world, scenario=other)
    result = device_step(world, Action("power_cut_torn"))
    if result.is_refused:
        raise ScenarioError(f"cannot tear here: {result.refusal}")
    return replace(result.world, scenario=scenario)


def get_cut_edge(
    worlds: Sequence[World], operation: Operation, point: CutPoint
) -> tuple[World, Action]:
    """CUT-8: the world the power fails in and the input that cuts it, as the scenario's
    checker sees the cut (``power_cut``, or ``power_cut_torn`` in the middle of the operation)."""
    if point.when is CutWhen.AFTER:
        return worlds[operation.step + 1], Action("power_cut")
    if point.when is CutWhen.TORN:
        return worlds[operation.step], Action("power_cut_torn")
    return worlds[operation.step], Action("power_cut")


def get_cut_world(worlds: Sequence[World], operation: Operation, point: CutPoint) -> World:
    if point.when is CutWhen.BEFORE:
        return cut_power(worlds[operation.step])
    if point.when is CutWhen.AFTER:
        return cut_power(worlds[operation.step + 1])
    return cut_power(worlds[operation.step], torn=point.mode)


# ---------------------------------------------------------------------------- recovery


class Recoverer:
    """CUT-3: fault-free recoveries with a memo: every world met on a recovery remembers the
    rest of its path, so recoveries that meet an earlier one stop there (second cuts)."""

    def __init__(self, *, old: int, new: int, bound: int = MAX_RECOVERY_STEPS) -> None:
        self.old = old
        self.new = new
        self.bound = bound
        self.memo: dict[World, tuple[_Path, int]] = {}

    def recover(self, world: World) -> Recovery:
        """Run the device from ``world`` with no further fault until it settles; classify."""
        path = [world]
        actions: list[Action] = []
        seen: dict[World, int] = {world: 0}
        cycle_start: int | None = None
        for _ in range(self.bound):
            known = self.memo.get(world)
            if known is not None:
                # Only worlds before a cycle are remembered, so the rest of that path follows.
                old_path, index = known
                path.pop()
                cycle_start = len(path) - index + old_path.cycle_start
                path.extend(old_path.worlds[index:])
                actions.extend(old_path.actions[index:])
                break
            action = choose_action(world, user_check=False)
            if action is None:
                cycle_start = len(path) - 1
                break
            world = device_step(world, action).world
            actions.append(action)
            if world in seen:
                cycle_start = seen[world]
                break
            seen[world] = len(path)
            path.append(world)
        else:
            return _classify(path, path[-1:], actions, old=self.old, new=self.new, bounded=True)
        assert cycle_start is not None
        return self._finish(_Path(path, actions, cycle_start), path[cycle_start:])

    def _finish(self, found: _Path, final: list[World]) -> Recovery:
        for index, world in enumerate(found.worlds[: found.cycle_start]):
            self.memo.setdefault(world, (found, index))
        return _classify(found.worlds, final, found.actions, old=self.old, new=self.new)


@attrs.frozen
class _Path:
    worlds: list[World]
    actions: list[Action]
    cycle_start: int


def recover(world: World, *, old: int, new: int, bound: int = MAX_RECOVERY_STEPS) -> Recovery:
    """CUT-3/CUT-4: run the device with no further fault until it settles; classify."""
    return Recoverer(old=old, new=new, bound=bound).recover(world)


def _classify(
    path: list[World],
    final: list[World],
    actions: list[Action],
    *,
    old: int,
    new: int,
    bounded: bool = False,
) -> Recovery:
    end = path[-1]
    phases = {w.phase for w in final}
    running = [w.running.version for w in final if w.running is not None]
    version = running[-1] if running else None
    stuck = Phase.APP in phases and not any(is_service_ready(w) for w in final)
    restored = "factory-restore" in end.ghost.witnesses - path[0].ghost.witnesses
    detail = "via a factory restore" if restored else ""

    def done(outcome: Outcome, text: str = detail, is_stuck: bool = stuck) -> Recovery:
        return Recovery(outcome, version, is_stuck, tuple(actions), end, text, len(final))

    if bounded:
        return done(Outcome.UNDECIDED, f"after {len(actions)} steps")
    if phases == {Phase.HUNG}:
        ran = any(w.phase is Phase.APP for w in path)
        if ran:
            return done(Outcome.APP_HANGS, "", False)
        return done(Outcome.NEVER_BOOTS, "", False)
    if Phase.APP not in phases:
        return done(Outcome.BOOT_LOOP, "", False)
    if Phase.BOOTLOADER in phases:
        return done(Outcome.RESET_LOOP, f"(v{version} runs, then resets)", False)
    if version == new:
        return done(Outcome.NEW_IMAGE)
    if restored:
        return done(Outcome.FACTORY_RESTORED, "")
    if version == old:
        return done(Outcome.OLD_IMAGE)
    return done(Outcome.OTHER_IMAGE)


class RecoveryModel:
    """The checker's view of a recovery (CUT-5): from the world after a cut, only the device's
    own progress, the RTCC alarm, the network coming back and user update checks; the
    scenario's ``always`` and ``eventually`` properties."""

    def __init__(self, model: OtaModel, start: World) -> None:
        self.model = model
        self.start = start

    def init_states(self) -> Sequence[World]:
        return [self.start]

    def actions(self, state: World) -> Iterable[Action]:
        return [a for a in enabled_actions(state) if is_progress_action(a)]

    def next_state(self, state: World, action: Action) -> World | None:
        result = device_step(state, action)
        return None if result.is_refused else result.world

    def format_action(self, action: Action) -> str:
        return str(action)

    def properties(self) -> Sequence[Property[World, Action]]:
        return [p for p in self.model.properties() if p.kind is not PropertyKind.SOMETIMES]

    # CUT-8: the scenario's own classification hooks, so that findings get the IDs
    # ``otamodel check`` gives them.
    def get_edge_key(
        self, prop: Property[World, Action], before: World | None, action: Action | None,
        after: World | None,
    ) -> tuple[str, ...]:  # fmt: skip
        return self.model.get_edge_key(prop, before, action, after)

    def get_terminal_key(
        self, prop: Property[World, Action], states: Sequence[World]
    ) -> tuple[str, ...]:
        return self.model.get_terminal_key(prop, states)

    def get_finding_prefix(self, prop: Property[World, Action]) -> str:
        return self.model.get_finding_prefix(prop)

    # CHK-34: the same causes; the recovery's start stands for the cut (see get_cut_findings).
    def is_cause_action(self, action: Action) -> bool:
        return self.model.is_cause_action(action)

    def is_own_action(self, action: Action) -> bool:
        return self.model.is_own_action(action)

    def is_cause_state_needed(self, action: Action) -> bool:
        return self.model.is_cause_state_needed(action)

    def get_cause_key(self, before: World | None, action: Action | None) -> tuple[str, ...]:
        return self.model.get_cause_key(before, action)


def get_violations(model: OtaModel, start: World) -> tuple[str, ...]:
    """CUT-5: the properties a fault-free recovery from ``start`` violates (every
    interleaving of the recovery inputs is explored)."""
    report = check(RecoveryModel(model, start), max_states=200_000)
    return tuple(r.name for r in report.results if r.is_failing)


@attrs.frozen
class CutFindings:
    """CUT-5, CUT-8: what a cut's recovery violates: the properties and the finding IDs."""

    violated: tuple[str, ...]
    ids: tuple[tuple[str, str], ...]  # (property, finding ID), in property order


def get_cut_findings(model: OtaModel, before: World, cut: Action, start: World) -> CutFindings:
    """CUT-8: classify the violations of the recovery from ``start`` (the world right after
    ``cut`` from ``before``) with the scenario's keys (TRACE-30, TRACE-31). A violation the
    recovery's first state already shows is entered by the cut itself: its cause is the cut's
    edge ``before --cut--> start``, as in the scenario's full graph; a later one is keyed by
    its own step (every state of the fault-free run before the cut satisfies the properties
    the recovery is judged on: the others are the table's baseline), after the cut as its last
    cause (CHK-34), unless a later input of the recovery is."""
    recovery = RecoveryModel(model, start)
    report = check(recovery, max_states=200_000, findings=True)
    props = {p.name: p for p in recovery.properties()}
    ids: list[tuple[str, str]] = []
    # CHK-34: the recovery's own steps follow the cut, the last cause before them.
    start_cause = ("after:", *model.get_cause_key(None, None))
    cut_cause = ("after:", *model.get_cause_key(before, cut))
    for found in report.findings:
        prop = props.get(found.property)
        if prop is None or found.kind is PropertyKind.SOMETIMES:
            continue
        key = found.key
        if key[-len(start_cause) :] == start_cause:
            key = (*key[: -len(start_cause)], *cut_cause)
        if found.decisive < 0:
            cause = model.get_edge_key(prop, before, cut, start)
            key = cause if prop.kind is PropertyKind.ALWAYS else (*found.terminal, "|", *cause)
        fid = get_finding_id(model.get_finding_prefix(prop), prop.name, key)
        if (prop.name, fid) not in ids:
            ids.append((prop.name, fid))
    violated = tuple(r.name for r in report.results if r.is_failing)
    return CutFindings(violated, tuple(ids))


__all__ = [
    "CutPoint",
    "CutResult",
    "CutWhen",
    "Operation",
    "Outcome",
    "Recoverer",
    "Recovery",
    "RecoveryModel",
    "choose_action",
    "cut_power",
    "get_cut_edge",
    "get_cut_findings",
    "get_cut_points",
    "get_operations",
    "get_update_schedule",
    "get_violations",
    "recover",
]
