"""The explorer's model side: one scenario and variant, paths replayed on demand, and the
background jobs (findings, state space) the page starts (EXP-*, ``docs/explorer.md``).

The page holds the path (a list of action texts); every request replays it from the initial
world, so the server keeps no per-client state beyond a small cache of replays."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs

from otamodel.env import Scenario, enabled_actions, initial_world, step
from otamodel.errors import TraceError
from otamodel.explore import _view
from otamodel.model import FAULT_KINDS, Action, StepResult, World
from otamodel.verify import OtaModel

JsonDict = dict[str, Any]

MAX_PATH = 20_000
"""EXP-9: the longest path a request may replay (a trace of the default scenario is < 1,000)."""


class PathError(TraceError):
    """A path the explorer cannot replay: an unknown or refused action (EXP-9)."""


@attrs.frozen
class Replayed:
    """A path replayed: every world on it (the initial one first) and each step's result."""

    worlds: tuple[World, ...]
    results: tuple[StepResult, ...]

    @property
    def last(self) -> World:
        return self.worlds[-1]


def parse_path(items: object) -> tuple[Action, ...]:
    """EXP-9: a JSON path (a list of action texts) as actions; errors name the position."""
    if not isinstance(items, list):
        raise PathError("path must be a list of action texts", where="$.path")
    if len(items) > MAX_PATH:
        raise PathError(f"path has {len(items)} steps; at most {MAX_PATH}", where="$.path")
    actions = []
    for position, text in enumerate(items):
        if not isinstance(text, str) or not text.strip():
            raise PathError("an action is a non-empty string", where=f"$.path[{position}]")
        actions.append(Action.parse(text))
    return tuple(actions)


def get_compact_script(actions: Sequence[Action]) -> str:
    """EXP-5: the path as the compact script ``simulate``/``replay`` accept
    (``tick*29, timer, tick*95, power_cut``)."""
    parts: list[str] = []
    index = 0
    while index < len(actions):
        run = 1
        while index + run < len(actions) and actions[index + run] == actions[index]:
            run += 1
        text = str(actions[index])
        parts.append(f"{text}*{run}" if run > 1 else text)
        index += run
    return ", ".join(parts)


def parse_compact_script(text: str) -> tuple[Action, ...]:
    """The inverse of :func:`get_compact_script`; errors name the item."""
    actions: list[Action] = []
    for position, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        name, star, count = item.rpartition("*") if "*" in item else (item, "", "1")
        if not star:
            name = item
        if not count.isdigit() or not 0 < int(count) <= MAX_PATH:
            raise PathError(f"bad repeat count in {item!r}", where=f"script item {position + 1}")
        actions.extend([Action.parse(name)] * int(count))
        if len(actions) > MAX_PATH:
            raise PathError(f"script longer than {MAX_PATH} steps")
    return tuple(actions)


@attrs.define
class Job:
    """A background job (check or state-space exploration) and its progress (EXP-7)."""

    name: str
    status: str = "idle"  # idle | running | done | failed
    started: float = 0.0
    progress: JsonDict = attrs.Factory(dict)
    error: str | None = None


