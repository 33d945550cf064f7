"""A JSON reader with the syntax of cJSON 1.7 (``cJSON_Parse``), iterative so depth is free.

The device parses ``json_buf`` as a C string with ``OTA_cJSON_Parse``; this module reproduces
what that accepts and builds, without the C memory model:

* the input ends at its first NUL byte; a UTF-8 BOM at the start is skipped;
* white space is every byte <= 0x20;
* ``null``/``true``/``false`` are matched by prefix; numbers start with ``-`` or a digit and are
  read by ``strtod`` from the longest run (at most 63) of ``0-9 + - e E .``, so ``01``, ``1.``
  and ``-.5`` are numbers while ``NaN``, ``Infinity``, ``+1`` and ``.5`` are errors;
* strings may hold raw control bytes and any bytes >= 0x80; escapes are ``\\b \\f \\n \\r \\t
  \\" \\\\ \\/`` and ``\\uXXXX`` (a non-hex digit makes the code 0; lone or mismatched
  surrogates are errors); a string's C value ends at its first NUL;
* duplicate keys are all kept, in order; nesting deeper than 1000 is an error;
* text after the first complete value is ignored (``cJSON_Parse`` does not require the end).

Rules MAN-1 … MAN-3 in ``docs/spec/manifest.md``.
"""

from __future__ import annotations

import re

import attrs

from otamodel.errors import ManifestError

__all__ = ["NESTING_LIMIT", "Node", "get_array_item", "get_array_size", "get_item", "parse_json"]

NESTING_LIMIT = 1000
_NUMBER_CHARS = frozenset(b"0123456789+-eE.")
_NUMBER_BUFFER = 63
_STRTOD = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ESCAPES = {
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord('"'): b'"',
    ord("\\"): b"\\",
    ord("/"): b"/",
}
_HEX = b"0123456789abcdefABCDEF"
_INT_MAX = 0x7FFFFFFF
_INT_MIN = -0x80000000
_BOM = b"\xef\xbb\xbf"


@attrs.frozen
class Node:
    """One cJSON item. ``text`` is the C string of a string (bytes, cut at NUL); ``items`` are
    (key, child) pairs in document order (key None in arrays; the C string of the key in
    objects); ``raw_keys`` keeps each object key in full; ``offset`` is where the item begins."""

    kind: str
    offset: int
    boolean: bool = False
    number: float = 0.0
    text: bytes = b""
    items: tuple[tuple[bytes | None, Node], ...] = ()
    raw_keys: tuple[bytes, ...] = ()

    def get_valueint(self) -> int:
        """MAN-7: cJSON's ``valueint``: the number saturated to ``int`` and truncated toward
        zero; 1 for ``true``; 0 otherwise."""
        if self.kind == "number":
            value = self.number
            if value >= _INT_MAX:
                return _INT_MAX
            if value <= _INT_MIN:
                return _INT_MIN
            return int(value)
        return 1 if self.kind == "bool" and self.boolean else 0


def get_item(node: Node | None, name: str) -> Node | None:
    """MAN-3: ``cJSON_GetObjectItem``: the first member whose key equals ``name`` ignoring ASCII
    case (C ``tolower``); None for non-objects."""
    if node is None or node.kind != "object":
        return None
    wanted = name.encode("latin-1").lower()
    for key, child in node.items:
        if key is not None and key.lower() == wanted:
            return child
    return None


def get_array_size(node: Node | None) -> int:
    """MAN-3: ``cJSON_GetArraySize``: the number of children of an array *or object*."""
    return len(node.items) if node is not None else 0


def get_array_item(node: Node | None, index: int) -> Node | None:
    """MAN-3: ``cJSON_GetArrayItem``: the child at ``index`` (object members count); None for a
    negative or too large index."""
    if node is None or index < 0 or index >= len(node.items):
        return None
    return node.items[index][1]


class _Frame:
    __slots__ = ("is_object", "items", "key", "keys", "offset")

    def __init__(self, is_object: bool, offset: int) -> None:
        self.is_object = is_object
        self.offset = offset
        self.items: list[tuple[bytes | None, Node]] = []
        self.keys: list[bytes] = []
        self.key: bytes | None = None


