"""Stories: a finding told in one sentence, and the story view of a trace (TRACE-32, TRACE-33).

The story view keeps only the steps that matter: the environment's inputs and faults, the
persistent writes (consecutive writes to one file merged into one line with the resulting
content), the machines' state changes, and the loop the trace ends in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from otamodel.env import step
from otamodel.model import Action, Phase, World, describe_transition
from otamodel.model._physics import (
    FlashErase,
    FlashProgram,
    FsClose,
    FsCreate,
    FsWrite,
    PersistentOp,
)
from otamodel.verify._keys import describe_op, get_machines, get_persistent_facts

FAULT_WORDS = {
    "transfer_fail": "a download read fails",
    "corrupt": "a downloaded chunk arrives with a flipped byte",
    "truncate": "the server's Content-Length ends the image early",
    "net_down": "the network goes down",
    "net_up": "the network comes back",
    "crash": "the application crashes before validating its image",
    "reset": "the device is reset",
    "timer": "the RTCC alarm fires",
    "factory_sign": "the user stores the factory signature",
}


def describe_where(world: World) -> str:
    """``the bootloader is in SELECT_IMAGE`` / ``the app v2 runs (service X, core Y)``."""
    if world.phase is Phase.BOOTLOADER:
        return f"the bootloader is in {world.boot.task.name}"
    if world.phase is Phase.APP and world.running is not None:
        return (
            f"app v{world.running.version} runs (service {world.service.state.name}, "
            f"core {world.core.task.name})"
        )
    return "the CPU runs code that is not an application"


def describe_release(world: World, index: int) -> str:
    """What publishing release ``index`` means: a release (its name and description), or a
    withheld one (SCN-17: the frozen server answers nothing), told with its description."""
    releases = getattr(world.scenario, "releases", ())
    release = releases[index] if 0 <= index < len(releases) else None
    if release is None:
        return f"the server publishes release {index}"
    if release.withheld:
        return f"the server freezes ({release.description or 'it answers nothing'})"
    about = f"; {release.description}" if release.description else ""
    return f"the server publishes release {index} ({release.name}{about})"


def describe_action(before: World, action: Action) -> str:
    """What an action does in ``before``, as a clause (TRACE-32, TRACE-33)."""
    kind = action.kind
    pending = before.pending[0] if before.pending else None
    op = describe_op(pending, exact=True) if pending is not None else ""
    if kind == "power_cut":
        return f"power fails just before {op}" if op else "power fails"
    if kind == "power_cut_torn":
        return f"power fails in the middle of {op}" if op else "power fails"
    if kind == "reset" and op:
        return f"the device is reset just before {op}"
    if kind == "tick":
        if op:
            return f"{op} completes"
        result = step(before, action)
        return (
            get_machine_change(before, result.world)
            or describe_transition(before, result)
            or ("time passes")
        )
    if kind == "ctrl":
        return f"the user sends {action.arg}"
    if kind == "publish" and action.arg.isdigit():
        return describe_release(before, int(action.arg))
    if kind == "freeze":
        frozen = before.scenario.get_frozen_index()  # type: ignore[attr-defined]
        return describe_release(before, frozen) if frozen is not None else "the server freezes"
    if kind == "replay":
        return f"the server replays release {action.arg}'s manifest and files"
    if kind in FAULT_WORDS:
        return FAULT_WORDS[kind]
    result = step(before, action)
    return result.transition or str(action)


def get_machine_change(before: World, after: World) -> str:
    """``bootloader:X → app:Y/Z`` when the machines' states differ, else ``""``."""
    a, b = get_machines(before), get_machines(after)
    return "" if a == b else f"{a} → {b}"


def describe_end(world: World) -> str:
    """Where a device ends: machines and the persistent facts that keep it there."""
    return f"{describe_where(world)}; {get_persistent_facts(world)}"


