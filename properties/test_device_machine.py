"""Hypothesis stateful suites over the shared ``otamodel.env.step``.

Each suite is a :class:`~hypothesis.stateful.RuleBasedStateMachine` for one *family* of
configurations. An ``@initialize`` rule draws the configuration (a scenario dict: geometry,
scheduler, code variant, tear mode, budgets...), the rules feed the device ``tick`` steps,
the RTCC alarm, faults, releases and user actions, and each always-property of
``otamodel.verify._properties`` is an invariant.

The suites assert the *verdicts* of ``docs/findings.md``: a property the released code is
known to violate in a family is an expected result (the invariant records the first
violation and writes its trace instead of failing, and ``test_expected_violation_is_reached``
asserts that Hypothesis does reach it), while a property expected to hold must hold (a
violation is a red test with the shrunk action list and a trace file under ``traces/``
that ``otamodel replay`` re-executes). See ``properties/README.md``.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, Phase, event, note, settings, target
from hypothesis import strategies as st
from hypothesis.control import current_build_context, currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from otamodel.checker import Property, PropertyKind, Trace
from otamodel.checker._classify import Finding, get_finding_id, get_finding_key
from otamodel.env import Scenario, build_scenario, enabled_actions, initial_world, step
from otamodel.model import CTRL_MESSAGES, Action, SvcState, World
from otamodel.model import Phase as DevicePhase
from otamodel.model._physics import FlashErase, FlashProgram, FsWrite
from otamodel.verify._findings import get_baseline_ids, get_story, read_baseline
from otamodel.verify._properties import (
    OtaModel,
    is_flash_physical,
    is_jump_valid,
    is_no_downgrade,
    is_store_consistent,
)
from otamodel.verify._tracefile import read_trace, replay, run, write_trace

# ---------------------------------------------------------------------------- verdicts

HOLDS = "holds"
VIOLATED = "violated"

#: The expected verdict of every always-property per family, for the *released* code
#: (variants harmony-3.9.1 and harmony-3.9.0).
#:
#: THIS TABLE MUST MATCH docs/findings.md, whose scenarios the families extend:
#: full ~ `default`, patch ~ `patch`, user ~ `rollback`, secure ~ `secure`,
#: hostile ~ `attacker` and `erase`. It was determined empirically: the exhaustive checker
#: (``check(OtaModel(build_scenario(get_small_spec(family, ...))), time_limit=120)``) on the
#: small version of each family, for both variants, both schedulers, both tear modes and
#: per-field DB writes, with Hypothesis (``ci`` and ``thorough``) on the larger
#: configurations agreeing.
#: "violated" = some configuration of the family reaches a violation (asserted by
#: ``test_expected_violation_is_reached``); "holds" = no configuration of the family may
#: violate it (the suite fails). A model change that alters a verdict turns a test red:
#: update findings.md and this table together.
EXPECTED_VERDICTS: dict[str, dict[str, str]] = {
    # Full-image updates of v2/v3 with power cuts (torn or not), transfer failures,
    # corrupted chunks, network loss and republishing.
    "full": {
        "boots-valid-image": HOLDS,
        "no-unintended-downgrade": VIOLATED,  # a torn power cut in the app's boot-control rewrite
        "store-consistency": VIOLATED,  # a torn DB write leaves a row with a cut digest
        "flash-physics": VIOLATED,  # first-boot backup programs page 0 without an erase (BL-3)
    },
    # A full v2 then a jdiff patch v3 against v2, both code variants.
    "patch": {
        "boots-valid-image": HOLDS,
        "no-unintended-downgrade": VIOLATED,
        "store-consistency": VIOLATED,
        "flash-physics": VIOLATED,
    },
    # User control messages (rollback, factory reset, update check, initiate OTA, system
    # reset) and application crashes next to updates and power cuts.
    "user": {
        "boots-valid-image": HOLDS,
        "no-unintended-downgrade": VIOLATED,
        "store-consistency": VIOLATED,
        "flash-physics": VIOLATED,
    },
    # Secure OTA: signed v2, v3 signed with another key, v4 with a garbage signature,
    # ``sysota set factory sign``, power cuts.
    "secure": {
        "boots-valid-image": HOLDS,
        "no-unintended-downgrade": VIOLATED,
        "store-consistency": VIOLATED,
        "flash-physics": VIOLATED,
    },
    # Everything at once: patch builds, full and patch releases, user actions, crashes,
    # power cuts, transfer faults, network loss.
    "mixed": {
        "boots-valid-image": HOLDS,
        "no-unintended-downgrade": VIOLATED,
        "store-consistency": VIOLATED,
        "flash-physics": VIOLATED,
    },
    # No faults: full and patch releases published in any order, network loss, update
    # checks, OTA starts and resets from the app. Only the first-boot backup's over-program.
    "nominal": {
        "boots-valid-image": HOLDS,
        "no-unintended-downgrade": HOLDS,
        "store-consistency": HOLDS,
        "flash-physics": VIOLATED,
    },
    # A hostile or broken server and network, no power cuts: wrong digest, version 255,
    # an EraseVer of the running version, transfer failures and corrupted chunks.
    "hostile": {
        # PROP-1 (issue 12): v255 runs under a boot control claiming 0x255 (the DB's decimal
        # "255" read back in base 16), which is no build the publisher made for that version.
        "boots-valid-image": VIOLATED,
        "no-unintended-downgrade": HOLDS,
        "store-consistency": HOLDS,
        "flash-physics": VIOLATED,
    },
}

ALWAYS_PROPERTIES: dict[str, Callable[[World], bool]] = {
    "boots-valid-image": is_jump_valid,
    "no-unintended-downgrade": is_no_downgrade,
    "store-consistency": is_store_consistent,
    "flash-physics": is_flash_physical,
}

FAMILIES = tuple(EXPECTED_VERDICTS)

# ---------------------------------------------------------------------------- families

VARIANTS = ("harmony-3.9.1", "harmony-3.9.0")
SCHEDULERS = ("freertos", "bare-metal")
TEAR_MODES = ("word", "bits")
#: The exhaustive check's geometry (4 pages of 256 B, 2 rows) and larger ones.
GEOMETRIES: dict[str, dict[str, int]] = {
    "small": {"page_size": 256, "row_size": 128, "slot_pages": 4},
    "medium": {"page_size": 512, "row_size": 128, "slot_pages": 6},
    "wide": {"page_size": 1024, "row_size": 256, "slot_pages": 5},
}
USER_ACTIONS = ["update_check", "initiate_ota", "system_reset", "factory_reset", "rollback"]

#: Per family: the server's releases (fixed, so the ``releases`` bundle is static) and the
#: user actions the app may send.
RELEASES: dict[str, list[dict[str, Any]]] = {
    "full": [{"version": 2}, {"version": 3}],
    "patch": [{"version": 2}, {"version": 3, "kind": "patch", "base_version": 2}],
    "user": [{"version": 2}, {"version": 3}],
    "secure": [
        {"version": 2},
        {"version": 3, "signature": "other-key"},
        {"version": 4, "signature": "garbage"},
    ],
    "mixed": [
        {"version": 2},
        {"version": 3, "kind": "patch", "base_version": 2},
        {"version": 4, "pages": 1},
    ],
    "nominal": [
        {"version": 2},
        {"version": 3, "kind": "patch", "base_version": 2},
        {"version": 4, "pages": 1},
    ],
    "hostile": [
        {"version": 2},
        {"version": 3, "digest": "wrong"},
        {"version": 255},
        {"kind": "erase", "version": 2, "erase_version": 2},
    ],
}
FAMILY_USER_ACTIONS: dict[str, list[str]] = {
    "user": USER_ACTIONS,
    "mixed": USER_ACTIONS,
    "nominal": ["update_check", "system_reset"],
}
#: Families built with the patch feature (``patch = true``).
PATCH_FAMILIES = ("patch", "mixed", "nominal")

#: Per family: the inclusive range of each fault budget the suites draw from.
BUDGET_RANGES: dict[str, dict[str, tuple[int, int]]] = {
    "full": {
        "power_cut": (0, 6),
        "transfer_fail": (0, 2),
        "corrupt": (0, 2),
        "net_down": (0, 2),
        "publish": (0, 2),
    },
    "patch": {"power_cut": (0, 4), "transfer_fail": (0, 2), "corrupt": (0, 2), "publish": (0, 2)},
    "user": {"power_cut": (1, 4), "ctrl": (1, 4), "crash": (0, 2), "publish": (0, 1)},
    "secure": {
        "power_cut": (0, 4),
        "publish": (0, 2),
        "factory_sign": (1, 1),
        "transfer_fail": (0, 1),
        "corrupt": (0, 1),
    },
    "mixed": {
        "power_cut": (0, 4),
        "transfer_fail": (0, 1),
        "corrupt": (0, 1),
        "net_down": (0, 1),
        "publish": (0, 2),
        "ctrl": (0, 3),
        "crash": (0, 1),
    },
    "nominal": {"publish": (0, 3), "net_down": (0, 2), "ctrl": (0, 3)},
    "hostile": {"publish": (1, 3), "transfer_fail": (0, 2), "corrupt": (0, 2), "net_down": (0, 1)},
}


@attrs.frozen
class Knobs:
    """What one test case draws for its family (everything else is fixed by the family)."""

    variant: str = "harmony-3.9.1"
    scheduler: str = "freertos"
    tear_mode: str = "word"
    geometry: str = "medium"
    fs_write_calls: bool = False
    autoreset: bool = True
    auto_update: bool = True
    periodic: bool = True
    budget: tuple[tuple[str, int], ...] = ()


def make_spec(family: str, knobs: Knobs) -> dict[str, Any]:
    """The scenario description (a ``build_scenario`` dict) for ``family`` and ``knobs``."""
    config: dict[str, Any] = {
        "scheduler": knobs.scheduler,
        "tear_mode": knobs.tear_mode,
        "autoreset": knobs.autoreset,
        "auto_update": knobs.auto_update,
        "periodic": knobs.periodic,
    }
    if family in PATCH_FAMILIES:
        config["patch"] = True
    if family == "secure":
        config["secure_boot"] = True
    return {
        "name": f"hypothesis-{family}",
        "description": f"Hypothesis family {family!r}",
        "variant": knobs.variant,
        "config": config,
        "geometry": dict(GEOMETRIES[knobs.geometry]),
        "releases": [dict(r) for r in RELEASES[family]],
        "budget": dict(knobs.budget),
        "user_actions": list(FAMILY_USER_ACTIONS.get(family, [])),
        "fs_write_calls": knobs.fs_write_calls,
    }


def get_small_spec(family: str, **changes: Any) -> dict[str, Any]:
    """The small version of a family for the exhaustive checker: small geometry, each fault
    budget at most 1 (``changes`` override knobs)."""
    budget = tuple((k, min(hi, 1)) for k, (_, hi) in BUDGET_RANGES[family].items())
    knobs = attrs.evolve(Knobs(geometry="small", budget=budget), **changes)
    return make_spec(family, knobs)


_ALWAYS = st.just(True)


def knobs_strategy(family: str) -> st.SearchStrategy[Knobs]:
    """The configurations a family's suite explores."""
    budget = st.tuples(
        *(
            st.tuples(st.just(kind), st.integers(lo, hi))
            for kind, (lo, hi) in BUDGET_RANGES[family].items()
        )
    )
    user = family in ("user", "nominal")
    return st.builds(
        Knobs,
        variant=st.sampled_from(VARIANTS),
        scheduler=st.sampled_from(SCHEDULERS),
        tear_mode=st.sampled_from(TEAR_MODES),
        geometry=st.sampled_from(("medium", "small", "wide")),
        fs_write_calls=st.booleans(),
        # Without autoreset an update runs only after a reset: keep it the rarer case.
        autoreset=st.sampled_from((True, True, False)) if family != "secure" else _ALWAYS,
        auto_update=st.booleans() if user else _ALWAYS,
        periodic=st.booleans() if user else _ALWAYS,
        budget=budget,
    )


