"""Where a key path is in a scenario file's text (SCN-1): line and column for errors."""

from __future__ import annotations

import contextlib
import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]

PathItem = str | int

_TABLE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def locate(text: str, file: str, path: tuple[PathItem, ...]) -> tuple[int, int] | None:
    """The (line, column) of the longest prefix of ``path`` found in the file's text."""
    positions = _json_positions(text) if file.endswith(".json") else _toml_positions(text)
    for cut in range(len(path), -1, -1):
        if path[:cut] in positions:
            index = positions[path[:cut]]
            line = text.count("\n", 0, index) + 1
            column = index - (text.rfind("\n", 0, index) + 1) + 1
            return line, column
    return None


def _toml_positions(text: str) -> dict[tuple[PathItem, ...], int]:
    out: dict[tuple[PathItem, ...], int] = {}
    counts: dict[tuple[PathItem, ...], int] = {}
    table: tuple[PathItem, ...] = ()
    offset = 0
    for line in text.splitlines(keepends=True):
        match = _TABLE.match(line)
        col = len(line) - len(line.lstrip())
        if match:
            keys: tuple[PathItem, ...] = tuple(
                k.strip().strip("\"'") for k in match.group(2).split(".")
            )
            if match.group(1) == "[[":
                n = counts.get(keys, 0)
                counts[keys] = n + 1
                out.setdefault(keys, offset + col)
                table = (*keys, n)
            else:
                table = keys
            out.setdefault(table, offset + col)
        else:
            key = _KEY.match(line)
            if key:
                parts = tuple(k.strip("\"'") for k in key.group(1).split("."))
                for i in range(1, len(parts) + 1):
                    out.setdefault((*table, *parts[:i]), offset + col)
        offset += len(line)
    return out


def _json_positions(text: str) -> dict[tuple[PathItem, ...], int]:
    out: dict[tuple[PathItem, ...], int] = {}
    decoder = json.JSONDecoder()
    space = re.compile(r"[ \t\n\r]*")

    def skip(i: int) -> int:
        """The position after the white space at ``i``."""
        match = space.match(text, i)
        return match.end() if match is not None else i

    def value(i: int, path: tuple[PathItem, ...]) -> int:
        i = skip(i)
        out.setdefault(path, i)
        if text.startswith("{", i):
            i = skip(i + 1)
            while not text.startswith("}", i):
                key, j = scanstring(text, i + 1)
                out[(*path, key)] = i
                j = skip(j) + 1  # the colon
                i = skip(value(j, (*path, key)))
                if text.startswith(",", i):
                    i = skip(i + 1)
            return i + 1
        if text.startswith("[", i):
            i = skip(i + 1)
            n = 0
            while not text.startswith("]", i):
                i = skip(value(i, (*path, n)))
                n += 1
                if text.startswith(",", i):
                    i = skip(i + 1)
            return i + 1
        return int(decoder.raw_decode(text, i)[1])

    with contextlib.suppress(ValueError, IndexError, AttributeError):
        value(0, ())
    return out
