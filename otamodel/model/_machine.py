"""The machines as ``transitions`` machines, and the fast path :func:`step` compiles from them.

A machine is declared once (:class:`MachineDef`): its states (an enum; a state with a
sub-state machine is a :class:`Nest` of a second enum) and its transitions in the form
``transitions`` takes (``trigger``, ``source``, ``dest``, ``conditions``, ``unless``,
``before``), whose callables are small wrappers over pure functions of the world:

- :class:`When` wraps a guard ``World -> bool`` (``(World, arg) -> bool`` for an event with
  an argument);
- :class:`Do` wraps an effect ``World -> World``;
- :class:`Attempt` wraps a *partial* effect ``World -> World | None`` and sits last among the
  conditions: ``None`` means "does not apply" and the next transition is tried (this replaces
  a guard and an effect that would compute the same thing twice).

:func:`build_machine` hands the declaration to a real ``transitions`` HierarchicalMachine.
:func:`compile_machine` reads that Machine's own event and transition lists back
(``machine.events[trigger].transitions[source]``, each transition's ``conditions`` and
``before`` callbacks) into the table :func:`fire` runs; there is no second table. The world
keeps each machine's state in plain fields (``get_key``/``set_key``); a transition's effect
never writes them: its destination does (checked by :func:`checking_effects` in tests). One
machine affects another only by sending it an event (:func:`send`).
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Literal, TypeVar

import attrs
from transitions.extensions import HierarchicalGraphMachine, HierarchicalMachine
from transitions.extensions.nesting import NestedState

from otamodel.errors import ModelDefinitionError
from otamodel.model._config import Variant
from otamodel.model._record import record
from otamodel.model._state import World

SEPARATOR = "__"

_A = TypeVar("_A")
Key = Hashable


class _State(NestedState):
    separator = SEPARATOR


class _Machine(HierarchicalGraphMachine):
    """A machine with diagram support (what the diagrams are drawn from)."""

    state_cls = _State


class _Runner(HierarchicalMachine):
    """The same machine without diagram support: what the compiled path is read from and
    what the conformance drives (a graph machine restyles its graph on every firing)."""

    state_cls = _State


@attrs.define
class Cell:
    """What a ``transitions`` model carries through one firing: the world (replaced by the
    effects), the event's argument, and the result an :class:`Attempt` left for ``before``."""

    world: World
    arg: object = None
    attempt: World | None = None


class When:
    """A guard ``World -> bool`` (or ``(World, arg) -> bool`` with ``with_arg``)."""

    def __init__(self, fn: Callable[..., bool], *, with_arg: bool = False) -> None:
        self.fn = fn
        self.with_arg = with_arg
        self.__name__ = fn.__name__

    def __call__(self, cell: Cell) -> bool:
        return self.fn(cell.world, cell.arg) if self.with_arg else self.fn(cell.world)


class Do:
    """An effect ``World -> World`` (or ``(World, arg) -> World`` with ``with_arg``)."""

    def __init__(self, fn: Callable[..., World], *, with_arg: bool = False) -> None:
        self.fn = fn
        self.with_arg = with_arg
        self.__name__ = fn.__name__

    def __call__(self, cell: Cell) -> None:
        cell.world = self.fn(cell.world, cell.arg) if self.with_arg else self.fn(cell.world)


class Attempt:
    """A partial effect ``World -> World | None``: as the last condition it applies or not;
    ``before`` then commits the world it computed (no second evaluation)."""

    def __init__(self, fn: Callable[..., World | None], *, with_arg: bool = False) -> None:
        self.fn = fn
        self.with_arg = with_arg
        self.__name__ = f"applies({fn.__name__})"

    def __call__(self, cell: Cell) -> bool:
        cell.attempt = self.fn(cell.world, cell.arg) if self.with_arg else self.fn(cell.world)
        return cell.attempt is not None


def commit_attempt(cell: Cell) -> None:
    """``before`` callback of a transition with an :class:`Attempt`."""
    assert cell.attempt is not None
    cell.world = cell.attempt
    cell.attempt = None


@attrs.frozen
class Nest:
    """A state with a nested machine: ``children`` in order, the first is entered."""

    state: enum.Enum
    children: type[enum.Enum]