def get_story(finding: Any, is_fault: Any) -> str:
    """TRACE-32: one sentence: earlier faults, the decisive step (what it hit, where), and the
    outcome: the violation, or where the device ends and why it stays there."""
    trace = finding.trace
    if trace.init is None:
        return "No reachable state is an example of this property."
    states = trace.states
    d = finding.decisive
    earlier = [
        f"{a} at step {k + 1}" for k, a in enumerate(trace.actions[: max(d, 0)]) if is_fault(a)
    ]
    prefix = f"After {', '.join(earlier)}, " if earlier else ""
    if d < 0:
        decisive = f"in the initial state ({describe_where(states[0])})"
    else:
        before, action = states[d], trace.actions[d]
        decisive = (
            f"{describe_action(before, action)} at step {d + 1} while {describe_where(before)}"
        )
    decisive = decisive[0].upper() + decisive[1:] if not prefix else decisive
    after = states[d + 1] if d >= 0 else states[0]
    if finding.kind.value == "always":
        outcome = get_violation_words(finding.property, after)
        return f"{prefix}{decisive}: {outcome}."
    end = trace.last_state
    facts = get_persistent_facts(end, published=finding.property == "progress")
    return (
        f"{prefix}{decisive}; with no further fault the device ends where "
        f"{describe_where(end)} and stays there ({facts})."
    )


def get_violation_words(prop: str, after: World) -> str:
    """What an ``always`` violation looks like, in words."""
    from otamodel.verify._keys import get_outcome

    if prop == "check-interval":
        from otamodel.model._service import get_alarm_delay

        svc = after.service
        return (
            f"the RTCC is armed to fire {get_alarm_delay(svc.rtcc_interval)} s later although "
            f"the interval is {svc.rtcc_interval} s (SVC-42: it wraps modulo a day)"
        )
    if prop == "flash-physics":
        return "the row program has to set bits that are already cleared (no erase before it)"
    if prop == "store-consistency":
        state = get_outcome(prop, after)[0]
        return f"with nothing in flight, the image database is inconsistent ({state})"
    outcome = get_outcome(prop, after)
    if outcome:
        return outcome[0]
    marked = get_ghost_words(prop, after)
    return marked or f"{prop} is violated"


def _get_incoherence(after: World) -> str:
    """PROP-32 in words: what boot control and the running image's DB row say."""
    from otamodel.env._oracle import find_row_of
    from otamodel.formats import bootctl

    image = after.running
    assert image is not None
    header = bootctl.unpack(after.flash.pages[0][: bootctl.HEADER_SIZE])
    said = f"boot control says status {header.status:02X}, type {header.type}, v{header.version}"
    if image.factory:
        return f"the factory image runs but {said}"
    row = find_row_of(after, image)
    if row is None:
        return f"app v{image.version} runs with no DB row for its file; {said}"
    status = "unreadable" if row.status is None else f"{row.status:02X}"
    version = "unreadable" if row.version is None else f"v{row.version}"
    return f"app v{image.version} runs; its DB row says {status}, {version}; {said}"


_EVENT_WORDS = {
    "dropped": "the app never hears of {0}: the service has no case that delivers it",
    "overwritten": "the app never hears of {0}: the core's next result overwrites it before "
    "UPDATE_USER delivers it",
    "unanswered": "the app's {0} request is never answered: another one starts first",
    "unrequested": "the app is told {0}, which nothing it asked for leads to",
}
_HONESTY_WORDS = {
    "queued": "its DB save is still queued",
    "no-file": "the image file its DB row names is missing",
    "digest": "the image file does not match its DB row's digest",
    "boot-control": "boot control does not mark the image for the bootloader",
    "no-row": "the DB has no row for the image",
    "rollback": "boot control or the image's DB row is not disabled",
    "factory-reset": "the DB or boot control is still there",
}


def get_ghost_words(prop: str, after: World) -> str:
    """TRACE-32: what a violation of a history property (event-delivery, outcome-honesty,
    intent-honoured, no-data-loss, boot-coherence, bounded-reprogram, no-needless-reprogram,
    sec-erase-authenticity) is, from the violating state and the marks its ghost history left
    (empty: nothing to say)."""
    words = _WORDS.get(prop)
    return words(after) if words is not None else ""


def _get_event_words(after: World) -> str:
    fault = after.ghost.event_fault
    if not fault:
        return ""
    kind, _, name = fault.partition(":")
    template = _EVENT_WORDS.get(kind)
    if template is None:
        return f"event-delivery is violated ({fault})"
    return template.format(name.replace("_", " ").lower() if kind == "unanswered" else name)