class Explorer:
    """One scenario (already built for its variant) seen through the explorer."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.model = OtaModel(scenario)
        self.properties = list(self.model.properties())
        self.initial = initial_world(scenario)
        self._cache: dict[tuple[Action, ...], Replayed] = {}
        self._lock = threading.Lock()
        self.findings_job = Job("findings")
        self.findings: list[JsonDict] = []
        self.summary: JsonDict = {}
        self.space_job = Job("space")
        self._space: _Space | None = None
        self.opening: JsonDict | None = None

    parse_path = staticmethod(parse_path)

    # -------------------------------------------------------------- paths and views

    def replay(self, actions: tuple[Action, ...]) -> Replayed:
        """EXP-9: replay ``actions``; a refused step is a :class:`PathError` naming it."""
        with self._lock:
            cached = self._cache.get(actions)
        if cached is not None:
            return cached
        worlds = [self.initial]
        results: list[StepResult] = []
        for index, action in enumerate(actions, 1):
            result = step(worlds[-1], action)
            if result.is_refused:
                raise PathError(
                    f"step {index} ({action}) is refused: {result.refusal}",
                    where=f"$.path[{index - 1}]",
                )
            results.append(result)
            worlds.append(result.world)
        replayed = Replayed(tuple(worlds), tuple(results))
        with self._lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[actions] = replayed
        return replayed

    def get_state(self, actions: tuple[Action, ...]) -> JsonDict:
        """EXP-3..EXP-5, EXP-8: the page's whole view of the world at the end of ``actions``."""
        replayed = self.replay(actions)
        world = replayed.last
        last_step = None
        if actions:
            last_step = _view.get_step_view(len(actions), replayed.worlds[-2], replayed.results[-1])
        return {
            "step": len(actions),
            "script": get_compact_script(actions),
            "world": _view.get_world_view(world, self.scenario),
            "callbacks": _view.get_callbacks(replayed.results),
            "last_step": last_step,
            "enabled": [
                _view.get_action_view(action, action.kind in FAULT_KINDS)
                for action in enabled_actions(world)
            ],
            "properties": self.get_property_states(world),
            "space": self.get_position(world, len(actions)),
        }

    def get_property_states(self, world: World) -> list[JsonDict]:
        """EXP-3: for each property, whether its predicate holds in this state (for an
        eventually-property: whether its goal holds here; reachability is in ``space``)."""
        return [
            {
                "name": prop.name,
                "kind": prop.kind.value,
                "holds": bool(prop.predicate(world)),
                "description": prop.description,
            }
            for prop in self.properties
        ]

    def get_steps(self, actions: tuple[Action, ...]) -> list[JsonDict]:
        """EXP-6: every step of a path with what it changed (for stepping through a trace)."""
        replayed = self.replay(actions)
        return [
            _view.get_step_view(index, replayed.worlds[index - 1], result)
            for index, result in enumerate(replayed.results, 1)
        ]

    # -------------------------------------------------------------- findings (EXP-7)

    def start_findings(self) -> Job:
        """Run the checker in the background (once at a time)."""
        return self._start(self.findings_job, self._run_findings)

    def _start(self, job: Job, target: Any) -> Job:
        with self._lock:
            if job.status == "running":
                return job
            job.status, job.started, job.error, job.progress = "running", time.time(), None, {}
        threading.Thread(target=self._guard, args=(job, target), daemon=True).start()
        return job

    def _guard(self, job: Job, target: Any) -> None:
        try:
            target()
            job.status = "done"
        except Exception as exc:  # reported to the page as a job failure
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"

    def _hook(self, job: Job) -> Any:
        def hook(info: Any) -> None:
            job.progress = {
                "states": info.states,
                "transitions": info.transitions,
                "depth": info.depth,
                "seconds": round(info.seconds, 2),
            }

        return hook

    def _run_findings(self) -> None:
        """EXP-7: the classified check (the same findings as ``otamodel check``)."""
        from otamodel.verify._findings import get_faults, get_story, run_check

        report = run_check(self.model, progress=self._hook(self.findings_job))
        self.summary = {
            "states": report.unique_states,
            "transitions": report.transitions,
            "max_depth": report.max_depth,
            "seconds": round(report.seconds, 2),
            "complete": report.is_complete,
            "verdicts": [
                {
                    "property": result.name,
                    "kind": result.kind.value,
                    "verdict": result.verdict.value,
                    "failing": result.is_failing,
                    "label": result.get_label(),
                }
                for result in report.results
            ],
        }
        self.findings = [
            {
                "id": finding.id,
                "property": finding.property,
                "kind": finding.kind.value,
                "story": get_story(finding),
                "faults": get_faults(finding),
                "states": finding.states,
                "path": (
                    [str(a) for a in finding.trace.actions]
                    if finding.trace.init is not None
                    else []
                ),
                "decisive_step": max(finding.decisive + 1, 0),
            }
            for finding in report.findings
        ]

    def get_decisive_step(self, actions: Sequence[Action]) -> int:
        """EXP-7: the step to mark in a finding's trace: its last fault (1-based), or the
        last step when the trace has no fault."""
        for index in range(len(actions), 0, -1):
            if actions[index - 1].kind in FAULT_KINDS:
                return index
        return len(actions)

    # -------------------------------------------------------------- the state space (EXP-8)

    def start_space(self) -> Job:
        return self._start(self.space_job, self._run_space)

    def _run_space(self) -> None:
        self._space = _Space.explore(self.model, self._hook(self.space_job))

    def get_position(self, world: World, steps: int) -> JsonDict:
        """EXP-8: counts and depth of the explored space; for this state its BFS distance
        from the start and, per eventually-property, whether its goal is still reachable."""
        space = self._space
        if space is None:
            return {"explored": False, "steps_on_path": steps}
        return {"explored": True, "steps_on_path": steps, **space.locate(world)}


@attrs.define
class _Space:
    """The explored graph kept for position queries (distance, goal reachability)."""

    index: dict[World, int]
    level_starts: list[int]
    reachable: dict[str, bytearray]
    counts: JsonDict

    @classmethod
    def explore(cls, model: OtaModel, hook: Any) -> _Space:
        from otamodel.checker import PropertyKind
        from otamodel.checker._liveness import ReverseGraph, get_can_reach
        from otamodel.checker._search import Plan, explore

        props = [p for p in model.properties() if p.kind is PropertyKind.EVENTUALLY]
        started = time.perf_counter()
        exploration = explore(
            model,
            Plan(props),
            max_depth=None,
            max_states=None,
            deadline=None,
            stop_on_violation=False,
            progress=hook,
            progress_interval=0.5,
            started=started,
        )
        try:
            states = exploration.fetch_states(range(exploration.count))
            reverse = ReverseGraph(exploration) if props else None
            reachable = {}
            for position, prop in enumerate(props):
                assert reverse is not None
                goals = exploration.goal_bits[position].get_bytes()
                reachable[prop.name] = get_can_reach(exploration, reverse, goals, prop.edge_filter)
            counts = {
                "states": exploration.count,
                "transitions": exploration.transitions,
                "max_depth": len(exploration.level_starts) - 1,
                "complete": exploration.is_complete,
                "seconds": round(time.perf_counter() - started, 2),
            }
            return cls(
                {state: number for number, state in enumerate(states)},
                list(exploration.level_starts),
                reachable,
                counts,
            )
        finally:
            if exploration.close is not None:
                exploration.close()

    def locate(self, world: World) -> JsonDict:
        number = self.index.get(world)
        if number is None:
            return {**self.counts, "known": False}
        depth = bisect.bisect_right(self.level_starts, number) - 1
        return {
            **self.counts,
            "known": True,
            "distance": depth,
            "goal_reachable": {name: bool(bits[number]) for name, bits in self.reachable.items()},
        }
