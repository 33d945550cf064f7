"""The machines' diagrams for the page (EXP-3): the same drawing ``otamodel diagram`` makes
(``transitions``' graphviz engine, the scenario's variant), as Graphviz DOT, with every state
a node whose title is the state's name so the page can highlight the current one."""

from __future__ import annotations

import re

from otamodel.env import Scenario
from otamodel.model import MACHINES, Nest
from otamodel.model._machine import get_diagram


def get_machine_dot(machine: str, scenario: Scenario) -> str:
    """DOT source of ``machine`` (``service``, ``core`` or ``bootloader``), without the
    drawing's own mark on the initial state: the page marks the world's current state."""
    dot = get_diagram(MACHINES[machine].defn, variant=scenario.config.variant, engine="graphviz")
    return _ACTIVE.sub("color=black fillcolor=white peripheries=1", dot)


_ACTIVE = re.compile(r"color=red fillcolor=darksalmon peripheries=2")


def get_machine_state_names(machine: str) -> list[str]:
    """The names of ``machine``'s states, in declaration order (the page's fallback list)."""
    return [
        state.state.name if isinstance(state, Nest) else state.name
        for state in MACHINES[machine].defn.states
    ]
