"""Faults the release server injects on demand (REL-30..REL-32).

A fault applies to the URL paths matching ``path`` (a shell-style pattern), optionally only once
another path has been served (``after``, e.g. the image after the manifest) and at most
``times`` times. Faults come from the command line (``PATH:KIND[:key=value,...]``), a TOML file
(``[[fault]]`` tables) or the control endpoint (JSON), all read by :func:`parse_fault`.
"""

from __future__ import annotations

import enum
import fnmatch
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from otamodel.errors import OtaModelError

__all__ = [
    "Fault",
    "FaultError",
    "FaultKind",
    "ModelledFault",
    "ServeConfig",
    "get_modelled_fault",
    "load_config",
    "parse_fault",
]


class FaultError(OtaModelError, ValueError):
    """A fault or server configuration cannot be read (``where`` names the entry or key)."""

    def __init__(self, reason: str, *, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"serve: {where}: {reason}" if where else f"serve: {reason}")


class FaultKind(enum.Enum):
    """REL-30: what the server does wrong; the modelled fault it stands for is in the doc."""

    DROP = "drop"  # close the connection after ``bytes`` body bytes (transfer_fail)
    STALL = "stall"  # stop sending after ``bytes`` for ``seconds`` (the device's timeout)
    LENGTH = "length"  # claim Content-Length ``length`` ("missing": send none)
    STATUS = "status"  # answer ``status`` (404, 500, ...) instead of the file
    SWITCH = "switch"  # after serving the path, publish ``release`` (publish)
    FLIP = "flip"  # flip the low bit of the byte at ``offset`` (corrupt)
    THROTTLE = "throttle"  # send at most ``rate`` bytes per second


_KEYS = {
    "path",
    "kind",
    "bytes",
    "seconds",
    "status",
    "length",
    "offset",
    "rate",
    "release",
    "after",
    "times",
}


@attrs.frozen
class Fault:
    """REL-30: one fault rule."""

    path: str
    kind: FaultKind
    bytes: int = 0
    seconds: float = 30.0
    status: int = 404
    length: int | None = None
    offset: int = 0
    rate: int = 4096
    release: str = ""
    after: str | None = None
    times: int | None = None

    def matches(self, path: str) -> bool:
        return fnmatch.fnmatchcase(path, self.path)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind.value}
        for field in attrs.fields(Fault)[2:]:
            value = getattr(self, field.name)
            if value != field.default:
                out[field.name] = value
        if self.kind is FaultKind.LENGTH and self.length is None:
            out["length"] = "missing"
        return out


def _int(value: object, key: str, where: str, low: int = 0, high: int = 1 << 40) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise FaultError(f"{key} must be an integer, not {value!r}", where=where) from None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultError(f"{key} must be an integer in {low}..{high}", where=where)
    return value


def _float(value: object, key: str, where: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FaultError(f"{key} must be a number of seconds", where=where) from None
    if isinstance(value, bool) or not 0 <= number <= 86400:
        raise FaultError(f"{key} must be 0..86400 seconds", where=where)
    return number


def parse_fault(spec: Mapping[str, Any] | str, where: str = "fault") -> Fault:
    """REL-31: a fault from a table/object or from ``PATH:KIND[:key=value,...]``; unknown
    keys, kinds and out-of-range values are a FaultError naming them."""
    if isinstance(spec, str):
        parts = spec.split(":", 2)
        if len(parts) < 2 or not parts[0]:
            raise FaultError("expected PATH:KIND[:key=value,...]", where=where)
        table: dict[str, Any] = {"path": parts[0], "kind": parts[1]}
        for item in parts[2].split(",") if len(parts) == 3 and parts[2] else []:
            key, sep, value = item.partition("=")
            if not sep:
                raise FaultError(f"expected key=value, not {item!r}", where=where)
            table[key.strip()] = value.strip()
        spec = table
    if not isinstance(spec, Mapping):
        raise FaultError("a fault is a table", where=where)
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise FaultError(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})", where=where
        )
    path = spec.get("path")
    if not isinstance(path, str) or not path.startswith(("/", "*")):
        raise FaultError("path must be a URL path pattern starting with '/'", where=where)
    try:
        kind = FaultKind(spec.get("kind"))
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise FaultError(
            f"unknown kind {spec.get('kind')!r} (known: {known})", where=where
        ) from None
    values: dict[str, Any] = {"path": path, "kind": kind}
    for key in ("bytes", "offset"):
        if key in spec:
            values[key] = _int(spec[key], key, where)
    if "rate" in spec:
        values["rate"] = _int(spec["rate"], "rate", where, low=1)
    if "status" in spec:
        values["status"] = _int(spec["status"], "status", where, low=300, high=599)
    if "times" in spec:
        values["times"] = _int(spec["times"], "times", where, low=1)
    if "seconds" in spec:
        values["seconds"] = _float(spec["seconds"], "seconds", where)
    if "length" in spec:
        length = spec["length"]
        values["length"] = None if length == "missing" else _int(length, "length", where)
    elif kind is FaultKind.LENGTH:
        raise FaultError('a length fault needs length (a number or "missing")', where=where)
    for key in ("release", "after"):
        if key in spec:
            if not isinstance(spec[key], str):
                raise FaultError(f"{key} must be a string", where=where)
            values[key] = spec[key]
    if kind is FaultKind.SWITCH and "release" not in spec:
        raise FaultError("a switch fault needs release (a directory under the root)", where=where)
    return Fault(**values)


