"""The inputs to the world: one :class:`ActionKind` enum that carries each kind's metadata
(fault? which budget? recovery? user?), the control messages, and :class:`Action`."""

from __future__ import annotations

import enum

import attrs


class ActionKind(enum.StrEnum):
    """Every kind of input, with its metadata in one place.

    - ``fault``: something going wrong (costs 1 in the cheapest traces, PROP-9);
    - ``budget``: the scenario budget it spends (None: unlimited);
    - ``recovery``: the device left alone with power on (PROP-4/5 fairness);
    - ``user``: the product's user or app asks for it (console, control messages).
    """

    fault: bool
    budget: str | None
    recovery: bool
    user: bool

    def __new__(
        cls, value: str, fault: bool, budget: str | None, recovery: bool, user: bool
    ) -> ActionKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.fault = fault
        member.budget = budget
        member.recovery = recovery
        member.user = user
        return member

    # value, fault, budget, recovery, user (the budgets in the order scenarios list them)
    TICK = "tick", False, None, True, False
    POWER_CUT = "power_cut", True, "power_cut", False, False
    POWER_CUT_TORN = "power_cut_torn", True, "power_cut", False, False
    TIMER = "timer", False, None, True, False
    TRANSFER_FAIL = "transfer_fail", True, "transfer_fail", False, False
    CORRUPT = "corrupt", True, "corrupt", False, False
    TRUNCATE = "truncate", True, "truncate", False, False  # ENV-8
    PUBLISH = "publish", True, "publish", False, False
    CTRL = "ctrl", False, "ctrl", False, True
    CRASH = "crash", True, "crash", False, False
    RESET = "reset", True, "reset", False, False
    FACTORY_SIGN = "factory_sign", False, "factory_sign", False, True
    NET_DOWN = "net_down", True, "net_down", False, False
    NET_UP = "net_up", False, None, True, False
    # SCN-13..SCN-17: the environment's extra inputs (performed by ``env.step``)
    TAMPER = "tamper", True, "tamper", False, False
    CONSOLE = "console", False, "console", False, True
    SET_PARAMS = "set_params", False, "console", False, True
    MITM = "mitm", True, "mitm", False, False
    FREEZE = "freeze", True, "freeze", False, False
    REPLAY = "replay", True, "freeze", False, False
    RESUME = "resume", False, None, False, False  # SCN-17: the attack ends (PROP-43)

    @classmethod
    def get(cls, text: str) -> ActionKind | None:
        return _KINDS.get(text)


_KINDS: dict[str, ActionKind] = {k.value: k for k in ActionKind}


class CtrlMessage(enum.StrEnum):
    """The app's control messages (SVC-40) and whether each spends the ``ctrl`` budget and
    asks for an update (PROP-4 counts asking for an update as progress, not a fault)."""

    budgeted: bool
    asks_update: bool

    def __new__(cls, value: str, budgeted: bool, asks_update: bool) -> CtrlMessage:
        member = str.__new__(cls, value)
        member._value_ = value
        member.budgeted = budgeted
        member.asks_update = asks_update
        return member

    UPDATE_CHECK = "update_check", False, True  # ENV-3: asking for a check costs no budget
    INITIATE_OTA = "initiate_ota", True, True
    SYSTEM_RESET = "system_reset", True, False
    FACTORY_RESET = "factory_reset", True, False
    ROLLBACK = "rollback", True, False


def _to_kind(text: str) -> str:
    """Known kinds become :class:`ActionKind` (a ``str``); unknown text stays as given so
    that :func:`step` can refuse it with a reason."""
    return ActionKind.get(text) or text


@attrs.frozen(order=True, cache_hash=True)
class Action:
    """One input to the world. ``kind`` is an :class:`ActionKind` (a ``str``: ``"tick"``)
    or unknown text; ``arg`` qualifies it (``ctrl(rollback)``, ``publish(1)``)."""

    kind: str = attrs.field(converter=_to_kind)
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind}({self.arg})" if self.arg else str(self.kind)

    @classmethod
    def parse(cls, text: str) -> Action:
        text = text.strip()
        if text.endswith(")") and "(" in text:
            kind, arg = text[:-1].split("(", 1)
            return cls(kind, arg)
        return cls(text)

    def get_kind(self) -> ActionKind | None:
        return self.kind if isinstance(self.kind, ActionKind) else None

    def is_fault(self) -> bool:
        kind = self.get_kind()
        return kind is not None and kind.fault

    def is_recovery(self) -> bool:
        """Neither a fault nor a user choice: the device left alone, power on."""
        kind = self.get_kind()
        return kind is not None and kind.recovery

    def is_update_request(self) -> bool:
        """The user asks for an update (a control message that does)."""
        message = CtrlMessage.__members__.get(self.arg.upper())
        return self.kind is ActionKind.CTRL and message is not None and message.asks_update

    @classmethod
    def of(cls, kind: str, arg: str = "") -> Action:
        """The same as ``Action(kind, arg)``, one shared object per distinct action (the
        environment offers the same few actions in millions of states)."""
        key = (kind, arg)
        action = _INTERNED.get(key)
        if action is None:
            action = _INTERNED[key] = cls(kind, arg)
        return action

    def get_budget_key(self) -> str | None:
        """The budget this input spends when accepted (None: none)."""
        try:
            return _BUDGET_KEYS[self]
        except KeyError:
            key = _BUDGET_KEYS[self] = self._get_budget_key()
            return key

    def _get_budget_key(self) -> str | None:
        kind = self.get_kind()
        if kind is None:
            return None
        if kind is ActionKind.CTRL:
            message = CtrlMessage.__members__.get(self.arg.upper())
            if message is not None and not message.budgeted:
                return None
        return kind.budget


_INTERNED: dict[tuple[str, str], Action] = {}
_BUDGET_KEYS: dict[Action, str | None] = {}

ACTION_KINDS = tuple(ActionKind)
FAULT_KINDS = frozenset(k for k in ActionKind if k.fault)
RECOVERY_KINDS = frozenset(k for k in ActionKind if k.recovery)
BUDGET_KINDS = tuple(dict.fromkeys(k.budget for k in ActionKind if k.budget is not None))
CTRL_MESSAGES = tuple(CtrlMessage)
