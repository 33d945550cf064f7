"""The OTA model for the checker: a scenario's worlds, its inputs, and the named OTA
properties (``docs/spec/properties.md``, PROP-*)."""

from __future__ import annotations

import functools
import hashlib
import operator
from collections.abc import Callable, Iterable, Sequence

from otamodel.checker._model import Property, PropertyKind
from otamodel.checker._trace import Trace
from otamodel.env import Scenario, enabled_actions, get_scenario, initial_world
from otamodel.env._actions import StepMemo
from otamodel.env._oracle import get_facts
from otamodel.formats import manifest as mf
from otamodel.formats import otadb
from otamodel.model import Action, Fs, Phase, SvcState, World
from otamodel.model._record import get_core_hasher, get_evolve_outside_core
from otamodel.model._service import get_alarm_delay
from otamodel.model._state import Budget, register_context
from otamodel.verify import _predicates as pr


def is_recovery_action(action: Action) -> bool:
    """Actions that are neither faults nor user choices: the device left alone, power on
    (``ActionKind.recovery``)."""
    return action.is_recovery()


def is_progress_action(action: Action) -> bool:
    """For PROP-4: recovery actions plus the user asking for an update (not a fault)."""
    return action.is_recovery() or action.is_update_request()


def is_jump_valid(world: World) -> bool:
    """PROP-1 boots-valid-image: every jump ran an application that is the factory image or
    a build the publisher made for the version boot control claimed (signed by the publisher
    in secure builds) — judged by the environment's oracle at the jump, never by the
    bootloader's own check."""
    return world.ghost.last_jump_ok


def is_running_app(world: World) -> bool:
    """PROP-2 goal: the CPU runs a known application image."""
    return world.phase is Phase.APP


def is_no_downgrade(world: World) -> bool:
    """PROP-3 no-unintended-downgrade: the running version is not below the highest version
    the app validated since the app last asked for a rollback or a factory reset."""
    if world.running is None:
        return True
    return world.running.version >= world.ghost.max_validated


def is_service_ready(world: World) -> bool:
    """PROP-5 goal: the service sits where a new check can start: STATE_IDLE (control messages
    are accepted) or, with periodic checking, WAIT_FOR_OTA_TIMER_TRIGGER."""
    if world.phase is not Phase.APP:
        return False
    svc = world.service
    if svc.state is SvcState.STATE_IDLE:
        return True
    return svc.state is SvcState.WAIT_FOR_OTA_TIMER_TRIGGER and world.scenario.config.periodic


def is_store_consistent(world: World) -> bool:
    """PROP-6 store-consistency: with no operation in flight, every DB row names an existing
    file whose SHA-256 is the recorded digest."""
    if world.pending:
        return True
    return is_fs_consistent(world.fs)


@functools.lru_cache(maxsize=4096)
def is_fs_consistent(fs: Fs) -> bool:
    """PROP-6 on one file system (memoised: most states share their FS with many others)."""
    data = fs.get("image_database.csv")
    if data is None:
        return True
    result, db = otadb.load(data)
    if result != 0 or db is None:
        return False
    if db.rows == (("",),):
        return True
    for row in range(len(db.rows)):
        name = otadb.get_field_string(db, row, 0)
        digest = otadb.get_field_string(db, row, 4)
        if not name or digest is None:
            return False
        content = fs.get(name)
        if content is None or hashlib.sha256(content).digest() != mf.get_digest_bytes(digest):
            return False
    return True


def is_flash_physical(world: World) -> bool:
    """PROP-7 flash-physics: no row program ever needed to set a cleared bit."""
    return world.flash.overprograms == 0


def is_alarm_as_configured(world: World) -> bool:
    """PROP-46 check-interval: the armed RTCC alarm fires no sooner than the interval the
    arming read asks (SVC-42: an interval of a day or more wraps modulo 86400)."""
    svc = world.service
    return not svc.rtcc_armed or get_alarm_delay(svc.rtcc_interval) >= svc.rtcc_interval


def has_console_intervals(scenario: Scenario) -> bool:
    """PROP-46 applies to scenarios whose console may set the interval (SCN-34); the MCC range
    0..7200 never wraps."""
    return bool(scenario.console_intervals) and "interval" in scenario.console_inputs


def get_overprograms(world: World) -> int:
    """PROP-7's measure: every over-program is its own violation (CHK-30), not only the first."""
    return world.flash.overprograms


