"""The spec's rule IDs and the code agree (docs/spec/README.md, "Rule IDs").

* Every rule ID defined in ``docs/spec/*.md`` (a line ``- **XXX-N** —``) is cited in
  ``otamodel/**/*.py``.
* Every rule ID cited in ``otamodel/**/*.py`` is defined in some spec document.
* No rule ID is defined twice.

A range in code such as ``SVC-10..SVC-14`` (or ``X-1 to X-5``, ``X-1 … X-5``) cites every
*defined* ID from the first to the last; its two ends are ordinary citations and must be defined,
while the numbers in between may be gaps.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEC_DIR = REPO / "docs" / "spec"
CODE_DIR = REPO / "otamodel"

SPEC_DIR_FILES = sorted((Path(__file__).resolve().parent.parent / "docs" / "spec").glob("*.md"))
#: Every prefix some spec document defines a rule with (``- **XYZ-1** —``): a new spec file
#: with a new prefix needs no change here.
PREFIXES = "|".join(
    sorted(
        {
            match.group(1)
            for path in SPEC_DIR_FILES
            for match in re.finditer(
                r"^- \*\*([A-Z]{2,8})-\d+\*\* —", path.read_text("utf-8"), re.M
            )
        }
    )
)
ID_RE = re.compile(rf"\b({PREFIXES})-\d+\b")
DEFINITION_RE = re.compile(rf"^- \*\*(({PREFIXES})-\d+)\*\* —")
RANGE_RE = re.compile(rf"\b({PREFIXES})-(\d+)\s*(?:\.\.\.?|…|–|\bto\b)\s*\1-(\d+)\b")


def _sort_key(rule: str) -> tuple[str, int]:
    prefix, number = rule.rsplit("-", 1)
    return prefix, int(number)


def get_defined_ids() -> dict[str, list[str]]:
    """Rule ID -> the spec files (one entry per definition) that define it."""
    defined: dict[str, list[str]] = defaultdict(list)
    for path in sorted(SPEC_DIR.glob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            match = DEFINITION_RE.match(line)
            if match:
                defined[match.group(1)].append(path.relative_to(REPO).as_posix())
    return dict(defined)


def _get_code_texts() -> list[tuple[str, str]]:
    return [
        (path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(CODE_DIR.rglob("*.py"))
    ]


def get_cited_ids() -> dict[str, set[str]]:
    """Rule ID -> the code files that write it out (range ends included)."""
    cited: dict[str, set[str]] = defaultdict(set)
    for name, text in _get_code_texts():
        for match in ID_RE.finditer(text):
            cited[match.group(0)].add(name)
    return dict(cited)


def get_range_cited_ids() -> dict[str, set[str]]:
    """Rule ID -> the code files with a range (``X-a..X-b``) that spans it."""
    spanned: dict[str, set[str]] = defaultdict(set)
    for name, text in _get_code_texts():
        for match in RANGE_RE.finditer(text):
            prefix, first, last = match.group(1), int(match.group(2)), int(match.group(3))
            for number in range(first, last + 1):
                spanned[f"{prefix}-{number}"].add(name)
    return dict(spanned)


def _format(ids: dict[str, list[str]] | dict[str, set[str]]) -> str:
    return "\n".join(
        f"  {rule}: {', '.join(sorted(ids[rule]))}" for rule in sorted(ids, key=_sort_key)
    )


def test_spec_documents_exist() -> None:
    assert SPEC_DIR.is_dir(), f"{SPEC_DIR} is missing"
    assert get_defined_ids(), "no rule IDs defined in docs/spec/*.md"


def test_every_defined_id_is_cited_in_code() -> None:
    cited = {**get_range_cited_ids(), **get_cited_ids()}
    uncited = {rule: files for rule, files in get_defined_ids().items() if rule not in cited}
    assert not uncited, "rule IDs defined in the spec but cited nowhere in otamodel/:\n" + _format(
        uncited
    )


def test_every_cited_id_is_defined() -> None:
    defined = get_defined_ids()
    undefined = {rule: files for rule, files in get_cited_ids().items() if rule not in defined}
    assert not undefined, (
        "rule IDs cited in otamodel/ but defined in no docs/spec/*.md:\n" + _format(undefined)
    )


def test_no_id_is_defined_twice() -> None:
    twice = {rule: files for rule, files in get_defined_ids().items() if len(files) > 1}
    assert not twice, "rule IDs defined more than once:\n" + _format(twice)


def test_range_citations_expand() -> None:
    """The range syntax of docs/spec/README.md spans every number in between."""
    text = "SVC-10..SVC-12, CORE-1 to CORE-2, MAN-1 … MAN-3, BL-4"
    found = {m.group(0) for m in ID_RE.finditer(text)}
    for m in RANGE_RE.finditer(text):
        found.update(f"{m.group(1)}-{n}" for n in range(int(m.group(2)), int(m.group(3)) + 1))
    assert found == {
        "SVC-10",
        "SVC-11",
        "SVC-12",
        "CORE-1",
        "CORE-2",
        "MAN-1",
        "MAN-2",
        "MAN-3",
        "BL-4",
    }