StateRef = enum.Enum | tuple[enum.Enum, enum.Enum]


def state_name(ref: StateRef) -> str:
    if isinstance(ref, tuple):
        return f"{ref[0].name}{SEPARATOR}{ref[1].name}"
    return ref.name


def _get_sources(source: StateRef | Sequence[StateRef]) -> list[StateRef]:
    """A row's sources: a state, a nested state ``(parent, child)`` or a list of them."""
    if isinstance(source, enum.Enum):
        return [source]
    if isinstance(source, list):
        return list(source)
    parent, child = source
    if not isinstance(parent, enum.Enum) or not isinstance(child, enum.Enum):
        raise ModelDefinitionError(f"a row's source must be a state or a list: {source!r}")
    return [(parent, child)]


def row(
    trigger: str,
    source: StateRef | Sequence[StateRef],
    dest: StateRef | None,
    *,
    when: Sequence[Callable[[World], bool]] = (),
    unless: Sequence[Callable[[World], bool]] = (),
    do: Callable[[World], World] | None = None,
    attempt: Callable[[World], World | None] | None = None,
    when_arg: Sequence[Callable[[World, _A], bool]] = (),
    do_arg: Callable[[World, _A], World] | None = None,
    only: Variant | None = None,
) -> dict[str, object]:
    """One transition in the form ``transitions`` takes (``dest`` None: internal)."""
    sources = _get_sources(source)
    conditions: list[object] = [When(fn) for fn in when]
    conditions += [When(fn, with_arg=True) for fn in when_arg]
    before: list[object] = []
    if attempt is not None:
        if unless:
            raise ModelDefinitionError("an attempt must be the last condition (no unless)")
        conditions.append(Attempt(attempt))
        before.append(commit_attempt)
    if do is not None:
        before.append(Do(do))
    if do_arg is not None:
        before.append(Do(do_arg, with_arg=True))
    out: dict[str, object] = {
        "trigger": trigger,
        "source": [state_name(s) for s in sources],
        "dest": state_name(dest) if dest is not None else None,
        "conditions": conditions,
        "unless": [When(fn) for fn in unless],
        "before": before,
    }
    if only is not None:
        out["only"] = only
    return out