def _witness(name: str) -> Callable[[World], bool]:
    def predicate(world: World) -> bool:
        return name in world.ghost.witnesses

    predicate.__name__ = f"has_{name.replace('-', '_')}"
    return predicate


def get_release_targets(scenario: Scenario) -> tuple[int, ...]:
    """PROP-4: per release, the compiled version it should end up running (0: none); see
    :func:`otamodel.env._oracle.get_facts`."""
    return tuple(get_facts(scenario, i).target for i in range(scenario.release_count))


WITNESSES = ("full-update", "patch-update", "rollback", "factory-restore")


def get_expected_witnesses(scenario: Scenario) -> tuple[str, ...]:
    """PROP-8: the sometimes-properties a scenario must witness: its ``witnesses`` list, or by
    default a full update, a patch update (patch builds), a rollback (when the user may ask
    for one) and a factory restore (with power cuts or a factory-reset user action)."""
    if scenario.witnesses is not None:
        return scenario.witnesses
    names = ["full-update"]
    if scenario.config.patch:
        names.append("patch-update")
    if "rollback" in scenario.user_actions:
        names.append("rollback")
    if "factory_reset" in scenario.user_actions or dict(scenario.budget).get("power_cut", 0):
        names.append("factory-restore")
    return tuple(names)


_get_core_hash = get_core_hasher(World)
_get_budget = operator.attrgetter("budget")
_keep_core = get_evolve_outside_core(World)

_NOT_PICKLED = frozenset({"step_memo", "get_verdict_key"})
"""What an :class:`OtaModel` keeps only to speed a search up: rebuilt, never pickled."""


