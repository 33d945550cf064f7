"""Compact action scripts (ENV-20): ``tick*29, timer, tick*95, power_cut``.

One format for what the tools print and what ``otamodel simulate --script`` reads: actions
separated by commas or new lines, ``ACTION*N`` repeating one N times, ``#`` starting a comment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import attrs

from otamodel.errors import TraceError
from otamodel.model import ACTION_KINDS, CTRL_MESSAGES, Action, StepResult, World

MAX_REPEAT = 1_000_000
_ITEM = re.compile(r"^(?P<action>[a-z_]+(?:\([^()*,]*\))?)\s*(?:\*\s*(?P<count>\d+))?$")


def format_actions(actions: Iterable[Action]) -> str:
    """ENV-20: the compact form, runs of one action written ``ACTION*N``."""
    parts: list[str] = []
    last: str | None = None
    count = 0
    for action in actions:
        text = str(action)
        if text == last:
            count += 1
            continue
        if last is not None:
            parts.append(last if count == 1 else f"{last}*{count}")
        last, count = text, 1
    if last is not None:
        parts.append(last if count == 1 else f"{last}*{count}")
    return ", ".join(parts)


def parse_actions(text: str, *, source: str = "script") -> list[Action]:
    """ENV-20: read a compact script; a :class:`TraceError` names the line and item of the
    first problem (an unknown action, a bad count, a control message that does not exist)."""
    actions: list[Action] = []
    for line_number, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0]
        items = body.split(",")
        for item_number, raw in enumerate(items, 1):
            item = raw.strip()
            where = f"{source}:{line_number}, item {item_number}"
            if not item:
                if item_number < len(items):  # a trailing comma is fine, ",," is not
                    raise TraceError("empty item between commas", where=where)
                continue
            actions.extend(_parse_item(item, where))
    return actions


def _parse_item(item: str, where: str) -> list[Action]:
    match = _ITEM.match(item)
    if match is None:
        raise TraceError(f"cannot read {item!r} (expected ACTION or ACTION*N)", where=where)
    action = Action.parse(match["action"])
    if action.kind not in ACTION_KINDS:
        known = ", ".join(ACTION_KINDS)
        raise TraceError(f"unknown action {action.kind!r} (known: {known})", where=where)
    if action.kind == "ctrl" and action.arg not in CTRL_MESSAGES:
        known = ", ".join(CTRL_MESSAGES)
        raise TraceError(f"unknown control message {action.arg!r} (known: {known})", where=where)
    if action.kind == "publish" and not action.arg.isdigit():
        raise TraceError("publish takes a release index, e.g. publish(1)", where=where)
    count = 1 if match["count"] is None else int(match["count"])
    if not 1 <= count <= MAX_REPEAT:
        raise TraceError(f"a repeat count is 1..{MAX_REPEAT}, not {count}", where=where)
    return [action] * count


__all__ = ["format_actions", "parse_actions"]


@attrs.frozen
class Until:
    """A stop condition for ``simulate --until`` (ENV-21): checked after every step."""

    text: str
    description: str
    predicate: Callable[[World, World, StepResult], bool] = attrs.field(repr=False)

    def is_met(self, before: World, result: StepResult) -> bool:
        return self.predicate(before, result.world, result)


UNTIL_FORMS = (
    "app-runs",
    "bootloader-programs",
    "update-done",
    "hang",
    "version:N",
    "state:NAME",
)


def parse_until(text: str) -> Until:
    """ENV-21: ``app-runs`` (a jump starts an application), ``bootloader-programs`` (the
    bootloader programs an application page), ``update-done`` (a newer version runs, nothing
    queued), ``hang`` (the CPU runs no application), ``version:N`` (version N runs),
    ``state:NAME`` (a service, core or bootloader state named NAME, e.g.
    ``state:DOWNLOAD_IMAGE``). A :class:`TraceError` lists the forms."""
    from otamodel.model import BlTask, CoreTask, Phase, SvcState

    name, _, arg = text.strip().partition(":")
    if name == "app-runs" and not arg:
        return Until(
            text,
            "an application starts",
            lambda b, a, r: b.phase is not Phase.APP and a.phase is Phase.APP,
        )
    if name == "bootloader-programs" and not arg:
        return Until(text, "the bootloader programs the slot", _is_bootloader_program)
    if name == "update-done" and not arg:
        return Until(text, "a newer version runs with nothing queued", _is_update_done)
    if name == "hang" and not arg:
        return Until(text, "the CPU runs no application", lambda b, a, r: a.phase is Phase.HUNG)
    if name == "version" and arg.isdigit():
        version = int(arg)
        return Until(
            text,
            f"version {version} runs",
            lambda b, a, r: a.running is not None and a.running.version == version,
        )
    if name == "state" and arg:
        known = {m.name for enum in (SvcState, CoreTask, BlTask) for m in enum}
        if arg not in known:
            raise TraceError(
                f"no machine state {arg!r} (service, core and bootloader states: "
                f"{', '.join(sorted(known))})",
                where="--until",
            )
        return Until(text, f"a machine is in {arg}", lambda b, a, r: _is_in_state(a, arg))
    raise TraceError(f"cannot read {text!r} (forms: {', '.join(UNTIL_FORMS)})", where="--until")


def _is_in_state(world: World, name: str) -> bool:
    from otamodel.model import Phase

    if world.phase is Phase.BOOTLOADER:
        return world.boot.task.name == name
    if world.phase is Phase.APP:
        return name in (world.service.state.name, world.core.task.name)
    return False


def _is_bootloader_program(before: World, after: World, result: StepResult) -> bool:
    from otamodel.model import Phase

    return before.phase is Phase.BOOTLOADER and any(
        op.startswith("NVM program page") and not op.startswith("NVM program page 0 ")
        for op in result.ops
    )


def _is_update_done(before: World, after: World, result: StepResult) -> bool:
    from otamodel.model import Phase

    scenario = after.scenario
    return (
        after.phase is Phase.APP
        and after.running is not None
        and after.running.version > scenario.factory.version
        and not after.pending
    )


__all__ += ["UNTIL_FORMS", "Until", "parse_until"]