@attrs.frozen
class MachineDef:
    """A machine declared once: states, transitions (``transitions`` dicts), initial state,
    and where its state lives in the world."""

    name: str
    states: tuple[enum.Enum | Nest, ...]
    initial: enum.Enum
    transitions: tuple[dict[str, object], ...]
    get_key: Callable[[World], Key]
    set_key: Callable[[World, Key], World]
    nested: bool = False
    finals: tuple[enum.Enum, ...] = ()

    def get_state_list(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for state in self.states:
            if isinstance(state, Nest):
                children = [{"name": c.name, "final": False} for c in state.children]
                out.append(
                    {
                        "name": state.state.name,
                        "children": children,
                        "initial": next(iter(state.children)).name,
                    }
                )
            else:
                out.append({"name": state.name, "final": state in self.finals})
        return out

    def get_keys(self) -> dict[str, Key]:
        """Leaf state name -> the key the world stores."""
        out: dict[str, Key] = {}
        for state in self.states:
            if isinstance(state, Nest):
                for child in state.children:
                    out[state_name((state.state, child))] = (state.state, child)
            else:
                out[state.name] = (state, None) if self.nested else state
        return out

    def get_entry(self) -> dict[str, str]:
        """State name -> the leaf entered (a nest enters its first child)."""
        out = {}
        for state in self.states:
            if isinstance(state, Nest):
                out[state.state.name] = state_name((state.state, next(iter(state.children))))
            else:
                out[state.name] = state.name
        out.update({name: name for name in self.get_keys()})
        return out


Engine = Literal["mermaid", "graphviz"]


def _get_rows(defn: MachineDef, variant: Variant | None) -> list[dict[str, object]]:
    """The transitions of ``defn`` in the form ``transitions`` takes (all rows, or those of
    ``variant``)."""
    rows = []
    for t in defn.transitions:
        if variant is not None and t.get("only") not in (None, variant):
            continue
        rows.append({k: v for k, v in t.items() if k != "only"})
    return rows


def build_machine(
    defn: MachineDef, *, variant: Variant | None = None, graph_engine: Engine = "mermaid"
) -> _Machine:
    """The ``transitions`` HierarchicalGraphMachine of ``defn`` (all rows, or those of
    ``variant``), for diagrams."""
    return _Machine(
        model="self",
        states=defn.get_state_list(),
        transitions=_get_rows(defn, variant),
        initial=defn.initial.name,
        auto_transitions=False,
        send_event=False,
        ignore_invalid_triggers=True,
        graph_engine=graph_engine,
        show_conditions=True,
        title=defn.name,
    )


def build_runner(defn: MachineDef, *, variant: Variant | None = None) -> _Runner:
    """The ``transitions`` HierarchicalMachine of ``defn`` (all rows, or those of ``variant``)
    without diagram support: the same states, transitions, conditions and callbacks."""
    return _Runner(
        model="self",
        states=defn.get_state_list(),
        transitions=_get_rows(defn, variant),
        initial=defn.initial.name,
        auto_transitions=False,
        send_event=False,
        ignore_invalid_triggers=True,
    )


def get_diagram(defn: MachineDef, *, variant: Variant, engine: Engine = "mermaid") -> str:
    """The machine drawn by ``transitions``' own diagram support (``mermaid`` or
    ``graphviz`` DOT source): nested states, guards on edges, the variant's edges only."""
    machine = build_machine(defn, variant=variant, graph_engine=engine)
    title = f"{defn.name} ({variant.value})"
    text: str = machine.get_graph(title=title).source
    if engine == "mermaid":
        # Mermaid's front matter is YAML (``title:``) and its style statement is ``class``.
        text = text.replace(f"---\n{title}\n---", f"---\ntitle: {title}\n---", 1)
        text = "\n".join(
            "  class" + line[len("  Class") :] if line.startswith("  Class ") else line.rstrip()
            for line in text.splitlines()
        )
    return text if text.endswith("\n") else text + "\n"


# ------------------------------------------------------------------ the compiled path


@attrs.frozen
class Row:
    """One compiled transition (read back from a ``transitions.Transition``)."""

    machine: str
    source: str
    trigger: str
    dest: Key | None
    dest_name: str | None
    guards: tuple[tuple[Callable[..., bool], bool, bool], ...]  # (fn, with_arg, target)
    attempt: tuple[Callable[..., World | None], bool] | None
    effects: tuple[tuple[Callable[..., World], bool], ...]
    title: str = attrs.field(default="", eq=False, repr=False)
    """``machine: name``, what a step that fires this row reports (filled once)."""

    def get_title(self) -> str:
        return self.title or f"{self.machine}: {self.get_name()}"

    def get_name(self) -> str:
        names = [("" if target else "!") + fn.__name__ for fn, _, target in self.guards]
        if self.attempt is not None:
            names.append(f"applies({self.attempt[0].__name__})")
        suffix = f" [{' & '.join(names)}]" if names else ""
        dest = self.dest_name if self.dest_name is not None else "(stay)"
        return f"{self.source} --{self.trigger}{suffix}--> {dest}"


@attrs.frozen
class Compiled:
    """A machine's fast table: key -> trigger -> rows, plus the declaration."""

    defn: MachineDef
    table: dict[Key, dict[str, tuple[Row, ...]]]
    machine: HierarchicalMachine = attrs.field(eq=False, repr=False)

    @property
    def name(self) -> str:
        return self.defn.name

    def get_triggers(self, key: Key) -> list[str]:
        return sorted(self.table.get(key, {}))

    def get_state_name(self, key: Key) -> str:
        """The ``transitions`` name of the state the world stores as ``key``."""
        for name, value in self.defn.get_keys().items():
            if value == key:
                return name
        return repr(key)


def compile_machine(defn: MachineDef, machine: HierarchicalMachine | None = None) -> Compiled:
    """Read the Machine's own transitions back into the table :func:`fire` runs."""
    machine = machine if machine is not None else build_runner(defn)
    keys = defn.get_keys()
    entry = defn.get_entry()
    table: dict[Key, dict[str, list[Row]]] = {}
    for trigger, event in machine.events.items():
        for source, transitions in event.transitions.items():
            if source not in keys:
                raise ModelDefinitionError(f"{defn.name}: {source} is not a leaf state")
            for t in transitions:
                guards: list[tuple[Callable[..., bool], bool, bool]] = []
                attempt: tuple[Callable[..., World | None], bool] | None = None
                for cond in t.conditions:
                    func = cond.func
                    if isinstance(func, Attempt):
                        attempt = (func.fn, func.with_arg)
                    elif isinstance(func, When):
                        guards.append((func.fn, func.with_arg, bool(cond.target)))
                    else:
                        raise ModelDefinitionError(f"{defn.name}: condition {func!r}")
                effects: list[tuple[Callable[..., World], bool]] = []
                for callback in t.before:
                    if isinstance(callback, Do):
                        effects.append((callback.fn, callback.with_arg))
                    elif callback is not commit_attempt:
                        raise ModelDefinitionError(f"{defn.name}: callback {callback!r}")
                dest_name = entry[t.dest] if t.dest is not None else None
                table.setdefault(keys[source], {}).setdefault(trigger, []).append(
                    Row(
                        machine=defn.name,
                        source=source,
                        trigger=trigger,
                        dest=keys[dest_name] if dest_name is not None else None,
                        dest_name=dest_name,
                        guards=tuple(guards),
                        attempt=attempt,
                        effects=tuple(effects),
                    )
                )
    frozen = {
        k: {t: tuple(attrs.evolve(r, title=r.get_title()) for r in rows) for t, rows in v.items()}
        for k, v in table.items()
    }
    return Compiled(defn=defn, table=frozen, machine=machine)


@record
class Fired:
    """The outcome of one machine event: the row that fired (or why none did)."""

    world: World
    transition: Row | None
    refusal: str | None = None


_EMPTY: dict[str, tuple[Row, ...]] = {}


def fire(spec: Compiled, world: World, trigger: str, arg: object = None) -> Fired:
    """Fire ``trigger`` on ``spec`` through the compiled table (total: refusals are values)."""
    if _ENGINE.real is not None:
        return _ENGINE.real(spec, world, trigger, arg)
    key = spec.defn.get_key(world)
    rows = spec.table.get(key, _EMPTY).get(trigger)
    if not rows:
        state = spec.get_state_name(key)
        return Fired(world, None, f"{spec.name}: {trigger!r} is not accepted in {state}")
    for r in rows:
        for fn, with_arg, target in r.guards:
            if bool(fn(world, arg) if with_arg else fn(world)) is not target:
                break
        else:
            log = _ENGINE.log
            if log is not None:
                _ENGINE.log = []
            new: World | None = world
            if r.attempt is not None:
                fn_a, with_arg = r.attempt
                new = fn_a(world, arg) if with_arg else fn_a(world)
                if new is None:
                    _ENGINE.log = log
                    continue
            for fn_e, with_arg in r.effects:
                new = fn_e(new, arg) if with_arg else fn_e(new)
            assert new is not None
            if log is not None:
                _check_effect(spec, r, world, new, _ENGINE.log or [])
                _ENGINE.log = log
            if r.dest is not None:
                new = spec.defn.set_key(new, r.dest)
            if log is not None:
                log.append((spec.name, key, spec.defn.get_key(new)))
            return Fired(new, r)
    state = spec.get_state_name(key)
    return Fired(world, None, f"{spec.name}: no guard of {trigger!r} holds in {state}")


# ------------------------------------------------------------------ events between machines


class _Engine:
    """How :func:`fire` runs: compiled (default) or through the real Machines (conformance),
    and, in tests, the log of machine state changes the effect check reads."""

    def __init__(self) -> None:
        self.real: Callable[[Compiled, World, str, object], Fired] | None = None
        self.log: list[tuple[str, Key, Key]] | None = None
        self.machines: dict[str, Compiled] = {}


_ENGINE = _Engine()


def register(*specs: Compiled) -> None:
    for spec in specs:
        _ENGINE.machines[spec.name] = spec


def send(world: World, machine: str, trigger: str, arg: object = None) -> World:
    """Send an event to another machine; a refused event leaves the world as it was."""
    return fire(_ENGINE.machines[machine], world, trigger, arg).world


def _check_effect(
    spec: Compiled, r: Row, before: World, after: World, log: list[tuple[str, Key, Key]]
) -> None:
    """No effect changes a machine's state except through transitions of that machine."""
    for other in _ENGINE.machines.values():
        current = other.defn.get_key(before)
        for name, start, end in log:
            if name == other.name:
                if start != current:
                    raise AssertionError(
                        f"{r.get_name()}: {name} left {current} outside a transition"
                    )
                current = end
        if other.defn.get_key(after) != current:
            raise AssertionError(
                f"{spec.name}: {r.get_name()} changed {other.name} from {current} to "
                f"{other.defn.get_key(after)} outside a transition"
            )


@contextlib.contextmanager
def checking_effects() -> Iterator[None]:
    """Within this block every firing checks that its effects changed no machine state."""
    saved = _ENGINE.log
    _ENGINE.log = []
    try:
        yield
    finally:
        _ENGINE.log = saved


class _Shell:
    """A ``transitions`` model: the state of one machine during one firing."""

    state: str


class _Driver:
    """Fires events through a real ``transitions`` Machine: one Machine per machine and
    variant (the rows the variant's diagram shows), and models reused between firings (a
    model is added to a Machine once; its state is set before each firing). An effect may
    send an event to a machine already firing, so each firing takes its own model."""

    def __init__(self) -> None:
        self.runners: dict[tuple[str, Variant], HierarchicalMachine] = {}
        self.free: dict[tuple[str, Variant], list[_Shell]] = {}
        self.names: dict[str, dict[Key, str]] = {}
        self.keys: dict[str, dict[str, Key]] = {}
        self.firings = 0
        """Events fired through the Machines so far (the conformance reports it)."""

    def get_runner(self, spec: Compiled, variant: Variant) -> HierarchicalMachine:
        runner = self.runners.get((spec.name, variant))
        if runner is None:
            runner = self.runners[spec.name, variant] = build_runner(spec.defn, variant=variant)
        return runner

    def fire(self, spec: Compiled, world: World, trigger: str, arg: object = None) -> Fired:
        """Fire ``trigger`` through the Machine, reading its state back."""
        variant = world.scenario.config.variant
        runner = self.get_runner(spec, variant)
        names = self.names.get(spec.name)
        if names is None:
            self.keys[spec.name] = spec.defn.get_keys()
            names = self.names[spec.name] = {v: k for k, v in self.keys[spec.name].items()}
        free = self.free.setdefault((spec.name, variant), [])
        shell = free.pop() if free else None
        if shell is None:
            shell = _Shell()
            runner.add_model(shell)
        try:
            runner.set_state(names[spec.defn.get_key(world)], model=shell)
            cell = Cell(world, arg)
            fired = runner.trigger_event(shell, trigger, cell)
            state = shell.state
        finally:
            free.append(shell)
        self.firings += 1
        if not fired:
            return Fired(world, None, "refused")
        new = spec.defn.set_key(cell.world, self.keys[spec.name][state])
        return Fired(new, _ROW_FIRED)


_DRIVER = _Driver()


def fire_with_machine(spec: Compiled, world: World, trigger: str, arg: object = None) -> Fired:
    """Fire ``trigger`` through the real ``transitions`` Machine of the world's variant,
    reading the Machine's own state back."""
    return _DRIVER.fire(spec, world, trigger, arg)


def get_machine_firings() -> int:
    """How many events this process fired through the real Machines (conformance)."""
    return _DRIVER.firings


_ROW_FIRED = Row("", "", "", None, None, (), None, ())


@contextlib.contextmanager
def through_machines() -> Iterator[None]:
    """Within this block every firing (events between machines too) runs the real Machines.
    An event a state does not accept is a refusal (a value), so ``transitions``' warning
    about it is silenced here."""
    saved = _ENGINE.real
    log = logging.getLogger("transitions.extensions.nesting")
    level = log.level
    _ENGINE.real = fire_with_machine
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        _ENGINE.real = saved
        log.setLevel(level)
