"""Findings of OTA scenarios: running the classified check, finding records (JSON), trace files
per finding, baselines (TRACE-34) and the cross-scenario report ``docs/findings.md`` (TRACE-6)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from otamodel._io import write_atomic
from otamodel.checker import CheckReport, Property, check
from otamodel.checker._classify import Finding
from otamodel.env import Scenario
from otamodel.errors import OtaModelError
from otamodel.model import FAULT_KINDS, Action, World

VARIANTS = ("harmony-3.9.1", "harmony-3.9.0", "hardened")
RELEASED = "harmony-3.9.1"
BASELINE_FORMAT = "otamodel-baseline/1"

#: What a violation of each property means, shown under its heading in the report.
EXPLANATIONS: dict[str, str] = {
    "boots-valid-image": (
        "The bootloader jumped into slot content that no verification passed and that is not "
        "the factory image."
    ),
    "no-brick": (
        "The last state of the trace cannot reach a running application by itself: with power "
        "on and no further faults the device stays in the bootloader or in code that is not an "
        "application."
    ),
    "no-unintended-downgrade": (
        "An application older than one the app had already validated runs, without a rollback "
        "or factory-reset request."
    ),
    "progress": (
        "A valid newer release stays published, yet from the last state no fault-free path "
        "leads to running it."
    ),
    "no-stuck-service": (
        "From the last state the OTA service can no longer get back to a state that accepts a "
        "new update check."
    ),
    "store-consistency": (
        "With no write in flight, a database row names a missing file or a file whose SHA-256 "
        "differs from the recorded digest."
    ),
    "flash-physics": (
        "A row program needed to set bits that were already cleared (a write over un-erased flash)."
    ),
    "event-delivery": (
        "The app lost a callback (overwritten in the single status slot, or a result with no "
        "case), got one nobody asked for, or a new request started while one was unanswered."
    ),
    "event-response": "A request the app made can no longer get its terminal callback.",
    "outcome-honesty": "A success callback fired before (or without) its persistent effect.",
    "boot-coherence": (
        "Right after a bootloader pass, boot control and the DB row of the running image "
        "disagree (status, type, version), or the row is disabled."
    ),
    "intent-honoured": (
        "A rollback the app accepted was undone by the same release, or an erase removed more "
        "than its target."
    ),
    "intent-factory-reset": "An accepted factory reset can no longer end with the factory image.",
    "no-data-loss": (
        "A validated image, its DB row or the factory backup disappeared without an erase, a "
        "factory reset, a rollback or an eviction asking for it."
    ),
    "bad-image-abandoned": "An image that fails at every boot is never replaced by one that runs.",
    "bounded-reprogram": "The bootloader programmed the same image three times in a row.",
    "no-needless-reprogram": (
        "The bootloader erased and reprogrammed a slot that already held the validated image "
        "boot control and the DB agree on (flash wear)."
    ),
    "sec-authenticity": "A build the publisher did not make (or sign) runs.",
    "sec-anti-rollback": "An installed image older than one validated earlier runs.",
    "sec-fast-forward": "A version above every release of the publisher runs, blocking updates.",
    "sec-freeze-replay": (
        "After a freeze or replay has ended, the newest release still never installs (lasting "
        "damage)."
    ),
    "sec-erase-authenticity": "A manifest the publisher did not make erased a stored image.",
}


class BaselineError(OtaModelError):
    """A baseline file that cannot be used (bad JSON, wrong format or scenario)."""


def is_fault(action: Action) -> bool:
    """PROP-9: the inputs a trace's cost counts."""
    return action.kind in FAULT_KINDS


class SelectedModel:
    """An :class:`OtaModel` restricted to some of its properties, plus user properties
    (``--property NAME``, ``--property module:function``); every other hook is the model's."""

    def __init__(self, model: Any, properties: Sequence[Property[World, Action]]) -> None:
        self._model = model
        self._properties = tuple(properties)

    def properties(self) -> Sequence[Property[World, Action]]:
        return self._properties

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def select_properties(model: Any, names: Sequence[str]) -> SelectedModel | Any:
    """The model restricted to ``names`` (a shipped property's name, or ``module:function``
    naming a :class:`Property` or a predicate over a world, checked as ``always``)."""
    if not names:
        return model
    shipped = {p.name: p for p in model.properties()}
    chosen: list[Property[World, Action]] = []
    for name in names:
        if name in shipped:
            chosen.append(shipped[name])
        elif ":" in name:
            chosen.append(load_user_property(name))
        else:
            known = ", ".join(shipped)
            raise OtaModelError(f"--property {name!r}: no such property (choose from {known}, "
                                "or module:function)")  # fmt: skip
    return SelectedModel(model, chosen)