class OtaModel:
    """A scenario as a checker model (states are :class:`World`, actions :class:`Action`)."""

    def __init__(
        self,
        scenario: Scenario | str,
        *,
        extra_properties: Iterable[Property[World, Action] | Callable[[World], bool]] = (),
    ) -> None:
        """``scenario``: a :class:`Scenario` or a scenario name/path. ``extra_properties``:
        your own properties, checked after the built-in ones: :class:`Property` objects
        (``Property.always/sometimes/eventually``) or plain predicates ``World -> bool``,
        which become ``always`` properties named after the function."""
        self.scenario = get_scenario(scenario) if isinstance(scenario, str) else scenario
        self.targets = get_release_targets(self.scenario)
        self.extra_properties = tuple(get_property(p) for p in extra_properties)
        # Worlds are pickled with a key to their scenario, not a copy (worker processes).
        self.context_key = register_context(self.scenario)
        self.step_memo = StepMemo()
        """ENV-9: the recent outcomes of ``next_state`` (not pickled)."""
        self.get_verdict_key: Callable[[World], int] | None = self._choose_verdict_key()
        """PROP-47 (CHK-37): what the built-in properties read of a world, as one int; not
        offered when your own properties may read anything."""

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k not in _NOT_PICKLED}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.step_memo = StepMemo()
        self.get_verdict_key = self._choose_verdict_key()
        register_context(self.scenario, self.context_key)

    def __repr__(self) -> str:
        return f"<OtaModel {self.scenario.name} · {self.scenario.config.variant.value}>"

    def get_story_lines(self, trace: Trace[World, Action]) -> list[str]:
        """TRACE-30: the steps of ``trace`` that matter (``Trace.get_story`` calls this)."""
        from otamodel.verify._timeline import get_story_lines

        return get_story_lines(trace.init, trace.actions)

    def init_states(self) -> Sequence[World]:
        return [initial_world(self.scenario)]

    def actions(self, state: World) -> Iterable[Action]:
        return enabled_actions(state)

    def next_state(self, state: World, action: Action) -> World | None:
        return self.step_memo.get_next_world(state, action)

    get_variant_key = staticmethod(_get_core_hash)
    """CHK-38 (ENV-9): worlds with equal cores are variants of one another: they differ only
    in their budgets (:attr:`get_variant_delta`; the notes of the step that made a world are
    not part of its value, and no step reads them)."""
    get_variant_delta = staticmethod(_get_budget)

    @staticmethod
    def make_variant(variant: World, budget: Budget) -> World:
        """CHK-38: the world with ``variant``'s core and the budgets ``budget``."""
        return variant if variant.budget == budget else _keep_core(variant, budget=budget)

    def _choose_verdict_key(self) -> Callable[[World], int] | None:
        if self.extra_properties:
            return None
        if "freeze" in self.scenario.budget_keys:
            return self._get_verdict_key
        return _get_core_hash

    @staticmethod
    def _get_verdict_key(world: World) -> int:
        """PROP-47: the built-in predicates and measures read a world's core and, of its
        budgets, the ``freeze`` budget alone (PROP-43): the core's hash, with what is left of
        that budget when the scenario gives one (the core's hash alone otherwise)."""
        return hash((_get_core_hash(world), world.get_budget("freeze")))

    def end_search(self) -> None:
        """ENV-9: the search is over: its step memory is freed (a new, empty one serves the
        replays after it)."""
        self.step_memo = StepMemo()

    def format_action(self, action: Action) -> str:
        return str(action)

    @staticmethod
    def get_action_cost(action: Action) -> int:
        """PROP-9: traces are reported with the fewest faults (then the fewest steps): every
        fault or attacker input costs 1, the device's own progress and user checks 0."""
        return 1 if action.is_fault() else 0

    def is_progress_goal(self, world: World) -> bool:
        """PROP-4 goal: an application runs whose compiled version is at least the newest
        valid target the publisher has published so far (an attacker's later withdrawal or
        replacement does not lower it)."""
        if world.running is None:
            return False
        return world.running.version >= world.ghost.max_target

    def get_edge_key(
        self, prop: Property[World, Action], before: World | None, action: Action | None,
        after: World | None,
    ) -> tuple[str, ...]:  # fmt: skip
        """CHK-30/TRACE-30: how a violating or trap-entering step is classified."""
        from otamodel.verify._keys import get_edge_key

        eventually = prop.kind is PropertyKind.EVENTUALLY
        return get_edge_key(prop.name, before, action, after, eventually=eventually)

    @staticmethod
    def is_cause_action(action: Action) -> bool:
        """CHK-34/TRACE-30: faults and inputs are causes, the device's own progress is not."""
        from otamodel.verify._keys import is_cause_action

        return is_cause_action(action)

    @staticmethod
    def is_own_action(action: Action) -> bool:
        """CHK-34/TRACE-30: the device's own progress (ticks, the alarm, the network back)."""
        return action.is_recovery()

    @staticmethod
    def is_cause_state_needed(action: Action) -> bool:
        """CHK-34: whether a cause's key needs the state it happens in."""
        from otamodel.verify._keys import is_cause_state_needed

        return is_cause_state_needed(action)

    @staticmethod
    def get_cause_key(before: World | None, action: Action | None) -> tuple[str, ...]:
        """CHK-34/TRACE-30: how a cause (the last fault or input before a step) is keyed."""
        from otamodel.verify._keys import get_cause_key

        return get_cause_key(before, action)

    def get_terminal_key(
        self, prop: Property[World, Action], states: Sequence[World]
    ) -> tuple[str, ...]:
        """CHK-31/TRACE-31: how a terminal behaviour of a trap region is classified."""
        from otamodel.verify._keys import get_terminal_key

        return get_terminal_key(prop.name, states)

    def get_finding_prefix(self, prop: Property[World, Action]) -> str:
        """CHK-33: two letters per shipped property (``NB-3f2a``), initials otherwise."""
        from otamodel.verify._keys import PREFIXES

        words = [w for w in prop.name.split("-") if w]
        return PREFIXES.get(prop.name) or "".join(w[0] for w in words).upper()

    def properties(self) -> Sequence[Property[World, Action]]:
        scenario = self.scenario
        props: list[Property[World, Action]] = [
            Property.always(
                "boots-valid-image",
                is_jump_valid,
                "every jump runs a verified image or the factory image",
            ),
            Property.eventually(
                "no-brick",
                is_running_app,
                "from every state, with power on and no further faults, an application runs",
                edge_filter=is_recovery_action,
            ),
            Property.always(
                "no-unintended-downgrade",
                is_no_downgrade,
                "the running version never falls below the highest validated one unless asked",
            ),
            Property.eventually(
                "progress",
                self.is_progress_goal,
                "a newer valid release that stays published ends up running once faults stop",
                edge_filter=is_progress_action,
            ),
            Property.eventually(
                "no-stuck-service",
                is_service_ready,
                "the service can always get back to a state that accepts a new check",
                edge_filter=is_recovery_action,
            ),
            Property.always(
                "store-consistency",
                is_store_consistent,
                "every DB row names an existing file with the recorded digest",
            ),
            Property.always(
                "flash-physics",
                is_flash_physical,
                "no program over un-erased bits",
                measure=get_overprograms,
            ),
            *get_user_properties(scenario),
            *get_security_properties(scenario),
        ]
        if has_console_intervals(scenario):
            props.append(
                Property.always(
                    "check-interval",
                    is_alarm_as_configured,
                    "the RTCC alarm never fires sooner than the interval in force asks",
                )
            )
        descriptions = {
            "full-update": "a full-image update completes and runs",
            "patch-update": "a patch update completes and runs",
            "rollback": "an accepted rollback ends with the previous validated version running",
            "factory-restore": "the bootloader restores the factory image",
        }
        for name in get_expected_witnesses(scenario):
            props.append(Property.sometimes(name, _witness(name), descriptions[name]))
        return [*props, *self.extra_properties]


