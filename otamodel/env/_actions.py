"""Which inputs the environment may give in a world (ENV-3), and the shared ``step`` with
fault budgets."""

from __future__ import annotations

from otamodel.env._ghost import update_ghost
from otamodel.env._inputs import (
    EXTRA_KINDS,
    get_extra_actions,
    is_format_tearable,
    is_mount_failing,
    process_extra,
    process_torn_format,
)
from otamodel.model import FAULT_KINDS, Action, Phase, StepResult, World, is_tearable
from otamodel.model import step as device_step
from otamodel.model._core_io import get_truncated_length
from otamodel.model._enums import CoreTask, SetStatusStep, SvcState
from otamodel.model._record import (
    get_core_hasher,
    get_core_matcher,
    get_evolve,
    get_evolve_outside_core,
)
from otamodel.model._state import Budget, get_spent, replace

TICK = Action.of("tick")
_evolve_result = get_evolve(StepResult)
_keep_core = get_evolve_outside_core(World)
_get_core_hash = get_core_hasher(World)
_is_same_core = get_core_matcher(World)


def is_before_validation(world: World) -> bool:
    """ENV-4: the app can crash before its core has validated the running image at boot."""
    core = world.core
    if core.new_downloaded_img or core.rollback_initiated:
        return False
    if core.task is CoreTask.INIT:
        return True
    return core.task is CoreTask.SET_IMAGE_STATUS and core.sub is not SetStatusStep.S_DONE


_BUDGET_MAPS: dict[tuple[tuple[str, int], ...], dict[str, int]] = {}


def get_budget_map(budget: Budget) -> dict[str, int]:
    """``dict(budget)``, shared per distinct budget (a world's budgets take few values).
    Callers must not change it."""
    found = _BUDGET_MAPS.get(budget)
    if found is None:
        found = _BUDGET_MAPS[budget] = dict(budget)
    return found


def enabled_actions(world: World) -> list[Action]:
    """ENV-3: the device's own progress (``tick``) first, then every input the scenario's
    budgets still allow, in a fixed order (shortest traces are deterministic)."""
    ctx = world.scenario
    out: list[Action] = []
    if world.pending or world.phase is not Phase.HUNG:
        out.append(TICK)
    budget = get_budget_map(world.budget)
    if budget.get("power_cut", 0) > 0:
        out.append(Action.of("power_cut"))
        tearable = world.pending and is_tearable(world.pending[0])
        if ctx.tears and (tearable or is_format_tearable(world)):
            out.append(Action.of("power_cut_torn"))
    if world.phase is Phase.APP and not world.pending:
        svc = world.service
        if (
            svc.rtcc_armed
            and not svc.timer_trigger
            and svc.state is SvcState.WAIT_FOR_OTA_TIMER_TRIGGER
        ):
            out.append(Action.of("timer"))
        if svc.state is SvcState.STATE_IDLE:
            # ENV-3: asking for an update check is not a fault and costs no budget; the other
            # control messages spend the ``ctrl`` budget.
            messages = (Action.of("ctrl", name) for name in ctx.user_actions)
            out.extend(
                a for a in messages if a.get_budget_key() is None or budget.get("ctrl", 0) > 0
            )
        if budget.get("crash", 0) > 0 and is_before_validation(world):
            out.append(Action.of("crash"))
        if budget.get("factory_sign", 0) > 0 and ctx.config.secure_boot:
            out.append(Action.of("factory_sign"))
    if world.net.open:
        if budget.get("transfer_fail", 0) > 0:
            out.append(Action.of("transfer_fail"))
        if budget.get("corrupt", 0) > 0 and world.core.task is CoreTask.DOWNLOAD_IMAGE:
            out.append(Action.of("corrupt"))
        if budget.get("truncate", 0) > 0 and get_truncated_length(world) is not None:
            out.append(Action.of("truncate"))
    if budget.get("reset", 0) > 0:
        out.append(Action.of("reset"))
    if budget.get("net_down", 0) > 0 and world.network_up:
        out.append(Action.of("net_down"))
    if not world.network_up:
        out.append(Action.of("net_up"))
    if budget.get("publish", 0) > 0:
        out.extend(
            Action.of("publish", str(i)) for i in range(ctx.release_count) if i != world.published
        )
    out.extend(get_extra_actions(world, budget))
    return out


