"""The coordinator's fingerprint table and level numbering in array operations (CHK-14, CHK-16).

With worker processes, every successor the workers find passes through the coordinator
once: is it known, which worker found it first, what number does it get. That work is on
the critical path of every level, so it runs as whole-array operations (NumPy: sorts,
gathers, a batch of table probes at a time) rather than a step of Python per successor."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Int64s = NDArray[np.int64]
    Int32s = NDArray[np.int32]


_EMPTY = np.int32(-1)
_MIN_SLOTS = 1 << 12


class FingerprintTable:
    """Fingerprint -> state number, for states numbered 0, 1, 2, ... in order: an
    open-addressing table of state numbers (linear probing from ``fingerprint & mask``, at
    most a quarter full) beside the fingerprints in number order, probed a whole batch at a
    time (about 24 bytes a state)."""

    def __init__(self) -> None:
        self.count = 0
        self.fps: Int64s = np.empty(_MIN_SLOTS // 2, dtype=np.int64)
        """``fps[n]`` is state ``n``'s fingerprint (the first ``count`` entries)."""
        self.slots: Int32s = np.full(_MIN_SLOTS, _EMPTY, dtype=np.int32)

    def __len__(self) -> int:
        return self.count

    @property
    def nbytes(self) -> int:
        return int(self.fps.nbytes + self.slots.nbytes)

    def lookup(self, fps: Int64s) -> Int32s:
        """Each fingerprint's state number, or -1 where it is unknown."""
        found = np.full(len(fps), _EMPTY, dtype=np.int32)
        mask = len(self.slots) - 1
        pending = np.arange(len(fps))
        wanted = fps
        at = wanted & mask
        while len(pending):
            number = self.slots[at]
            occupied = number >= 0
            hit = occupied & (self.fps[number] == wanted)
            found[pending[hit]] = number[hit]
            going_on = occupied & ~hit
            pending, wanted = pending[going_on], wanted[going_on]
            at = (at[going_on] + 1) & mask
        return found

    def get(self, fp: int) -> int:
        """One fingerprint's state number, or -1."""
        return int(self.lookup(np.array([fp], dtype=np.int64))[0])

    def add(self, fps: Int64s) -> None:
        """Number new (unknown, distinct) fingerprints ``len(self)``, ``len(self) + 1``, ..."""
        first, count = self.count, self.count + len(fps)
        if count > len(self.fps):
            grown = np.empty(max(count, 2 * len(self.fps)), dtype=np.int64)
            grown[:first] = self.fps[:first]
            self.fps = grown
        self.fps[first:count] = fps
        self.count = count
        if 4 * count > len(self.slots):
            size = len(self.slots)
            while 4 * count > size:
                size *= 2
            self.slots = np.full(size, _EMPTY, dtype=np.int32)
            self._place(np.arange(count, dtype=np.int32))
        else:
            self._place(np.arange(first, count, dtype=np.int32))

    def _place(self, numbers: Int32s) -> None:
        """Put these states' numbers in the first free slot of each one's probe sequence
        (when several want one slot, one of them takes it; the others probe on)."""
        mask = len(self.slots) - 1
        slots = self.slots
        at = self.fps[numbers] & mask
        while len(numbers):
            free = slots[at] < 0
            slots[at[free]] = numbers[free]  # one of those wanting a slot gets it
            going_on = slots[at] != numbers
            numbers = numbers[going_on]
            at = (at[going_on] + 1) & mask


def as_int64(values: array[int]) -> Int64s:
    """A NumPy view of an ``array('q')`` (no copy)."""
    return np.frombuffer(values, dtype=np.int64) if len(values) else np.empty(0, np.int64)


def as_int32(values: array[int]) -> Int32s:
    """A NumPy view of an ``array('i')`` (no copy)."""
    return np.frombuffer(values, dtype=np.int32) if len(values) else np.empty(0, np.int32)


def get_row_items(offsets: Int64s, rows: Any) -> tuple[Any, Any]:
    """For compressed rows (row ``r`` spans ``offsets[r] : offsets[r + 1]``): the item
    indices of the given rows, one row after the other, and each row's size."""
    starts = offsets[rows]
    sizes = offsets[rows + 1] - starts
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    return np.arange(total) + np.repeat(starts - (ends - sizes), sizes), sizes