def load_user_property(spec: str) -> Property[World, Action]:
    """``module:function``: a :class:`Property`, or a predicate over a :class:`World` (an
    ``always`` property named ``spec``)."""
    import importlib

    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise OtaModelError(f"--property {spec!r}: cannot import {module_name!r}: {exc}") from None
    obj = getattr(module, attr, None)
    if isinstance(obj, Property):
        return obj
    if callable(obj):
        return Property.always(spec, obj, getattr(obj, "__doc__", "") or "")
    raise OtaModelError(f"--property {spec!r}: {module_name} has no predicate {attr!r}")


def run_check(model: Any, **options: Any) -> CheckReport[World, Action]:
    """The classified check with the fewest-faults traces (PROP-9, CHK-30..CHK-33)."""
    options.setdefault("cost", model.get_action_cost)
    return check(model, findings=True, **options)


def get_story(finding: Finding[Any, Any]) -> str:
    from otamodel.verify._story import get_story as tell

    return tell(finding, is_fault)


def get_faults(finding: Finding[Any, Any]) -> list[str]:
    """The faults a finding's trace uses, as action strings."""
    if finding.trace.init is None:
        return []
    return [str(a) for a in finding.trace.actions if is_fault(a)]


def get_record(finding: Finding[Any, Any], scenario: Scenario) -> dict[str, Any]:
    """The full JSON record of a finding: ID, property, key, story, counts, and the trace's
    actions with each step's summary and the persistent changes."""
    from otamodel.verify._tracefile import replay

    record: dict[str, Any] = {
        "id": finding.id,
        "property": finding.property,
        "kind": finding.kind.value,
        "key": list(finding.key),
        "terminal": list(finding.terminal),
        "cause": list(finding.cause),
        "story": get_story(finding),
        "states": finding.states,
        "edges": finding.edges,
        "trap_states": finding.region,
        "faults": get_faults(finding),
        "trace_length": len(finding.trace),
        "decisive_step": finding.decisive + 1,
    }
    if finding.trace.init is None:
        record["steps"] = []
        return record
    actions = list(finding.trace.actions)
    steps, _ = replay(scenario, actions)
    record["actions"] = [str(a) for a in actions]
    record["steps"] = [
        {
            "step": s.index,
            "action": str(s.action),
            "state": s.summary,
            "changes": list(s.changes),
            **({"decisive": True} if s.index == finding.decisive + 1 else {}),
        }
        for s in steps
    ]
    return record


def write_finding_traces(folder: str | Path, report: CheckReport[Any, Any],
                         scenario: Scenario) -> list[Path]:  # fmt: skip
    """One trace file per finding (``ID.json``) in ``folder``."""
    from otamodel.verify._tracefile import write_trace

    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for finding in report.findings:
        if finding.trace.init is None:
            continue
        path = directory / f"{finding.id}.json"
        write_trace(
            path,
            scenario=scenario,
            property_name=finding.property,
            verdict="violated",
            actions=list(finding.trace.actions),
            finding={"id": finding.id, "story": get_story(finding), "key": list(finding.key)},
        )
        written.append(path)
    return written


# ---------------------------------------------------------------------------- baselines


@attrs.frozen
class Comparison:
    """TRACE-34: the findings of a run against a baseline."""

    new: tuple[str, ...]
    still: tuple[str, ...]
    gone: tuple[str, ...]


def get_baseline_entries(report: CheckReport[Any, Any]) -> list[dict[str, Any]]:
    return [
        {"id": f.id, "property": f.property, "key": list(f.key)}
        for f in sorted(report.findings, key=lambda f: (f.property, f.id))
    ]