_SCENARIOS: dict[str, Scenario] = {}


def get_cached_scenario(spec: Mapping[str, Any]) -> Scenario:
    """``build_scenario`` memoised on the description (signing and patch encoding cost)."""
    key = json.dumps(spec, sort_keys=True)
    if key not in _SCENARIOS:
        _SCENARIOS[key] = build_scenario(spec)
    return _SCENARIOS[key]


# ---------------------------------------------------------------------------- landmarks


def _next_op(world: World) -> object:
    return world.pending[0] if world.pending else None


def is_bootctl_write(world: World) -> bool:
    """The next persistent operation erases or programs the boot-control page."""
    op = _next_op(world)
    return isinstance(op, FlashErase | FlashProgram) and op.page == 0


def is_updated_app_bootctl_write(world: World) -> bool:
    """An application other than the factory image (an update, after its first boot) is
    about to erase or program the boot-control page (its validation, a rollback...)."""
    running = world.running
    return (
        world.phase is DevicePhase.APP
        and running is not None
        and not running.factory
        and is_bootctl_write(world)
    )


def is_image_write(world: World) -> bool:
    """The next persistent operation writes an image: an application page or a file other
    than the database."""
    op = _next_op(world)
    if isinstance(op, FlashErase | FlashProgram):
        return op.page > 0
    return isinstance(op, FsWrite) and op.name != "image_database.csv"


