"""A live one-line progress display for the CLI, driven by the checker's ``progress`` hook."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.text import Text

from otamodel.checker._report import ProgressInfo
from otamodel.checker._search import ProgressHook


def get_progress_text(info: ProgressInfo) -> Text:
    """``states`` (and per second), ``transitions``, ``frontier``, ``depth`` and elapsed time."""
    text = Text()
    text.append(f"{info.states:,}", style="bold")
    text.append(f" states ({info.states_per_second:,.0f}/s)  ")
    text.append(f"{info.transitions:,} transitions  ")
    text.append(f"frontier {info.frontier:,}  depth {info.depth}  {info.seconds:.1f} s")
    if info.is_final:
        text.append("  done", style="green")
    return text


@contextmanager
def live_progress(console: Console | None = None) -> Iterator[ProgressHook]:
    """A ``progress`` hook that redraws one status line with rich (CHK-12)::

    with live_progress() as hook:
        report = check(model, progress=hook)
    """
    with Live(Text("starting..."), console=console, refresh_per_second=4) as live:

        def update(info: ProgressInfo) -> None:
            live.update(get_progress_text(info))

        yield update