def read_baseline(path: str | Path) -> dict[str, Any]:
    """TRACE-34: a baseline file: ``{"format", "scenario", "variants": {variant: [entries]}}``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BaselineError(f"baseline {path}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise BaselineError(f"baseline {path}: $.format must be {BASELINE_FORMAT!r}")
    variants = doc.get("variants")
    if not isinstance(variants, dict) or not all(
        isinstance(v, list) and all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in v)
        for v in variants.values()
    ):
        raise BaselineError(f"baseline {path}: $.variants must map variants to lists of findings")
    return doc


def get_baseline_ids(doc: dict[str, Any], variant: str, path: str | Path = "") -> dict[str, str]:
    """The finding IDs (to their property) a baseline records for ``variant``."""
    entries = doc["variants"].get(variant)
    if entries is None:
        known = ", ".join(doc["variants"]) or "none"
        raise BaselineError(f"baseline {path}: no findings recorded for variant {variant!r} "
                            f"(it has {known})")  # fmt: skip
    return {e["id"]: str(e.get("property", "")) for e in entries}


def update_baseline(path: str | Path, scenario: Scenario, report: CheckReport[Any, Any]) -> None:
    """Record ``report``'s findings for the scenario's variant in ``path`` (other variants in
    an existing baseline of the same scenario are kept)."""
    target = Path(path)
    doc: dict[str, Any] = {"format": BASELINE_FORMAT, "scenario": scenario.name, "variants": {}}
    if target.is_file():
        try:
            old = read_baseline(target)
        except BaselineError:
            old = None
        if old is not None and old.get("scenario") == scenario.name:
            doc["variants"] = dict(old["variants"])
    doc["variants"][scenario.config.variant.value] = get_baseline_entries(report)
    doc["variants"] = dict(sorted(doc["variants"].items()))
    write_atomic(target, json.dumps(doc, indent=1) + "\n")


def compare(report: CheckReport[Any, Any], baseline: dict[str, str],
            properties: Iterable[str]) -> Comparison:  # fmt: skip
    """TRACE-34: NEW (not in the baseline), STILL (in both), GONE (in the baseline only),
    over the checked properties."""
    checked = set(properties)
    current = {f.id for f in report.findings}
    known = {fid for fid, prop in baseline.items() if not prop or prop in checked}
    return Comparison(
        new=tuple(sorted(current - known)),
        still=tuple(sorted(current & known)),
        gone=tuple(sorted(known - current)),
    )


# ---------------------------------------------------------------------------- the report


def get_variants(scenario: Scenario) -> tuple[str, ...]:
    """TRACE-6: every variant for patch builds (3.9.0 differs there), else the scenario's own
    and the hardened design."""
    if scenario.config.patch:
        return VARIANTS
    own = scenario.config.variant.value
    return (own, "hardened") if own != "hardened" else (own,)


@attrs.define
class Occurrence:
    finding: Finding[Any, Any]
    scenario: Scenario
    places: list[tuple[str, str]] = attrs.field(factory=list)


def collect(
    names: Sequence[str],
    *,
    time_limit: float | None,
    echo: Callable[[str], None],
    baselines: str | Path | None = None,
) -> tuple[dict[str, Occurrence], list[tuple[str, str, CheckReport[Any, Any]]]]:
    """Check every scenario × variant; findings deduplicated by ID (the cheapest trace kept)."""
    from otamodel.env import get_scenario, with_variant
    from otamodel.verify._properties import OtaModel

    found: dict[str, Occurrence] = {}
    runs: list[tuple[str, str, CheckReport[Any, Any]]] = []
    for name in names:
        base = get_scenario(name)
        for variant in get_variants(base):
            scenario = with_variant(base, variant)
            echo(f"checking {name} · {variant} …")
            report = run_check(OtaModel(scenario), time_limit=time_limit)
            runs.append((name, variant, report))
            if baselines is not None:
                Path(baselines).mkdir(parents=True, exist_ok=True)
                update_baseline(Path(baselines) / f"{name}.json", scenario, report)
            for finding in report.findings:
                seen = found.get(finding.id)
                rank = (finding.cost, len(finding.trace))
                if seen is None:
                    seen = found[finding.id] = Occurrence(finding, scenario)
                elif rank < (seen.finding.cost, len(seen.finding.trace)):
                    seen.finding, seen.scenario = finding, scenario
                seen.places.append((name, variant))
    return found, runs


def write_findings(
    output: str,
    *,
    scenarios: Sequence[str] | None = None,
    time_limit: float | None = 300,
    echo: Callable[[str], None] = lambda _t: None,
    baselines: str | Path | None = None,
) -> None:
    """TRACE-6: check every shipped scenario × variant and write the findings report."""
    from otamodel.env import get_scenario_names

    names = list(scenarios) if scenarios else get_scenario_names()
    found, runs = collect(names, time_limit=time_limit, echo=echo, baselines=baselines)
    lines = get_report_lines(found, runs)
    write_atomic(output, "\n".join(lines).rstrip() + "\n")


def get_report_lines(
    found: dict[str, Occurrence], runs: list[tuple[str, str, CheckReport[Any, Any]]]
) -> list[str]:
    from otamodel.verify._story import get_story_lines

    lines = [
        "# Findings",
        "",
        "Generated by `otamodel report` (do not edit by hand; `tox -e docs` regenerates it and",
        "the baselines in `tests/baselines/`). Every shipped scenario is explored exhaustively",
        "for each code variant; each finding is one distinct way a property fails (its cause and",
        "where the device ends), with a stable ID, a one-sentence story, the cheapest trace",
        "(fewest faults, then fewest steps) told through the steps that matter, and the",
        "scenarios and variants where it occurs. Reproduce one with",
        "`otamodel check --scenario S --variant V --traces DIR` and `otamodel replay DIR/ID.json`.",
        "How well the properties catch planted design defects: [defects.md](defects.md).",
        "",
        "## Runs",
        "",
        "| scenario | variant | states | transitions | search | findings |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, variant, report in runs:
        search = "complete" if report.is_complete else f"bounded ({report.stop_reason.value})"
        lines.append(
            f"| {name} | {variant} | {report.unique_states:,} | {report.transitions:,} "
            f"| {search} | {len(report.findings)} |"
        )
    lines += ["", "## Findings per property and variant", ""]
    props = list(dict.fromkeys(o.finding.property for o in found.values()))
    variants = [v for v in VARIANTS if any(r[1] == v for r in runs)]
    lines.append("| property | " + " | ".join(variants) + " | all (distinct) |")
    lines.append("| --- |" + " --- |" * (len(variants) + 1))
    for prop in props:
        cells = []
        for variant in variants:
            ids = {fid for fid, o in found.items() if o.finding.property == prop
                   and any(v == variant for _, v in o.places)}  # fmt: skip
            cells.append(str(len(ids)))
        total = sum(1 for o in found.values() if o.finding.property == prop)
        lines.append(f"| {prop} | " + " | ".join(cells) + f" | {total} |")
    lines += ["", *get_hardening_lines(found, runs), ""]
    for prop in props:
        group = sorted(
            (o for o in found.values() if o.finding.property == prop),
            key=lambda o: (o.finding.cost, len(o.finding.trace), o.finding.id),
        )
        lines += [f"## {prop} ({len(group)})", ""]
        if prop in EXPLANATIONS:
            lines += [EXPLANATIONS[prop], ""]
        for occurrence in group:
            finding = occurrence.finding
            where = ", ".join(f"{n} · {v}" for n, v in occurrence.places)
            faults = ", ".join(get_faults(finding)) or "none"
            lines.append(f"### {finding.id}")
            lines.append("")
            lines.append(get_story(finding))
            lines.append("")
            lines.append(f"- occurs in: {where}")
            lines.append(f"- cheapest trace: {len(finding.trace)} steps, faults: {faults}")
            if finding.trace.init is not None:
                lines.append("")
                lines.append("```")
                story = get_story_lines(finding.trace.init, list(finding.trace.actions))
                lines.extend(f"{line.step:4} {line.text}" for line in fold_start(story, finding))
                lines.append("```")
            lines.append("")
    return lines


def fold_start(story: list[Any], finding: Finding[Any, Any]) -> list[Any]:
    """The report's compact trace: the fault-free start before the first input or fault is one
    line (unless the decisive step lies in it)."""
    from otamodel.verify._story import StoryLine

    first = next((k for k, line in enumerate(story) if line.kind == "input"), None)
    if first is None or first < 3 or finding.decisive + 1 < story[first].step:
        return story
    start = story[first].step - 1
    text = f"steps 1–{start}: the fault-free start (first boot, the app starts)"
    return [StoryLine(1, text), *story[first:]]


def get_hardening_lines(
    found: dict[str, Occurrence], runs: list[tuple[str, str, CheckReport[Any, Any]]]
) -> list[str]:
    """Released (harmony-3.9.1) against hardened on the scenarios checked in both."""
    both = {n for n, v, _ in runs if v == RELEASED} & {n for n, v, _ in runs if v == "hardened"}
    released = {fid for fid, o in found.items() if any(n in both and v == RELEASED
                                                         for n, v in o.places)}  # fmt: skip
    hardened = {fid for fid, o in found.items() if any(n in both and v == "hardened"
                                                         for n, v in o.places)}  # fmt: skip
    lines = ["## Released (harmony-3.9.1) vs hardened", ""]
    lines.append("| property | removed | kept | added |")
    lines.append("| --- | --- | --- | --- |")
    props = list(dict.fromkeys(o.finding.property for o in found.values()))
    for prop in props:
        ids = {fid for fid, o in found.items() if o.finding.property == prop}
        removed = sorted((released - hardened) & ids)
        kept = sorted(released & hardened & ids)
        added = sorted((hardened - released) & ids)
        lines.append(f"| {prop} | {_ids(removed)} | {_ids(kept)} | {_ids(added)} |")
    return lines


def _ids(ids: list[str]) -> str:
    if not ids:
        return "0"
    return f"{len(ids)}: " + ", ".join(ids)


def get_fault_story(scenario: Scenario, actions: Sequence[Action]) -> list[str]:
    """The inputs and faults of a trace, one line each (``step N: action: what it hit``), as
    the story view tells them (TRACE-33)."""
    from otamodel.env import initial_world
    from otamodel.verify._story import get_story_lines

    lines = get_story_lines(initial_world(scenario), list(actions))
    return [f"step {line.step}: {line.text}" for line in lines if line.kind == "input"]
