"""``otamodel release make``: a release directory from an application build (REL-1..REL-7).

The directory holds the ``.bin`` (hex2bin rules), the manifest, one jdiff 0.7 patch per earlier
release to patch from (``from-v<N>/<name>.patch``, so the device names the patch target like
the full image) and ``release.json``, the summary the linter and the server read. Output is
deterministic (RFC 6979 signatures, sorted JSON, no times or absolute paths) and written to a
temporary sibling directory that is renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from otamodel.errors import HexFileError, OtaModelError
from otamodel.formats import jdiff, signature
from otamodel.formats import manifest as mf
from otamodel.formats.digest import sha256_hex
from otamodel.formats.hexfile import DEFAULT_SIZE, DEFAULT_START, hex_to_bin

__all__ = [
    "DEVICE_FILES",
    "SUMMARY_NAME",
    "Overrides",
    "ReleaseError",
    "ReleaseInfo",
    "make_release",
    "read_release",
]

SUMMARY_NAME = "release.json"
SUMMARY_FORMAT = "otamodel-release/1"
MANIFEST_NAME = "ota.json"
MIN_PATCH = 4096  # REL-7: the device's first download buffer (REL-12)
# REL-4: the names the device keeps in /mnt/myDrive1/ota besides downloads.
DEVICE_FILES = (
    "image_database.csv",
    "factory_reset.bin",
    "factory_image_sign.txt",
    "factory_image_digest.txt",
    "factory_reset_digest.txt",
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class ReleaseError(OtaModelError, ValueError):
    """A release cannot be made or read (``where`` names the option, file or field)."""

    def __init__(self, reason: str, *, where: str | None = None) -> None:
        self.reason = reason
        self.where = where
        super().__init__(f"release: {where}: {reason}" if where else f"release: {reason}")


@attrs.frozen
class HostedFile:
    """One file of a release: where it is in the directory, its URL, size and SHA-256."""

    file: str
    url: str
    size: int
    sha256: str


@attrs.frozen
class PatchInfo:
    base_version: int
    base_digest: str
    patch: HostedFile


@attrs.frozen
class ReleaseInfo:
    """REL-3: what ``release.json`` records."""

    version: int
    base_url: str
    manifest: str
    image: HostedFile | None  # None: an EraseVer release (REL-9), which hosts no image
    signed: bool
    patches: tuple[PatchInfo, ...] = ()
    erase: bool = False
    unchecked: tuple[str, ...] = ()  # REL-8: the deliberate problems it was made with

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["format"] = SUMMARY_FORMAT
        if not self.erase:
            del data["erase"]
        if not self.unchecked:
            del data["unchecked"]
        else:
            data["unchecked"] = list(self.unchecked)
        return data

    def get_files(self) -> tuple[HostedFile, ...]:
        image = (self.image,) if self.image is not None else ()
        return (*image, *(p.patch for p in self.patches))

    def get_image(self, where: str) -> HostedFile:
        """The hosted image; an EraseVer release has none (a ReleaseError naming ``where``)."""
        if self.image is None:
            raise ReleaseError(f"v{self.version} is an EraseVer release (no image)", where=where)
        return self.image


@attrs.frozen
class Overrides:
    """REL-8: manifest fields written as given instead of as made (``--unchecked``), to test
    how devices take a wrong release; ``release.json`` keeps the true files and lint reports
    each problem."""

    version: int | None = None  # Version
    digest: str | None = None  # Digest
    base_version: int | None = None  # every Patch element's BaseVersion
    base_digest: str | None = None  # every Patch element's BaseVerDigest

    def get_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in attrs.fields(Overrides) if getattr(self, f.name) is not None)


def _hosted(data: bytes, file: str, base_url: str) -> HostedFile:
    return HostedFile(file, f"{base_url}/{file}", len(data), sha256_hex(data))


def read_image(source: Path, *, start: int = DEFAULT_START, size: int = DEFAULT_SIZE) -> bytes:
    """REL-1: the ``.bin`` of an application: a ``.hex`` converted by hex2bin's rules for an
    OTA image (trimmed, byte 0 as compiled), or a ``.bin`` taken as it is."""
    raw = source.read_bytes()
    if source.suffix.lower() == ".hex":
        conversion = hex_to_bin(raw.decode("latin-1"), start, size, factory=False)
        if conversion.written_end is None:
            raise HexFileError(f"{source}: no data record inside the application window")
        return conversion.data
    if not raw:
        raise ReleaseError("the image is empty", where=str(source))
    return raw


def _check_name(name: str, unchecked: bool = False) -> bool:
    """REL-4: a plain file stem that gives the device names it keeps apart from its own
    (True when it does not and REL-8 ``unchecked`` lets it through)."""
    if not _NAME.fullmatch(name):
        raise ReleaseError(
            "letters, digits, '_' and '-' only (the device names its file after the URL's "
            "last segment)",
            where="--name",
        )
    device = f"{name}.bin".lower()
    sign = f"{name}_sign.txt".lower()
    if device in DEVICE_FILES or sign in DEVICE_FILES:
        if unchecked:
            return True
        raise ReleaseError(
            f"{name!r} makes the device write over its own file "
            f"({device if device in DEVICE_FILES else sign}); --unchecked makes it anyway",
            where="--name",
        )
    return False


def _check_base_url(base_url: str, unchecked: bool = False) -> tuple[str, bool]:
    """REL-2: the base URL without a trailing '/', and whether the device refuses it (only
    with REL-8 ``unchecked``)."""
    base = base_url.rstrip("/")
    if not mf.is_url_accepted(base + "/"):
        if unchecked and "://" in base:
            return base, True
        raise ReleaseError(
            'must start with "http://" or "https://" (the device accepts nothing else)',
            where="--base-url",
        )
    return base, False


def read_release(folder: Path) -> ReleaseInfo:
    """REL-3: read ``release.json`` of an earlier release (typed errors name the field)."""
    path = folder / SUMMARY_NAME
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ReleaseError("not a release directory (no release.json)", where=str(folder)) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"malformed JSON: {exc}", where=str(path)) from None
    try:
        if data.get("format") != SUMMARY_FORMAT:
            raise ReleaseError(f"format is not {SUMMARY_FORMAT!r}", where=f"{path}: format")
        erase = data.get("erase", False) is True
        image = None if erase else HostedFile(**data["image"])
        patches = tuple(
            PatchInfo(p["base_version"], p["base_digest"], HostedFile(**p["patch"]))
            for p in data.get("patches", [])
        )
        info = ReleaseInfo(
            version=int(data["version"]),
            base_url=str(data["base_url"]),
            manifest=str(data["manifest"]),
            image=image,
            signed=bool(data["signed"]),
            patches=patches,
            erase=erase,
            unchecked=tuple(str(u) for u in data.get("unchecked", [])),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReleaseError(f"missing or malformed field {exc}", where=str(path)) from None
    for name in (info.manifest, *(item.file for item in info.get_files())):
        if not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ReleaseError(f"file {name!r} lies outside the release", where=str(path))
    return info


def pad_patch(old: bytes, new: bytes, patch: bytes, minimum: int) -> bytes:
    """REL-7: a patch of at least ``minimum`` bytes with the same result: equal runs are
    re-encoded, from the start, as literal MOD data (MOD over equal bytes writes what EQL
    copies). A patch that is already long enough, or has too few equal bytes, is returned
    as it is."""
    if len(patch) >= minimum:
        return patch
    ops: list[jdiff.Op] = []
    grown = 0
    for op in jdiff.list_ops(patch, "07", strict=True, old_size=len(old)):
        if op.kind is not jdiff.OpKind.EQL or grown >= minimum - len(patch):
            ops.append(op)
            continue
        take = min(op.length, minimum - len(patch) - grown + 8)
        start = op.old_offset
        ops.append(
            attrs.evolve(op, kind=jdiff.OpKind.MOD, length=take, data=old[start : start + take])
        )
        if op.length > take:
            ops.append(
                attrs.evolve(
                    op,
                    length=op.length - take,
                    old_offset=start + take,
                    new_offset=op.new_offset + take,
                )
            )
        grown += take
    if grown == 0:
        return patch  # no equal bytes left to spell out
    padded = jdiff.write_ops(ops, old)
    if len(padded) <= len(patch) or jdiff.decode(old, padded, dialect="07", strict=True) != new:
        return patch  # pragma: no cover - the re-encoding keeps the result by construction
    return padded if len(padded) >= minimum else pad_patch(old, new, padded, minimum)


def _make_patch(
    base_dir: Path, data: bytes, name: str, base_url: str, version: int, min_patch: int
) -> tuple[PatchInfo, bytes]:
    """REL-2: a strict jdiff 0.7 patch from an earlier release's image, checked by decoding."""
    base = read_release(base_dir)
    if base.version >= version:
        raise ReleaseError(
            f"base release v{base.version} is not older than v{version}", where=str(base_dir)
        )
    image = base.get_image(str(base_dir))
    old = (base_dir / image.file).read_bytes()
    if sha256_hex(old) != image.sha256:
        raise ReleaseError(
            f"{image.file} does not match the digest in release.json", where=str(base_dir)
        )
    patch = pad_patch(old, data, jdiff.encode(old, data), min_patch)
    if jdiff.decode(old, patch, dialect="07", strict=True) != data:  # pragma: no cover
        raise ReleaseError("the jdiff encoder produced a patch that does not rebuild the image")
    hosted = _hosted(patch, f"from-v{base.version}/{name}.patch", base_url)
    return PatchInfo(base.version, image.sha256, hosted), patch


