"""``otamodel release lint``: a hosted release checked the way a device will use it (REL-10..).

Everything ``manifest lint`` reports (MAN-31), plus the hosted files: digests, signatures,
patches (strict jdiff 0.7), base digests, device file names, sizes against the slot and the
download chunking, versions as the device reads them back. Each problem states its effect on a
device as the model shows it (an :class:`Effect`); ``tests/test_release_lint.py`` runs each
rule's example through the model and checks that effect.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from otamodel.errors import ManifestError, PatchError, SignatureError
from otamodel.formats import jdiff, otadb, signature
from otamodel.formats import manifest as mf
from otamodel.release._make import DEVICE_FILES, SUMMARY_NAME, ReleaseInfo, read_release

__all__ = ["Effect", "Outcome", "ReleaseProblem", "lint_release"]

REAL_CHUNK = 4096
REAL_SLOT = 0xDF000
_HEX_ROUND_TRIP = 10  # the first version whose decimal text reads back differently as hex


class Outcome(enum.Enum):
    """What a device ends up doing with the release (the model's verdict)."""

    NOT_OFFERED = "the device reports UPDATE_NOTAVAILABLE and keeps its version"
    CHECK_FAILS = "the update check fails (UPDATE_CHECK_FAILED) and the device keeps its version"
    DOWNLOAD_FAILS = "the download fails (DOWNLOAD_FAILED) at every check"
    REJECTED = "the device downloads it and rejects it (IMAGE_DIGEST_VERIFY_FAILED) every check"
    BOOT_REJECTED = (
        "the device installs it and resets; the bootloader rejects the signature and the "
        "new version never runs"
    )
    FULL_IMAGE = "the device ignores the patch and downloads the full image instead"
    DEVICE_FILE_OVERWRITTEN = "the download writes over a file the device keeps"
    BASE_FILE_OVERWRITTEN = "the download writes over the file of the image it replaces"
    RUNNING_ERASED = (
        "the device deletes the file and database row of the image it runs and keeps running it"
    )
    ERASE_FAILS = "the device has no such version to erase (IMAGE_ERASE_FAILED)"
    TAKEN_AS_ERASE = (
        "a device that read an EraseVer manifest since its last reset takes this one as an "
        "erase of its Version and never installs it"
    )


@attrs.frozen
class Effect:
    """What the model says a problem does to a device: the outcome, the status the
    application's callback sees (``None``: none in particular) and the property it breaks."""

    outcome: Outcome
    status: str | None
    prop: str | None

    def describe(self) -> str:
        status = f" [{self.status}]" if self.status else ""
        breaks = f"; breaks {self.prop}" if self.prop else ""
        return f"{self.outcome.value}{status}{breaks}"


@attrs.frozen
class ReleaseProblem:
    """One problem: its rule, where (a file or a JSON path), what and its effect."""

    rule: str
    where: str
    message: str
    severity: str = "error"
    effect: Effect | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": self.rule,
            "where": self.where,
            "severity": self.severity,
            "message": self.message,
        }
        if self.effect is not None:
            out["effect"] = {
                "outcome": self.effect.outcome.name.lower().replace("_", "-"),
                "status": self.effect.status,
                "property": self.effect.prop,
                "text": self.effect.describe(),
            }
        return out


Fetch = Callable[[str], bytes | None]


@attrs.frozen
class _Base:
    version: int
    data: bytes
    url: str


@attrs.frozen
class LintContext:
    """What the linter knows besides the release: keys, earlier releases, the device."""

    public_key_pem: bytes | None = None
    bases: tuple[_Base, ...] = ()
    chunk: int = REAL_CHUNK
    slot_size: int = REAL_SLOT
    variant: str = "harmony-3.9.1"
    device_version: int | None = None


def load_bases(folders: Sequence[Path]) -> tuple[_Base, ...]:
    """The images of earlier releases (``--base``), read through their ``release.json``."""
    out = []
    for folder in folders:
        info = read_release(folder)
        if info.erase:
            continue  # an EraseVer release installs nothing
        image = info.get_image(str(folder))
        out.append(_Base(info.version, (folder / image.file).read_bytes(), image.url))
    return tuple(out)


