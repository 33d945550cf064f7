"""CHK-30: a violating edge counts only from a clean source — one reached from a
non-violating initial state through non-violating states only."""

from __future__ import annotations

import random
from typing import Any

import pytest
from test_checker import GraphModel

from otamodel.checker import Property
from otamodel.checker._regions import Graph
from otamodel.checker._search import Plan, explore
from otamodel.checker._violations import Clean


def explore_graph(edges: dict[int, tuple[tuple[str, int], ...]], inits: tuple[int, ...]) -> Any:
    model = GraphModel(edges, (Property.always("any", lambda s: True),), inits)
    plan = Plan(model.properties())
    plan.record_edges = True
    return explore(
        model, plan, max_depth=None, max_states=None, deadline=None, stop_on_violation=False,
        progress=None, progress_interval=1.0, started=0.0,
    )  # fmt: skip


def get_clean_reference(exploration: Any, values: bytes) -> set[int]:
    """A forward search from the non-violating initial states through non-violating ones."""
    src, dst = exploration.edge_src, exploration.edge_dst
    roots = [k for k in range(exploration.count) if exploration.parents[k] < 0]
    clean = {k for k in roots if not values[k]}
    frontier = list(clean)
    while frontier:
        state = frontier.pop()
        for source, target in zip(src, dst, strict=True):
            if source == state and not values[target] and target not in clean:
                clean.add(target)
                frontier.append(target)
    return clean


@pytest.mark.parametrize("seed", range(8))
def test_clean_states_are_those_a_non_violating_path_reaches(seed: int) -> None:
    rng = random.Random(seed)
    count = 120
    edges = {
        state: tuple((f"a{i}", rng.randrange(count)) for i in range(rng.randrange(1, 4)))
        for state in range(count)
    }
    found = explore_graph(edges, (0, 7))
    values = bytes(1 if rng.random() < 0.25 else 0 for _ in range(found.count))
    clean = Clean(Graph(found, None).get_arrays(), values)
    # Ask in a random order: what one answer remembers must not change a later one.
    order = list(range(found.count))
    rng.shuffle(order)
    answers = {state: clean.is_clean(state) for state in order}
    assert {state for state, ok in answers.items() if ok} == get_clean_reference(found, values)
