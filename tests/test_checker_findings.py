"""Findings (CHK-30..CHK-33) on textbook models: distinct causes and livelocks give distinct
findings; IDs do not depend on worker count, action order or unrelated budgets."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest

from otamodel.checker import Property, PropertyKind, check
from otamodel.checker._classify import get_finding_id


@attrs.frozen
class Valve:
    pos: int = 0
    broken: str = ""
    spare: int = 0


class ValveModel:
    """A valve cycling 0 → 1 → 2 → 3 → 0. Fault ``a`` (at 1) makes it shuttle 1 ↔ 2 forever,
    fault ``b`` (at 2) jams it at 2; ``noop`` spends an unrelated budget."""

    def __init__(self, *, reverse: bool = False, spare: int = 0) -> None:
        self.reverse = reverse
        self.spare = spare

    def init_states(self) -> Sequence[Valve]:
        return [Valve(spare=self.spare)]

    def actions(self, state: Valve) -> list[str]:
        out = ["step", "fault_a", "fault_b", "noop"]
        return out[::-1] if self.reverse else out

    def next_state(self, state: Valve, action: str) -> Valve | None:
        if action == "noop":
            return attrs.evolve(state, spare=state.spare - 1) if state.spare else None
        if action == "fault_a":
            return attrs.evolve(state, broken="a") if state.pos == 1 and not state.broken else None
        if action == "fault_b":
            return attrs.evolve(state, broken="b") if state.pos == 2 and not state.broken else None
        if state.broken == "a":
            return attrs.evolve(state, pos=3 - state.pos)
        if state.broken == "b":
            return state
        return attrs.evolve(state, pos=(state.pos + 1) % 4)

    def properties(self) -> Sequence[Property[Valve, str]]:
        return [
            Property.always("intact", lambda s: not s.broken),
            Property.eventually("home", lambda s: s.pos == 0, edge_filter=lambda a: a == "step"),
        ]

    def get_edge_key(self, prop: object, before: Valve | None, action: str | None,
                     after: Valve) -> tuple[str, ...]:  # fmt: skip
        if action is None:
            return ("init",)
        return (action, f"at {before.pos}" if before is not None else "")

    def get_terminal_key(self, prop: object, states: Sequence[Valve]) -> tuple[str, ...]:
        return tuple(sorted({f"pos {s.pos} broken {s.broken}" for s in states}))


def test_two_invariant_causes_give_two_findings() -> None:
    report = check(ValveModel(), findings=True)
    intact = report.get_findings("intact")
    assert sorted(f.key for f in intact) == [("fault_a", "at 1"), ("fault_b", "at 2")]
    for finding in intact:
        assert finding.kind is PropertyKind.ALWAYS
        assert finding.trace.actions[finding.decisive] == finding.key[0]
        assert finding.trace.last_state.broken
        assert finding.edges == 1 and finding.states == 1
    assert len({f.id for f in intact}) == 2
    assert all(f.id.startswith("I-") for f in intact)


def test_two_livelocks_give_two_findings() -> None:
    report = check(ValveModel(), findings=True)
    home = report.get_findings("home")
    terminals = sorted(f.terminal for f in home)
    assert terminals == [
        ("pos 1 broken a", "pos 2 broken a"),
        ("pos 2 broken b",),
    ]
    for finding in home:
        assert finding.cause[0] in ("fault_a", "fault_b")
        # the trace ends inside the terminal behaviour
        last = finding.trace.last_state
        assert f"pos {last.pos} broken {last.broken}" in finding.terminal


def test_default_keys_without_hooks() -> None:
    class Bare(ValveModel):
        get_edge_key = None  # type: ignore[assignment]
        get_terminal_key = None  # type: ignore[assignment]

    report = check(Bare(), findings=True)
    assert sorted(f.key for f in report.get_findings("intact")) == [("'fault_a'",), ("'fault_b'",)]
    assert len(report.get_findings("home")) == 2


def _ids(model: ValveModel, workers: int = 1) -> list[tuple[str, tuple[str, ...]]]:
    report = check(model, findings=True, workers=workers)
    return sorted((f.id, f.key) for f in report.findings)


def test_ids_are_stable() -> None:
    reference = _ids(ValveModel())
    assert len(reference) == 4
    assert _ids(ValveModel(), workers=2) == reference
    assert _ids(ValveModel(reverse=True)) == reference
    assert _ids(ValveModel(spare=2)) == reference


def test_cheapest_trace_per_finding() -> None:
    model = ValveModel(spare=1)
    report = check(model, findings=True, cost=lambda a: 1 if a.startswith("fault") else 0)
    for finding in report.findings:
        assert finding.cost == 1
        assert "noop" not in finding.trace.actions


def test_measure_counts_every_rise() -> None:
    """A property with a measure reports a violation after the first one too."""

    class Counter:
        def init_states(self) -> list[tuple[int, int]]:
            return [(0, 0)]

        def actions(self, s: tuple[int, int]) -> list[str]:
            return ["x", "y"]

        def next_state(self, s: tuple[int, int], a: str) -> tuple[int, int] | None:
            pos, bad = s
            if pos >= 3:
                return None
            return (pos + 1, bad + (1 if (a == "y" and pos in (0, 2)) else 0))

        def properties(self) -> list[Property[tuple[int, int], str]]:
            return [Property.always("clean", lambda s: s[1] == 0, measure=lambda s: s[1])]

        def get_edge_key(self, p: object, b: tuple[int, int] | None, a: str | None,
                         t: tuple[int, int]) -> tuple[str, ...]:  # fmt: skip
            return (str(a), f"at {b[0] if b else '-'}")

    report = check(Counter(), findings=True)
    assert sorted(f.key for f in report.findings) == [("y", "at 0"), ("y", "at 2")]


def test_no_witness_is_a_finding() -> None:
    class Never(ValveModel):
        def properties(self) -> Sequence[Property[Valve, str]]:
            return [Property.sometimes("at five", lambda s: s.pos == 5)]

    report = check(Never(), findings=True)
    assert [f.key for f in report.findings] == [("no witness",)]


@pytest.mark.parametrize("digits", [4, 8])
def test_finding_id_shape(digits: int) -> None:
    fid = get_finding_id("NB", "no-brick", ("a", "b"), digits)
    assert fid.startswith("NB-") and len(fid) == 3 + digits
    assert fid == get_finding_id("NB", "no-brick", ("a", "b"), digits)
    assert fid != get_finding_id("NB", "no-brick", ("a", "c"), digits)


class CausedValve(ValveModel):
    """The valve with the cause hooks (CHK-34): faults are causes, ``step`` is the valve's own
    progress. ``fault_c`` (a second fault at 1) breaks it like ``fault_a``; the violation of
    ``steady`` is the valve's own step into 2 while broken ``a``, after either fault."""

    def actions(self, state: Valve) -> list[str]:
        out = [*super().actions(state), "fault_c"]
        return out[::-1] if self.reverse else out

    def next_state(self, state: Valve, action: str) -> Valve | None:
        if action == "fault_c":
            return attrs.evolve(state, broken="a") if state.pos == 1 and not state.broken else None
        return super().next_state(state, action)

    def properties(self) -> Sequence[Property[Valve, str]]:
        return [
            Property.always("steady", lambda s: not (s.broken == "a" and s.pos == 2)),
            Property.eventually("home", lambda s: s.pos == 0, edge_filter=lambda a: a == "step"),
        ]

    def is_cause_action(self, action: str) -> bool:
        return action.startswith("fault")  # ``noop`` touches nothing of the valve

    def get_cause_key(self, before: Valve | None, action: str | None) -> tuple[str, ...]:
        return ("start",) if action is None else (action,)


