"""``otamodel report``: check every scenario and variant and write ``docs/findings.md``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from otamodel._io import write_atomic

VARIANTS = ("harmony-3.9.1", "harmony-3.9.0", "hardened")

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
        "The server is kept on an older or foreign manifest and the newest release never installs."
    ),
    "sec-erase-authenticity": "A manifest the publisher did not make erased a stored image.",
}


def _describe_trace(result: Any, limit: int = 40) -> list[str]:
    actions = [str(a) for a in result.trace.actions]
    compact: list[str] = []
    for action in actions:
        if compact and compact[-1].split(" ×")[0] == action:
            head, _, count = compact[-1].partition(" ×")
            compact[-1] = f"{head} ×{int(count or 1) + 1}"
        else:
            compact.append(action)
    text = " → ".join(compact[:limit]) + (" → …" if len(compact) > limit else "")
    lines = [f"  - shortest trace ({len(actions)} steps): `{text}`"]
    lasso = getattr(result, "lasso", ())
    if lasso:
        # CHK-18: what happens next when the device is left alone: why the goal stays away.
        from otamodel.model._device import get_state_summary

        steps = _fold([str(a) for a, _ in lasso])
        closing = "returns to an earlier state" if len(lasso) < 200 else "continues"
        lines.append(
            f"  - then, with only the allowed inputs ({len(lasso)} steps, {closing}): "
            f"`{' → '.join(steps[:limit])}`; ends in `{get_state_summary(lasso[-1][1])}`"
        )
    return lines


def _fold(actions: list[str]) -> list[str]:
    compact: list[str] = []
    for action in actions:
        if compact and compact[-1].split(" ×")[0] == action:
            head, _, count = compact[-1].partition(" ×")
            compact[-1] = f"{head} ×{int(count or 1) + 1}"
        else:
            compact.append(action)
    return compact


def get_fault_story(scenario: Any, actions: Sequence[Any]) -> list[str]:
    """TRACE-6: what each non-``tick`` input of a trace hit: the persistent operation in
    flight (for power cuts) or the device state, as short sentences."""
    from otamodel.env import initial_world, step
    from otamodel.model import get_state_summary

    world = initial_world(scenario)
    story: list[str] = []
    for index, action in enumerate(actions, 1):
        before = world
        world = step(world, action).world
        if action.kind in ("tick", "timer"):
            continue
        where = get_state_summary(before)
        if action.kind.startswith("power_cut") and before.pending:
            torn = " (tearing it)" if action.kind == "power_cut_torn" else " (before it)"
            op = before.pending[0].describe()
            story.append(f"step {index}: {action} at `{op}`{torn}, in `{where}`")
        else:
            story.append(f"step {index}: {action} in `{where}`")
    return story


def get_fault_free_future(world: Any, steps: int = 400) -> str:
    """TRACE-6: where the device goes from ``world`` with no further input but the clock
    (ticks, and the RTCC alarm when armed): the states it keeps cycling through."""
    from otamodel.env import enabled_actions, step
    from otamodel.model import Action, get_state_summary

    seen: list[str] = []
    for _ in range(steps):
        timers = [a for a in enabled_actions(world) if a.kind == "timer"]
        result = step(world, timers[0] if timers else Action("tick"))
        if result.is_refused:
            return f"the device stops at `{get_state_summary(world)}` ({result.refusal})"
        world = result.world
        label = get_state_summary(world)
        if label not in seen[-12:]:
            seen.append(label)
    tail = list(dict.fromkeys(seen[-6:]))
    return "left alone it keeps cycling through " + ", ".join(f"`{t}`" for t in tail[-3:])


def write_findings(
    output: str,
    *,
    scenarios: Sequence[str] | None = None,
    time_limit: float = 300,
    echo: Callable[[str], None] = lambda _t: None,
) -> None:
    """TRACE-6: write the findings report: per scenario and variant, the verdict table and,
    per violation, the shortest trace with a sentence saying what it shows."""
    from otamodel.checker import check
    from otamodel.env import get_scenario, get_scenario_names, with_variant
    from otamodel.verify._properties import OtaModel
    from otamodel.verify._tracefile import replay

    names = list(scenarios) if scenarios else get_scenario_names()
    lines = [
        "# Findings",
        "",
        "Generated by `otamodel report` (do not edit by hand). Each scenario is explored",
        "exhaustively for each code variant; a violation of the released code is a finding",
        "about that code, reproduced by `otamodel check --scenario S --variant V --traces DIR`",
        "and `otamodel replay`.",
        "",
    ]
    for name in names:
        base = get_scenario(name)
        variants = VARIANTS if base.config.patch else (base.config.variant.value, "hardened")
        for variant in variants:
            scenario = with_variant(base, variant)
            echo(f"checking {name} / {variant} …")
            model = OtaModel(scenario)
            report = check(model, time_limit=time_limit, cost=model.get_action_cost)
            lines.append(f"## `{name}` · {variant}")
            lines.append("")
            if scenario.description:
                lines.append(scenario.description)
                lines.append("")
            lines.append(
                f"{report.unique_states:,} states, {report.transitions:,} transitions, max depth "
                f"{report.max_depth}, search "
                + ("complete." if report.is_complete else f"bounded: {report.stop_reason.value}.")
            )
            lines.append("")
            lines.append("| property | kind | verdict | trace |")
            lines.append("| --- | --- | --- | --- |")
            for res in report.results:
                n = len(res.trace) if res.trace is not None else ""
                lines.append(
                    f"| {res.name} | {res.kind.value} "
                    f"| {res.get_label().split(' at depth')[0]} | {n} |"
                )
            lines.append("")
            for res in report.results:
                if not res.is_failing:
                    continue
                lines.append(
                    f"- **{res.name}** — "
                    + EXPLANATIONS.get(res.name, "No witness exists in this scenario.")
                )
                if res.trace is not None:
                    lines.extend(_describe_trace(res))
                    for sentence in get_fault_story(scenario, list(res.trace.actions)):
                        lines.append(f"  - {sentence}")
                    steps, _ = replay(scenario, list(res.trace.actions))
                    if steps:
                        lines.append(f"  - last state: `{steps[-1].summary}`")
                    if res.kind.value == "eventually":
                        future = get_fault_free_future(res.trace.last_state)
                        lines.append(f"  - from there, {future}")
            lines.append("")
    write_atomic(output, "\n".join(lines).rstrip() + "\n")
