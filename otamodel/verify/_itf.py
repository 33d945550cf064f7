"""Traces in the Informal Trace Format (TRACE-21): the JSON Apalache and Quint write, so
existing trace viewers and model-based-testing tools can read our traces.

``{"#meta": {...}, "vars": [...], "states": [{"#meta": {"index": i}, var: value, ...}]}``
with integers beyond 2**53 as ``{"#bigint": "..."}``, sets as ``{"#set": [...]}``, tuples
as ``{"#tup": [...]}``, maps as ``{"#map": [[key, value], ...]}``, records as objects and
values with no ITF form (``None``) as ``{"#unserializable": "..."}``. Flash pages and file
contents appear as SHA-256 digests (and the decoded boot-control header), never as bytes.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import attrs

from otamodel._io import write_atomic
from otamodel.env import Scenario, initial_world, step
from otamodel.errors import TraceError
from otamodel.formats import bootctl
from otamodel.model import Action, World

ITF_VARS = (
    "action",
    "phase",
    "running",
    "service",
    "core",
    "boot",
    "net",
    "pending",
    "published",
    "network_up",
    "budget",
    "ghost",
    "flash",
    "fs",
)
_SAFE = 2**53 - 1
_JsonValue = bool | int | str | list["_JsonValue"] | dict[str, "_JsonValue"]


def to_itf_value(value: object) -> _JsonValue:
    """TRACE-21: one model value in its ITF encoding."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, int):
        return value if -_SAFE <= value <= _SAFE else {"#bigint": str(value)}
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 64 else {"sha256": hashlib.sha256(value).hexdigest()}
    if value is None:
        return {"#unserializable": "None"}
    if isinstance(value, frozenset | set):
        items = [to_itf_value(v) for v in value]
        return {"#set": sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, tuple | list):
        return [to_itf_value(v) for v in value]
    compared = getattr(type(value), "__record_compared__", None)
    if compared is not None:  # the model's fast records (otamodel.model._record)
        return {name: to_itf_value(getattr(value, name)) for name in compared}
    cls = type(value)
    if attrs.has(cls):
        return {a.name: to_itf_value(getattr(value, a.name)) for a in attrs.fields(cls) if a.eq}
    describe = getattr(value, "describe", None)
    if callable(describe):
        return str(describe())
    return {"#unserializable": repr(value)}


def _flash(world: World) -> dict[str, _JsonValue]:
    header = bootctl.unpack(world.flash.pages[0][: bootctl.HEADER_SIZE])
    return {
        "bootctl": {
            "status": header.status,
            "type": header.type,
            "version": header.version,
            "boot_addr": header.boot_addr,
        },
        "pages": [hashlib.sha256(page).hexdigest()[:16] for page in world.flash.pages],
        "overprograms": world.flash.overprograms,
    }


def _fs(world: World) -> dict[str, _JsonValue]:
    files: list[_JsonValue] = [
        [name, {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}]
        for name, data in world.fs.files
    ]
    return {"formatted": world.fs.formatted, "has_dir": world.fs.has_dir, "files": {"#map": files}}


def get_itf_state(world: World, action: Action | None, index: int) -> dict[str, _JsonValue]:
    """TRACE-21: one state as an ITF object over :data:`ITF_VARS`."""
    running = world.running
    return {
        "#meta": {"index": index},
        "action": "init" if action is None else str(action),
        "phase": world.phase.name,
        "running": running.version if running is not None else {"#unserializable": "None"},
        "service": to_itf_value(world.service),
        "core": to_itf_value(world.core),
        "boot": to_itf_value(world.boot),
        "net": to_itf_value(world.net),
        "pending": [op.describe() for op in world.pending],
        "published": world.published,
        "network_up": world.network_up,
        "budget": {"#map": [[k, v] for k, v in world.budget]},
        "ghost": to_itf_value(world.ghost),
        "flash": _flash(world),
        "fs": _fs(world),
    }


def get_itf(
    scenario: Scenario, actions: Sequence[Action], *, description: str = ""
) -> dict[str, _JsonValue]:
    """TRACE-21: replay ``actions`` from the scenario's initial world as an ITF document; a
    refused step is a :class:`TraceError` naming it."""
    world = initial_world(scenario)
    states: list[_JsonValue] = [get_itf_state(world, None, 0)]
    for index, action in enumerate(actions, 1):
        result = step(world, action)
        if result.is_refused:
            raise TraceError(f"step {index} ({action}) is refused: {result.refusal}")
        world = result.world
        states.append(get_itf_state(world, action, index))
    return {
        "#meta": {
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": f"otamodel scenario {scenario.name} ({scenario.config.variant.value})",
            "description": description,
        },
        "vars": list(ITF_VARS),
        "states": states,
    }


def write_itf(
    path: str | Path, scenario: Scenario, actions: Sequence[Action], *, description: str = ""
) -> None:
    """TRACE-21: write :func:`get_itf` as JSON (atomically)."""
    doc = get_itf(scenario, actions, description=description)
    write_atomic(path, json.dumps(doc, indent=1) + "\n")


def check_itf(doc: object) -> None:
    """TRACE-21: the structural rules of ITF (a :class:`TraceError` names the first problem):
    ``vars`` a list of strings, every state an object with exactly those variables plus
    ``#meta``, and every ``#``-key one of the ITF encodings with the right shape."""
    if not isinstance(doc, dict):
        raise TraceError("an ITF trace is a JSON object", where="$")
    variables = doc.get("vars")
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise TraceError("vars must be a list of strings", where="$.vars")
    states = doc.get("states")
    if not isinstance(states, list) or not states:
        raise TraceError("states must be a non-empty list", where="$.states")
    if "#meta" in doc and not isinstance(doc["#meta"], dict):
        raise TraceError("#meta must be an object", where="$.#meta")
    for index, state in enumerate(states):
        where = f"$.states[{index}]"
        if not isinstance(state, dict):
            raise TraceError("a state is an object", where=where)
        keys = set(state) - {"#meta"}
        if keys != set(variables):
            raise TraceError(f"variables {sorted(keys ^ set(variables))} differ", where=where)
        for key in keys:
            _check_value(state[key], f"{where}.{key}")


def _check_value(value: object, where: str) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]")
        return
    if not isinstance(value, dict):
        if value is None or isinstance(value, float):
            raise TraceError("null and floats have no ITF meaning", where=where)
        return
    special = [k for k in value if k.startswith("#")]
    if not special:
        for key, item in value.items():
            _check_value(item, f"{where}.{key}")
        return
    if len(value) != 1:
        raise TraceError(f"{special[0]} must be the only key", where=where)
    key, body = next(iter(value.items()))
    if key == "#bigint":
        if not isinstance(body, str) or not body.lstrip("-").isdigit():
            raise TraceError("#bigint holds a decimal string", where=where)
    elif key in ("#set", "#tup"):
        if not isinstance(body, list):
            raise TraceError(f"{key} holds a list", where=where)
        _check_value(body, where)
    elif key == "#map":
        if not isinstance(body, list) or not all(isinstance(p, list) and len(p) == 2 for p in body):
            raise TraceError("#map holds [key, value] pairs", where=where)
        _check_value(body, where)
    elif key != "#unserializable":
        raise TraceError(f"unknown ITF encoding {key}", where=where)


__all__ = ["ITF_VARS", "check_itf", "get_itf", "get_itf_state", "to_itf_value", "write_itf"]