def fetch_from_dir(folder: Path, info: ReleaseInfo | None) -> Fetch:
    """REL-11: a URL's file in a release directory: by ``release.json``, else by the URL path
    (or its tail) under the directory; never outside it."""
    root = folder.resolve()
    by_url = {f.url: f.file for f in info.get_files()} if info is not None else {}

    def fetch(url: str) -> bytes | None:
        candidates = [by_url[url]] if url in by_url else []
        try:
            url_path = urlsplit(url).path
        except ValueError:  # e.g. "http://[h/a.bin": no file (found by the fuzz suite)
            url_path = ""
        parts = [p for p in url_path.split("/") if p]
        candidates += ["/".join(parts[i:]) for i in range(len(parts))]
        for rel in candidates:
            path = (root / rel).resolve()
            if path.is_relative_to(root) and path.is_file():
                return path.read_bytes()
        return None

    return fetch


def _text(field: mf.JsonField) -> str | None:
    return field.text if field.is_string() else None


class _Linter:
    def __init__(self, fetch: Fetch, ctx: LintContext) -> None:
        self.fetch = fetch
        self.ctx = ctx
        self.problems: list[ReleaseProblem] = []
        self.names: dict[str, str] = {}
        self.image_data = b""

    def add(
        self, rule: str, where: str, message: str, effect: Effect | None, severity: str = "error"
    ) -> None:
        self.problems.append(ReleaseProblem(rule, where, message, severity, effect))

    # -- files ---------------------------------------------------------------------------------

    def get_hosted(self, url: str, where: str, patch: bool) -> bytes | None:
        """REL-11: every URL names a hosted file."""
        data = self.fetch(url)
        if data is None:
            effect = (
                Effect(Outcome.DOWNLOAD_FAILS, "DOWNLOAD_FAILED", "progress") if not patch else None
            )
            self.add("REL-11", where, f"{url} is not hosted", effect)
        return data

    def check_size(self, data: bytes, where: str, what: str) -> None:
        """REL-12: a download needs at least one full chunk before the device reads
        Content-Length; an image must fit the slot."""
        if len(data) < self.ctx.chunk:
            self.add(
                "REL-12",
                where,
                f"{what} is {len(data)} bytes, less than the {self.ctx.chunk}-byte first "
                "buffer the device fills before it reads Content-Length",
                Effect(Outcome.DOWNLOAD_FAILS, "DOWNLOAD_FAILED", "progress"),
            )
        if what == "the image" and len(data) > self.ctx.slot_size:
            self.add(
                "REL-12",
                where,
                f"the image is {len(data)} bytes, more than the {self.ctx.slot_size}-byte slot "
                "(neither the app nor the bootloader checks this)",
                None,
            )

    def check_name(self, url: str, where: str, patch: bool) -> None:
        """REL-13: the file names the device derives from URLs differ from its own files,
        from each other (FAT ignores case) and from the images they replace."""
        try:
            name = mf.get_image_file_name(url, patch=patch)
            target = mf.get_image_file_name(url) if patch else name
            sign = mf.get_sign_file_name(url)
        except ManifestError:
            return  # manifest lint reports the URL
        for own in (name, target, sign):
            if own.lower() in DEVICE_FILES:
                self.add(
                    "REL-13",
                    where,
                    f"the device stores this download as {own!r}, one of its own files",
                    Effect(Outcome.DEVICE_FILE_OVERWRITTEN, None, None),
                )
        key = name.lower()
        if key in self.names and self.names[key] != url:
            self.add(
                "REL-13",
                where,
                f"{name!r} is also the device name of {self.names[key]}",
                None,
                "warning",
            )
        self.names.setdefault(key, url)
        for base in self.ctx.bases:
            try:
                base_name = mf.get_image_file_name(base.url)
            except ManifestError:
                continue
            if base_name.lower() == target.lower() and base.data != self.image_data:
                self.add(
                    "REL-13",
                    where,
                    f"the device writes this update to {target!r}, the file of v{base.version} "
                    "it replaces; name each release's file differently",
                    Effect(Outcome.BASE_FILE_OVERWRITTEN, None, "store-consistency"),
                )

    # -- manifest fields -------------------------------------------------------------------------

    def check_version(self, version: int, where: str) -> None:
        """REL-14: the device offers the update only above its own version."""
        current = [b.version for b in self.ctx.bases]
        if self.ctx.device_version is not None:
            current.append(self.ctx.device_version)
        if current and version <= max(current):
            self.add(
                "REL-14",
                where,
                f"version {version} is not above v{max(current)}",
                Effect(Outcome.NOT_OFFERED, "UPDATE_NOTAVAILABLE", "progress"),
            )

    def check_signature(self, text: str | None, data: bytes, where: str) -> None:
        """REL-15: the signature verifies with the device's public key."""
        if text is None:
            if self.ctx.public_key_pem is not None:
                self.add(
                    "REL-15",
                    where,
                    "no Signature: a secure bootloader has nothing to verify",
                    Effect(Outcome.BOOT_REJECTED, "DB_ENTRY_SUCCESS", "no-brick"),
                )
            return
        if self.ctx.public_key_pem is None:
            self.add("REL-15", where, "not checked: give the public key (--key)", None, "warning")
            return
        try:
            ok = signature.verify(data, text, self.ctx.public_key_pem)
        except SignatureError as exc:
            ok = False
            detail = f" ({exc.reason})"
        else:
            detail = ""
        if not ok:
            self.add(
                "REL-15",
                where,
                f"does not verify over the image with the given public key{detail}",
                Effect(Outcome.BOOT_REJECTED, "DB_ENTRY_SUCCESS", "no-brick"),
            )

    def check_patch(self, index: int, patch: mf.PatchEntry, where: str) -> None:
        """REL-16, REL-17: a patch rebuilds its target from its base under strict 0.7 decoding,
        its digests match, and its base is a release the device can hold."""
        url = _text(patch.patch_url)
        base_version = patch.base_version.valueint if patch.base_version.is_number() else None
        if url is None or base_version is None:
            return  # manifest lint reports it
        at = f"{where}[{index}]"
        data = self.get_hosted(url, f"{at}.PatchURL", patch=True)
        self.check_name(url, f"{at}.PatchURL", patch=True)
        if data is None:
            return
        self.check_size(data, f"{at}.PatchURL", "the patch")
        if _text(patch.patch_digest) not in (hashlib.sha256(data).hexdigest(), None):
            self.add("REL-16", f"{at}.PatchDigest", "does not match the hosted patch", None)
        base = next((b for b in self.ctx.bases if b.version == base_version), None)
        if base is None:
            self.add(
                "REL-16",
                at,
                f"not checked: no base release v{base_version} (--base)",
                None,
                "warning",
            )
        matched = base is not None and self.check_patch_base(base, data, patch, at)
        if base_version >= _HEX_ROUND_TRIP:
            self.add(
                "REL-17",
                f"{at}.BaseVersion",
                f"the device stores v{base_version} as the text {base_version} and reads it "
                f"back as 0x{otadb.strtol16(str(base_version)):X}, so it never finds this base",
                Effect(Outcome.FULL_IMAGE, None, None),
                "warning",
            )
        elif matched and self.ctx.variant == "harmony-3.9.1":
            self.add(
                "REL-16",
                at,
                "on harmony-3.9.1 a device holding the base downloads the patch as if it were "
                "the full image (the parse returns before it flags the patch) and rejects it",
                Effect(Outcome.REJECTED, "IMAGE_DIGEST_VERIFY_FAILED", "progress"),
            )

    def check_patch_base(self, base: _Base, data: bytes, patch: mf.PatchEntry, at: str) -> bool:
        """REL-16: the patch against its base; True when the device would match the base."""
        base_digest = hashlib.sha256(base.data).hexdigest()
        matched = _text(patch.base_ver_digest) == base_digest
        if not matched:
            self.add(
                "REL-16",
                f"{at}.BaseVerDigest",
                f"is not the digest of release v{base.version}: the device never matches it",
                Effect(Outcome.FULL_IMAGE, None, None),
                "warning",
            )
        try:
            rebuilt = jdiff.decode(base.data, data, dialect="07", strict=True)
        except PatchError as exc:
            self.add("REL-16", at, f"not a strict jdiff 0.7 patch: {exc}", None)
            return matched
        if _text(patch.target_digest) != hashlib.sha256(rebuilt).hexdigest():
            self.add("REL-16", f"{at}.TargetDigest", "is not the digest of the rebuilt image", None)
        return matched

    # -- EraseVer ----------------------------------------------------------------------------

    def check_erase(self, version: int, where: str) -> None:
        """REL-20, REL-21, REL-22: an EraseVer manifest against what the device holds."""
        held = {b.version for b in self.ctx.bases}
        if self.ctx.device_version == version:
            self.add(
                "REL-20",
                f"{where}: Version",
                f"erases v{version}, the version the device runs: nothing compares the two, so "
                "the device deletes its running image's file and database row",
                Effect(Outcome.RUNNING_ERASED, "IMAGE_ERASED", None),
                "warning",
            )
        elif not held and self.ctx.device_version is None:
            self.add(
                "REL-21",
                f"{where}: Version",
                "not checked: give the releases the device holds (--base, --device-version)",
                None,
                "warning",
            )
        elif version not in held:
            self.add(
                "REL-21",
                f"{where}: Version",
                f"v{version} is not among the releases the device holds (the factory image has "
                "no database row)",
                Effect(Outcome.ERASE_FAILS, "IMAGE_ERASE_FAILED", None),
            )
        self.add(
            "REL-22",
            where,
            'the device keeps this erase request until a manifest says "EraseVer": false; '
            "publish the next release with it (release make writes it)",
            None,
            "warning",
        )

    def check_erase_cleared(self, entry: mf.OtaEntry, where: str) -> None:
        """REL-22: a manifest without ``"EraseVer": false`` leaves an earlier erase request."""
        field = entry.erase_ver
        if field.kind == "bool" and field.boolean is False:
            return
        self.add(
            "REL-22",
            where,
            'no "EraseVer": false: a device that read an EraseVer manifest since its last '
            "reset keeps the erase request and takes this manifest as an erase",
            Effect(Outcome.TAKEN_AS_ERASE, "IMAGE_ERASE_FAILED", "progress"),
            "warning",
        )

    def check(self, manifest_bytes: bytes, where: str) -> None:
        """REL-10..REL-22 over the last ``ota[]`` element (MAN-31 first)."""
        try:
            parsed = mf.parse(manifest_bytes).entry
        except ManifestError:
            parsed = None
        erase = parsed is not None and parsed.erase_ver.kind == "bool" and parsed.erase_ver.boolean
        for p in mf.lint(manifest_bytes):
            if erase and p.path.endswith((".URL", ".Digest")) and p.message.startswith("missing"):
                continue  # the erase path reads neither (research §2.4)
            self.add("MAN-31", f"{where}: {p.path}", p.message, None, p.severity)
        if len(manifest_bytes) > mf.JSON_READ_LIMIT:
            self.add(
                "REL-18",
                where,
                f"{len(manifest_bytes)} bytes: more than the {mf.JSON_READ_LIMIT} bytes the "
                "service "
                "reads",
                Effect(Outcome.CHECK_FAILS, "UPDATE_CHECK_FAILED", "progress"),
            )
        try:
            entry = mf.parse(manifest_bytes).entry
        except ManifestError:
            return
        if entry is None:
            return
        if erase:
            if entry.version.is_number() and entry.version.valueint:
                self.check_erase(entry.version.valueint, where)
            return
        self.check_erase_cleared(entry, where)
        url = _text(entry.url)
        if url is not None:
            data = self.get_hosted(url, f"{where}: URL", patch=False)
            if data is not None:
                self.image_data = data
                self.check_size(data, f"{where}: URL", "the image")
                digest = _text(entry.digest)
                if digest is not None and digest.lower() != hashlib.sha256(data).hexdigest():
                    self.add(
                        "REL-10",
                        f"{where}: Digest",
                        "is not the SHA-256 of the hosted image",
                        Effect(Outcome.REJECTED, "IMAGE_DIGEST_VERIFY_FAILED", "progress"),
                    )
                self.check_signature(_text(entry.signature), data, f"{where}: Signature")
            self.check_name(url, f"{where}: URL", patch=False)
        if entry.version.is_number() and entry.version.valueint:
            self.check_version(entry.version.valueint, f"{where}: Version")
        for index, patch in enumerate(entry.patch or ()):
            self.check_patch(index, patch, f"{where}: Patch")


def lint_release(
    manifest_bytes: bytes, fetch: Fetch, ctx: LintContext, where: str = "ota.json"
) -> list[ReleaseProblem]:
    """REL-10..REL-22: every problem of a hosted release (never raises on bad content)."""
    linter = _Linter(fetch, ctx)
    linter.check(manifest_bytes, where)
    return linter.problems


def lint_directory(folder: Path, ctx: LintContext) -> list[ReleaseProblem]:
    """REL-10..REL-22 for a release directory (its ``release.json`` when there is one)."""
    info = read_release(folder) if (folder / SUMMARY_NAME).is_file() else None
    manifest_name = info.manifest if info is not None else "ota.json"
    manifest_bytes = (folder / manifest_name).read_bytes()
    return lint_release(manifest_bytes, fetch_from_dir(folder, info), ctx, manifest_name)