def get_next_cause(
    model: OtaModel, cause: tuple[str, ...], before: World, action: Action
) -> tuple[str, ...]:
    """CHK-34: the last cause after ``action`` (a fault or input replaces it)."""
    return model.get_cause_key(before, action) if model.is_cause_action(action) else cause


def get_step_finding(
    model: OtaModel,
    prop: Property[World, Action],
    before: World,
    action: Action,
    after: World,
    cause: tuple[str, ...],
) -> tuple[tuple[str, ...], str]:
    """The key and ID of a violating step, as the checker gives them (CHK-30): a step of the
    device's own is keyed with the last cause before it (CHK-34)."""
    step_key = model.get_edge_key(prop, before, action, after)
    key = get_finding_key(step_key, cause if model.is_own_action(action) else None)
    return key, get_finding_id(model.get_finding_prefix(prop), prop.name, key)


def is_db_write(world: World) -> bool:
    """The next persistent operation writes the image database."""
    op = _next_op(world)
    return isinstance(op, FsWrite) and op.name == "image_database.csv"


def is_downloading(world: World) -> bool:
    """A transfer is open (transfer faults and corruption can strike)."""
    return world.net.open


def is_app_started(world: World) -> bool:
    """The bootloader has just jumped into an application."""
    return world.phase is DevicePhase.APP and world.service.state is SvcState.REGWIFISRVCALLBCK


def is_quiet(world: World) -> bool:
    """Nothing happens without an input: no pending operation, the service waits for the
    timer or a control message, or the CPU hangs."""
    if world.phase is DevicePhase.HUNG:
        return True
    if world.pending or world.phase is not DevicePhase.APP:
        return False
    if world.service.state is SvcState.STATE_IDLE:
        return True
    return world.service.state is SvcState.WAIT_FOR_OTA_TIMER_TRIGGER and (
        world.service.rtcc_armed and not world.service.timer_trigger
    )


#: ``device_step(run=NAME)`` ticks until the world reaches the landmark.
LANDMARKS: dict[str, Callable[[World], bool]] = {
    "app-started": is_app_started,
    "downloading": is_downloading,
    "quiet": is_quiet,
}

