"""The OTA manifest: the JSON the service downloads, read the way ``SYS_OTA_ParseJsonContent``
reads it, plus the name and digest helpers of the OTA core.

:func:`parse` applies cJSON's syntax (``otamodel.formats._cjson``) and the service's lookups:
case-insensitive keys (first match wins), the top-level ``ota`` array, only its last element.
Each field keeps its JSON kind so the model can apply the C type checks itself. Strings are C
strings: one character per byte (latin-1 view of the UTF-8 bytes), cut at the first NUL, so
``len`` is ``strlen``. :func:`lint` (in ``_manifest_lint``) lists what a publisher should fix.
Rules: MAN-1 … MAN-32 in ``docs/spec/manifest.md``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping
from typing import Literal

import attrs

from otamodel.errors import ManifestError
from otamodel.formats import _cjson
from otamodel.formats._cjson import Node
from otamodel.formats.otadb import strtol16

__all__ = [
    "ABSENT",
    "DIGEST_TEXT_SIZE",
    "IMAGE_DIR",
    "IMAGE_NAME_SIZE",
    "JSON_FILE_MAXSIZE",
    "JSON_READ_LIMIT",
    "OMIT",
    "OTA_URL_SIZE",
    "SIGNATURE_TEXT_SIZE",
    "JsonField",
    "JsonKind",
    "LintProblem",
    "Manifest",
    "OtaEntry",
    "PatchEntry",
    "PatchSpec",
    "get_digest_bytes",
    "get_image_file_name",
    "get_image_path",
    "get_sign_file_name",
    "is_url_accepted",
    "lint",
    "make_manifest",
    "parse",
    "serialize",
    "truncate_digest_string",
]

OTA_URL_SIZE = 100
JSON_FILE_MAXSIZE = 2000
JSON_READ_LIMIT = JSON_FILE_MAXSIZE - 10
DIGEST_TEXT_SIZE = 64
SIGNATURE_TEXT_SIZE = 96
IMAGE_DIR = "/mnt/myDrive1/ota"
IMAGE_NAME_SIZE = 100

JsonKind = Literal["absent", "string", "number", "bool", "null", "array", "object"]


@attrs.frozen
class JsonField:
    """MAN-4: one looked-up item as the C code sees it.

    ``text`` is set for strings, ``number`` (``valuedouble``) for numbers, ``boolean`` for
    bools; ``valueint`` is cJSON's (numbers saturated to ``int`` and truncated toward zero;
    1 for ``true``, 0 for ``false``); ``absent`` means the lookup returned NULL.
    """

    kind: JsonKind
    text: str | None = None
    number: float | None = None
    valueint: int | None = None
    boolean: bool | None = None

    def is_present(self) -> bool:
        """MAN-4: the lookup found the key (any kind)."""
        return self.kind != "absent"

    def is_string(self) -> bool:
        """MAN-4: ``cJSON_IsString`` (with a non-NULL ``valuestring``)."""
        return self.kind == "string"

    def is_number(self) -> bool:
        """MAN-4: ``cJSON_IsNumber``."""
        return self.kind == "number"


ABSENT = JsonField("absent")


@attrs.frozen
class PatchEntry:
    """MAN-8: one ``Patch`` element (``kind`` is the element's own kind; a non-object has every
    field absent)."""

    base_version: JsonField = ABSENT
    base_ver_digest: JsonField = ABSENT
    patch_url: JsonField = ABSENT
    patch_digest: JsonField = ABSENT
    target_digest: JsonField = ABSENT
    kind: JsonKind = "object"


@attrs.frozen
class OtaEntry:
    """MAN-5, MAN-8: the last ``ota[]`` element's fields.

    ``patch`` is None when there is no ``Patch`` key, else its children in order (the members
    of an object count, as with ``cJSON_GetArrayItem``; a scalar has none); ``patch_field``
    keeps the kind of the ``Patch`` value.
    """

    version: JsonField = ABSENT
    url: JsonField = ABSENT
    digest: JsonField = ABSENT
    erase_ver: JsonField = ABSENT
    signature: JsonField = ABSENT
    patch: tuple[PatchEntry, ...] | None = None
    patch_field: JsonField = ABSENT
    kind: JsonKind = "object"


@attrs.frozen
class Manifest:
    """MAN-5: what the service can see of a manifest.

    ``entry`` is the last child of ``ota`` (None when ``ota`` has no children), ``elements``
    the child count (``cJSON_GetArraySize``), ``ota`` the kind of the ``ota`` value,
    ``files_element`` the first child with a ``files`` key (the file-download feature), and
    ``end_offset`` where the JSON value ended (diagnostic only).
    """

    entry: OtaEntry | None
    elements: int
    ota: JsonField = ABSENT
    files_element: int | None = None
    end_offset: int = attrs.field(default=0, eq=False)


@attrs.frozen
class PatchSpec:
    """One ``Patch`` element for :func:`make_manifest`."""

    base_version: int
    base_ver_digest: str
    patch_url: str
    patch_digest: str
    target_digest: str

    def get_json(self) -> dict[str, object]:
        """The element as JSON-ready data, keys spelled as the service expects."""
        return {
            "BaseVersion": self.base_version,
            "BaseVerDigest": self.base_ver_digest,
            "PatchURL": self.patch_url,
            "PatchDigest": self.patch_digest,
            "TargetDigest": self.target_digest,
        }


# --------------------------------------------------------------------------------------------
# parse


def _field(node: Node | None) -> JsonField:
    if node is None:
        return ABSENT
    kind = node.kind
    if kind == "string":
        return JsonField("string", text=node.text.decode("latin-1"))
    if kind == "number":
        return JsonField("number", number=node.number, valueint=node.get_valueint())
    if kind == "bool":
        return JsonField("bool", valueint=node.get_valueint(), boolean=node.boolean)
    if kind == "null":
        return JsonField("null")
    return JsonField("array" if kind == "array" else "object")


def _kind(node: Node) -> JsonKind:
    return _field(node).kind


def _patch_entry(node: Node) -> PatchEntry:
    return PatchEntry(
        base_version=_field(_cjson.get_item(node, "BaseVersion")),
        base_ver_digest=_field(_cjson.get_item(node, "BaseVerDigest")),
        patch_url=_field(_cjson.get_item(node, "PatchURL")),
        patch_digest=_field(_cjson.get_item(node, "PatchDigest")),
        target_digest=_field(_cjson.get_item(node, "TargetDigest")),
        kind=_kind(node),
    )


def _entry(node: Node) -> OtaEntry:
    """MAN-6: the fields the service looks up in the element (first case-insensitive match)."""
    patch = _cjson.get_item(node, "Patch")
    return OtaEntry(
        version=_field(_cjson.get_item(node, "Version")),
        url=_field(_cjson.get_item(node, "URL")),
        digest=_field(_cjson.get_item(node, "Digest")),
        erase_ver=_field(_cjson.get_item(node, "EraseVer")),
        signature=_field(_cjson.get_item(node, "Signature")),
        patch=None if patch is None else tuple(_patch_entry(child) for _, child in patch.items),
        patch_field=_field(patch),
        kind=_kind(node),
    )


@functools.lru_cache(maxsize=1024)
def parse(data: bytes) -> Manifest:
    """MAN-1 … MAN-8: the manifest as the service reads it; a syntax error (what makes
    ``cJSON_Parse`` return NULL) is a ``ManifestError`` whose ``where`` is the byte offset.

    The size limit of the read (MAN-9) is not applied here: give the bytes the service got.
    """
    root, end = _cjson.parse_json(data)
    ota = _cjson.get_item(root, "ota")
    count = _cjson.get_array_size(ota)
    last = _cjson.get_array_item(ota, count - 1)
    files_element = next(
        (
            i
            for i in range(count)
            if _cjson.get_item(_cjson.get_array_item(ota, i), "files") is not None
        ),
        None,
    )
    return Manifest(
        entry=None if last is None else _entry(last),
        elements=count,
        ota=_field(ota),
        files_element=files_element,
        end_offset=end,
    )


# --------------------------------------------------------------------------------------------
# serialize / make_manifest


def _emit_string(text: str) -> bytes:
    try:
        raw = text.encode("latin-1")
    except UnicodeEncodeError:
        raise ManifestError("a string holds a character above U+00FF (not a C byte)") from None
    out = bytearray(b'"')
    for byte in raw:
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes((byte,))
        elif byte < 0x20:
            out += f"\\u{byte:04x}".encode()
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def _emit_number(value: float) -> bytes:
    if math.isinf(value):
        return b"1e999" if value > 0 else b"-1e999"
    if math.isnan(value):
        raise ManifestError("NaN has no JSON form")
    if value.is_integer() and abs(value) < 2.0**63:
        return str(int(value)).encode()
    return repr(value).encode()


_PLACEHOLDERS: dict[str, bytes] = {
    "string": b'""',
    "number": b"0",
    "bool": b"false",
    "null": b"null",
    "array": b"[]",
    "object": b"{}",
}


def _emit_field(field: JsonField) -> bytes:
    if field.kind == "string":
        return _emit_string(field.text or "")
    if field.kind == "number":
        return _emit_number(field.number if field.number is not None else 0.0)
    if field.kind == "bool":
        return b"true" if field.boolean else b"false"
    return _PLACEHOLDERS[field.kind]


def _emit_object(members: Iterable[tuple[str, bytes]]) -> bytes:
    return b"{" + b",".join(_emit_string(key) + b":" + value for key, value in members) + b"}"


def _emit_children(kind: str, children: list[bytes]) -> bytes:
    if kind == "array":
        return b"[" + b",".join(children) + b"]"
    return _emit_object((str(i), child) for i, child in enumerate(children))


def _emit_patch_entry(entry: PatchEntry) -> bytes:
    if entry.kind != "object":
        return _PLACEHOLDERS[entry.kind]
    pairs = (
        ("BaseVersion", entry.base_version),
        ("BaseVerDigest", entry.base_ver_digest),
        ("PatchURL", entry.patch_url),
        ("PatchDigest", entry.patch_digest),
        ("TargetDigest", entry.target_digest),
    )
    return _emit_object((key, _emit_field(f)) for key, f in pairs if f.is_present())


def _emit_entry(entry: OtaEntry, *, files: bool) -> bytes:
    if entry.kind != "object":
        return _PLACEHOLDERS[entry.kind]
    members = [
        (key, _emit_field(f))
        for key, f in (
            ("Version", entry.version),
            ("URL", entry.url),
            ("Digest", entry.digest),
            ("EraseVer", entry.erase_ver),
            ("Signature", entry.signature),
        )
        if f.is_present()
    ]
    if entry.patch is not None:
        kind = entry.patch_field.kind
        if kind in ("array", "object"):
            value = _emit_children(kind, [_emit_patch_entry(p) for p in entry.patch])
        else:
            value = _emit_field(entry.patch_field)
        members.append(("Patch", value))
    if files:
        members.append(("files", b"[]"))
    return _emit_object(members)


def serialize(manifest: Manifest) -> bytes:
    """MAN-10: canonical JSON (no white space, keys spelled as the service expects) that
    :func:`parse` reads back as an equal ``Manifest``; ignored ``ota[]`` elements are written
    as ``{}`` and values the service cannot see as a placeholder of the same kind."""
    kind = manifest.ota.kind
    if kind == "absent":
        return b"{}"
    if kind in ("array", "object"):
        children = []
        for i in range(manifest.elements):
            files = manifest.files_element == i
            if i == manifest.elements - 1 and manifest.entry is not None:
                children.append(_emit_entry(manifest.entry, files=files))
            else:
                children.append(b'{"files":[]}' if files else b"{}")
        value = _emit_children(kind, children)
    else:
        value = _emit_field(manifest.ota)
    return _emit_object((("ota", value),))


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: object = _Omit()


def make_manifest(
    version: object,
    url: object,
    digest: object,
    *,
    erase_ver: object = OMIT,
    signature: object = OMIT,
    patches: Iterable[PatchSpec | Mapping[str, object] | object] = (),
) -> bytes:
    """MAN-11: a one-element manifest for scenario authors: ``{"ota":[{"Version":…,"URL":…,
    "Digest":…}]}`` plus ``EraseVer``, ``Signature`` and ``Patch`` when given. Any JSON value
    may be passed (to build wrong types, also as a ``Patch`` element); :data:`OMIT` leaves a key
    out. Non-ASCII text is written as ``\\u`` escapes, which the device decodes to UTF-8."""
    entry: dict[str, object] = {}
    for key, value in (
        ("Version", version),
        ("URL", url),
        ("Digest", digest),
        ("EraseVer", erase_ver),
        ("Signature", signature),
    ):
        if value is not OMIT:
            entry[key] = value
    patch_list = [
        p.get_json() if isinstance(p, PatchSpec) else dict(p) if isinstance(p, Mapping) else p
        for p in patches
    ]
    if patch_list:
        entry["Patch"] = patch_list
    try:
        return json.dumps({"ota": [entry]}, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"cannot write as JSON: {exc}") from None


# --------------------------------------------------------------------------------------------
# Core helpers: digests and file names


def truncate_digest_string(text: str) -> str:
    """MAN-20: the C string left by ``strncpy(dest, text, 64)`` in the 66-byte digest buffer:
    at most the first 64 characters, ending at a NUL (the bytes after 64 are assumed NUL)."""
    head = text[:DIGEST_TEXT_SIZE]
    nul = head.find("\0")
    return head if nul < 0 else head[:nul]


@functools.lru_cache(maxsize=1024)
def get_digest_bytes(text: str) -> bytes:
    """MAN-21: ``formulate_digest``: 32 bytes from the first 64 characters of a digest buffer.

    Byte i is ``(uint8_t) strtol(pair, 16)`` of characters 2i and 2i+1 (the pair is copied with
    ``strncpy(…, 2)`` into a zeroed ``char[4]``): a pair starting with NUL or not starting with
    a hex digit gives 0 (so does a non-hex pair), a hex digit followed by NUL or a non-hex
    character gives that one digit, and ``strtol``'s white space and sign are honoured (`` f``
    is 0x0F, ``-1`` is 0xFF). A text shorter than 64 characters is padded with NUL, as
    ``strncpy`` pads; pass a raw buffer (NULs inside) to read stale bytes after a terminator,
    as the bootloader's ``digest_str`` holds them.
    """
    buf = text[:DIGEST_TEXT_SIZE].ljust(DIGEST_TEXT_SIZE, "\0")
    return bytes(strtol16(buf[i : i + 2]) & 0xFF for i in range(0, DIGEST_TEXT_SIZE, 2))


def _url_segment(url: str) -> str:
    slash = url.rfind("/")
    if slash < 0:
        raise ManifestError(
            "no '/' in the URL: the C code would append a NULL pointer (undefined)", where="URL"
        )
    return url[slash + 1 :]


def _split_extension(segment: str, what: str) -> tuple[str, str]:
    dot = segment.rfind(".")
    if dot < 0:
        raise ManifestError(
            f"no '.' in {segment!r}: the C code would write {what} through a NULL pointer "
            "(undefined)",
            where="URL",
        )
    return segment[:dot], segment[dot + 1 :]


def get_image_file_name(url: str, patch: bool = False) -> str:
    """MAN-22: ``create_image_file``: the file name (inside ``/mnt/myDrive1/ota``) of the
    download: the URL after its last ``/``, with everything after its last ``.`` replaced by
    ``bin`` (``patch`` for a patch download); the dot stays. A URL without ``/``, or a last
    segment without ``.``, is undefined behaviour in C: ManifestError here."""
    stem, _ = _split_extension(_url_segment(url), "the extension")
    return f"{stem}.{'patch' if patch else 'bin'}"


def get_image_path(url: str, patch: bool = False) -> str:
    """MAN-22: the full ``image_name`` path of :func:`get_image_file_name`."""
    return f"{IMAGE_DIR}/{get_image_file_name(url, patch)}"


def get_sign_file_name(url: str) -> str:
    """MAN-23: the signature file name: the URL (or DB file name) after its last ``/``, with
    the part from its last ``.`` on replaced by ``_sign.txt``; undefined (ManifestError)
    without a ``.``. A bare file name without ``/`` is taken whole, as the bootloader builds the
    path from the DB row name."""
    segment = url[url.rfind("/") + 1 :]
    stem, _ = _split_extension(segment, "'_sign.txt'")
    return f"{stem}_sign.txt"


def is_url_accepted(url: str, *, enforce_tls: bool = False) -> bool:
    """MAN-24: ``HTTP_Client_ParseURI``: the URL starts with exactly ``https:`` or ``http:``
    (case-sensitive; only ``https:`` with ``SYS_OTA_ENFORCE_TLS``) followed by ``//``."""
    if url.startswith("https://"):
        return True
    return not enforce_tls and url.startswith("http://")


# --------------------------------------------------------------------------------------------
# lint


@attrs.frozen
class LintProblem:
    """One thing a publisher should fix: a JSON path (``$.ota[1].Digest``), what is wrong and
    why it matters on the device, and a severity (``error``: the device will not do what the
    manifest means; ``warning``: it works, but something is ignored or fragile)."""

    path: str
    message: str
    severity: Literal["error", "warning"] = "error"


def lint(data: bytes) -> list[LintProblem]:
    """MAN-30, MAN-31: every problem of the manifest ``data``, in document order; malformed
    JSON is a single problem with its byte offset (this never raises)."""
    from otamodel.formats._manifest_lint import get_problems

    return get_problems(data)
