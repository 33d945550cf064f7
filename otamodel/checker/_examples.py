"""Textbook models with published state counts: the checker's regression oracles.

* :class:`TwoPhaseCommit`: the two-phase commit subset of Gray and Lamport, "Consensus on
  Transaction Commit" (MSR-TR-2003-96), as in Stateright's ``examples/2pc.rs``: 288 unique
  states with 3 resource managers, 8,832 with 5.
* :class:`DieHard`: the water-jug puzzle of TLA+'s ``DieHard.tla``: 16 distinct states with
  3- and 5-gallon jugs; ``big == 4`` is first reached after 6 steps.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import NamedTuple

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


class TpcKind(enum.IntEnum):
    TM_RCV_PREPARED = 0
    TM_COMMIT = 1
    TM_ABORT = 2
    RM_PREPARE = 3
    RM_CHOOSE_TO_ABORT = 4
    RM_RCV_COMMIT_MSG = 5
    RM_RCV_ABORT_MSG = 6


class TpcAction(NamedTuple):
    kind: TpcKind
    rm: int = -1


TpcState = tuple[tuple[RmState, ...], TmState, int, int]
"""A plain tuple ``(rm states, tm state, tm_prepared, msgs)`` (hash and equality in C; read it
with :func:`get_rm_states`, :func:`get_tm_state`, :func:`get_tm_prepared`, :func:`get_msgs`).
The sets of the specification are bit masks: ``tm_prepared`` has bit ``rm`` for each
``Prepared`` the TM received; ``msgs`` has bit ``rm`` for each ``Prepared{rm}`` message sent,
bit ``n`` for ``Commit`` and bit ``n + 1`` for ``Abort`` (``n`` resource managers)."""


def get_rm_states(state: TpcState) -> tuple[RmState, ...]:
    return state[0]


def get_tm_state(state: TpcState) -> TmState:
    return state[1]


def get_tm_prepared(state: TpcState) -> int:
    return state[2]


def get_msgs(state: TpcState) -> int:
    return state[3]


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
# Module constants: the hot functions read globals, not enum class attributes.
_TM_INIT, _TM_COMMITTED, _TM_ABORTED = TmState.INIT, TmState.COMMITTED, TmState.ABORTED
_WORKING = RmState.WORKING
_PREPARED = (RmState.PREPARED,)
_COMMITTED = (RmState.COMMITTED,)
_ABORTED = (RmState.ABORTED,)
_RCV_PREPARED, _COMMIT, _ABORT = TpcKind.TM_RCV_PREPARED, TpcKind.TM_COMMIT, TpcKind.TM_ABORT
_PREPARE, _RCV_COMMIT = TpcKind.RM_PREPARE, TpcKind.RM_RCV_COMMIT_MSG


@attrs.frozen
class TwoPhaseCommit:
    """Two-phase commit with ``rm_count`` resource managers (Stateright ``2pc.rs``)."""

    rm_count: int
    _tables: tuple[tuple[int, TpcAction, TpcAction, TpcAction, TpcAction, TpcAction], ...] = (
        attrs.field(
            init=False,
            repr=False,
            eq=False,
            default=attrs.Factory(lambda self: _get_tables(self.rm_count), takes_self=True),
        )
    )

    commit_bit: int = attrs.field(init=False, repr=False, eq=False)
    """The ``Commit`` message's bit in ``msgs``."""
    abort_bit: int = attrs.field(init=False, repr=False, eq=False)
    """The ``Abort`` message's bit in ``msgs``."""
    everyone: int = attrs.field(init=False, repr=False, eq=False)
    """``tm_prepared`` once every RM's ``Prepared`` was received."""

    @commit_bit.default
    def _commit_bit(self) -> int:
        return 1 << self.rm_count

    @abort_bit.default
    def _abort_bit(self) -> int:
        return 1 << (self.rm_count + 1)

    @everyone.default
    def _everyone(self) -> int:
        return (1 << self.rm_count) - 1

    def init_states(self) -> Sequence[TpcState]:
        working = (RmState.WORKING,) * self.rm_count
        return [(working, TmState.INIT, 0, 0)]

    def actions(self, state: TpcState) -> list[TpcAction]:
        rms, tm, prepared, msgs = state
        tm_init = tm is _TM_INIT
        out = []
        if tm_init:
            if prepared == self.everyone:
                out.append(_TM_COMMIT)
            out.append(_TM_ABORT)
        commit = msgs & self.commit_bit
        abort = msgs & self.abort_bit
        working = _WORKING
        for rm_state, (bit, rcv, prepare, choose, rcv_commit, rcv_abort) in zip(
            rms, self._tables, strict=True
        ):
            if tm_init and msgs & bit:
                out.append(rcv)
            if rm_state is working:
                out.append(prepare)
                out.append(choose)
            if commit:
                out.append(rcv_commit)
            if abort:
                out.append(rcv_abort)
        return out

    def next_state(self, state: TpcState, action: TpcAction) -> TpcState | None:
        kind, rm = action
        rms, tm, prepared, msgs = state
        if kind is _RCV_PREPARED:
            return (rms, tm, prepared | 1 << rm, msgs)
        if kind is _COMMIT:
            return (rms, _TM_COMMITTED, prepared, msgs | self.commit_bit)
        if kind is _ABORT:
            return (rms, _TM_ABORTED, prepared, msgs | self.abort_bit)
        if kind is _PREPARE:
            return (rms[:rm] + _PREPARED + rms[rm + 1 :], tm, prepared, msgs | 1 << rm)
        # RM_CHOOSE_TO_ABORT and RM_RCV_ABORT_MSG both abort.
        new = _COMMITTED if kind is _RCV_COMMIT else _ABORTED
        return (rms[:rm] + new + rms[rm + 1 :], tm, prepared, msgs)

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
) -> tuple[tuple[int, TpcAction, TpcAction, TpcAction, TpcAction, TpcAction], ...]:
    """Per RM: its ``Prepared`` message bit and its five actions, built once per model."""
    return tuple(
        (
            1 << rm,
            TpcAction(TpcKind.TM_RCV_PREPARED, rm),
            TpcAction(TpcKind.RM_PREPARE, rm),
            TpcAction(TpcKind.RM_CHOOSE_TO_ABORT, rm),
            TpcAction(TpcKind.RM_RCV_COMMIT_MSG, rm),
            TpcAction(TpcKind.RM_RCV_ABORT_MSG, rm),
        )
        for rm in range(rm_count)
    )


def is_abort_agreement(state: TpcState) -> bool:
    rms = state[0]
    return rms.count(RmState.ABORTED) == len(rms)


def is_commit_agreement(state: TpcState) -> bool:
    rms = state[0]
    return rms.count(RmState.COMMITTED) == len(rms)


def is_consistent(state: TpcState) -> bool:
    rms = state[0]
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
