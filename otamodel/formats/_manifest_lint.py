"""``otamodel manifest lint``: every problem a publisher should fix in a manifest.

Checks follow what the service, the OTA core and the bootloader do with each field (rules
MAN-30, MAN-31 and the rules they cite); the JSON paths name keys as they are written.
"""

from __future__ import annotations

import re
from typing import Literal

from otamodel.errors import ManifestError, SignatureError
from otamodel.formats import _cjson
from otamodel.formats._cjson import Node
from otamodel.formats.manifest import (
    IMAGE_DIR,
    IMAGE_NAME_SIZE,
    JSON_READ_LIMIT,
    OTA_URL_SIZE,
    SIGNATURE_TEXT_SIZE,
    LintProblem,
    is_url_accepted,
)
from otamodel.formats.otadb import strtol16
from otamodel.formats.signature import decode_signature

__all__ = ["get_problems"]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOP_KEYS = ("ota",)
_ENTRY_KEYS = ("Version", "URL", "Digest", "EraseVer", "Signature", "Patch", "files")
_PATCH_KEYS = ("BaseVersion", "BaseVerDigest", "PatchURL", "PatchDigest", "TargetDigest")
_MAX_VERSION = 255
_HEX_READ_LIMIT = 100
_VER_BUFFER_LIMIT = 1000
_MAX_IGNORED_LISTED = 8
_KIND_NAMES = {
    "string": "a string",
    "number": "a number",
    "bool": "a bool",
    "null": "null",
    "array": "an array",
    "object": "an object",
}

Severity = Literal["error", "warning"]


