"""Compact action scripts (ENV-6): ``tick*29, timer, tick*95, power_cut``.

One format for what the tools print and what ``otamodel simulate --script`` reads: actions
separated by commas or new lines, ``ACTION*N`` repeating one N times, ``#`` starting a comment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from otamodel.errors import TraceError
from otamodel.model import ACTION_KINDS, CTRL_MESSAGES, Action

MAX_REPEAT = 1_000_000
_ITEM = re.compile(r"^(?P<action>[a-z_]+(?:\([^()*,]*\))?)\s*(?:\*\s*(?P<count>\d+))?$")


def format_actions(actions: Iterable[Action]) -> str:
    """ENV-6: the compact form, runs of one action written ``ACTION*N``."""
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
    """ENV-6: read a compact script; a :class:`TraceError` names the line and item of the
    first problem (an unknown action, a bad count, a control message that does not exist)."""
    actions: list[Action] = []
    for line_number, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0]
        for item_number, raw in enumerate(body.split(","), 1):
            item = raw.strip()
            where = f"{source}:{line_number}, item {item_number}"
            if not item:
                if raw and body.strip():
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
