"""Stories: the steps of a run that matter (TRACE-20), for ``Trace.get_story``, ``otamodel cuts
--cut`` and anything else that wants a short account instead of every tick."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from otamodel.checker._trace import Trace
from otamodel.model import Action, World, get_state_summary
from otamodel.model import step as device_step
from otamodel.verify._tracefile import get_persistent_changes


def get_story_lines(start: World, actions: Sequence[Action], *, first: int = 1) -> list[str]:
    """TRACE-20: one line per step that matters (an input other than ``tick``, a callback or
    jump, a persistent change), runs of uneventful ticks folded into ``… N ticks``, and the
    state the run ends in. ``first`` numbers the first step."""
    lines: list[str] = []
    quiet = 0
    world = start
    for number, action in enumerate(actions, first):
        result = device_step(world, action)
        if result.is_refused:
            lines.append(f"{number:>5}  {action}: refused ({result.refusal})")
            return lines
        changes = get_persistent_changes(world, result.world)
        world = result.world
        if action.kind == "tick" and not result.notes and not changes:
            quiet += 1
            continue
        if quiet:
            lines.append(f"{'':>5}  … {quiet} tick{'s' if quiet > 1 else ''}")
            quiet = 0
        head = str(action) if action.kind != "tick" else (result.transition or "tick")
        lines.append(f"{number:>5}  {head}")
        lines.extend(f"{'':>7}· {note}" for note in result.notes)
        lines.extend(f"{'':>7}» {change}" for change in changes)
    if quiet:
        lines.append(f"{'':>5}  … {quiet} tick{'s' if quiet > 1 else ''}")
    lines.append(f"{'':>5}  ends: {get_state_summary(world)}")
    return lines


@attrs.frozen(repr=False)
class OtaTrace(Trace[World, Action]):
    """A :class:`~otamodel.checker.Trace` of the OTA model: :meth:`get_story` tells the steps
    that matter without needing the model."""

    def get_story(self, model: object = None) -> str:
        """TRACE-20: the inputs, callbacks, jumps and persistent changes, quiet ticks folded."""
        if model is not None:
            return super().get_story(model)
        return "\n".join(get_story_lines(self.init, self.actions))


__all__ = ["OtaTrace", "get_story_lines"]
