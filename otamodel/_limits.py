"""Bounds on what otamodel reads: document size and nesting, scenario geometry and budgets.

Every bound is a documented option of the command line with a safe default; exceeding one is a
:class:`~otamodel.errors.BoundError` (exit 3) or, for malformed numbers, a typed format error
(exit 2). The checks here run on the *parsed document* before anything is built from it, so a
hostile scenario or trace never allocates a gigabyte page or recurses a thousand levels
(BOUND-5, BOUND-6, BOUND-7).
"""

from __future__ import annotations

import contextvars
import json
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from otamodel.errors import BoundError, FormatError, InputError

__all__ = [
    "Limits",
    "check_depth",
    "check_scenario_spec",
    "get_depth",
    "get_limits",
    "parse_document",
    "read_document",
    "set_limits",
]

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
MAX_PAGE_SIZE = 64 * 1024
MAX_SLOT_BYTES = 16 * 1024 * 1024
MAX_BUDGET = 64
WARN_BUDGET_TOTAL = 6


@attrs.frozen
class Limits:
    """The bounds in force (the ``otamodel`` group options set them for one run)."""

    max_document_bytes: int = MAX_DOCUMENT_BYTES
    max_depth: int = MAX_DEPTH
    max_page_size: int = MAX_PAGE_SIZE
    max_slot_bytes: int = MAX_SLOT_BYTES
    max_budget: int = MAX_BUDGET


DEFAULT_LIMITS = Limits()
_CURRENT: contextvars.ContextVar[Limits] = contextvars.ContextVar(
    "otamodel_limits", default=DEFAULT_LIMITS
)


def get_limits() -> Limits:
    """The bounds in force (the defaults unless the command line set others)."""
    return _CURRENT.get()


def set_limits(limits: Limits) -> None:
    """Put ``limits`` in force for the rest of this run (the ``otamodel`` group does this)."""
    _CURRENT.set(limits)


def get_depth(value: object) -> int:
    """Nesting depth of parsed JSON/TOML (a scalar is 0), computed without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, Mapping):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _json_depth(text: str) -> tuple[int, int]:
    """Deepest bracket nesting of a JSON text (strings skipped) and the offset reaching it."""
    depth = deepest = at = 0
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, index
        elif char in "]}":
            depth -= 1
    return deepest, at


def check_depth(value: object, error: type[FormatError], source: str, max_depth: int) -> None:
    """BOUND-6: refuse a document nested deeper than ``max_depth``."""
    depth = get_depth(value)
    if depth > max_depth:
        raise BoundError(
            f"{source}: {error.format_name}: nested {depth} levels deep, above {max_depth}",
            option="--max-depth",
        )


def parse_document(
    data: bytes, suffix: str, error: type[FormatError], source: str, max_depth: int = MAX_DEPTH
) -> Any:
    """Decode and parse a JSON (``suffix == ".json"``) or TOML document (BOUND-6).

    Undecodable text, syntax errors and too-deep nesting are typed errors naming ``source`` and
    the byte offset or line and column; nothing here can raise RecursionError.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text ({exc.reason})", where=exc.start, source=source) from None
    if suffix == ".json":
        deepest, at = _json_depth(text)
        if deepest > max_depth:
            raise BoundError(
                f"{source}: {error.format_name}: at character {at}: nested {deepest} levels "
                f"deep, above {max_depth}",
                option="--max-depth",
            )
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(
                f"not JSON: {exc.msg}",
                where=f"line {exc.lineno} column {exc.colno}",
                source=source,
            ) from None
        except (ValueError, RecursionError) as exc:
            raise error(f"not JSON: {exc}", source=source) from None
    else:
        try:
            value = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise error(f"not TOML: {exc}", source=source) from None
        except ValueError as exc:  # an integer of more than 4300 digits
            raise error(f"not TOML: {exc}".split(";")[0], source=source) from None
        except RecursionError:
            raise BoundError(
                f"{source}: {error.format_name}: nested too deeply", option="--max-depth"
            ) from None
    check_depth(value, error, source, max_depth)
    return value


def read_document(
    path: str | Path,
    error: type[FormatError],
    limits: Limits | None = None,
    *,
    suffix: str | None = None,
) -> Any:
    """Read and parse a JSON/TOML file within ``limits`` (BOUND-5, BOUND-6); ``suffix``
    (``.json`` or ``.toml``) overrides the file name's."""
    p = Path(path)
    limits = limits or get_limits()
    try:
        with open(p, "rb") as handle:
            data = handle.read(limits.max_document_bytes + 1)
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror}") from None
    if len(data) > limits.max_document_bytes:
        raise BoundError(
            f"{p}: larger than {limits.max_document_bytes} bytes", option="--max-document-bytes"
        )
    kind = suffix if suffix is not None else p.suffix.lower()
    return parse_document(data, kind, error, str(p), limits.max_depth)


