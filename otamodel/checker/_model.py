"""The model protocol and named properties the checker explores (see docs/spec/checker.md)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs

S = TypeVar("S", bound=Hashable)
A = TypeVar("A", bound=Hashable)


class PropertyKind(enum.Enum):
    """How a property's predicate is judged over the explored graph."""

    ALWAYS = "always"
    """Invariant: the predicate holds in every reachable state (CHK-4)."""
    SOMETIMES = "sometimes"
    """Non-triviality: some reachable state satisfies the predicate (CHK-5)."""
    EVENTUALLY = "eventually"
    """Progress: from every reachable state a goal state is still reachable (CHK-6)."""


@attrs.frozen
class Property(Generic[S, A]):
    """A named property of a model; build one with :meth:`always`, :meth:`sometimes`
    or :meth:`eventually` rather than the constructor.

    ``edge_filter`` only matters for ``eventually``: it restricts which transitions count
    when asking whether a goal can still be reached (CHK-7), e.g. only fault-free ones.
    """

    name: str
    kind: PropertyKind
    predicate: Callable[[S], bool]
    description: str = ""
    edge_filter: Callable[[A], bool] | None = None
    measure: Callable[[S], int] | None = None
    """Only for ``always``: how many violations happened so far (never decreasing, 0 while
    the predicate holds). Findings then count each rise as a violation (CHK-30), so a second
    violation after the first still shows."""

    @classmethod
    def always(
        cls,
        name: str,
        predicate: Callable[[S], bool],
        description: str = "",
        *,
        measure: Callable[[S], int] | None = None,
    ) -> Property[S, A]:
        """An invariant: ``predicate`` must hold in every reachable state (CHK-4)."""
        return cls(name, PropertyKind.ALWAYS, predicate, description, measure=measure)

    @classmethod
    def sometimes(
        cls, name: str, predicate: Callable[[S], bool], description: str = ""
    ) -> Property[S, A]:
        """A witness must exist: some reachable state satisfies ``predicate`` (CHK-5)."""
        return cls(name, PropertyKind.SOMETIMES, predicate, description)

    @classmethod
    def eventually(
        cls,
        name: str,
        predicate: Callable[[S], bool],
        description: str = "",
        *,
        edge_filter: Callable[[A], bool] | None = None,
    ) -> Property[S, A]:
        """From every reachable state a ``predicate`` state stays reachable (CHK-6),
        using only transitions whose action passes ``edge_filter`` (CHK-7)."""
        return cls(name, PropertyKind.EVENTUALLY, predicate, description, edge_filter)

    def is_edge_allowed(self, action: A) -> bool:
        """Whether ``action`` counts for this property's reachability question (CHK-7)."""
        return self.edge_filter is None or self.edge_filter(action)


class Model(Protocol[S, A]):
    """What the checker needs from a model (the Stateright ``Model`` trait, in Python).

    States and actions must be hashable (and picklable for ``workers > 1`` where the
    platform cannot fork). Further hooks are optional and found by name:

    * ``within_boundary(state) -> bool``: ``False`` prunes the state from the search; the
      search is then incomplete (CHK-10). Restrictions that are part of the system belong in
      :meth:`actions` instead.
    * ``format_action(action) -> str``: how traces print an action (default ``repr``).
    * ``end_search() -> None``: called when the search is over (in every process that
      searched): the model may free what it kept only to speed the search up (caches).
    * ``get_verdict_key(state) -> int``: a fingerprint of what the properties' predicates
      and measures read: states with equal keys get one evaluation of the verdict (CHK-37).
    * ``get_variant_key(state) -> int``, ``get_variant_delta(state)`` and
      ``make_variant(variant, delta) -> state`` (all three or none): states with equal
      variant keys differ only in their deltas; worker processes keep a state where its
      variants are (CHK-38).
    """

    def init_states(self) -> Sequence[S]:
        """The initial states, in a deterministic order."""
        ...

    def actions(self, state: S) -> Iterable[A]:
        """The actions offered in ``state``, in a deterministic order."""
        ...

    def next_state(self, state: S, action: A) -> S | None:
        """The successor of ``state`` under ``action``; ``None`` if the action is refused."""
        ...

    def properties(self) -> Sequence[Property[S, A]]:
        """The named properties to check."""
        ...


class BoundedModel(Model[S, A], Protocol[S, A]):
    """A :class:`Model` that also bounds the search with ``within_boundary`` (CHK-10)."""

    def within_boundary(self, state: S) -> bool:
        """Whether ``state`` is explored; ``False`` prunes it (and marks the search bounded)."""
        ...


def end_search(model: object) -> None:
    """Call the model's optional ``end_search`` hook."""
    hook = getattr(model, "end_search", None)
    if callable(hook):
        hook()


def get_verdict_key(model: object) -> Callable[[Any], int] | None:
    """CHK-37: the model's optional ``get_verdict_key`` hook, or ``None``."""
    hook = getattr(model, "get_verdict_key", None)
    return hook if callable(hook) else None


def get_action_label(model: object, action: object) -> str:
    """``model.format_action(action)`` when the model has the hook, else ``repr(action)``."""
    formatter = getattr(model, "format_action", None)
    if formatter is None:
        return repr(action)
    return str(formatter(action))


def get_boundary(model: object) -> Callable[[Any], bool] | None:
    """The model's optional ``within_boundary`` hook, or ``None``."""
    hook = getattr(model, "within_boundary", None)
    return hook if callable(hook) else None


__all__ = [
    "A",
    "BoundedModel",
    "Model",
    "Property",
    "PropertyKind",
    "S",
    "end_search",
    "get_action_label",
    "get_boundary",
    "get_verdict_key",
]
