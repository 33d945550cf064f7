"""States kept where their variants are (CHK-38).

A model may name its states' *variants*: states with equal variant keys differ only in what
:func:`get_variant_delta` returns (on the OTA model: a world and its budget variants share a
core, ENV-9). A model that remembers its steps by such a key steps a state cheaply where one
of its variants was stepped recently. With worker processes each worker keeps the new states
it discovers first (CHK-14), so a state and its variants are often kept, and stepped, by
different workers. Here the coordinator remembers, per worker, the variant keys of the states
it kept in the last levels (:class:`Homes`), and a new state whose variant another worker kept
there is moved to that worker: the discoverer drops it and the other worker makes it from the
variant it holds (:class:`Variants`), its fingerprint checked. Only which worker keeps a state
changes: numbers, parents, edges, verdicts and traces are those of one process.

Both sides forget in generations of :data:`GENERATION` levels, switched at the same levels,
so the coordinator never moves a state to a worker that no longer holds its variant.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Hashable, Iterable, Sequence
from itertools import compress
from typing import Any

from otamodel.errors import ModelDefinitionError

GENERATION = 4
"""Levels per generation: a variant is remembered for 4 to 8 levels."""

Move = tuple[int, int, int, Hashable]
"""A state moved to another worker: its number, variant key, fingerprint and delta."""


class Affinity:
    """A model's variant hooks (all three or none): ``get_variant_key(state) -> int``,
    ``get_variant_delta(state)`` and ``make_variant(variant, delta) -> state``."""

    def __init__(self, model: object) -> None:
        self.get_key: Callable[[Any], int] = model.get_variant_key  # type: ignore[attr-defined]
        self.get_delta: Callable[[Any], Hashable] = model.get_variant_delta  # type: ignore[attr-defined]
        self.make: Callable[[Any, Hashable], Any] = model.make_variant  # type: ignore[attr-defined]


def get_affinity(model: object) -> Affinity | None:
    """CHK-38: the model's variant hooks, or ``None`` when it has none of them."""
    names = ("get_variant_key", "get_variant_delta", "make_variant")
    found = [callable(getattr(model, name, None)) for name in names]
    if not any(found):
        return None
    if not all(found):
        missing = [name for name, ok in zip(names, found, strict=True) if not ok]
        raise ModelDefinitionError(f"a model with variant hooks needs all three: {missing}")
    return Affinity(model)


def is_new_generation(level: int) -> bool:
    """Whether both sides start a new generation at ``level`` (the levels count from 1)."""
    return level % GENERATION == 0


class Homes:
    """The coordinator's side: per worker, the variant keys of the states it kept in this
    and the previous generation."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.level = 0
        self.current: list[set[int]] = [set() for _ in range(workers)]
        self.previous: list[set[int]] = [set() for _ in range(workers)]
        self.kept: list[list[int]] = []
        self.moves: list[list[Move]] = []

    def get_moves(
        self, replies: Sequence[dict[str, Any]], numbers: list[array[int]]
    ) -> list[list[Move]]:
        """Per worker, the states of this level it is to make from its variants; each moved
        state's number becomes -1 in its discoverer's ``numbers``. The level's kept keys are
        remembered (:meth:`remember`, after the workers have their orders)."""
        self.level += 1
        if is_new_generation(self.level):
            self.previous, self.current = self.current, [set() for _ in range(self.workers)]
        moves: list[list[Move]] = [[] for _ in range(self.workers)]
        self.kept = []
        for w, reply in enumerate(replies):
            keys: array[int] = reply["variants"]
            mine = numbers[w]
            kept = list(compress(keys, map((-1).__lt__, mine)))
            self.kept.append(kept)
            for home in range(self.workers):
                if home == w:
                    continue
                wanted = self.current[home].intersection(kept)
                wanted.update(self.previous[home].intersection(kept))
                if wanted:  # a variant the discoverer holds too stays there
                    wanted.difference_update(self.current[w], self.previous[w])
                if wanted:
                    self.add_moves(moves[home], reply, mine, wanted)
        for home_moves in moves:
            home_moves.sort()
        self.moves = moves
        return moves

    @staticmethod
    def add_moves(
        out: list[Move], reply: dict[str, Any], mine: array[int], wanted: set[int]
    ) -> None:
        keys, fps, deltas = reply["variants"], reply["fps"], reply["deltas"]
        for index in compress(range(len(keys)), map(wanted.__contains__, keys)):
            number = mine[index]
            if number >= 0:
                out.append((number, keys[index], fps[index], deltas[index]))
                mine[index] = -1

    def remember(self) -> None:
        """Record the level's kept keys under the workers keeping them (while the workers
        commit the level)."""
        for w, kept in enumerate(self.kept):
            self.current[w].update(kept)
        for home, moved in enumerate(self.moves):
            if moved:
                keys = [move[1] for move in moved]
                for w, current in enumerate(self.current):
                    if w == home:
                        current.update(keys)
                    else:
                        current.difference_update(keys)
        self.kept = []


class Variants:
    """A worker's side: the states it kept in this and the previous generation, by variant
    key, to make moved states from."""

    def __init__(self, affinity: Affinity) -> None:
        self.affinity = affinity
        self.level = 0
        self.current: dict[int, Any] = {}
        self.previous: dict[int, Any] = {}

    def start_level(self) -> None:
        self.level += 1
        if is_new_generation(self.level):
            self.previous, self.current = self.current, {}

    def make(
        self, moves: Sequence[Move], get_fingerprint: Callable[[Any], int]
    ) -> list[tuple[int, Any]]:
        """The moved states, each made from the variant held here; its fingerprint must be
        the one its discoverer found."""
        made = []
        for number, key, fp, delta in moves:
            variant = self.current.get(key)
            if variant is None:
                variant = self.previous[key]
            state = self.affinity.make(variant, delta)
            if get_fingerprint(state) != fp:
                raise ModelDefinitionError(
                    f"make_variant did not give back state {number} (another fingerprint): "
                    "get_variant_key, get_variant_delta and make_variant disagree (or two "
                    "variant keys collide); run with one worker"
                )
            made.append((number, state))
        return made

    def remember(self, states: Iterable[Any]) -> None:
        listed = list(states)
        self.current.update(zip(map(self.affinity.get_key, listed), listed, strict=True))


__all__ = ["GENERATION", "Affinity", "Homes", "Move", "Variants", "get_affinity"]
