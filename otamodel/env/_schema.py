"""The JSON Schema of scenario files and the list of their keys, generated from the records
of :mod:`otamodel.env._spec` (SCN-4)."""

from __future__ import annotations

import enum
import json
import typing
from typing import Any

import attrs

from otamodel.env._spec import RANGES, GeometryName, GeometrySpec, GeometryValue, ScenarioSpec


def _schema_of(kind: Any) -> dict[str, Any]:
    if kind in RANGES:
        low, high = RANGES[kind]
        out: dict[str, Any] = {"type": "integer", "minimum": low}
        if high is not None:
            out["maximum"] = high
        return out
    if kind is bool:
        return {"type": "boolean"}
    if kind is int:
        return {"type": "integer"}
    if kind is str:
        return {"type": "string"}
    if kind == GeometryValue:
        return {"anyOf": [_schema_of(GeometryName), _schema_of(GeometrySpec)]}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return {"enum": [m.value for m in kind]}
    if isinstance(kind, type) and attrs.has(kind):
        hints = typing.get_type_hints(kind)
        props = {}
        for field in attrs.fields(kind):
            prop = _schema_of(hints[field.name])
            if "doc" in field.metadata:
                prop["description"] = field.metadata["doc"]
            props[field.name] = prop
        return {
            "type": "object",
            "description": (kind.__doc__ or "").strip().splitlines()[0],
            "properties": props,
            "additionalProperties": False,
        }
    origin = typing.get_origin(kind)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if origin is list:
        return {"type": "array", "items": _schema_of(args[0])}
    if args and len(args) == 1:  # X | None: absent (or null in JSON) means the default
        return _schema_of(args[0])
    raise TypeError(f"no schema for {kind!r}")


def get_scenario_schema() -> dict[str, Any]:
    """SCN-4: the JSON Schema of scenario files, generated from :class:`ScenarioSpec`."""
    schema = _schema_of(ScenarioSpec)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://otamodel.invalid/scenario.schema.json",
        "title": "otamodel scenario",
        **schema,
    }


def get_schema_text() -> str:
    return json.dumps(get_scenario_schema(), indent=1, sort_keys=False) + "\n"


def get_all_keys() -> list[str]:
    """Every key path of the format (for the docs and their test)."""
    keys: list[str] = []

    def walk(kind: type, prefix: str) -> None:
        hints = typing.get_type_hints(kind)
        for field in attrs.fields(kind):
            name = f"{prefix}{field.name}"
            keys.append(name)
            inner = hints[field.name]
            args = [a for a in typing.get_args(inner) if attrs.has(a)]
            if attrs.has(inner):
                walk(inner, f"{name}.")
            elif args:
                walk(args[0], f"{name}[].") if typing.get_origin(inner) is list else walk(
                    args[0], f"{name}."
                )

    walk(ScenarioSpec, "")
    return keys
