"""The power-cut tables (CUT-*): one cut per persistent operation of the fault-free update,
and two cuts (the second during the recovery from the first), summarised."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import attrs

from otamodel.checker import PropertyKind
from otamodel.env import Scenario, initial_world
from otamodel.errors import ScenarioError
from otamodel.model import Action, World
from otamodel.verify._cuts import (
    CutFindings,
    CutPoint,
    CutResult,
    CutWhen,
    Operation,
    Recoverer,
    Recovery,
    get_cut_edge,
    get_cut_findings,
    get_cut_points,
    get_cut_world,
    get_operations,
    get_target_version,
    get_update_schedule,
    get_violations,
)
from otamodel.verify._properties import OtaModel


@attrs.frozen
class CutTable:
    """CUT-2..CUT-5 for one scenario: the schedule, its operations, and one row per cut."""

    scenario: Scenario
    schedule: tuple[Action, ...]
    operations: tuple[Operation, ...]
    results: tuple[CutResult, ...]
    baseline: tuple[str, ...]  # properties the fault-free run already violates
    old: int
    new: int

    def get_counts(self) -> Counter[str]:
        """How many cut points end in each outcome."""
        return Counter(r.recovery.get_label() for r in self.results)

    def get_finding_counts(self) -> Counter[str]:
        """CUT-8: how many cut points lead to each finding ID."""
        return Counter(fid for r in self.results for fid in r.findings)

    def find(self, number: int, when: CutWhen, mode: str = "") -> CutResult:
        """The row of one cut point (CUT-7); a ScenarioError names the valid choices."""
        if not 1 <= number <= len(self.operations):
            raise ScenarioError(
                f"no operation {number} (the update has {len(self.operations)})", where="--cut"
            )
        operation = self.operations[number - 1]
        if when is CutWhen.TORN and mode not in operation.tear_modes:
            modes = ", ".join(operation.tear_modes) or "none: it cannot be torn"
            raise ScenarioError(
                f"operation {number} ({operation.describe()}) tears as: {modes}", where="--torn"
            )
        for result in self.results:
            if result.point == CutPoint(number, when, mode):
                return result
        raise ScenarioError(f"no cut {number} {when.value} {mode}")


def get_old_version(worlds: Sequence[World]) -> int:
    """The version that ran before the update: the first application the schedule runs."""
    for world in worlds:
        if world.running is not None:
            return world.running.version
    return 0


def get_cut_table(
    scenario: Scenario, *, model: OtaModel | None = None, only: CutPoint | None = None
) -> CutTable:
    """CUT-1..CUT-5: every cut point of the scenario's fault-free update (or only one)."""
    model = model or OtaModel(scenario)
    schedule = get_update_schedule(scenario)
    worlds, operations = get_operations(initial_world(scenario), schedule)
    new = get_target_version(scenario)
    old = get_old_version(worlds)
    baseline = get_violations(model, worlds[0])
    recoverer = Recoverer(old=old, new=new)
    cache: dict[tuple[World, World, Action], CutFindings] = {}
    results = []
    for operation in operations:
        for point in get_cut_points(operation):
            if only is not None and point != only:
                continue
            start = get_cut_world(worlds, operation, point)
            recovery = recoverer.recover(start)
            before, cut = get_cut_edge(worlds, operation, point)
            found = cache.get((start, before, cut))
            if found is None:
                found = cache[(start, before, cut)] = get_cut_findings(model, before, cut, start)
            violated = tuple(v for v in found.violated if v not in baseline)
            ids = tuple(fid for name, fid in found.ids if name not in baseline)
            results.append(CutResult(point, operation, start, recovery, violated, ids))
    return CutTable(scenario, schedule, tuple(operations), tuple(results), baseline, old, new)


# ---------------------------------------------------------------------------- two cuts


@attrs.frozen
class DoubleCut:
    """A first cut, then a second one at an operation of the recovery from it (CUT-6)."""

    first: CutPoint
    second: CutPoint  # numbered among the recovery's own operations
    operation: Operation
    recovery: Recovery
    violated: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.first}, then recovery {self.second}"


@attrs.frozen
class DoubleSummary:
    """CUT-6: counts per outcome over every pair of cuts, and the worst cases."""

    total: int
    distinct: int  # distinct worlds after the second cut
    counts: dict[str, int]
    worst: tuple[DoubleCut, ...]  # one example per (outcome, violated properties), worst first


def get_double_summary(
    table: CutTable, *, model: OtaModel | None = None, worst: int = 10
) -> DoubleSummary:
    """CUT-6: for each distinct first cut, cut again at every point of its recovery's
    persistent operations; properties are judged along the one recovery schedule (``always``
    on every state, ``eventually`` on the cycle the device settles in)."""
    model = model or OtaModel(table.scenario)
    properties = [p for p in model.properties() if p.kind is not PropertyKind.SOMETIMES]
    recoverer = Recoverer(old=table.old, new=table.new)
    firsts: dict[World, CutResult] = {}
    for result in table.results:
        firsts.setdefault(result.start, result)
    counts: Counter[str] = Counter()
    bad: list[DoubleCut] = []
    seen: set[World] = set()
    total = 0
    judged: dict[World, tuple[str, ...]] = {}
    for start, first in firsts.items():
        worlds, operations = get_operations(start, first.recovery.actions)
        for operation in operations:
            for point in get_cut_points(operation):
                second = get_cut_world(worlds, operation, point)
                total += 1
                seen.add(second)
                recovery = recoverer.recover(second)
                if second not in judged:
                    judged[second] = tuple(
                        v
                        for v in _judge_path(properties, second, recovery)
                        if v not in table.baseline
                    )
                counts[recovery.get_label()] += 1
                item = DoubleCut(first.point, point, operation, recovery, judged[second])
                if item.violated or recovery.service_stuck or recovery.outcome.severity >= 4:
                    bad.append(item)
    examples: dict[tuple[str, tuple[str, ...]], DoubleCut] = {}
    for item in bad:
        examples.setdefault((item.recovery.get_label(), item.violated), item)
    ranked = sorted(
        examples.values(),
        key=lambda d: (-d.recovery.outcome.severity, -d.recovery.service_stuck, -len(d.violated)),
    )
    return DoubleSummary(total, len(seen), dict(counts.most_common()), tuple(ranked[:worst]))


def _judge_path(properties: Sequence[object], start: World, recovery: Recovery) -> list[str]:
    from otamodel.checker._model import Property
    from otamodel.env._actions import step_without_budget as device_step

    states = [start]
    world = start
    for action in recovery.actions:
        world = device_step(world, action).world
        states.append(world)
    cycle = states[-recovery.cycle :]
    out = []
    for prop in properties:
        assert isinstance(prop, Property)
        if prop.kind is PropertyKind.ALWAYS:
            if not all(prop.predicate(s) for s in states):
                out.append(prop.name)
        elif not any(prop.predicate(s) for s in cycle):
            out.append(prop.name)
    return out


__all__ = [
    "CutTable",
    "DoubleCut",
    "DoubleSummary",
    "get_cut_table",
    "get_double_summary",
]