def step(world: World, action: Action) -> StepResult:
    """The shared transition function with budgets: the device's ``step`` and, when an
    input is accepted, one unit of its budget spent."""
    result = _step_unbudgeted(world, action)
    if result.refusal is not None:
        return result
    budget = get_budget_after(world.budget, action)
    if budget is None:
        spent = action.get_budget_key()
        return replace(result, world=world, refusal=f"the {spent} budget is spent")
    new = update_ghost(world, result)  # PROP-*: history for the properties only
    if budget is not world.budget:
        new = _keep_core(new, budget=budget)
    return _evolve_result(result, world=new) if new is not result.world else result


def get_budget_after(budget: Budget, action: Action) -> Budget | None:
    """The budgets after ``action`` is accepted (``budget`` itself when it spends none), or
    ``None`` when its budget is spent (ENV-3)."""
    name = None if action is TICK else action.get_budget_key()  # most steps are ticks
    if name is None:
        return budget
    left = get_budget_map(budget).get(name)
    if left is None:
        return budget
    return get_spent(budget, name) if left > 0 else None


class StepMemo:
    """ENV-9: :func:`step` for a search over one scenario's worlds: the outcome of its
    budget-free part (the device's step, the extra inputs, the ghost history) is remembered
    by what it reads — the world's core (every compared field but its budgets) and the
    input — and the budget is checked and spent on top. Worlds that differ from a recent one
    only in their budgets are common (a fault spent or not, the device going on alike): each
    is stepped once. Two generations of at most ``size`` outcomes each, found by the core's
    cached hash and confirmed by comparing the cores."""

    def __init__(self, size: int = 8_192) -> None:
        self.size = size
        self.recent: dict[tuple[int, Action], tuple[World, World | None]] = {}
        self.older: dict[tuple[int, Action], tuple[World, World | None]] = {}

    def get_next_world(self, world: World, action: Action) -> World | None:
        """The world after ``action`` as :func:`step` makes it, or ``None`` if refused."""
        key = (_get_core_hash(world), action)
        recent = self.recent
        hit = recent.get(key)
        if hit is None:
            hit = self.older.get(key)
            if hit is not None:
                recent[key] = hit
        if hit is not None and _is_same_core(hit[0], world):
            after = hit[1]
        else:  # not seen recently (or another core with the same hash: replaced)
            after = _get_outcome(world, action)
            recent[key] = (world, after)
        if len(recent) >= self.size:
            self.older, self.recent = recent, {}
        if after is None:
            return None
        budget = get_budget_after(world.budget, action)
        if budget is None:
            return None  # the input's budget is spent
        return after if after.budget is budget else _keep_core(after, budget=budget)


def _get_outcome(world: World, action: Action) -> World | None:
    """The budget-free part of :func:`step`: the world after an accepted input, with the
    ghost history recorded and the budgets as they were, or ``None`` if refused."""
    result = _step_unbudgeted(world, action)
    if result.refusal is not None:
        return None
    return update_ghost(world, result)


def step_without_budget(world: World, action: Action) -> StepResult:
    """CUT-2, CUT-3: the environment's step (extra inputs, ghost history for the properties)
    with no budget checked or spent: ``otamodel cuts`` cuts power where it chooses."""
    result = _step_unbudgeted(world, action)
    if result.is_refused:
        return result
    new = update_ghost(world, result)
    return replace(result, world=new) if new is not result.world else result


def _step_unbudgeted(world: World, action: Action) -> StepResult:
    """The device's ``step``, the extra inputs (SCN-13..SCN-17) and the damaged-volume mount
    and torn format of SCN-32 that act around it."""
    if action.kind in EXTRA_KINDS:
        return process_extra(replace(world, notes=()) if world.notes else world, action)
    if action.kind == "tick" and is_mount_failing(world):
        return StepResult(world, action, transition="mount fails: the volume is damaged")
    if action.kind == "power_cut_torn" and is_format_tearable(world):
        from otamodel.model._device import process_reset

        torn = process_torn_format(world)
        new = process_reset(torn, "power cut")
        return StepResult(new, action, transition="power cut", ops=("FS format (torn)",))
    return device_step(world, action)


__all__ = ["FAULT_KINDS", "TICK", "enabled_actions", "step"]
