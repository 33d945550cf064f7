"""Transition tables as data, the ``transitions`` machines built from them, and the
compiled table that :func:`step` uses.

A machine is a list of :class:`Transition` rows ``(source, trigger, dest, guard, effect)``.
For one event the rows of the current state are tried in order and the first whose guard
holds fires: its effect (a pure ``World -> World`` function) runs, then the machine's
state becomes ``dest`` (``None``: stay). The same rows are handed to a real
``transitions.Machine`` (diagrams, introspection, and a conformance test that it agrees
with the compiled table).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from transitions import Machine

from otamodel.errors import ModelDefinitionError
from otamodel.model._state import World

Guard = Callable[[World], bool]
Effect = Callable[[World], World]


_R = TypeVar("_R")


def memo_last(function: Callable[[World], _R]) -> Callable[[World], _R]:
    """Remember the result for the last world object: a guard and the effect of the same
    transition evaluate the same pure function on the same world, one after the other."""
    last: list[Any] = [None, None]

    def wrapper(world: World) -> _R:
        if last[0] is not world:
            last[1] = function(world)
            last[0] = world
        return last[1]  # type: ignore[no-any-return]

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def _identity(world: World) -> World:
    return world


@attrs.frozen
class Transition:
    """One row of a machine's table."""

    source: enum.Enum
    trigger: str
    dest: enum.Enum | None
    guard: Guard | None = None
    effect: Effect = _identity
    label: str = ""

    def get_name(self) -> str:
        guard = getattr(self.guard, "__name__", "") if self.guard else ""
        dest = self.dest.name if self.dest is not None else "(stay)"
        suffix = f" [{guard}]" if guard else ""
        return f"{self.source.name} --{self.trigger}{suffix}--> {dest}"


@attrs.frozen
class MachineSpec:
    """A machine: its states (an enum), its table, and where its state lives in the world."""

    name: str
    states: type[enum.Enum]
    initial: enum.Enum
    transitions: tuple[Transition, ...]
    get_state: Callable[[World], enum.Enum]
    set_state: Callable[[World, enum.Enum], World]
    table: dict[tuple[enum.Enum, str], tuple[Transition, ...]] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        table: dict[tuple[enum.Enum, str], list[Transition]] = {}
        for row in self.transitions:
            if not isinstance(row.source, self.states):
                raise ModelDefinitionError(f"{self.name}: {row.source} is not a {self.states}")
            table.setdefault((row.source, row.trigger), []).append(row)
        object.__setattr__(self, "table", {k: tuple(v) for k, v in table.items()})

    def get_triggers(self, state: enum.Enum) -> list[str]:
        return sorted({t for (s, t) in self.table if s is state})


@attrs.frozen
class Fired:
    """The outcome of one machine event: the row that fired (or why none did)."""

    world: World
    transition: Transition | None
    refusal: str | None = None


def fire(spec: MachineSpec, world: World, trigger: str) -> Fired:
    """Fire ``trigger`` on ``spec`` using the compiled table (total: refusals are values)."""
    state = spec.get_state(world)
    rows = spec.table.get((state, trigger))
    if not rows:
        return Fired(world, None, f"{spec.name}: {trigger!r} is not accepted in {state.name}")
    for row in rows:
        if row.guard is None or row.guard(world):
            new = row.effect(world)
            if row.dest is not None:
                new = spec.set_state(new, row.dest)
            return Fired(new, row)
    return Fired(world, None, f"{spec.name}: no guard of {trigger!r} holds in {state.name}")


class Shell:
    """A mutable adapter a ``transitions.Machine`` can drive (compares by identity)."""

    def __init__(self, spec: MachineSpec, world: World) -> None:
        self.spec = spec
        self.world = world
        self.state = spec.get_state(world).name
        self.fired: Transition | None = None


def build_machine(spec: MachineSpec, model: Any = None) -> Machine:
    """A ``transitions.Machine`` with exactly the rows of ``spec`` (guards/effects as callables)."""
    rows: list[dict[str, Any]] = []
    for row in spec.transitions:

        def guard(event: Any, _row: Transition = row) -> bool:
            return _row.guard is None or _row.guard(event.model.world)

        def effect(event: Any, _row: Transition = row) -> None:
            shell = event.model
            shell.world = _row.effect(shell.world)
            shell.fired = _row

        guard.__name__ = getattr(row.guard, "__name__", "always") if row.guard else "always"
        rows.append(
            {
                "trigger": row.trigger,
                "source": row.source.name,
                "dest": row.dest.name if row.dest is not None else None,
                "conditions": [guard],
                "before": [effect],
            }
        )
    return Machine(
        model=model if model is not None else "self",
        states=[s.name for s in spec.states],
        transitions=rows,
        initial=spec.initial.name,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=True,
    )


def fire_with_machine(spec: MachineSpec, machine: Machine, world: World, trigger: str) -> Fired:
    """Fire ``trigger`` through the real ``transitions.Machine`` (for the conformance test)."""
    shell = Shell(spec, world)
    machine.add_model(shell, initial=spec.get_state(world).name)
    try:
        shell.trigger(trigger)  # type: ignore[attr-defined]
    finally:
        machine.remove_model(shell)
    row = shell.fired
    if row is None:
        return Fired(world, None, "refused")
    new = shell.world
    if row.dest is not None:
        new = spec.set_state(new, row.dest)
    return Fired(new, row)


def get_mermaid(spec: MachineSpec) -> str:
    """A stable Mermaid state diagram of ``spec`` (one edge per table row, guards as labels)."""
    lines = ["stateDiagram-v2", f"    [*] --> {spec.initial.name}"]
    for row in spec.transitions:
        dest = row.dest.name if row.dest is not None else row.source.name
        guard = getattr(row.guard, "__name__", "") if row.guard else ""
        label = row.trigger + (f" [{guard}]" if guard else "")
        lines.append(f"    {row.source.name} --> {dest}: {label}")
    return "\n".join(lines) + "\n"


def get_dot(spec: MachineSpec) -> str:
    """A Graphviz DOT digraph of ``spec``."""
    lines = [f'digraph "{spec.name}" {{', "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for state in spec.states:
        lines.append(f'  "{state.name}";')
    for row in spec.transitions:
        dest = row.dest.name if row.dest is not None else row.source.name
        guard = getattr(row.guard, "__name__", "") if row.guard else ""
        label = row.trigger + (f"\\n[{guard}]" if guard else "")
        lines.append(f'  "{row.source.name}" -> "{dest}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
