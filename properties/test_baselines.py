"""Every shipped scenario, exhaustively, against its committed baseline (TRACE-34), and the
report's finding IDs against the checker's (TRACE-6).

A model change that adds a finding turns this red with the new IDs and their stories; one that
removes a finding shows it as GONE. Regenerate both the report and the baselines with
``tox -e docs`` (``otamodel report -o docs/findings.md --baselines tests/baselines``) and
review the diff.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from otamodel.env import get_scenario, get_scenario_names, with_variant
from otamodel.verify._findings import (
    get_baseline_ids,
    get_story,
    get_variants,
    read_baseline,
    run_check,
)
from otamodel.verify._properties import OtaModel

REPO = Path(__file__).resolve().parent.parent
BASELINES = REPO / "tests" / "baselines"
REPORT = REPO / "docs" / "findings.md"

CASES = [(name, variant) for name in get_scenario_names()
         for variant in get_variants(get_scenario(name))]  # fmt: skip


@cache
def get_findings(name: str, variant: str) -> dict[str, Any]:
    scenario = with_variant(get_scenario(name), variant)
    report = run_check(OtaModel(scenario))
    assert report.is_complete, f"{name} · {variant}: the search did not complete"
    return {f.id: f for f in report.findings}


def get_report_ids() -> dict[tuple[str, str], set[str]]:
    """Per (scenario, variant), the finding IDs docs/findings.md lists as occurring there."""
    text = REPORT.read_text(encoding="utf-8")
    places: dict[tuple[str, str], set[str]] = {}
    for block in re.split(r"^### ", text, flags=re.MULTILINE)[1:]:
        fid = block.split("\n", 1)[0].strip()
        match = re.search(r"^- occurs in: (.*)$", block, flags=re.MULTILINE)
        assert match, f"{fid}: no 'occurs in' line"
        for place in match.group(1).split(", "):
            name, _, variant = place.partition(" · ")
            places.setdefault((name, variant), set()).add(fid)
    return places


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_scenario_matches_its_baseline(name: str, variant: str) -> None:
    path = BASELINES / f"{name}.json"
    assert path.is_file(), f"no baseline for {name}: run tox -e docs"
    recorded = get_baseline_ids(read_baseline(path), variant, path)
    found = get_findings(name, variant)
    new = sorted(set(found) - set(recorded))
    gone = sorted(set(recorded) - set(found))
    lines = [f"NEW {fid} {found[fid].property}: {get_story(found[fid])}" for fid in new]
    lines += [f"GONE {fid} {recorded[fid]}" for fid in gone]
    assert not lines, f"{name} · {variant} differs from its baseline:\n" + "\n".join(lines)


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_report_lists_every_finding_of_the_checker(name: str, variant: str) -> None:
    listed = get_report_ids().get((name, variant), set())
    assert listed == set(get_findings(name, variant)), f"{name} · {variant}"