def test_own_steps_are_split_by_their_last_cause() -> None:
    report = check(CausedValve(), findings=True, cost=lambda a: 1 if a != "step" else 0)
    steady = report.get_findings("steady")
    assert sorted(f.key for f in steady) == [
        ("step", "at 1", "after:", "fault_a"),
        ("step", "at 1", "after:", "fault_c"),
    ]
    for finding in steady:
        # the trace goes through the cause its key names, then the valve's own steps
        cause = finding.key[-1]
        assert cause in finding.trace.actions
        after = finding.trace.actions[finding.trace.actions.index(cause) + 1 :]
        assert set(after) == {"step"}
    home = report.get_findings("home")
    causes = sorted(f.cause for f in home)
    assert ("fault_a", "at 1") in causes and ("fault_c", "at 1") in causes


def test_caused_ids_are_stable() -> None:
    def ids(model: CausedValve, workers: int = 1) -> list[tuple[str, tuple[str, ...]]]:
        report = check(model, findings=True, workers=workers, cost=lambda a: int(a != "step"))
        return sorted((f.id, f.key) for f in report.findings)

    reference = ids(CausedValve())
    assert ids(CausedValve(), workers=2) == reference
    assert ids(CausedValve(reverse=True)) == reference
    assert ids(CausedValve(spare=2)) == reference