#: ``power_cut(during=NAME)``: a torn cut (``power_cut_torn``) in the next operation of that
#: class (time passes until one is pending). Power fails at a uniformly random time in reality,
#: but the windows that matter are a few ticks wide in runs of hundreds: aiming the cut
#: is how the suites reach, within a small example budget, what the exhaustive checker finds.
TEAR_TARGETS: dict[str, Callable[[World], bool]] = {
    "next": lambda world: True,
    "boot-control": is_bootctl_write,
    "updated-app-boot-control": is_updated_app_bootctl_write,
    "database": is_db_write,
    "image": is_image_write,
}
#: At most this many ticks per rule (a whole update in the largest geometry is about 250).
MAX_RUN = 600
#: At most this many RTCC alarms while a fault rule waits for its window.
MAX_ALARMS = 2


# ---------------------------------------------------------------------------- traces

TRACES_DIR = Path(__file__).resolve().parents[1] / "traces"
_TRACES_ENV = "OTAMODEL_PROPERTIES_TRACES"


def get_traces_dir() -> Path:
    """Where trace files go (``traces/`` under the repo; the env var overrides it)."""
    return Path(os.environ.get(_TRACES_ENV, TRACES_DIR))


def get_trace_path(family: str, prop: str, *, expected: bool) -> Path:
    kind = "expected" if expected else "FAILED"
    return get_traces_dir() / f"hypothesis-{family}-{prop}-{kind}.json"