def to_array(values: Any) -> array[int]:
    """An ``array('i')`` of the values (what the workers and the rest of the checker index)."""
    out = array("i")
    out.frombytes(np.ascontiguousarray(values, dtype=np.int32).tobytes())
    return out


class Level:
    """One level's numbering: which candidates are new, their numbers, parents, actions."""

    def __init__(
        self,
        table: FingerprintTable,
        replies: Sequence[dict[str, Any]],
        remaps: Sequence[Sequence[int]],
        pos_bits: int,
    ) -> None:
        self.table = table
        self.pos_bits = pos_bits
        fps = [as_int64(reply["fps"]) for reply in replies]
        self.sizes = [len(f) for f in fps]
        all_fps = np.concatenate(fps) if fps else np.empty(0, np.int64)
        keys = [as_int64(reply["keys"]) for reply in replies]
        all_keys = np.concatenate(keys) if keys else np.empty(0, np.int64)
        aids = []
        for reply, remap in zip(replies, remaps, strict=True):
            local = as_int32(reply["aids"])
            aids.append(np.asarray(remap, dtype=np.int32)[local] if len(local) else local)
        all_aids = np.concatenate(aids) if aids else np.empty(0, np.int32)
        self.old = table.lookup(all_fps)
        fresh = self.fresh = np.flatnonzero(self.old < 0)
        # Among the workers that found a new state, the smallest key keeps it: in key order,
        # the first occurrence of each fingerprint (keys are unique: one worker expands a
        # parent, and a worker sends a fingerprint once a level).
        by_key = fresh[np.argsort(all_keys[fresh])]
        _, first = np.unique(all_fps[by_key], return_index=True)
        self.chosen = by_key[np.sort(first)]
        """Indices (into the workers' candidates, one after the other) of the new states,
        in number order."""
        self.all_fps = all_fps
        self.all_keys = all_keys
        self.all_aids = all_aids

    def __len__(self) -> int:
        return len(self.chosen)

    def truncate(self, keep: int) -> int:
        """Keep the first ``keep`` new states; the parent whose expansion reached the bound."""
        parent = int(self.all_keys[self.chosen[keep]]) >> self.pos_bits
        self.chosen = self.chosen[:keep]
        return parent

    def commit(self, parents: array[int], parent_actions: array[int]) -> list[array[int]]:
        """Number the new states (into the table), append their parents and actions; per
        worker, each candidate's number if that worker keeps it, else -1."""
        chosen = self.chosen
        first = len(self.table)
        self.table.add(self.all_fps[chosen])
        parents.frombytes((self.all_keys[chosen] >> self.pos_bits).astype(np.int32).tobytes())
        parent_actions.frombytes(self.all_aids[chosen].astype(np.int32).tobytes())
        numbers = np.full(len(self.all_fps), -1, dtype=np.int32)
        numbers[chosen] = np.arange(first, first + len(chosen), dtype=np.int32)
        return self._split(numbers)

    def get_targets(self) -> list[array[int]]:
        """Per worker, every candidate's number (-1: cut off by a bound), once committed."""
        targets = self.old.copy()
        targets[self.fresh] = self.table.lookup(self.all_fps[self.fresh])
        return self._split(targets)

    def _split(self, values: Int32s) -> list[array[int]]:
        out = []
        start = 0
        for size in self.sizes:
            out.append(to_array(values[start : start + size]))
            start += size
        return out


def remap(values: array[int], mapping: Sequence[int]) -> array[int]:
    """``[mapping[v] for v in values]`` (a worker's action ids to the coordinator's)."""
    if not len(values):
        return array("i")
    return to_array(np.asarray(mapping, dtype=np.int32)[as_int32(values)])


def merge_edges(
    parts: Sequence[tuple[array[int], array[int], array[int]]],
) -> tuple[array[int], array[int], array[int]]:
    """The edges of several runs, each sorted by source, in one run sorted by source (a
    stable sort: within a source, each run's order)."""
    src = np.concatenate([as_int32(p[0]) for p in parts])
    order = np.argsort(src, kind="stable")
    dst = np.concatenate([as_int32(p[1]) for p in parts])
    act = np.concatenate([as_int32(p[2]) for p in parts])
    return to_array(src[order]), to_array(dst[order]), to_array(act[order])
