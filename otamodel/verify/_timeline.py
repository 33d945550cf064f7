"""The story of a run (TRACE-20) for ``Trace.get_story``, ``otamodel cuts --cut`` and anything
else that wants a short account instead of every tick: the one story view of
:mod:`otamodel.verify._story` (TRACE-33) as text lines, and the state the run ends in."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from otamodel.checker._trace import Trace
from otamodel.model import Action, World, get_state_summary


def get_story_lines(start: World, actions: Sequence[Action], *, first: int = 1) -> list[str]:
    """TRACE-20: the story view (TRACE-33) of ``actions`` from ``start`` as numbered lines,
    then the state the run ends in. ``first`` numbers the first step."""
    from otamodel.env import step
    from otamodel.verify._story import get_story_lines as tell
    from otamodel.verify._story import render_story

    lines = render_story(tell(start, actions, first=first, notes=True))
    world = start
    for action in actions:
        result = step(world, action)
        if result.is_refused:
            return lines
        world = result.world
    lines.append(f"{'':>5}  ends: {get_state_summary(world)}")
    return lines


@attrs.frozen(repr=False)
class OtaTrace(Trace[World, Action]):
    """A :class:`~otamodel.checker.Trace` of the OTA model: :meth:`get_story` tells the steps
    that matter without needing the model."""

    def get_story(self, model: object = None) -> str:
        """TRACE-20: the story view of the trace (TRACE-33) and where it ends."""
        if model is not None:
            return super().get_story(model)
        return "\n".join(get_story_lines(self.init, self.actions))


__all__ = ["OtaTrace", "get_story_lines"]