def pad_manifest(manifest: bytes, size: int | None) -> bytes:
    """REL-8: the manifest padded with spaces (after the JSON) to ``size`` bytes."""
    if size is None:
        return manifest
    if size < len(manifest):
        raise ReleaseError(
            f"must be at least {len(manifest)} (the manifest's own size)", where="--manifest-size"
        )
    return manifest.ljust(size, b" ")


def _check_version(version: int) -> None:
    if not 1 <= version <= 255:
        raise ReleaseError(
            "must be 1..255 (the device keeps versions in one byte)", where="--version"
        )


def _get_patch_entries(
    patches: Sequence[PatchInfo], image: HostedFile, o: Overrides
) -> list[dict[str, object]]:
    return [
        {
            "BaseVersion": p.base_version if o.base_version is None else o.base_version,
            "BaseVerDigest": p.base_digest if o.base_digest is None else o.base_digest,
            "PatchURL": p.patch.url,
            "PatchDigest": p.patch.sha256,
            "TargetDigest": image.sha256,
        }
        for p in patches
    ]


def _summary(info: ReleaseInfo) -> bytes:
    return (json.dumps(info.to_json(), indent=1, sort_keys=True) + "\n").encode()


def build_release(
    data: bytes,
    *,
    version: int,
    base_url: str,
    name: str,
    key_pem: bytes | None = None,
    password: bytes | None = None,
    bases: Sequence[Path] = (),
    manifest_name: str = MANIFEST_NAME,
    min_patch: int = MIN_PATCH,
    manifest_size: int | None = None,
    overrides: Overrides | None = None,
    unchecked: bool = False,
) -> tuple[ReleaseInfo, dict[str, bytes]]:
    """REL-1..REL-3, REL-8, REL-9: the release's files (relative path -> bytes) and its
    summary. The manifest says ``"EraseVer": false``: a device keeps an earlier EraseVer
    manifest's erase request until one clears it (REL-9)."""
    o = overrides if overrides is not None else Overrides()
    if o.get_names() and not unchecked:
        raise ReleaseError(
            f"{o.get_names()[0]} is written as given only with --unchecked", where="--unchecked"
        )
    problems = [key for key, bad in (("name", _check_name(name, unchecked)),) if bad]
    base, bad_url = _check_base_url(base_url, unchecked)
    problems += ["base_url"] if bad_url else []
    _check_version(version)
    image = _hosted(data, f"{name}.bin", base)
    files: dict[str, bytes] = {image.file: data}
    patches: list[PatchInfo] = []
    for folder in bases:
        made, patch = _make_patch(folder, data, name, base, version, min_patch)
        if any(p.base_version == made.base_version for p in patches):
            raise ReleaseError(f"two base releases of version {made.base_version}", where="--base")
        patches.append(made)
        files[made.patch.file] = patch
    patches.sort(key=lambda p: p.base_version)
    extra: dict[str, Any] = {}
    if key_pem is not None:
        extra["signature"] = signature.sign(data, key_pem, deterministic=True, password=password)
    manifest = mf.make_manifest(
        version=version if o.version is None else o.version,
        url=image.url,
        digest=image.sha256 if o.digest is None else o.digest,
        erase_ver=False,
        patches=_get_patch_entries(patches, image, o),
        **extra,
    )
    files[manifest_name] = pad_manifest(manifest, manifest_size)
    info = ReleaseInfo(
        version,
        base,
        manifest_name,
        image,
        key_pem is not None,
        tuple(patches),
        unchecked=(*problems, *o.get_names()),
    )
    files[SUMMARY_NAME] = _summary(info)
    return info, files


