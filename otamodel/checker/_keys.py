"""The classification's keys, computed where the states are (CHK-35).

A finding's key is a pure function of a few states and actions (the model's ``get_edge_key``,
``get_terminal_key`` and ``get_cause_key`` hooks). The classifier states what it needs as
:class:`KeyRequest` values (state numbers and interned actions, no states); :func:`get_keys`
re-creates the states a batch of requests reads and returns their keys. The single-process
checker runs it over its own replayer; the parallel checker sends each request to the worker
that keeps the nearest replay start of the request's base state, so no state crosses a process
boundary and the replays run in the workers side by side.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from otamodel.checker._model import Property, get_action_label

Key = tuple[str, ...]
Edge = tuple[int, int, int]
"""(source, interned action, target)."""


class Need(enum.Enum):
    """What a request asks for."""

    EDGE = "edge"
    """``get_edge_key(prop, before, action, after)``: a violating or entering step."""
    TERMINAL = "terminal"
    """``get_terminal_key(prop, states)``: a bottom component's behaviour."""
    CAUSE = "cause"
    """``get_cause_key(before, action)``: a cause step (CHK-34)."""


@attrs.frozen
class KeyRequest:
    """One key the classification needs. ``base`` is the state replayed along the BFS tree
    (``-1``: none is needed); ``walk`` the steps taken from known states after it, in order;
    ``before``/``after``/``action`` (``-1``: none) or ``members`` the states and action the
    hook reads."""

    need: Need
    base: int
    position: int = -1
    before: int = -1
    action: int = -1
    after: int = -1
    members: tuple[int, ...] = ()
    walk: tuple[Edge, ...] = ()


class KeyHooks:
    """The model's key hooks, or the defaults a model without them gets."""

    def __init__(self, model: object, properties: Sequence[Property[Any, Any]]) -> None:
        self.model = model
        self.properties = properties
        edge = getattr(model, "get_edge_key", None)
        self.edge_key: Callable[[Property[Any, Any], Any, Any, Any], Key] = (
            edge if callable(edge) else self._default_edge_key
        )
        terminal = getattr(model, "get_terminal_key", None)
        self.terminal_key: Callable[[Property[Any, Any], Sequence[Any]], Key] = (
            terminal if callable(terminal) else _default_terminal_key
        )
        cause = getattr(model, "get_cause_key", None)
        self.cause_key: Callable[[Any, Any], Key] = (
            cause if callable(cause) else self._default_cause_key
        )

    def _default_edge_key(self, _prop: Any, _before: Any, action: Any, _after: Any) -> Key:
        return ("init",) if action is None else (get_action_label(self.model, action),)

    def _default_cause_key(self, _before: Any, action: Any) -> Key:
        return ("start",) if action is None else (get_action_label(self.model, action),)

    def get_key(self, request: KeyRequest, states: dict[int, Any], table: Sequence[Any]) -> Key:
        action = table[request.action] if request.action >= 0 else None
        before = states[request.before] if request.before >= 0 else None
        if request.need is Need.CAUSE:
            return tuple(self.cause_key(before, action))
        prop = self.properties[request.position]
        if request.need is Need.TERMINAL:
            return tuple(self.terminal_key(prop, [states[k] for k in request.members]))
        after = states[request.after] if request.after >= 0 else None
        return tuple(self.edge_key(prop, before, action, after))


_NEEDS = tuple(Need)
_NEED_CODES = {need: code for code, need in enumerate(_NEEDS)}
_BALANCE_SLACK = 0.05
"""Key requests are moved to another worker while a worker's share of their replay steps
exceeds an even share by more than this fraction (:func:`get_balanced_homes`)."""

PackedRequest = tuple[int, int, int, int, int, int, tuple[int, ...], tuple[Edge, ...]]
"""A request as a plain tuple (``Need`` as its position in the enum): what travels to a
worker (plain tuples pickle about six times faster than records)."""


def pack_requests(requests: Sequence[KeyRequest]) -> list[PackedRequest]:
    codes = _NEED_CODES
    return [
        (codes[r.need], r.base, r.position, r.before, r.action, r.after, r.members, r.walk)
        for r in requests
    ]


def unpack_requests(rows: Sequence[PackedRequest]) -> list[KeyRequest]:
    needs = _NEEDS
    return [
        KeyRequest(needs[code], base, position, before, action, after, members, walk)
        for code, base, position, before, action, after, members, walk in rows
    ]


def get_step_request(position: int, always: bool, edge: Edge) -> KeyRequest:
    """The key of a violating (``always``) or entering (eventually) step of the property at
    ``position``; for ``always`` the step's outcome is part of the key, so its target is
    stepped from its source (CHK-31: the entered state is not in an entering step's key)."""
    source, action, target = edge
    if source < 0:
        return KeyRequest(Need.EDGE, target, position, after=target)
    if not always:
        return KeyRequest(Need.EDGE, source, position, before=source, action=action)
    walk = ((source, action, target),)
    return KeyRequest(
        Need.EDGE, source, position, before=source, action=action, after=target, walk=walk
    )


def get_balanced_homes(
    homes: dict[int, int], costs: dict[int, int], workers: int
) -> dict[int, int]:
    """The groups of key requests (by replay start) that move to another worker, and where:
    while a worker's cost is above an even share by more than ``_BALANCE_SLACK``, its largest
    groups that fit the gap go to the least loaded worker (CHK-35). A moved group replays from
    the nearest start its new worker keeps, a few levels further up."""
    loads = [0] * workers
    owned: list[list[tuple[int, int]]] = [[] for _ in range(workers)]
    for anchor, home in homes.items():
        loads[home] += costs[anchor]
        owned[home].append((costs[anchor], anchor))
    even = sum(loads) / workers
    moved: dict[int, int] = {}
    for heavy in sorted(range(workers), key=loads.__getitem__, reverse=True):
        if loads[heavy] <= even * (1 + _BALANCE_SLACK):
            break
        for cost, anchor in sorted(owned[heavy], reverse=True):
            light = min(range(workers), key=loads.__getitem__)
            if 2 * cost > loads[heavy] - loads[light]:
                continue  # moving it would not even the two out
            moved[anchor] = light
            loads[heavy] -= cost
            loads[light] += cost
            if loads[heavy] <= even * (1 + _BALANCE_SLACK):
                break
    return moved


def _default_terminal_key(_prop: Any, states: Sequence[Any]) -> Key:
    return tuple(sorted({repr(s) for s in states}))


def get_keys(
    hooks: KeyHooks,
    requests: Sequence[KeyRequest],
    fetch_states: Callable[[Sequence[int]], list[Any]],
    next_state: Callable[[Any, Any], Any],
    table: Sequence[Any],
) -> tuple[list[Key], dict[int, Any]]:
    """The keys of ``requests`` (in order) and the states they read, by number: the bases
    replayed (their shared prefixes once), then each walk stepped from its known source."""
    bases = sorted({request.base for request in requests if request.base >= 0})
    states = dict(zip(bases, fetch_states(bases), strict=True))
    for request in requests:
        for source, action, target in request.walk:
            if target not in states:
                states[target] = next_state(states[source], table[action])
    return [hooks.get_key(request, states, table) for request in requests], states


__all__ = [
    "Edge",
    "Key",
    "KeyHooks",
    "KeyRequest",
    "Need",
    "PackedRequest",
    "get_balanced_homes",
    "get_keys",
    "get_step_request",
    "pack_requests",
    "unpack_requests",
]
