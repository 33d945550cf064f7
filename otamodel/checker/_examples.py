"""Textbook models with published state counts: the checker's regression oracles.

* :class:`TwoPhaseCommit`: the two-phase commit subset of Gray and Lamport, "Consensus on
  Transaction Commit" (MSR-TR-2003-96), as in Stateright's ``examples/2pc.rs``: 288 unique
  states with 3 resource managers, 8,832 with 5.
* :class:`DieHard`: the water-jug puzzle of TLA+'s ``DieHard.tla``: 16 distinct states with
  3- and 5-gallon jugs; ``big == 4`` is first reached after 6 steps.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence

import attrs

from otamodel.checker._model import Property


class RmState(enum.IntEnum):
    WORKING = 0
    PREPARED = 1
    COMMITTED = 2
    ABORTED = 3


class TmState(enum.IntEnum):
    INIT = 0
    COMMITTED = 1
    ABORTED = 2


class MsgKind(enum.IntEnum):
    """Message kinds (``IntEnum``: on Python 3.11 ``Enum.__hash__`` runs in Python)."""

    PREPARED = 0
    COMMIT = 1
    ABORT = 2


@attrs.frozen
class Message:
    """``Prepared{rm}``, ``Commit`` or ``Abort`` (``rm`` is ``-1`` for the last two)."""

    kind: MsgKind
    rm: int = -1


COMMIT = Message(MsgKind.COMMIT)
ABORT = Message(MsgKind.ABORT)


class TpcKind(enum.IntEnum):
    TM_RCV_PREPARED = 0
    TM_COMMIT = 1
    TM_ABORT = 2
    RM_PREPARE = 3
    RM_CHOOSE_TO_ABORT = 4
    RM_RCV_COMMIT_MSG = 5
    RM_RCV_ABORT_MSG = 6


@attrs.frozen
class TpcAction:
    kind: TpcKind
    rm: int = -1


@attrs.frozen
class TpcState:
    rm_state: tuple[RmState, ...]
    tm_state: TmState
    tm_prepared: frozenset[int]
    msgs: frozenset[Message]


_ACTION_NAMES = {
    TpcKind.TM_RCV_PREPARED: "TmRcvPrepared",
    TpcKind.TM_COMMIT: "TmCommit",
    TpcKind.TM_ABORT: "TmAbort",
    TpcKind.RM_PREPARE: "RmPrepare",
    TpcKind.RM_CHOOSE_TO_ABORT: "RmChooseToAbort",
    TpcKind.RM_RCV_COMMIT_MSG: "RmRcvCommitMsg",
    TpcKind.RM_RCV_ABORT_MSG: "RmRcvAbortMsg",
}
_TM_COMMIT = TpcAction(TpcKind.TM_COMMIT)
_TM_ABORT = TpcAction(TpcKind.TM_ABORT)


@attrs.frozen
class TwoPhaseCommit:
    """Two-phase commit with ``rm_count`` resource managers (Stateright ``2pc.rs``)."""

    rm_count: int
    _tables: tuple[tuple[Message, TpcAction, TpcAction, TpcAction, TpcAction, TpcAction], ...] = (
        attrs.field(
            init=False,
            repr=False,
            eq=False,
            default=attrs.Factory(lambda self: _get_tables(self.rm_count), takes_self=True),
        )
    )

    def init_states(self) -> Sequence[TpcState]:
        working = (RmState.WORKING,) * self.rm_count
        return [TpcState(working, TmState.INIT, frozenset(), frozenset())]

    def actions(self, state: TpcState) -> Iterator[TpcAction]:
        tm_init = state.tm_state is TmState.INIT
        if tm_init and len(state.tm_prepared) == self.rm_count:
            yield _TM_COMMIT
        if tm_init:
            yield _TM_ABORT
        msgs = state.msgs
        commit = COMMIT in msgs
        abort = ABORT in msgs
        working = RmState.WORKING
        for rm_state, (prepared, rcv, prepare, choose, rcv_commit, rcv_abort) in zip(
            state.rm_state, self._tables, strict=True
        ):
            if tm_init and prepared in msgs:
                yield rcv
            if rm_state is working:
                yield prepare
                yield choose
            if commit:
                yield rcv_commit
            if abort:
                yield rcv_abort

    def next_state(self, state: TpcState, action: TpcAction) -> TpcState | None:
        kind = action.kind
        rm = action.rm
        if kind is TpcKind.TM_RCV_PREPARED:
            prepared = state.tm_prepared | {rm}
            return TpcState(state.rm_state, state.tm_state, prepared, state.msgs)
        if kind is TpcKind.TM_COMMIT:
            msgs = state.msgs | {COMMIT}
            return TpcState(state.rm_state, TmState.COMMITTED, state.tm_prepared, msgs)
        if kind is TpcKind.TM_ABORT:
            msgs = state.msgs | {ABORT}
            return TpcState(state.rm_state, TmState.ABORTED, state.tm_prepared, msgs)
        if kind is TpcKind.RM_PREPARE:
            msgs = state.msgs | {self._tables[rm][0]}
            return TpcState(
                _set(state.rm_state, rm, RmState.PREPARED), state.tm_state, state.tm_prepared, msgs
            )
        # RM_CHOOSE_TO_ABORT and RM_RCV_ABORT_MSG both abort.
        new = RmState.COMMITTED if kind is TpcKind.RM_RCV_COMMIT_MSG else RmState.ABORTED
        return TpcState(
            _set(state.rm_state, rm, new), state.tm_state, state.tm_prepared, state.msgs
        )

    def properties(self) -> Sequence[Property[TpcState, TpcAction]]:
        return [
            Property.sometimes("abort agreement", is_abort_agreement),
            Property.sometimes("commit agreement", is_commit_agreement),
            Property.always("consistent", is_consistent, "no RM commits while another aborts"),
        ]

    def format_action(self, action: TpcAction) -> str:
        name = _ACTION_NAMES[action.kind]
        return name if action.rm < 0 else f"{name}({action.rm})"


def _get_tables(
    rm_count: int,
) -> tuple[tuple[Message, TpcAction, TpcAction, TpcAction, TpcAction, TpcAction], ...]:
    """Per RM: its ``Prepared`` message and its five actions, built once per model."""
    return tuple(
        (
            Message(MsgKind.PREPARED, rm),
            TpcAction(TpcKind.TM_RCV_PREPARED, rm),
            TpcAction(TpcKind.RM_PREPARE, rm),
            TpcAction(TpcKind.RM_CHOOSE_TO_ABORT, rm),
            TpcAction(TpcKind.RM_RCV_COMMIT_MSG, rm),
            TpcAction(TpcKind.RM_RCV_ABORT_MSG, rm),
        )
        for rm in range(rm_count)
    )


def _set(items: tuple[RmState, ...], position: int, value: RmState) -> tuple[RmState, ...]:
    return (*items[:position], value, *items[position + 1 :])


def is_abort_agreement(state: TpcState) -> bool:
    return all(rm is RmState.ABORTED for rm in state.rm_state)


def is_commit_agreement(state: TpcState) -> bool:
    return all(rm is RmState.COMMITTED for rm in state.rm_state)


def is_consistent(state: TpcState) -> bool:
    rms = state.rm_state
    return not (RmState.ABORTED in rms and RmState.COMMITTED in rms)


class JugAction(enum.Enum):
    FILL_SMALL = "FillSmallJug"
    FILL_BIG = "FillBigJug"
    EMPTY_SMALL = "EmptySmallJug"
    EMPTY_BIG = "EmptyBigJug"
    SMALL_TO_BIG = "SmallToBig"
    BIG_TO_SMALL = "BigToSmall"


@attrs.frozen
class Jugs:
    small: int
    big: int


@attrs.frozen
class DieHard:
    """TLA+ ``DieHard``: a ``small`` and a ``big`` jug, fill/empty/pour until ``big == goal``."""

    small: int = 3
    big: int = 5
    goal: int = 4

    def init_states(self) -> Sequence[Jugs]:
        return [Jugs(0, 0)]

    def actions(self, state: Jugs) -> Sequence[JugAction]:
        return list(JugAction)

    def next_state(self, state: Jugs, action: JugAction) -> Jugs | None:
        small, big = state.small, state.big
        if action is JugAction.FILL_SMALL:
            return Jugs(self.small, big)
        if action is JugAction.FILL_BIG:
            return Jugs(small, self.big)
        if action is JugAction.EMPTY_SMALL:
            return Jugs(0, big)
        if action is JugAction.EMPTY_BIG:
            return Jugs(small, 0)
        if action is JugAction.SMALL_TO_BIG:
            poured = min(small, self.big - big)
            return Jugs(small - poured, big + poured)
        poured = min(big, self.small - small)
        return Jugs(small + poured, big - poured)

    def properties(self) -> Sequence[Property[Jugs, JugAction]]:
        return [
            Property.always("type ok", self.is_type_ok, "0 <= small <= 3 and 0 <= big <= 5"),
            Property.sometimes("big is 4", self.is_goal, "Bruce Willis survives"),
        ]

    def is_type_ok(self, state: Jugs) -> bool:
        return 0 <= state.small <= self.small and 0 <= state.big <= self.big

    def is_goal(self, state: Jugs) -> bool:
        return state.big == self.goal

    def format_action(self, action: JugAction) -> str:
        return action.value
