"""The coordinator's array numbering (CHK-14, CHK-16) against plain dict-and-sort oracles."""

from __future__ import annotations

import random
from array import array
from typing import Any

import numpy as np
import pytest

from otamodel.checker._numbering import FingerprintTable, Level, merge_edges, remap

POS_BITS = 20


def make_table(fps: list[int]) -> FingerprintTable:
    table = FingerprintTable()
    table.add(np.array(fps, dtype=np.int64))
    return table


@pytest.mark.parametrize("seed", range(4))
def test_table_numbers_in_order_and_finds_only_what_it_holds(seed: int) -> None:
    rng = random.Random(seed)
    table = FingerprintTable()
    oracle: dict[int, int] = {}
    for _ in range(30):  # batches of every size, across several growths
        batch = list({rng.getrandbits(64) - (1 << 63) for _ in range(rng.choice([0, 1, 7, 900]))})
        batch = [fp for fp in batch if fp not in oracle]
        table.add(np.array(batch, dtype=np.int64))
        for fp in batch:
            oracle[fp] = len(oracle)
        assert len(table) == len(oracle)
    known = list(oracle)
    unknown = [rng.getrandbits(64) - (1 << 63) for _ in range(500)]
    queries = known + [fp for fp in unknown if fp not in oracle]
    rng.shuffle(queries)
    found = table.lookup(np.array(queries, dtype=np.int64))
    assert found.tolist() == [oracle.get(fp, -1) for fp in queries]
    assert table.get(known[0]) == oracle[known[0]]
    assert table.nbytes > 0


def test_table_with_colliding_fingerprints_probes_past_each_other() -> None:
    # Every fingerprint has the same low bits: one long probe run, placed in one batch.
    fps = [(k << 32) | 5 for k in range(1, 300)]
    table = make_table(fps[:150])
    table.add(np.array(fps[150:], dtype=np.int64))
    assert table.lookup(np.array(fps, dtype=np.int64)).tolist() == list(range(299))
    assert table.get((999 << 32) | 5) == -1
    assert FingerprintTable().get(5) == -1


def old_numbering(
    known: dict[int, int], replies: list[dict[str, Any]], keep: int | None
) -> tuple[list[list[int]], list[int], list[int], list[list[int]], int]:
    """The dict-and-sort numbering the coordinator used before (the reference)."""
    best: dict[int, tuple[int, int, int]] = {}
    for w, reply in enumerate(replies):
        for index, (fp, key) in enumerate(zip(reply["fps"], reply["keys"], strict=True)):
            if fp not in known and (fp not in best or key < best[fp][0]):
                best[fp] = (key, w, index)
    order = sorted((key, w, index, fp) for fp, (key, w, index) in best.items())
    truncated = -1
    if keep is not None and keep < len(order):
        truncated = order[keep][0] >> POS_BITS
        order = order[:keep]
    numbers = [[-1] * len(reply["fps"]) for reply in replies]
    parents, actions = [], []
    level = {}
    for number, (key, w, index, fp) in enumerate(order, len(known)):
        numbers[w][index] = number
        parents.append(key >> POS_BITS)
        actions.append(replies[w]["remap"][replies[w]["aids"][index]])
        level[fp] = number
    targets = [[known.get(fp, level.get(fp, -1)) for fp in reply["fps"]] for reply in replies]
    return numbers, parents, actions, targets, truncated


@pytest.mark.parametrize(("seed", "keep"), [(0, None), (1, None), (2, 5), (3, 0), (4, 40)])
def test_level_numbers_as_the_dict_and_sort_reference(seed: int, keep: int | None) -> None:
    rng = random.Random(seed)
    pool = [rng.getrandbits(63) for _ in range(120)]
    known = {fp: n for n, fp in enumerate(pool[:30])}
    replies = []
    for w in range(3):
        fps = rng.sample(pool, 50)  # overlapping: old states and cross-worker duplicates
        expanded = sorted(rng.sample(range(w, 300, 3), 50))  # each parent expanded once
        replies.append(
            {
                "fps": array("q", fps),
                "keys": array("q", [(p << POS_BITS) | rng.randrange(9) for p in expanded]),
                "aids": array("i", [rng.randrange(4) for _ in fps]),
                "remap": [10 * w + k for k in range(4)],
            }
        )
    table = make_table(list(known))
    level = Level(table, replies, [reply["remap"] for reply in replies], POS_BITS)
    truncated = level.truncate(keep) if keep is not None and keep < len(level) else -1
    parents, actions = array("i"), array("i")
    numbers = level.commit(parents, actions)
    expected = old_numbering(known, replies, keep)
    assert [list(n) for n in numbers] == expected[0]
    assert (list(parents), list(actions)) == (expected[1], expected[2])
    assert [list(t) for t in level.get_targets()] == expected[3]
    assert truncated == expected[4]
    assert len(table) == len(known) + len(expected[1])


def test_merge_edges_keeps_each_runs_order_within_a_source() -> None:
    one = (array("i", [0, 0, 4, 6]), array("i", [1, 2, 3, 4]), array("i", [7, 5, 1, 1]))
    two = (array("i", [1, 4, 4]), array("i", [9, 8, 7]), array("i", [2, 3, 0]))
    src, dst, act = merge_edges([one, two])
    assert list(src) == [0, 0, 1, 4, 4, 4, 6]
    assert list(dst) == [1, 2, 9, 3, 8, 7, 4]
    assert list(act) == [7, 5, 2, 1, 3, 0, 1]
    assert list(remap(array("i", [2, 0, 2]), [5, 6, 7])) == [7, 5, 7]
    assert list(remap(array("i"), [5])) == []


@pytest.mark.parametrize("size", [0, 5, 4095, 4096, 10_000])
def test_get_ones_lists_the_non_zero_positions(size: int) -> None:
    from otamodel.checker._bits import get_ones

    rng = random.Random(size)
    flags = bytes(rng.choice([0, 0, 1, 7]) for _ in range(size))
    expected = [k for k, value in enumerate(flags) if value]
    assert get_ones(flags) == expected
    assert get_ones(bytearray(flags)) == expected
    assert get_ones(list(flags)) == expected
