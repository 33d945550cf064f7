"""Trace files (JSON) and replay with per-step persistent-state diffs (TRACE-*)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from otamodel._io import write_output
from otamodel.checker._trace import Trace
from otamodel.env import Scenario, get_scenario, initial_world, step
from otamodel.errors import TraceError
from otamodel.formats import bootctl
from otamodel.model import Action, StepResult, World, describe_transition, get_state_summary

TRACE_FORMAT = "otamodel-trace/1"


@attrs.frozen
class ReplayStep:
    """One replayed step: the action, what the model did, and what changed persistently."""

    index: int
    action: Action
    result: StepResult
    summary: str
    changes: tuple[str, ...]
    transition: str = ""
    """The transition as told (TRACE-33: never ``(stay)`` when a machine's state changed)."""


def get_persistent_changes(before: World, after: World) -> list[str]:
    """TRACE-3: what changed in internal flash and the external FS between two worlds."""
    out: list[str] = []
    for i, (a, b) in enumerate(zip(before.flash.pages, after.flash.pages, strict=True)):
        if a != b:
            if i == 0:
                h = bootctl.unpack(b[: bootctl.HEADER_SIZE])
                out.append(
                    f"NVM boot control: status {h.status:02X} type {h.type} version {h.version} "
                    f"boot_addr {h.boot_addr:08X}"
                )
            else:
                erased = b == b"\xff" * len(b)
                out.append(f"NVM page {i}: {'erased' if erased else 'programmed'}")
    if after.flash.beyond != before.flash.beyond:
        out.append("NVM page past the slot: programmed")  # SCN-11
    if after.fs.damaged != before.fs.damaged:
        out.append(f"FS: damaged={after.fs.damaged}")  # SCN-32
    if after.flash.overprograms != before.flash.overprograms:
        out.append("NVM: a program set bits over cleared ones")
    fa, fb = dict(before.fs.files), dict(after.fs.files)
    if before.fs.formatted != after.fs.formatted or before.fs.has_dir != after.fs.has_dir:
        out.append(f"FS: formatted={after.fs.formatted} ota/={after.fs.has_dir}")
    for name in sorted(set(fa) | set(fb)):
        if name not in fb:
            out.append(f"FS {name}: deleted")
        elif name not in fa:
            out.append(f"FS {name}: created ({len(fb[name])} B)")
        elif fa[name] != fb[name]:
            if name.endswith(".csv"):
                out.append(f"FS {name}: {fb[name].decode('latin-1')!r}")
            else:
                out.append(f"FS {name}: {len(fb[name])} B")
    return out


def replay(scenario: Scenario, actions: Sequence[Action]) -> tuple[list[ReplayStep], str | None]:
    """TRACE-2: re-execute ``actions`` from the initial world; the second value names the
    first step that was refused (the trace no longer reproduces), or is None."""
    world = initial_world(scenario)
    steps: list[ReplayStep] = []
    for index, action in enumerate(actions, 1):
        result = step(world, action)
        if result.is_refused:
            return steps, f"step {index} ({action}) is refused: {result.refusal}"
        changes = tuple(get_persistent_changes(world, result.world))
        told = describe_transition(world, result)
        summary = get_state_summary(result.world)
        steps.append(ReplayStep(index, action, result, summary, changes, told))
        world = result.world
    return steps, None


def get_trace_document(
    *,
    scenario: Scenario,
    property_name: str,
    verdict: str,
    actions: Sequence[Action],
    finding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """TRACE-1: the JSON document of a trace file (scenario description, variant, property,
    actions, and a per-step summary; ``finding``: its ID, story and key); the actions must
    replay."""
    steps, problem = replay(scenario, actions)
    if problem is not None:
        raise TraceError(f"refusing to write a trace that does not replay: {problem}")
    return {
        "format": TRACE_FORMAT,
        "scenario": scenario.name,
        "scenario_source": dict(scenario.source),
        "variant": scenario.config.variant.value,
        "property": property_name,
        "verdict": verdict,
        **({"finding": finding} if finding is not None else {}),
        "actions": [str(a) for a in actions],
        "steps": [
            {
                "action": str(s.action),
                "transition": s.transition or s.result.transition,
                "state": s.summary,
                "changes": list(s.changes),
            }
            for s in steps
        ],
    }


def write_trace(
    path: str | Path,
    *,
    scenario: Scenario,
    property_name: str,
    verdict: str,
    actions: Sequence[Action],
    finding: dict[str, Any] | None = None,
) -> None:
    """TRACE-1: write a trace file atomically (see :func:`get_trace_document`)."""
    doc = get_trace_document(
        scenario=scenario,
        property_name=property_name,
        verdict=verdict,
        actions=actions,
        finding=finding,
    )
    write_output(path, json.dumps(doc, indent=1) + "\n")


def get_trace_text(
    *,
    scenario: Scenario,
    property_name: str,
    verdict: str,
    actions: Sequence[Action],
) -> str:
    """TRACE-1: the text of a trace file (see :func:`get_trace_document`)."""
    doc = get_trace_document(
        scenario=scenario, property_name=property_name, verdict=verdict, actions=actions
    )
    return json.dumps(doc, indent=1) + "\n"


@attrs.frozen
class TraceFile:
    scenario: Scenario
    property_name: str
    verdict: str
    actions: tuple[Action, ...]
    recorded: tuple[dict[str, Any], ...]
    finding_id: str = ""
    story: str = ""


def read_trace(path: str | Path) -> TraceFile:
    """TRACE-4: read and validate a trace file; problems are a TraceError naming the field."""
    from otamodel._limits import read_document

    doc = read_document(path, TraceError, suffix=".json")  # BOUND-5, BOUND-6
    return parse_trace_document(doc)


def parse_trace_document(doc: object) -> TraceFile:
    """TRACE-4: validate a trace file's JSON document; problems name the field."""
    from otamodel._limits import check_depth, check_scenario_spec, get_limits
    from otamodel.env import build_scenario

    check_depth(doc, TraceError, "$", get_limits().max_depth)  # BOUND-6

    if not isinstance(doc, dict):
        raise TraceError("a trace is a JSON object", where="$")
    if doc.get("format") != TRACE_FORMAT:
        raise TraceError(f"format must be {TRACE_FORMAT!r}", where="$.format")
    actions = doc.get("actions")
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise TraceError("actions must be a list of strings", where="$.actions")
    source = doc.get("scenario_source")
    name = doc.get("scenario")
    if isinstance(source, dict) and source:
        check_scenario_spec(source, "$.scenario_source", TraceError)
        if isinstance(name, str) and source.get("name", name) != name:
            raise TraceError(
                f"scenario {name!r} but scenario_source describes {source.get('name')!r}",
                where="$.scenario",
            )
        scenario = build_scenario(source)
    elif isinstance(name, str):
        scenario = get_scenario(name)
    else:
        raise TraceError("scenario missing", where="$.scenario")
    steps = doc.get("steps", [])
    finding = doc.get("finding")
    if not isinstance(steps, list):
        raise TraceError("steps must be a list", where="$.steps")
    return TraceFile(
        scenario=scenario,
        property_name=str(doc.get("property", "")),
        verdict=str(doc.get("verdict", "")),
        actions=tuple(Action.parse(a) for a in actions),
        recorded=tuple(s for s in steps if isinstance(s, dict)),
        finding_id=str(finding.get("id", "")) if isinstance(finding, dict) else "",
        story=str(finding.get("story", "")) if isinstance(finding, dict) else "",
    )


def get_mermaid_sequence(steps: Sequence[ReplayStep]) -> str:
    """TRACE-5: a Mermaid sequence diagram of a replay (environment, device, storage)."""
    lines = [
        "sequenceDiagram",
        "    participant Env",
        "    participant Device",
        "    participant Storage",
    ]
    for s in steps:
        if s.action.kind != "tick":
            lines.append(f"    Env->>Device: {s.action}")
        elif s.transition and not s.result.ops:
            lines.append(f"    Note over Device: {s.transition.replace(';', ',')}")
        for note in s.result.notes:
            lines.append(f"    Note over Device: {note.replace(';', ',')}")
        for change in s.changes:
            lines.append(f"    Device->>Storage: {change.replace(';', ',')}")
    return "\n".join(lines) + "\n"


def run(world: World, actions: Sequence[Action]) -> Trace[World, Action]:
    """TRACE-7: apply ``actions`` from ``world``; the trace of every state visited. A refused
    action is a :class:`TraceError` naming the step (``step`` itself never raises)."""
    init = world
    steps: list[tuple[Action, World]] = []
    for index, action in enumerate(actions, 1):
        result = step(world, action)
        if result.is_refused:
            raise TraceError(f"step {index} ({action}) is refused: {result.refusal}")
        world = result.world
        steps.append((action, world))
    from otamodel.verify._timeline import OtaTrace

    return OtaTrace(init=init, steps=tuple(steps))