def _get_honesty_words(after: World) -> str:
    if not after.ghost.honesty_fault:
        return ""
    name, problem, version, status = [*after.ghost.honesty_fault.split(":"), "", "", ""][:4]
    words = _HONESTY_WORDS.get(problem, problem)
    return f"the app is told {name}, but {words} (app {version} runs, boot control {status[2:]})"


def _get_intent_words(after: World) -> str:
    ghost = after.ghost
    kind, _, detail = ghost.intent_fault.partition(":")
    if kind == "erase-removed":
        return f"the erase the app asked for also removed {detail}"
    if ghost.intent_fault:
        return f"intent-honoured is violated ({ghost.intent_fault})"
    if ghost.declined and after.running is not None:
        return (
            f"app v{after.running.version} runs again after the app rolled it back, "
            "while the same release is still published"
        )
    return ""


def _get_loss_words(after: World) -> str:
    from otamodel.env._ghost import is_kept_in
    from otamodel.env._oracle import get_ctx

    lost = [
        f"{name} (v{version})"
        for name, version in sorted(after.ghost.kept)
        if not is_kept_in(after.fs, get_ctx(after), name, version)
    ]
    return f"{', '.join(lost) or 'a kept image'} is no longer intact, with nothing in flight"


def _get_streak_words(after: World) -> str:
    ghost = after.ghost
    return (
        f"the bootloader programs {ghost.program_name or 'the same file'} for the "
        f"{ghost.program_streak}th time in a row, with no fault, request or validation between"
    )


def _get_reprogram_words(_after: World) -> str:
    return (
        "the bootloader reprograms the slot although it already holds an image whose DB row "
        "is F8 under an F8 PRODUCTION boot control"
    )


def _get_forged_erase_words(after: World) -> str:
    forged = after.ghost.erase_forged
    return "an erase starts that no manifest the publisher made asked for" if forged else ""


def _get_boot_words(after: World) -> str:
    return _get_incoherence(after) if after.running is not None else ""


def _get_forged_image_words(after: World) -> str:
    running = after.running
    what = f"app v{running.version}" if running is not None else "an image"
    return f"{what} runs, a build the publisher did not make (nor sign)"


def _get_inflated_words(after: World) -> str:
    running = after.running
    what = f"v{running.version}" if running is not None else "the running version"
    return f"{what} runs, above every version the publisher makes: later releases are refused"


_WORDS = {
    "sec-authenticity": _get_forged_image_words,
    "sec-fast-forward": _get_inflated_words,
    "event-delivery": _get_event_words,
    "outcome-honesty": _get_honesty_words,
    "intent-honoured": _get_intent_words,
    "no-data-loss": _get_loss_words,
    "bounded-reprogram": _get_streak_words,
    "no-needless-reprogram": _get_reprogram_words,
    "sec-erase-authenticity": _get_forged_erase_words,
    "boot-coherence": _get_boot_words,
}


@attrs.frozen
class StoryLine:
    """One line of the story view: the step number (first step merged) and the text."""

    step: int
    text: str
    kind: str = ""
    """``input`` for the environment's inputs and faults, ``note`` for callbacks and jumps,
    ``refused`` for a step the model refused, else empty."""