def get_property(
    item: Property[World, Action] | Callable[[World], bool],
) -> Property[World, Action]:
    """A user's property: a :class:`Property` as is, a predicate as an ``always`` property
    named after the function (``is_`` prefix dropped, ``_`` as ``-``)."""
    if isinstance(item, Property):
        return item
    if not callable(item):
        raise TypeError(f"a property is a Property or a predicate, not {item!r}")
    name = getattr(item, "__name__", "custom").removeprefix("is_").replace("_", "-")
    return Property.always(name, item, (item.__doc__ or "").strip().split("\n")[0])


def has_crashing_image(scenario: Scenario) -> bool:
    """PROP-36 applies to scenarios with a build that fails at every boot (ENV-31)."""
    return any(image.crashes for image in scenario.images)


def get_user_properties(scenario: Scenario) -> list[Property[World, Action]]:
    """PROP-30..PROP-38: what the app and the user care about."""
    props = [
        Property.always(
            "event-delivery",
            pr.is_event_delivery_ok,
            "no callback is lost, overwritten, dropped, unrequested or left unanswered",
        ),
        Property.eventually(
            "event-response",
            pr.is_nothing_awaited,
            "every accepted request ends in its terminal callback once faults stop",
            edge_filter=is_recovery_action,
        ),
        Property.always(
            "outcome-honesty",
            pr.is_outcome_honest,
            "a success callback fires only when its persistent effect is in place",
        ),
        Property.always(
            "boot-coherence",
            pr.is_boot_coherent,
            "after each bootloader pass, boot control agrees with the running image's DB row",
        ),
        Property.always(
            "intent-honoured",
            pr.is_intent_honoured,
            "an accepted rollback is not undone, an erase removes exactly its target",
        ),
        Property.eventually(
            "intent-factory-reset",
            pr.is_factory_intent_done,
            "an accepted factory reset ends with the factory image running",
            edge_filter=pr.is_intent_action,
        ),
        Property.always(
            "no-data-loss",
            pr.is_no_data_loss,
            "validated images, their rows and the factory backup go only when asked",
        ),
        Property.always(
            "bounded-reprogram",
            pr.is_reprogram_bounded,
            "the same image is never programmed three times in a row without a fault",
        ),
        Property.always(
            "no-needless-reprogram",
            pr.is_reprogram_needed,
            "a validated image whose boot control and DB row agree is not reprogrammed",
        ),
    ]
    if has_crashing_image(scenario):
        props.append(
            Property.eventually(
                "bad-image-abandoned",
                pr.is_good_image_running,
                "an image failing at every boot is eventually replaced by one that runs",
                edge_filter=is_recovery_action,
            )
        )
    return props


def has_server_attack(scenario: Scenario) -> bool:
    """PROP-43 applies to scenarios whose server can freeze or replay (SCN-17)."""
    return scenario.get_frozen_index() is not None


def get_security_properties(scenario: Scenario) -> list[Property[World, Action]]:
    """PROP-40..PROP-44: one property per threat (TUF/Uptane)."""
    props: list[Property[World, Action]] = [
        Property.always(
            "sec-authenticity",
            pr.is_authentic,
            "only the factory image or builds the publisher made (signed, if secure) run",
        ),
        Property.always(
            "sec-anti-rollback",
            pr.is_no_rollback_attack,
            "no installed image runs below the highest validated version unless asked",
        ),
        Property.always(
            "sec-fast-forward",
            pr.is_no_fast_forward,
            "no running version exceeds every version the publisher makes",
        ),
        Property.always(
            "sec-erase-authenticity",
            pr.is_erase_authentic,
            "only the publisher's manifests erase stored images",
        ),
    ]
    if has_server_attack(scenario):
        props.insert(
            3,
            Property.eventually(
                "sec-freeze-replay",
                pr.is_not_frozen,
                "once a freeze or replay ends, the newest published release still installs",
                edge_filter=pr.is_attack_over_action,
            ),
        )
    return props