class _Reader:
    def __init__(self, data: bytes) -> None:
        nul = data.find(b"\0")
        self.s = data if nul < 0 else data[:nul]
        self.n = len(self.s)

    def fail(self, reason: str, offset: int) -> ManifestError:
        return ManifestError(f"JSON syntax: {reason}", where=offset)

    def ws(self, i: int) -> int:
        s, n = self.s, self.n
        while i < n and s[i] <= 0x20:
            i += 1
        return i

    def expect(self, i: int, char: bytes, what: str) -> int:
        if i >= self.n:
            raise self.fail(f"unexpected end of input, expected {what}", i)
        if self.s[i] != char[0]:
            raise self.fail(f"expected {what}, found {chr(self.s[i])!r}", i)
        return i + 1

    def parse(self) -> tuple[Node, int]:
        # cJSON skips the BOM only when a fourth byte follows it (``can_access_at_index(4)``).
        i = self.ws(3 if self.s.startswith(_BOM) and self.n > len(_BOM) else 0)
        stack: list[_Frame] = []
        while True:
            node: Node | None
            node, i = self.value_or_open(i, stack)
            while node is not None:
                if not stack:
                    return node, i
                frame = stack[-1]
                frame.items.append((frame.key, node))
                i = self.ws(i)
                close = b"}" if frame.is_object else b"]"
                if i < self.n and self.s[i] == ord(","):
                    i = self.ws(i + 1)
                    if frame.is_object:
                        i = self.key(i, frame)
                    node = None
                elif i < self.n and self.s[i] == close[0]:
                    stack.pop()
                    node = self.close(frame)
                    i += 1
                else:
                    what = "',' or '}'" if frame.is_object else "',' or ']'"
                    if i >= self.n:
                        raise self.fail(f"unexpected end of input, expected {what}", i)
                    raise self.fail(f"expected {what}, found {chr(self.s[i])!r}", i)

    def close(self, frame: _Frame) -> Node:
        kind = "object" if frame.is_object else "array"
        return Node(kind, frame.offset, items=tuple(frame.items), raw_keys=tuple(frame.keys))

    def key(self, i: int, frame: _Frame) -> int:
        if i >= self.n or self.s[i] != ord('"'):
            raise self.fail("expected a string key", i)
        raw, i = self.string(i)
        frame.keys.append(raw)
        nul = raw.find(b"\0")
        frame.key = raw if nul < 0 else raw[:nul]
        i = self.expect(self.ws(i), b":", "':'")
        return self.ws(i)

    def value_or_open(self, i: int, stack: list[_Frame]) -> tuple[Node | None, int]:
        """A scalar value (returned), or an opened container (pushed; None returned)."""
        s = self.s
        if s.startswith(b"null", i):
            return Node("null", i), i + 4
        if s.startswith(b"false", i):
            return Node("bool", i, boolean=False), i + 5
        if s.startswith(b"true", i):
            return Node("bool", i, boolean=True), i + 4
        if i >= self.n:
            raise self.fail("unexpected end of input, expected a value", i)
        c = s[i]
        if c == ord('"'):
            raw, end = self.string(i)
            nul = raw.find(b"\0")
            return Node("string", i, text=raw if nul < 0 else raw[:nul]), end
        if c == ord("-") or ord("0") <= c <= ord("9"):
            return self.number(i)
        if c in (ord("["), ord("{")):
            if len(stack) >= NESTING_LIMIT:
                raise self.fail(f"nesting deeper than {NESTING_LIMIT}", i)
            frame = _Frame(c == ord("{"), i)
            j = self.ws(i + 1)
            close = ord("}") if frame.is_object else ord("]")
            if j < self.n and s[j] == close:
                return self.close(frame), j + 1
            if j >= self.n:
                raise self.fail("unexpected end of input in a container", j)
            stack.append(frame)
            if frame.is_object:
                return None, self.key(j, frame)
            return None, j
        raise self.fail(f"unexpected character {chr(c)!r}", i)

    def number(self, i: int) -> tuple[Node, int]:
        j = i
        while j < self.n and j - i < _NUMBER_BUFFER and self.s[j] in _NUMBER_CHARS:
            j += 1
        match = _STRTOD.match(self.s, i, j)
        if match is None:
            raise self.fail("invalid number", i)
        return Node("number", i, number=float(match.group(0))), match.end()

    def string(self, i: int) -> tuple[bytes, int]:
        """The bytes of the string starting with the quote at ``i``, and the offset after it."""
        s, n = self.s, self.n
        end = i + 1
        while end < n and s[end] != ord('"'):
            if s[end] == ord("\\"):
                end += 1
            end += 1
        if end >= n:
            raise self.fail("unterminated string", i)
        out = bytearray()
        p = i + 1
        while p < end:
            backslash = s.find(b"\\", p, end)
            if backslash < 0:
                out += s[p:end]
                break
            out += s[p:backslash]
            p = backslash
            escape = s[p + 1]
            if escape in _ESCAPES:
                out += _ESCAPES[escape]
                p += 2
            elif escape == ord("u"):
                p = self.unicode(p, end, out)
            else:
                raise self.fail(f"invalid escape \\{chr(escape)}", p)
        return bytes(out), end + 1

    def unicode(self, p: int, end: int, out: bytearray) -> int:
        """``utf16_literal_to_utf8``: decode ``\\uXXXX`` (and a surrogate pair) at ``p``."""
        s = self.s
        if end - p < 6:
            raise self.fail("truncated \\u escape", p)
        first = _hex4(s[p + 2 : p + 6])
        if 0xDC00 <= first <= 0xDFFF:
            raise self.fail("lone low surrogate", p)
        if 0xD800 <= first <= 0xDBFF:
            q = p + 6
            if end - q < 6 or s[q] != ord("\\") or s[q + 1] != ord("u"):
                raise self.fail("high surrogate without a low one", p)
            second = _hex4(s[q + 2 : q + 6])
            if not 0xDC00 <= second <= 0xDFFF:
                raise self.fail("high surrogate without a low one", p)
            code = 0x10000 + (((first & 0x3FF) << 10) | (second & 0x3FF))
            out += chr(code).encode("utf-8")
            return p + 12
        out += chr(first).encode("utf-8")
        return p + 6


def _hex4(chunk: bytes) -> int:
    """cJSON's ``parse_hex4``: four hex digits, or 0 as soon as one is not a hex digit."""
    if all(c in _HEX for c in chunk):
        return int(chunk, 16)
    return 0


def parse_json(data: bytes) -> tuple[Node, int]:
    """MAN-1, MAN-2: the root item of ``data`` as ``cJSON_Parse`` reads it, and the offset just
    after it (anything from there on is ignored). A syntax error is a ``ManifestError`` whose
    ``where`` is the byte offset of the problem."""
    return _Reader(data).parse()
