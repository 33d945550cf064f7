"""Model-independent traces: an initial state and the (action, state) steps from it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic

import attrs

from otamodel.checker._model import A, Model, S, get_action_label
from otamodel.errors import TraceError


@attrs.frozen(repr=False)
class Trace(Generic[S, A]):
    """A path through a model: ``init`` then each ``(action, state)`` step in order.

    The OTA layer serialises :attr:`actions` and rebuilds a trace with :func:`replay_trace`.
    """

    init: S
    steps: tuple[tuple[A, S], ...] = ()

    @property
    def actions(self) -> tuple[A, ...]:
        """The actions taken, in order (what a trace file stores)."""
        return tuple(action for action, _ in self.steps)

    @property
    def states(self) -> tuple[S, ...]:
        """Every state on the path, the initial one first."""
        return (self.init, *(state for _, state in self.steps))

    @property
    def last_state(self) -> S:
        """The state the trace ends in."""
        return self.steps[-1][1] if self.steps else self.init

    def __len__(self) -> int:
        """The number of steps (actions), i.e. the depth of :attr:`last_state`."""
        return len(self.steps)

    def __iter__(self) -> Iterator[tuple[A, S]]:
        return iter(self.steps)

    def get_path(self) -> list[tuple[A | None, S]]:
        """``[(None, init), (action1, state1), ...]``: every state with the action into it."""
        return [(None, self.init), *self.steps]

    def __repr__(self) -> str:
        """Short: the length, the first actions and the last state (never every state)."""
        shown = ", ".join(str(a) for a in self.actions[:3])
        more = ", …" if len(self.steps) > 3 else ""
        return f"<Trace {len(self.steps)} steps [{shown}{more}] -> {self.last_state!r}>"

    def get_story(self, model: object = None) -> str:
        """A concise account of the steps that matter: the model's ``get_story_lines(trace)``
        hook when it has one, else one line per step (:meth:`get_lines`)."""
        teller = getattr(model, "get_story_lines", None)
        lines = teller(self) if callable(teller) else self.get_lines(model)
        return "\n".join(lines)

    def get_lines(self, model: object = None) -> list[str]:
        """One line per state, actions labelled with the model's ``format_action`` hook."""
        lines = [f"init: {self.init!r}"]
        for number, (action, state) in enumerate(self.steps, 1):
            lines.append(f"{number:>3}. {get_action_label(model, action)} -> {state!r}")
        return lines


def replay_trace(model: Model[S, A], actions: Iterable[A], init: S | None = None) -> Trace[S, A]:
    """Rebuild a :class:`Trace` by applying ``actions`` with ``model.next_state``.

    Each action must be one the model offers in the current state and must not be refused;
    otherwise :class:`~otamodel.errors.TraceError` names the step (CHK-13).
    """
    inits = list(model.init_states())
    if init is None:
        if not inits:
            raise TraceError("the model has no initial state")
        init = inits[0]
    elif init not in inits:
        raise TraceError("the trace does not start in an initial state of the model", where="init")
    state = init
    steps: list[tuple[A, S]] = []
    for number, action in enumerate(actions):
        where = f"step {number + 1}"
        if action not in list(model.actions(state)):
            label = get_action_label(model, action)
            raise TraceError(f"action {label} is not offered in this state", where=where)
        following = model.next_state(state, action)
        if following is None:
            label = get_action_label(model, action)
            raise TraceError(f"action {label} is refused in this state", where=where)
        steps.append((action, following))
        state = following
    return Trace(init, tuple(steps))