def _geometry_int(
    geo: Mapping[str, Any], key: str, default: int, source: str, error: type[FormatError]
) -> int:
    value = geo.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{key} must be an integer", where=f"geometry.{key}", source=source)
    if value <= 0:
        raise error(f"{key} must be positive, not {value}", where=f"geometry.{key}", source=source)
    return value


def _check_geometry(geo: object, source: str, error: type[FormatError], limits: Limits) -> None:
    if not isinstance(geo, Mapping):
        return  # "small", "real" or a type error the scenario loader reports
    page = _geometry_int(geo, "page_size", 256, source, error)
    row = _geometry_int(geo, "row_size", 128, source, error)
    pages = _geometry_int(geo, "slot_pages", 4, source, error)
    if page % row:
        raise error(
            f"page_size {page} is not a multiple of row_size {row}",
            where="geometry.row_size",
            source=source,
        )
    if page > limits.max_page_size:
        raise BoundError(
            f"{source}: scenario: geometry.page_size {page} is above {limits.max_page_size}",
            option="--max-page-size",
        )
    if page * pages > limits.max_slot_bytes:
        raise BoundError(
            f"{source}: scenario: geometry: a slot of {pages} x {page} bytes is above "
            f"{limits.max_slot_bytes} bytes",
            option="--max-slot-bytes",
        )


def _check_budget(budget: object, source: str, error: type[FormatError], limits: Limits) -> int:
    if not isinstance(budget, Mapping):
        return 0
    total = 0
    for key, value in budget.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue  # the scenario loader reports the type
        if value < 0:
            raise error(f"must not be negative, not {value}", where=f"budget.{key}", source=source)
        if value > limits.max_budget:
            raise BoundError(
                f"{source}: scenario: budget.{key} = {value} is above {limits.max_budget}",
                option="--max-budget",
            )
        total += value
    return total


def check_scenario_spec(
    spec: object, source: str, error: type[FormatError], limits: Limits | None = None
) -> int:
    """BOUND-7: the geometry and budgets of a scenario description are within ``limits``.

    Returns the total fault budget (the caller warns with an estimate when it is large). Schema
    validation (keys, types) is the scenario loader's; this only keeps the build and the
    search bounded.
    """
    limits = limits or get_limits()
    if not isinstance(spec, Mapping):
        raise error(
            f"a scenario is a table/object, not {type(spec).__name__}", where="$", source=source
        )
    _check_geometry(spec.get("geometry", "small"), source, error, limits)
    _check_versions(spec, source, error)
    return _check_budget(spec.get("budget", {}), source, error, limits)


_U32 = (0, 0xFFFF_FFFF)
_I64 = (-(2**63), 2**64 - 1)
#: Version fields of a scenario and the range they must fit: a build's version is stored in
#: the 32-bit boot-control field; a claimed (manifest) version is any number a server may send.
_VERSION_FIELDS = {
    "version": _U32,
    "base_version": _U32,
    "erase_version": _U32,
    "claimed_version": _I64,
    "claimed_base_version": _I64,
}


def _check_width(
    value: object, bounds: tuple[int, int], where: str, source: str, error: type[FormatError]
) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        return  # the scenario loader reports the type
    low, high = bounds
    if not low <= value <= high:
        raise error(f"{value} does not fit the field ({low}..{high})", where=where, source=source)


def _check_versions(spec: Mapping[str, Any], source: str, error: type[FormatError]) -> None:
    """BOUND-7: version numbers fit the fields the device stores them in."""
    _check_width(spec.get("factory_version"), _U32, "factory_version", source, error)
    releases = spec.get("releases")
    if not isinstance(releases, list):
        return
    for index, release in enumerate(releases):
        if isinstance(release, Mapping):
            for key, bounds in _VERSION_FIELDS.items():
                where = f"releases[{index}].{key}"
                _check_width(release.get(key), bounds, where, source, error)


def get_state_estimate(with_one: int, with_two: int, budget: int) -> tuple[float, float]:
    """BOUND-7: a range for the states of a search with ``budget`` units of fault budget,
    extrapolated from the counts with one and two units: low as a power law
    ``count(1) * n ** log2(ratio)``, high as geometric growth ``count(1) * ratio ** (n - 1)``
    (measured on the shipped scenarios, the truth lies between)."""
    ratio = max(with_two, 1) / max(with_one, 1) if with_two > with_one else 1.0
    base = float(max(with_one, 1))
    n = max(budget, 1)
    return base * float(n) ** math.log2(ratio), base * ratio ** (n - 1)
