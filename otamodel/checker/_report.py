"""What a check returns: per-property verdicts with traces, counts, and why the search stopped."""

from __future__ import annotations

import enum
from typing import Generic

import attrs

from otamodel.checker._model import A, PropertyKind, S
from otamodel.checker._trace import Trace


class Verdict(enum.Enum):
    """The outcome for one property (CHK-4 to CHK-6, CHK-11)."""

    HOLDS = "holds"
    """``always``/``eventually`` proven over the complete reachable graph."""
    VIOLATED = "violated"
    """A counterexample exists (sound even when the search was bounded)."""
    WITNESSED = "witnessed"
    """``sometimes``: an example state was reached."""
    NO_WITNESS = "no-witness"
    """``sometimes``: the complete graph has no example state (the property is vacuous)."""
    BOUNDED = "bounded"
    """No counterexample/witness in an incomplete search: unknown beyond the bound."""

    @property
    def is_failing(self) -> bool:
        """Violated, or a ``sometimes`` property without a witness in a complete search."""
        return self in (Verdict.VIOLATED, Verdict.NO_WITNESS)


class StopReason(enum.Enum):
    """Why the breadth-first search stopped (CHK-9)."""

    EXHAUSTED = "exhausted"
    """Every reachable state was expanded."""
    MAX_DEPTH = "max-depth"
    MAX_STATES = "max-states"
    TIME_LIMIT = "time-limit"
    FIRST_VIOLATION = "first-violation"
    """``stop_on_violation`` and an ``always`` property was violated."""


_LABELS = {
    (PropertyKind.ALWAYS, Verdict.BOUNDED): "holds (bounded)",
    (PropertyKind.SOMETIMES, Verdict.BOUNDED): "no witness (bounded)",
    (PropertyKind.EVENTUALLY, Verdict.BOUNDED): "holds (bounded)",
    (PropertyKind.SOMETIMES, Verdict.NO_WITNESS): "no witness found",
}


@attrs.frozen
class PropertyResult(Generic[S, A]):
    """The verdict on one property and, where there is one, its shortest trace.

    ``trace`` is the counterexample (``always``: ends in the violating state; ``eventually``:
    ends in a state from which the goal is unreachable) or the witness (``sometimes``).
    """

    name: str
    kind: PropertyKind
    verdict: Verdict
    trace: Trace[S, A] | None = None
    description: str = ""
    # CHK-18: for an ``eventually`` violation, the steps after the trace's last state along
    # the property's allowed edges, until they close a cycle or stop: why the goal stays out
    # of reach (a 0-step trace alone would not say).
    lasso: tuple[tuple[A, S], ...] = ()

    @property
    def is_failing(self) -> bool:
        """Whether this result should fail a check run (CHK-11)."""
        return self.verdict.is_failing

    def get_label(self) -> str:
        """A short human verdict such as ``holds (bounded)`` or ``violated at depth 3``."""
        label = _LABELS.get((self.kind, self.verdict), self.verdict.value)
        if self.trace is not None:
            label += f" at depth {len(self.trace)}"
        return label


@attrs.frozen
class ProgressInfo:
    """A snapshot handed to the ``progress`` hook while the search runs (CHK-12)."""

    states: int
    transitions: int
    frontier: int
    depth: int
    seconds: float
    is_final: bool = False

    @property
    def states_per_second(self) -> float:
        """Unique states discovered per second so far."""
        return self.states / self.seconds if self.seconds > 0 else 0.0


@attrs.frozen
class CheckReport(Generic[S, A]):
    """The result of :func:`~otamodel.checker.check`.

    ``transitions`` counts every non-refused ``next_state`` result of an expanded state
    (including ones to already known states); ``pruned`` counts transitions to states outside
    ``within_boundary``. ``max_depth`` is the depth of the deepest discovered state.
    """

    unique_states: int
    transitions: int
    max_depth: int
    seconds: float
    stop_reason: StopReason
    is_complete: bool
    results: tuple[PropertyResult[S, A], ...]
    pruned: int = 0
    workers: int = 1

    @property
    def states_per_second(self) -> float:
        """Unique states per second of wall time."""
        return self.unique_states / self.seconds if self.seconds > 0 else 0.0

    @property
    def is_ok(self) -> bool:
        """No property is violated and every ``sometimes`` property found a witness
        or is only bounded (CHK-11)."""
        return not any(result.is_failing for result in self.results)

    def get_result(self, name: str) -> PropertyResult[S, A]:
        """The result for the property called ``name`` (``KeyError`` if there is none)."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    def get_failures(self) -> tuple[PropertyResult[S, A], ...]:
        """The failing results, in property order."""
        return tuple(result for result in self.results if result.is_failing)

    def get_summary_lines(self) -> list[str]:
        """A plain-text summary: counts, stop reason, then one line per property."""
        complete = "complete" if self.is_complete else "INCOMPLETE"
        lines = [
            f"{self.unique_states} states, {self.transitions} transitions, "
            f"max depth {self.max_depth}, {self.seconds:.2f} s "
            f"({self.states_per_second:,.0f} states/s), "
            f"stopped: {self.stop_reason.value} ({complete})"
        ]
        if self.pruned:
            lines.append(f"{self.pruned} transitions pruned by within_boundary")
        for result in self.results:
            mark = "FAIL" if result.is_failing else "ok"
            lines.append(f"[{mark:>4}] {result.kind.value} {result.name!r}: {result.get_label()}")
        return lines