@attrs.frozen
class ServeConfig:
    """REL-32: what a TOML file (or the control endpoint) sets: the faults and the release
    published at start."""

    faults: tuple[Fault, ...] = ()
    publish: str = ""


def read_config(data: Mapping[str, Any], where: str) -> ServeConfig:
    unknown = sorted(set(data) - {"fault", "publish"})
    if unknown:
        raise FaultError(f"unknown key {unknown[0]!r} (known: fault, publish)", where=where)
    table = data.get("fault", [])
    if not isinstance(table, list):
        raise FaultError("fault must be an array of tables ([[fault]])", where=where)
    faults = tuple(parse_fault(f, f"{where}: fault[{i}]") for i, f in enumerate(table))
    publish = data.get("publish", "")
    if not isinstance(publish, str):
        raise FaultError("publish must be a string", where=where)
    return ServeConfig(faults, publish)


def load_config(path: Path) -> ServeConfig:
    """REL-32: read a fault file (TOML)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FaultError(str(exc), where=str(path)) from None
    return read_config(data, str(path))


@attrs.frozen
class ModelledFault:
    """REL-40: the modelled input a server fault stands for and where the device meets it:
    ``at`` is the number of image bytes copied when it applies (0: before the first buffer)."""

    kind: str  # transfer_fail, corrupt, truncate (ENV-8) or publish
    at: int = 0


def get_modelled_fault(
    fault: Fault, image_size: int, *, chunk: int, stale_length: int = 0
) -> ModelledFault | None:
    """REL-40: the modelled input a server fault on an image of ``image_size`` bytes stands
    for (``None``: no fault at all), for a device reading ``chunk`` bytes at a time that last
    read a Content-Length of ``stale_length`` (the manifest's, kept when the header is
    missing, ENV-6)."""

    def at(offset: int) -> int:
        return offset // chunk * chunk

    if fault.kind in (FaultKind.DROP, FaultKind.STALL):
        return ModelledFault("transfer_fail", at(fault.bytes)) if fault.bytes < image_size else None
    if fault.kind is FaultKind.STATUS:
        return ModelledFault("transfer_fail")
    if fault.kind is FaultKind.FLIP:
        return ModelledFault("corrupt", at(fault.offset)) if fault.offset < image_size else None
    if fault.kind is FaultKind.LENGTH:
        length = stale_length if fault.length is None else fault.length
        if length == image_size:
            return None
        if length > image_size:  # the body ends before the length: a negative read
            return ModelledFault("transfer_fail", at(image_size))
        if fault.length is not None and length < min(chunk, image_size):
            return ModelledFault("transfer_fail")  # the server sends that much: no first buffer
        return ModelledFault("truncate", at(max(length - 1, 0)))
    if fault.kind is FaultKind.SWITCH:
        return ModelledFault("publish")
    return None