def build_erase_release(
    version: int,
    *,
    base_url: str = "",
    manifest_name: str = MANIFEST_NAME,
    manifest_size: int | None = None,
) -> tuple[ReleaseInfo, dict[str, bytes]]:
    """REL-9: an EraseVer release: the manifest ``{"ota":[{"Version":N,"EraseVer":true}]}``
    asks every device that reads it to delete the database row and file of version N (it
    needs no URL, Digest or image); ``release.json`` records ``erase``."""
    _check_version(version)
    base = base_url.rstrip("/")
    if base:
        base, _ = _check_base_url(base_url)
    manifest = mf.make_manifest(version=version, url=mf.OMIT, digest=mf.OMIT, erase_ver=True)
    files = {manifest_name: pad_manifest(manifest, manifest_size)}
    info = ReleaseInfo(version, base, manifest_name, None, False, erase=True)
    files[SUMMARY_NAME] = _summary(info)
    return info, files


def _check_target(out: Path, force: bool) -> None:
    """REL-5: an existing target is replaced only with --force, and only if it is a release
    directory this tool made (never a file, a link or a foreign directory)."""
    if not out.exists() and not out.is_symlink():
        return
    if not force:
        raise ReleaseError("exists (use --force to replace it)", where=str(out))
    if out.is_symlink() or not out.is_dir() or not (out / SUMMARY_NAME).is_file():
        raise ReleaseError(
            "exists and is not a release directory; refusing to replace it", where=str(out)
        )