def get_story_lines(
    init: World,
    actions: Sequence[Action],
    *,
    full: bool = False,
    first: int = 1,
    notes: bool = False,
) -> list[StoryLine]:
    """TRACE-20/TRACE-33: the one story view of a run: inputs and faults (with what they hit),
    persistent writes (consecutive writes to one file merged, with the resulting content),
    machine state changes (chained), jumps and resets (with ``notes`` every callback and
    note too), and the loop the run ends in; ``full`` keeps every step. ``first`` numbers
    the first step."""
    from otamodel.verify._tracefile import get_persistent_changes

    lines: list[StoryLine] = []
    world = init
    chain: list[str] = []
    chain_at = -1
    merge_file = ""
    for index, action in enumerate(actions, first):
        before = world
        result = step(world, action)
        if result.is_refused:
            lines.append(StoryLine(index, f"{action}: refused ({result.refusal})", "refused"))
            break
        world = result.world
        change = get_machine_change(before, world)
        op = (
            before.pending[0]
            if before.pending and action.kind in ("tick", "power_cut_torn")
            else None
        )
        if full:
            text = f"{action}: {describe_transition(before, result)}"
            if change:
                text += f" [{change}]"
            for item in get_persistent_changes(before, world):
                text += f"; {item}"
            lines.append(StoryLine(index, text))
            continue
        told = [StoryLine(index, f"· {note}", "note") for note in result.notes
                if notes or note.startswith(("jump", "software reset", "reset"))]  # fmt: skip
        if action.kind != "tick":
            text = describe_action(before, action)
            if change:
                text += f" [{change}]"
            lines.append(StoryLine(index, f"{action}: {text}", "input"))
            lines.extend(told)
            merge_file = ""
            continue
        if op is not None:
            merge_file = _add_op_line(lines, index, op, world, merge_file)
            lines.extend(told)
            continue
        merge_file = ""
        if change:
            if chain and chain_at == len(lines) - 1:
                chain.append(get_machines(world))
                lines[-1] = StoryLine(lines[-1].step, _show_chain(chain))
            else:
                chain = [get_machines(before), get_machines(world)]
                lines.append(StoryLine(index, _show_chain(chain)))
                chain_at = len(lines) - 1
        lines.extend(told)
    loop = _get_loop(world)
    if loop:
        lines.append(StoryLine(first + len(actions) - 1, loop))
    return lines


def _add_op_line(
    lines: list[StoryLine], index: int, op: PersistentOp, world: World, merge_file: str
) -> str:
    """A completed persistent operation as a story line (merged into the previous line when
    it continues the same file write or the same run of slot erases or programs)."""
    name = getattr(op, "name", None)
    if isinstance(op, FsWrite | FsCreate | FsClose) and name == merge_file and lines:
        shown = _show_content(name, world.fs.get(name))
        last = lines[-1]
        lines[-1] = StoryLine(last.step, f"{last.text.split(' → ')[0]} → {shown}")
        return merge_file
    if isinstance(op, FsCreate | FsWrite):
        lines.append(
            StoryLine(index, f"write {op.name} → {_show_content(op.name, world.fs.get(op.name))}")
        )
        return op.name
    if isinstance(op, FlashProgram | FlashErase) and op.page != 0:
        text = "program slot pages" if isinstance(op, FlashProgram) else "erase slot pages"
        if not (lines and lines[-1].text == text):
            lines.append(StoryLine(index, text))
        return ""
    lines.append(StoryLine(index, describe_op(op, exact=True)))
    return ""


def render_story(lines: Sequence[StoryLine]) -> list[str]:
    """The story view as text lines: ``step  text``."""
    return [f"{line.step:>5}  {line.text}" for line in lines]


def _show_chain(chain: list[str]) -> str:
    if len(chain) <= 4:
        return " → ".join(chain)
    return f"{chain[0]} → {chain[1]} → … ({len(chain) - 3} more) → {chain[-1]}"


def _show_content(name: str, content: bytes | None) -> str:
    if content is None:
        return "(missing)"
    if name.endswith((".csv", ".txt")):
        return repr(content.decode("latin-1"))
    return f"{len(content)} B"


def _get_loop(world: World, steps: int = 600) -> str:
    """Where ``world`` goes left alone (ticks, and the RTCC alarm when armed)."""
    from otamodel.env import enabled_actions

    visited: dict[World, int] = {}
    order: list[World] = []
    for _ in range(steps):
        if world in visited:
            cycle = order[visited[world] :]
            names = list(dict.fromkeys(get_machines(w) for w in cycle))
            if len(names) == 1:
                return f"left alone, it stays in {names[0]}"
            shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
            return f"left alone, it loops through {shown}"
        visited[world] = len(order)
        order.append(world)
        timers = [a for a in enabled_actions(world) if a.kind == "timer"]
        result = step(world, timers[0] if timers else Action("tick"))
        if result.is_refused:
            return f"left alone, it stops in {get_machines(world)} ({result.refusal})"
        world = result.world
    return ""
