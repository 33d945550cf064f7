"""PROP-45: every planted defect is killed by a property verdict (or a new finding of an
always-property) on a shipped scenario, checked in the released and in the hardened variant;
a changed state count alone never counts."""

from __future__ import annotations

import pytest

from otamodel.env import get_scenario_names
from otamodel.model import Defect
from otamodel.verify._selftest import (
    HARDENED,
    KILLED_ON,
    RELEASED,
    Outcome,
    get_defect_kills,
    get_kills,
)

_KILLS: dict[tuple[Defect, str], list[str]] = {}


def _kills(defect: Defect, variant: str) -> list[str]:
    key = (defect, variant)
    if key not in _KILLS:
        _KILLS[key] = get_defect_kills(defect, KILLED_ON[defect], variant)
    return _KILLS[key]


def test_the_family_is_large_and_mapped_to_shipped_scenarios() -> None:
    assert len(Defect) >= 20
    assert set(KILLED_ON) == set(Defect)
    assert set(KILLED_ON.values()) <= set(get_scenario_names())


@pytest.mark.parametrize("defect", list(Defect), ids=lambda d: d.value)
def test_every_defect_is_killed(defect: Defect) -> None:
    released = _kills(defect, RELEASED)
    hardened = _kills(defect, HARDENED)
    assert released or hardened, f"{defect.value} survives on {KILLED_ON[defect]}"


def test_kills_are_verdicts_or_new_findings_not_state_counts() -> None:
    base = Outcome({"p": "holds", "w": "witnessed"}, frozenset({("q", 1)}), 10, 0.0)
    same_verdicts_more_states = Outcome(base.verdicts, base.keys, 99, 0.0)
    assert get_kills(base, same_verdicts_more_states) == []
    flipped = Outcome({"p": "violated", "w": "witnessed"}, base.keys, 10, 0.0)
    assert get_kills(base, flipped) == ["p"]
    lost_witness = Outcome({"p": "holds", "w": "no-witness"}, base.keys, 10, 0.0)
    assert get_kills(base, lost_witness) == ["w"]
    new_key = Outcome(base.verdicts, frozenset({("q", 1), ("q", 2)}), 10, 0.0)
    assert get_kills(base, new_key) == ["q (new finding)"]


def test_the_kills_cover_the_properties() -> None:
    killed: set[str] = set()
    for defect in Defect:
        for variant in (RELEASED, HARDENED):
            killed.update(k.split(" ")[0] for k in _kills(defect, variant))
    expected = {
        "boots-valid-image",
        "no-brick",
        "no-unintended-downgrade",
        "progress",
        "no-stuck-service",
        "store-consistency",
        "flash-physics",
        "event-delivery",
        "event-response",
        "outcome-honesty",
        "boot-coherence",
        "intent-honoured",
        "intent-factory-reset",
        "no-data-loss",
        "bad-image-abandoned",
        "bounded-reprogram",
        "no-needless-reprogram",
        "sec-authenticity",
        "sec-anti-rollback",
        "sec-fast-forward",
        "sec-freeze-replay",
        "sec-erase-authenticity",
    }
    assert expected <= killed, sorted(expected - killed)