def write_release(out: Path, files: dict[str, bytes], *, force: bool = False) -> None:
    """REL-5: write every file into a temporary sibling, then rename it into place; a
    failure leaves the target as it was and no temporary directory behind."""
    _check_target(out, force)
    parent = out.parent if str(out.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
    old: Path | None = None
    try:
        for rel, payload in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)
            path.chmod(0o644)
        tmp.chmod(0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=parent))
            os.replace(out, old / "release")
        os.replace(tmp, out)
    except BaseException:
        if old is not None and not out.exists():
            os.replace(old / "release", out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(old)


def make_release(
    source: Path | None,
    out: Path,
    *,
    version: int,
    base_url: str = "",
    name: str | None = None,
    key_pem: bytes | None = None,
    password: bytes | None = None,
    bases: Sequence[Path] = (),
    force: bool = False,
    start: int = DEFAULT_START,
    size: int = DEFAULT_SIZE,
    min_patch: int = MIN_PATCH,
    manifest_size: int | None = None,
    overrides: Overrides | None = None,
    unchecked: bool = False,
    erase: bool = False,
) -> ReleaseInfo:
    """REL-1..REL-5, REL-8, REL-9: build the release of ``source`` (or, with ``erase``, the
    EraseVer release of ``version``, which takes no source) into the directory ``out``."""
    _check_target(out, force)
    if erase:
        if source is not None or bases or key_pem is not None:
            raise ReleaseError(
                "an EraseVer release takes no SOURCE, --base or --key", where="--erase-version"
            )
        info, files = build_erase_release(version, base_url=base_url, manifest_size=manifest_size)
        write_release(out, files, force=force)
        return info
    if source is None:
        raise ReleaseError("missing (or give --erase-version)", where="SOURCE")
    if not base_url:
        raise ReleaseError("required for a release with an image", where="--base-url")
    data = read_image(source, start=start, size=size)
    info, files = build_release(
        data,
        version=version,
        base_url=base_url,
        name=name or f"{source.stem}_v{version}",
        key_pem=key_pem,
        password=password,
        bases=bases,
        min_patch=min_patch,
        manifest_size=manifest_size,
        overrides=overrides,
        unchecked=unchecked,
    )
    write_release(out, files, force=force)
    return info