def _show_key(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _member_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if _IDENTIFIER.fullmatch(key) else f"{parent}[{key!r}]"


class _Linter:
    def __init__(self) -> None:
        self.problems: list[LintProblem] = []

    def add(self, path: str, message: str, severity: Severity = "error") -> None:
        self.problems.append(LintProblem(path, message, severity))

    # -- objects and keys ---------------------------------------------------------------------

    def check_keys(self, node: Node, path: str, known: tuple[str, ...]) -> dict[str, str]:
        """MAN-3, MAN-31: warn about case-only matches, duplicates and unknown keys; return the
        path of the member the device uses for each known key that is present."""
        used: dict[str, str] = {}
        for raw in node.raw_keys:
            shown = _show_key(raw)
            nul = raw.find(b"\0")
            c_key = (raw if nul < 0 else raw[:nul]).decode("latin-1")
            member = _member_path(path, shown)
            canonical = next((k for k in known if k.lower() == c_key.lower()), None)
            if canonical is None:
                self.add(member, "unknown key, ignored by the device", "warning")
                continue
            if canonical in used:
                self.add(
                    member,
                    f"duplicate of {used[canonical]}: the device uses the first one",
                    "warning",
                )
                continue
            used[canonical] = member
            if shown != canonical:
                self.add(
                    member,
                    f'matches "{canonical}" only because the device ignores case; '
                    f'spell it "{canonical}"',
                    "warning",
                )
        return used

    def field_path(self, used: dict[str, str], parent: str, key: str) -> str:
        return used.get(key, _member_path(parent, key))

    # -- field checks -------------------------------------------------------------------------

    def want_kind(self, node: Node | None, path: str, kind: str, what: str) -> bool:
        if node is None:
            self.add(path, f"missing: {what}")
            return False
        if node.kind != kind:
            self.add(path, f"must be {_KIND_NAMES[kind]}, not {_KIND_NAMES[node.kind]}: {what}")
            return False
        return True

    def check_digest(self, node: Node | None, path: str, what: str) -> None:
        if not self.want_kind(node, path, "string", what):
            return
        assert node is not None
        text = node.text.decode("latin-1")
        if not _HEX64.fullmatch(text):
            self.add(
                path,
                f"must be 64 hex digits (a SHA-256), got {len(text)} characters"
                + ("" if all(c in "0123456789abcdefABCDEF" for c in text) else " with non-hex ones")
                + ": the device compares the 32 bytes it parses pairwise from the first 64",
            )

    def check_url(self, node: Node | None, path: str) -> None:
        what = "the image is downloaded from it"
        if not self.want_kind(node, path, "string", what):
            return
        assert node is not None
        url = node.text.decode("latin-1")
        if len(url) + 1 > OTA_URL_SIZE:
            self.add(
                path,
                f"{len(url)} bytes: the device copies it with its NUL into a {OTA_URL_SIZE}-byte "
                "buffer, overwriting the digest that follows it (at most "
                f"{OTA_URL_SIZE - 1} bytes)",
            )
        if not is_url_accepted(url):
            self.add(path, 'must start with "http://" or "https://" (case-sensitive)')
        slash = url.rfind("/")
        segment = url[slash + 1 :] if slash >= 0 else ""
        if slash < 0 or "." not in segment:
            self.add(
                path,
                "the last path segment needs a '.': the device replaces the text after the last "
                "'.' to name the file and has undefined behaviour without one",
            )
        elif len(IMAGE_DIR) + 1 + len(segment) + 1 > IMAGE_NAME_SIZE:
            self.add(
                path,
                f"the file name {segment!r} overflows the device's {IMAGE_NAME_SIZE}-byte path "
                f'buffer ("{IMAGE_DIR}/" + name)',
            )

    def check_version(self, node: Node | None, path: str) -> None:
        if not self.want_kind(node, path, "number", "the update is offered only for a number"):
            return
        assert node is not None
        value = node.get_valueint()
        if not node.number.is_integer():
            self.add(path, f"{node.number!r} is not an integer: the device uses {value}", "warning")
        if value == 0:
            self.add(path, "0 (or below 1 after truncation): the device ignores the manifest")
            return
        if value < 0:
            self.add(path, f"{value} is negative: versions are stored and compared unsigned")
            return
        hex_read = strtol16(str(value))
        if value > _MAX_VERSION:
            self.add(
                path,
                f"{value} is above {_MAX_VERSION}: the database stores it in decimal and reads "
                f"it back as hex (0x{hex_read:X}), and the bootloader compares only the low byte",
            )
        elif value >= _HEX_READ_LIMIT:
            self.add(
                path,
                f"{value} is stored as the text {value} and read back as 0x{hex_read:X}, above "
                "255: the bootloader's 8-bit comparison never finds the row, so it reprograms "
                "the image at every boot",
                "warning",
            )
        if value >= _VER_BUFFER_LIMIT:
            self.add(
                path,
                f"{value} has more than 3 digits: the database entry writes it into a 4-byte "
                "buffer (char ver[4]) and overflows it",
            )

    def check_signature(self, node: Node, path: str) -> None:
        if node.kind != "string":
            self.add(
                path, f"must be a string, not {_KIND_NAMES[node.kind]}: secure builds reject it"
            )
            return
        text = node.text.decode("latin-1")
        try:
            decode_signature(text)
        except (SignatureError, ValueError):
            self.add(
                path,
                "must be the base64 of a 64-byte r||s ECDSA P-256 signature (88 characters)",
            )
            return
        if len(text) > SIGNATURE_TEXT_SIZE:
            self.add(path, f"longer than {SIGNATURE_TEXT_SIZE} characters: the device cuts it")

    def check_erase(self, node: Node, path: str) -> None:
        if node.kind != "bool":
            self.add(path, "must be true or false: otherwise the device ignores the manifest")
        elif node.boolean:
            self.add(
                path, "true: the manifest asks to erase that version, not to update", "warning"
            )

    # -- structure ----------------------------------------------------------------------------

    def check_patch(self, node: Node, path: str) -> None:
        if node.kind != "array":
            self.add(path, f"must be an array, not {_KIND_NAMES[node.kind]}")
            if node.kind != "object":
                return
        for index, (_, element) in enumerate(node.items):
            where = f"{path}[{index}]"
            if element.kind != "object":
                self.add(where, f"must be an object, not {_KIND_NAMES[element.kind]}")
                continue
            used = self.check_keys(element, where, _PATCH_KEYS)

            def at(key: str, used: dict[str, str] = used, where: str = where) -> str:
                return self.field_path(used, where, key)

            self.want_kind(
                _cjson.get_item(element, "BaseVersion"),
                at("BaseVersion"),
                "number",
                "the version the patch applies to",
            )
            for key in ("BaseVerDigest", "PatchDigest", "TargetDigest"):
                self.check_digest(_cjson.get_item(element, key), at(key), "a patch needs it")
            self.check_url(_cjson.get_item(element, "PatchURL"), at("PatchURL"))

    def check_entry(self, entry: Node, path: str) -> None:
        used = self.check_keys(entry, path, _ENTRY_KEYS)

        def at(key: str) -> str:
            return self.field_path(used, path, key)

        def get(key: str) -> Node | None:
            return _cjson.get_item(entry, key)

        erase = get("EraseVer")
        if erase is not None:
            self.check_erase(erase, at("EraseVer"))
        self.check_version(get("Version"), at("Version"))
        self.check_url(get("URL"), at("URL"))
        self.check_digest(get("Digest"), at("Digest"), "the download is checked against it")
        signature = get("Signature")
        if signature is not None:
            self.check_signature(signature, at("Signature"))
        patch = get("Patch")
        if patch is not None:
            self.check_patch(patch, at("Patch"))
            if signature is not None:
                self.add(at("Signature"), "builds with patching do not read Signature", "warning")

    def check_document(self, data: bytes) -> None:
        """MAN-9, MAN-31: the whole document, then the last ``ota[]`` element."""
        if len(data) > JSON_READ_LIMIT:
            self.add(
                "$",
                f"{len(data)} bytes: the service reads at most {JSON_READ_LIMIT} "
                "(SYS_OTA_JSON_FILE_MAXSIZE - 10) and the update check then fails",
            )
        nul = data.find(b"\0")
        if nul >= 0:
            self.add("$", f"NUL byte at offset {nul}: the device's parser stops there")
        root, end = _cjson.parse_json(data)
        rest = data[: nul if nul >= 0 else len(data)][end:]
        if rest.strip(bytes(range(33))):
            self.add("$", f"text after the JSON value (offset {end}) is ignored", "warning")
        if root.kind != "object":
            self.add("$", f'must be an object with an "ota" array, not {_KIND_NAMES[root.kind]}')
            return
        used = self.check_keys(root, "$", _TOP_KEYS)
        ota_path = self.field_path(used, "$", "ota")
        ota = _cjson.get_item(root, "ota")
        if ota is None:
            self.add(ota_path, "missing: the device finds no update")
            return
        if ota.kind != "array":
            self.add(ota_path, f"must be an array, not {_KIND_NAMES[ota.kind]}")
            if ota.kind != "object":
                return
        count = len(ota.items)
        if count == 0:
            self.add(ota_path, "empty: the device finds no update")
            return
        if count - 1 > _MAX_IGNORED_LISTED:  # one line, not one per element (BOUND-2)
            self.add(
                f"{ota_path}[0..{count - 2}]",
                f"{count - 1} elements ignored: the device reads only the last element",
                "warning",
            )
        else:
            for index in range(count - 1):
                self.add(
                    f"{ota_path}[{index}]",
                    "ignored: the device reads only the last element",
                    "warning",
                )
        entry = ota.items[-1][1]
        where = f"{ota_path}[{count - 1}]"
        if entry.kind != "object":
            self.add(where, f"must be an object, not {_KIND_NAMES[entry.kind]}")
            return
        self.check_entry(entry, where)


def get_problems(data: bytes) -> list[LintProblem]:
    """MAN-30, MAN-31: the problems of ``data`` (see :func:`otamodel.formats.manifest.lint`)."""
    linter = _Linter()
    try:
        linter.check_document(data)
    except ManifestError as exc:
        return [LintProblem("$", f"malformed JSON at byte offset {exc.where}: {exc.reason}")]
    return linter.problems