def save_trace(path: Path, scenario: Scenario, prop: str, actions: list[Action]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_trace(path, scenario=scenario, property_name=prop, verdict=VIOLATED, actions=actions)
    return path


def is_reporting_run() -> bool:
    """The run Hypothesis reports (its final replay of the shrunk failure), or a run
    outside Hypothesis."""
    if not currently_in_test_context():
        return True
    return bool(current_build_context().is_final)


def get_compact_actions(actions: list[Action]) -> str:
    """``tick ×12 → power_cut → tick ×3``: runs of one action collapsed."""
    out: list[list[Any]] = []
    for action in actions:
        text = str(action)
        if out and out[-1][0] == text:
            out[-1][1] += 1
        else:
            out.append([text, 1])
    return " → ".join(t if n == 1 else f"{t} ×{n}" for t, n in out) or "(none)"


@attrs.define
class Violation:
    """The shortest run this session that showed a finding of a property in a family."""

    family: str
    prop: str
    actions: list[Action]
    spec: dict[str, Any]
    finding: str = ""
    path: Path | None = None


#: (family, property) -> the shortest recorded violation this session.
RECORDED: dict[tuple[str, str], Violation] = {}
#: family -> the known finding IDs its suite reached this session.
REACHED: dict[str, set[str]] = {}

REPO = Path(__file__).resolve().parents[1]
#: Findings the Hypothesis families reach beyond the shipped scenarios (committed, reviewed;
#: the shipped scenarios' own findings are in tests/baselines/).
KNOWN_FILE = Path(__file__).resolve().parent / "known_findings.json"
_WRITE_KNOWN_ENV = "OTAMODEL_WRITE_KNOWN"


@functools.cache
def get_known_findings() -> dict[str, str]:
    """Finding ID -> property: every finding of the committed baselines (TRACE-34)."""
    known: dict[str, str] = {}
    paths = sorted((REPO / "tests" / "baselines").glob("*.json"))
    if KNOWN_FILE.is_file():
        paths.append(KNOWN_FILE)
    for path in paths:
        doc = read_baseline(path)
        for variant in doc["variants"]:
            known.update(get_baseline_ids(doc, variant, path))
    return known


def record_known(finding: Finding[World, Action], family: str) -> None:
    """With ``OTAMODEL_WRITE_KNOWN=1``: add an unknown finding to ``known_findings.json``
    (review the diff: this is how a new finding becomes a known one)."""
    doc: dict[str, Any] = {"format": "otamodel-baseline/1", "scenario": "hypothesis",
                           "variants": {}}  # fmt: skip
    if KNOWN_FILE.is_file():
        doc = read_baseline(KNOWN_FILE)
    entries = doc["variants"].setdefault(family, [])
    if all(e["id"] != finding.id for e in entries):
        entries.append({"id": finding.id, "property": finding.property, "key": list(finding.key),
                        "story": get_story(finding)})  # fmt: skip
        entries.sort(key=lambda e: (e["property"], e["id"]))
    KNOWN_FILE.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    get_known_findings.cache_clear()


class PropertyViolationError(AssertionError):
    """An always-property that must hold in this family was violated."""


class UnknownFindingError(AssertionError):
    """A violation classified into a finding that no committed baseline knows."""


class ExpectedViolationFound(Exception):  # noqa: N818 (not an error: the hunt's success)
    """A hunt reached the violation it was looking for (see ``run_hunt``)."""


#: The inputs a step of a suite can draw: the device's own progress, and each fault or user
#: input while the world and its budget allow it (so every draw is valid).
RUNS: tuple[int | str, ...] = (1, 2, 3, 5, 8, 13, 21, 30, *sorted(LANDMARKS))
CUTS = ("now", *sorted(TEAR_TARGETS))


# ---------------------------------------------------------------------------- the machine


class DeviceMachine(RuleBasedStateMachine):
    """One family's configurations, driven through the shared ``step``.

    Subclasses set ``FAMILY``; ``HUNT`` names a property whose violation ends the run
    (raises :class:`ExpectedViolationFound`), used by the hunt tests.
    """

    FAMILY: ClassVar[str] = "full"
    HUNT: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.scenario: Scenario | None = None
        self.model: OtaModel | None = None
        self.last_cause: tuple[str, ...] = ()
        """CHK-34: the key of the last cause (fault or input acting on the device) so far."""
        self.props: dict[str, Property[World, Action]] = {}
        self.spec: dict[str, Any] = {}
        self.world: World | None = None
        self.actions: list[Action] = []
        self.enabled: frozenset[Action] = frozenset()
        self.clean: set[str] = set()
        self.interrupted = False
        # kind -> the settled world in which that input could not happen: the input stays
        # unavailable until another input changes the world.
        self.futile: dict[str, World] = {}
        self.best_version = 0
        self.best_validated = 0
        self.updates = 0
        STARTED[self.FAMILY] = STARTED.get(self.FAMILY, 0) + 1

    # ------------------------------------------------------------ set-up

    @initialize(knobs=st.runner().flatmap(lambda machine: knobs_strategy(machine.FAMILY)))
    def configure(self, knobs: Knobs) -> None:
        """Draw a configuration of the family."""
        self.spec = make_spec(self.FAMILY, knobs)
        self.scenario = get_cached_scenario(self.spec)
        self.model = OtaModel(self.scenario)
        self.props = {
            p.name: p for p in self.model.properties() if p.kind is PropertyKind.ALWAYS
        }
        self.clean = set(self.props)
        self.last_cause = self.model.get_cause_key(None, None)
        self._set_world(initial_world(self.scenario))
        note(f"family {self.FAMILY}: {knobs}")

    # ------------------------------------------------------------ helpers

    def _set_world(self, world: World) -> None:
        self.world = world
        self.enabled = frozenset(enabled_actions(world))
        if world.phase is DevicePhase.APP and world.running is not None:
            self.best_version = max(self.best_version, int(world.running.version))
        self.best_validated = max(self.best_validated, world.ghost.max_validated)

    def _apply(self, action: Action) -> bool:
        """Apply one enabled action; False (nothing applied) when ``step`` refuses it. Every
        always-property is classified on every applied step, inside multi-tick inputs too."""
        before = self.world
        assert before is not None
        self.interrupted = True  # stays set if step or a check raises
        result = step(before, action)
        if result.is_refused:
            self.interrupted = False
            return False
        self.actions.append(action)
        self._set_world(result.world)
        cause = self.last_cause
        if self.model is not None:
            self.last_cause = get_next_cause(self.model, cause, before, action)
        if len(result.world.ghost.witnesses) > len(before.ghost.witnesses):
            self.updates += 1
        for prop in self.props.values():
            self._classify(prop, before, action, result.world, cause)
        self.interrupted = False
        return True

    def _has_budget(self, kind: str) -> bool:
        return self.world is not None and self.world.get_budget(kind) > 0

    def _may_happen(self, kind: str) -> bool:
        """The budget allows ``kind`` and it did not just fail to happen from this world."""
        return self._has_budget(kind) and self.futile.get(kind) is not self.world

    def _is_enabled(self, kind: str) -> bool:
        return any(a.kind == kind for a in self.enabled)

    def _fault(self, kind: str) -> None:
        action = next((a for a in sorted(self.enabled) if a.kind == kind), None)
        assert action is not None, f"{kind} should be enabled"
        assert self._apply(action), f"{action} was enabled but refused"

    def _run(self, until: Callable[[World], bool], *, with_timer: bool = False) -> bool:
        """Tick until ``until`` holds (checked before each tick, at most ``MAX_RUN`` ticks).

        False when a tick is refused or the device settles first (a world repeats: it only
        cycles until an input comes: idle, waiting for the alarm or the network, hung).
        ``with_timer``: time passing also fires the RTCC alarm when the service waits for
        it (at most ``MAX_ALARMS`` times per run)."""
        tick, timer = Action("tick"), Action("timer")
        seen: set[World] = set()
        alarms = 0
        for _ in range(MAX_RUN):
            world = self.world
            assert world is not None
            if until(world):
                return True
            if with_timer and alarms < MAX_ALARMS and timer in self.enabled:
                alarms += 1
                seen.clear()
                self._apply(timer)
                continue
            if world in seen:
                return False
            seen.add(world)
            if tick not in self.enabled or not self._apply(tick):
                return False
        return False

    def _fault_when(
        self, kind: str, window: Callable[[World], bool] = lambda w: True, arg: str | None = None
    ) -> bool:
        """Apply the input ``kind`` (with ``arg``, if given) as soon as ``enabled_actions``
        offers it in ``window``: at once, or after time passes (ticks, the alarm). False
        (nothing applied) when the device settles first."""

        def find(world: World) -> Action | None:
            if not window(world):
                return None
            for action in sorted(self.enabled):
                if action.kind == kind and (arg is None or action.arg == arg):
                    return action
            return None

        if not self._run(lambda world: find(world) is not None, with_timer=True):
            assert self.world is not None
            self.futile[kind] = self.world
            return False
        assert self.world is not None
        action = find(self.world)
        assert action is not None
        assert self._apply(action), f"{action} was enabled but refused"
        return True

    # ------------------------------------------------------------ the one rule

    def get_inputs(self) -> list[tuple[str, Any]]:
        """The inputs that can happen now, each with its argument (never empty: the device can
        always run on). One flat list, so a step is a single draw."""
        inputs: list[tuple[str, Any]] = [("device_step", run) for run in RUNS]
        if self._is_enabled("timer"):
            inputs.append(("timer", None))
        if self._is_enabled("power_cut"):
            inputs.extend(("power_cut", during) for during in CUTS)
        for kind in ("transfer_fail", "corrupt", "crash", "factory_sign"):
            if self._may_happen(kind):
                inputs.append((kind, None))
        if self._may_happen("ctrl"):
            inputs.extend(("ctrl", name) for name in FAMILY_USER_ACTIONS.get(self.FAMILY, []))
        if self._is_enabled("net_down") or self._is_enabled("net_up"):
            inputs.append(("network", None))
        inputs.extend(("publish", a) for a in sorted(self.enabled) if a.kind == "publish")
        return inputs

    @rule(data=st.data())
    def act(self, data: st.DataObject) -> None:
        """One input among those that can happen now (drawn from the enabled ones only, so
        no draw is rejected), with its argument, in one draw."""
        kind, arg = data.draw(st.sampled_from(self.get_inputs()), label="input")
        if kind == "device_step":
            self.device_step(arg)
        elif kind == "power_cut":
            self.power_cut(arg)
        elif kind == "publish":
            self._apply(arg)
        elif kind == "ctrl":
            self._fault_when("ctrl", arg=arg)
        elif kind == "network":
            self._fault("net_up" if self._is_enabled("net_up") else "net_down")
        elif kind == "timer":
            self._fault("timer")
        else:
            self._fault_when(kind)

    def device_step(self, run: int | str) -> None:
        """The device runs on: ``run`` ticks, or until the landmark ``run`` is reached (at
        least one tick), stopping early when a tick is refused."""
        tick = Action("tick")
        if isinstance(run, int):
            for _ in range(run):
                if tick not in self.enabled or not self._apply(tick):
                    break
            return
        if tick in self.enabled and self._apply(tick):
            self._run(LANDMARKS[run])

    def power_cut(self, during: str) -> None:
        """Power fails: ``now`` (between two operations), or in the middle of a flash/FS
        operation (``power_cut_torn``): the pending one (``next``) or the next of the class
        ``during`` (time passes until one is pending; no cut if the device settles first)."""
        if during == "now":
            self._fault("power_cut")
        elif self.scenario is not None and self.scenario.tears:
            self._fault_when("power_cut_torn", TEAR_TARGETS[during])

    # ------------------------------------------------------------ findings

    def _classify(
        self,
        prop: Property[World, Action],
        before: World,
        action: Action,
        after: World,
        cause: tuple[str, ...],
    ) -> None:
        """A violating step is classified as the checker does (CHK-30, TRACE-30): a rise of a
        measured property (every over-program), or the first violation of another property in
        this run; later violations of that property are classified too and, if unknown, only
        counted (the checker shows a path's first violation)."""
        if prop.measure is not None:
            if prop.measure(after) <= prop.measure(before):
                return
        elif prop.predicate(after) or not prop.predicate(before):
            return
        assert self.model is not None and self.scenario is not None
        first = prop.measure is not None or prop.name in self.clean
        self.clean.discard(prop.name)
        key, fid = get_step_finding(self.model, prop, before, action, after, cause)
        expected = EXPECTED_VERDICTS.get(self.FAMILY, {}).get(prop.name)
        actions = list(self.actions)
        known = fid in get_known_findings()
        if expected == HOLDS:
            self._fail(PropertyViolationError, prop, fid, key, "must hold in this family")
        if not known and not first:
            event("a later violation of an already violated property (not a finding)")
            return
        if not known:
            finding = self._make_finding(prop, fid, key)
            if os.environ.get(_WRITE_KNOWN_ENV):
                record_known(finding, self.FAMILY)
            else:
                self._fail(UnknownFindingError, prop, fid, key, "is not in any baseline")
        REACHED.setdefault(self.FAMILY, set()).add(fid)
        record = RECORDED.get((self.FAMILY, prop.name))
        if record is None or len(actions) < len(record.actions):
            path = get_trace_path(self.FAMILY, prop.name, expected=True)
            record = Violation(self.FAMILY, prop.name, actions, self.spec, fid)
            record.path = save_trace(path, self.scenario, prop.name, actions)
            RECORDED[(self.FAMILY, prop.name)] = record
        if prop.name == self.HUNT:
            raise ExpectedViolationFound(f"{self.FAMILY}: {fid} after {len(actions)} actions")

    def _make_finding(
        self, prop: Property[World, Action], fid: str, key: tuple[str, ...]
    ) -> Finding[World, Action]:
        assert self.scenario is not None
        trace: Trace[World, Action] = run(initial_world(self.scenario), self.actions)
        faults = sum(1 for a in self.actions if OtaModel.get_action_cost(a))
        return Finding(fid, prop.name, prop.kind, key, trace, len(self.actions) - 1, 1, 1, faults)

    def _fail(
        self,
        error: type[AssertionError],
        prop: Property[World, Action],
        fid: str,
        key: tuple[str, ...],
        why: str,
    ) -> None:
        assert self.scenario is not None
        actions = list(self.actions)
        story = get_story(self._make_finding(prop, fid, key))
        path = get_trace_path(self.FAMILY, f"{prop.name}-{fid}", expected=False)
        note(f"{fid} ({prop.name}) {why}: {story}")
        if is_reporting_run():  # not on every attempt of the shrinker
            save_trace(path, self.scenario, prop.name, actions)
            note(f"trace written to {path} (re-execute with: otamodel replay {path})")
        raise error(
            f"{fid} ({prop.name}) {why} in family {self.FAMILY!r}: {story} "
            f"Steps ({len(actions)}): {get_compact_actions(actions)}; trace: {path}; key {key}"
        )

    def teardown(self) -> None:
        if self.world is None or self.interrupted:
            return  # no set-up, or a failure is on its way out: do not mask it
        # After the last input the device runs on by itself until it settles: a power cut's
        # consequences (the bootloader's choice, a restore) show only then.
        self._run(lambda world: False)
        COMPLETED[self.FAMILY] = COMPLETED.get(self.FAMILY, 0) + 1
        # Steer toward completed updates: a newer running version, more witnessed events.
        target(float(self.best_version), label="running version")
        target(float(self.best_validated), label="validated version")
        target(float(self.updates), label="completed updates / restores")


#: family -> test cases started / run to their teardown this session (for the summary).
STARTED: dict[str, int] = {}
COMPLETED: dict[str, int] = {}


class FullMachine(DeviceMachine):
    FAMILY = "full"


class PatchMachine(DeviceMachine):
    FAMILY = "patch"


class UserMachine(DeviceMachine):
    FAMILY = "user"


class SecureMachine(DeviceMachine):
    FAMILY = "secure"


class MixedMachine(DeviceMachine):
    FAMILY = "mixed"


class NominalMachine(DeviceMachine):
    FAMILY = "nominal"


class HostileMachine(DeviceMachine):
    FAMILY = "hostile"


MACHINES: dict[str, type[DeviceMachine]] = {
    m.FAMILY: m
    for m in (
        FullMachine,
        PatchMachine,
        UserMachine,
        SecureMachine,
        MixedMachine,
        NominalMachine,
        HostileMachine,
    )
}


def get_suite_settings(machine: type[DeviceMachine]) -> settings:
    """The active profile's settings as the machine's ``TestCase`` builds them (no deadline,
    no health checks), without the explain phase: it re-runs a failing case for minutes on
    these long runs and adds nothing the action list and the trace do not say."""
    base = machine.TestCase.settings
    return settings(base, phases=[p for p in base.phases if p is not Phase.explain])


class TestFull(FullMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = get_suite_settings(FullMachine)


class TestPatch(PatchMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = get_suite_settings(PatchMachine)


class TestUser(UserMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = get_suite_settings(UserMachine)


class TestSecure(SecureMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = get_suite_settings(SecureMachine)


class TestMixed(MixedMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = get_suite_settings(MixedMachine)


class TestNominal(NominalMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = get_suite_settings(NominalMachine)


class TestHostile(HostileMachine.TestCase):  # type: ignore[misc,valid-type]
    settings = get_suite_settings(HostileMachine)


# ---------------------------------------------------------------------------- plain tests


def get_hunt_settings() -> settings:
    """The active profile's settings, derandomized, without shrinking: a hunt searches for one
    expected finding with the profile's example count (no floor of its own; the kept
    counterexamples of ``examples.json`` make a hunt rare)."""
    return settings(
        settings(),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        print_blob=False,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def run_hunt(family: str, prop: str) -> None:
    """Run ``family``'s suite until it violates ``prop``; raises ExpectedViolationFound."""
    hunter = type(f"Hunt{MACHINES[family].__name__}", (MACHINES[family],), {"HUNT": prop})
    run_state_machine_as_test(hunter, settings=get_hunt_settings())


# ---------------------------------------------------------------------------- kept examples

#: Found counterexamples, kept: per expected violation, the shortest run a suite or a hunt
#: found (its scenario and inputs). Rule-based state machines take no ``@example``; these are
#: their explicit examples, replayed before any hunt. ``OTAMODEL_WRITE_EXAMPLES=1`` keeps the
#: runs of this session that are new or shorter (review and commit the diff).
EXAMPLES_FILE = Path(__file__).resolve().parent / "examples.json"
_WRITE_EXAMPLES_ENV = "OTAMODEL_WRITE_EXAMPLES"


def get_kept_examples() -> dict[tuple[str, str], dict[str, Any]]:
    """(family, property) -> the kept counterexample (``family``, ``property``, ``finding``,
    ``spec``, ``actions``)."""
    if not EXAMPLES_FILE.is_file():
        return {}
    doc = json.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return {(e["family"], e["property"]): e for e in doc["examples"]}


def keep_example(found: Violation) -> bool:
    """Keep ``found`` when no example of its (family, property) is kept or it is shorter."""
    kept = get_kept_examples()
    old = kept.get((found.family, found.prop))
    if old is not None and len(old["actions"]) <= len(found.actions):
        return False
    kept[(found.family, found.prop)] = {
        "family": found.family,
        "property": found.prop,
        "finding": found.finding,
        "spec": found.spec,
        "actions": [str(a) for a in found.actions],
    }
    doc = {"format": "otamodel-examples/1", "examples": [kept[k] for k in sorted(kept)]}
    EXAMPLES_FILE.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return True


def replay_example(example: Mapping[str, Any]) -> Violation:
    """Re-run a kept counterexample: every input is accepted and the last world violates its
    property with a known finding (its ID may change with the keys: then it is re-kept)."""
    family, prop = example["family"], example["property"]
    scenario = get_cached_scenario(example["spec"])
    actions = [Action.parse(text) for text in example["actions"]]
    steps, problem = replay(scenario, actions)
    assert problem is None, f"kept example {family}/{prop}: {problem}"
    before = steps[-2].result.world if len(steps) > 1 else initial_world(scenario)
    after = steps[-1].result.world if steps else initial_world(scenario)
    assert not ALWAYS_PROPERTIES[prop](after), f"kept example {family}/{prop} no longer violates"
    model = OtaModel(scenario)
    chosen = next(p for p in model.properties() if p.name == prop)
    # Keyed as the suite keys it (CHK-34: with the last cause before the violating step).
    cause = model.get_cause_key(None, None)
    world = initial_world(scenario)
    for action, done in zip(actions[:-1], steps[:-1], strict=True):
        cause = get_next_cause(model, cause, world, action)
        world = done.result.world
    _, fid = get_step_finding(model, chosen, before, actions[-1], after, cause)
    assert fid in get_known_findings(), f"kept example {family}/{prop}: {fid} is not known"
    found = Violation(family, prop, actions, dict(example["spec"]), fid)
    found.path = save_trace(get_trace_path(family, prop, expected=True), scenario, prop, actions)
    return found


EXPECTED_VIOLATIONS = [
    (family, prop)
    for family, verdicts in EXPECTED_VERDICTS.items()
    for prop, verdict in verdicts.items()
    if verdict == VIOLATED
]


def test_table_covers_every_family_and_property() -> None:
    assert set(EXPECTED_VERDICTS) == set(RELEASES) == set(BUDGET_RANGES) == set(MACHINES)
    assert set(FAMILY_USER_ACTIONS) <= set(EXPECTED_VERDICTS)
    for names in FAMILY_USER_ACTIONS.values():
        assert set(names) <= set(CTRL_MESSAGES)
    for verdicts in EXPECTED_VERDICTS.values():
        assert set(verdicts) == set(ALWAYS_PROPERTIES)
        assert set(verdicts.values()) <= {HOLDS, VIOLATED}


@pytest.mark.parametrize(("family", "prop"), EXPECTED_VIOLATIONS)
def test_expected_violation_is_reached(family: str, prop: str) -> None:
    """A property the released code violates in ``family`` is reached: by the family's suite
    earlier in this session, else by its kept counterexample (``examples.json``), else by a
    deterministic hunt with the profile's example count; its trace replays (no refusal) to a
    violating state."""
    if (family, prop) not in RECORDED:
        kept = get_kept_examples().get((family, prop))
        if kept is not None:
            RECORDED[(family, prop)] = replay_example(kept)
        else:
            with pytest.raises(ExpectedViolationFound):
                run_hunt(family, prop)
    found = RECORDED[(family, prop)]
    if os.environ.get(_WRITE_EXAMPLES_ENV):
        keep_example(found)
    assert (family, prop) in get_kept_examples(), (
        f"no kept counterexample for {family}/{prop}: run with {_WRITE_EXAMPLES_ENV}=1 and "
        "commit properties/examples.json"
    )
    scenario = get_cached_scenario(found.spec)
    steps, problem = replay(scenario, found.actions)
    assert problem is None
    last = steps[-1].result.world if steps else initial_world(scenario)
    assert not ALWAYS_PROPERTIES[prop](last)


def test_written_trace_replays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A violation found by a suite is written as a trace file that ``replay`` and
    ``otamodel replay`` re-execute without a refusal, ending in the violating state."""
    from click.testing import CliRunner

    from otamodel.cli import main

    monkeypatch.setenv(_TRACES_ENV, str(tmp_path))
    saved = dict(RECORDED)
    RECORDED.clear()
    try:
        with pytest.raises(ExpectedViolationFound):
            run_hunt("full", "flash-physics")
        path = RECORDED[("full", "flash-physics")].path
    finally:
        RECORDED.clear()
        RECORDED.update(saved)
    assert path is not None
    assert path.parent == tmp_path
    trace = read_trace(path)
    assert trace.property_name == "flash-physics"
    assert trace.verdict == VIOLATED
    steps, problem = replay(trace.scenario, trace.actions)
    assert problem is None
    assert len(steps) == len(trace.actions) == len(trace.recorded)
    assert not is_flash_physical(steps[-1].result.world)
    result = CliRunner().invoke(main, ["replay", str(path)])
    assert result.exit_code == 0, result.output
