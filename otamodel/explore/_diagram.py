"""The machines' diagrams for the page (EXP-3): the same drawing ``otamodel diagram`` makes,
as Graphviz DOT, with every state a node whose title is the state's name so the page can
highlight the current one."""

from __future__ import annotations

from otamodel.env import Scenario
from otamodel.model import MACHINES, get_dot


def get_machine_dot(machine: str, scenario: Scenario) -> str:
    """DOT source of ``machine`` (``service``, ``core`` or ``bootloader``)."""
    del scenario  # one table for every variant until the diagrams are variant-aware
    return get_dot(MACHINES[machine])


def get_machine_state_names(machine: str) -> list[str]:
    """The names of ``machine``'s states, in declaration order (the page's fallback list)."""
    return [state.name for state in MACHINES[machine].states]
