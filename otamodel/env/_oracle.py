"""The environment's knowledge the properties judge the device against (never the device's
own checks): which builds the publisher made and signed, which releases are valid targets
for this build, and what the stored images are (PROP-1, PROP-4, PROP-40..PROP-44)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping

import attrs

from otamodel.env._scenario import Scenario, get_world_scenario
from otamodel.errors import ManifestError
from otamodel.formats import bootctl, otadb, signature
from otamodel.formats import manifest as mf
from otamodel.model import AppImage, DeviceContext, Fs, World

DB_NAME = "image_database.csv"
FACTORY_FILE = "factory_reset.bin"
VALID, DOWNLOADED, DISABLED = (
    bootctl.ImageStatus.VALID,
    bootctl.ImageStatus.DOWNLOADED,
    bootctl.ImageStatus.DISABLED,
)


@attrs.frozen
class ReleaseFacts:
    """What the environment knows about one release (PROP-4, PROP-40)."""

    publisher: bool  # made (and published) by the publisher, not by an attacker
    image: AppImage | None  # the build its manifest's URL (or patch target) delivers
    signed: bool  # its signature verifies over the image with the publisher's key
    erase: bool  # an EraseVer manifest
    target: int  # compiled version the device should end up running, 0 if none


def get_release_spec(scenario: Scenario, index: int) -> Mapping[str, object]:
    specs = scenario.source.get("releases", []) if scenario.source else []
    if isinstance(specs, list) and index < len(specs) and isinstance(specs[index], Mapping):
        spec: Mapping[str, object] = specs[index]
        return spec
    return {}


def is_publisher_release(scenario: Scenario, index: int) -> bool:
    """ENV-30: a release is the attacker's when its description says ``origin = "attacker"``
    or its signature is by another key or garbage; otherwise the publisher made it."""
    spec = get_release_spec(scenario, index)
    origin = spec.get("origin")
    if origin is not None:
        return bool(origin == "publisher")
    return spec.get("signature") not in ("other-key", "garbage")


def _is_signed(scenario: Scenario, data: bytes, text: str) -> bool:
    if not text or scenario.public_key_pem is None:
        return False
    try:
        return bool(signature.verify(data, text, scenario.public_key_pem))
    except ValueError:
        return False


def get_facts(scenario: Scenario, index: int) -> ReleaseFacts:
    """PROP-4: a release's target is the compiled version of the image it delivers (not the
    manifest's Version) when the publisher made it, it is no erase, its digest matches (or it
    is a patch in a patch build), and in a secure build its signature verifies."""
    return _get_all_facts(scenario)[index]


@functools.lru_cache(maxsize=64)
def _get_all_facts(scenario: Scenario) -> tuple[ReleaseFacts, ...]:
    return tuple(_make_facts(scenario, i) for i in range(scenario.release_count))


def _make_facts(scenario: Scenario, index: int) -> ReleaseFacts:
    release = scenario.releases[index]
    publisher = is_publisher_release(scenario, index)
    try:
        doc = mf.parse(release.manifest)
    except ManifestError:
        return ReleaseFacts(publisher, None, False, False, 0)
    entry = doc.entry
    if entry is None:
        return ReleaseFacts(publisher, None, False, False, 0)
    erase = entry.erase_ver.kind == "bool" and bool(entry.erase_ver.boolean)
    data = release.get_file(entry.url.text or "")
    image = scenario.identify(data.ljust(scenario.geometry.slot_size, b"\xff")) if data else None
    if image is None:
        for _, content in release.files:
            image = image or scenario.identify(content.ljust(scenario.geometry.slot_size, b"\xff"))
    signed = data is not None and _is_signed(scenario, data, entry.signature.text or "")
    digest_ok = (
        data is not None
        and entry.digest.kind == "string"
        and hashlib.sha256(data).digest() == mf.get_digest_bytes(entry.digest.text or "")
    )
    patch_ok = bool(entry.patch) and scenario.config.patch
    valid = (
        publisher
        and not erase
        and image is not None
        and not image.factory
        and (digest_ok or patch_ok)
        and (signed or not scenario.config.secure_boot)
    )
    target = image.version if valid and image is not None else 0
    return ReleaseFacts(publisher, image, signed, erase, target)


@functools.lru_cache(maxsize=1024)
def get_target(scenario: Scenario, published: frozenset[int]) -> int:
    """PROP-4: the highest target among the releases published so far, except a version the
    publisher withdrew with a later EraseVer release of its own (an attacker's withdrawal or
    replacement does not lower it)."""
    best = 0
    for i in published:
        facts = get_facts(scenario, i)
        if not facts.target:
            continue
        withdrawn = any(
            j > i and _erased_version(scenario, j) == facts.target
            for j in published
            if get_facts(scenario, j).publisher and get_facts(scenario, j).erase
        )
        if not withdrawn:
            best = max(best, facts.target)
    return best


def _erased_version(scenario: Scenario, index: int) -> int:
    doc = mf.parse(scenario.releases[index].manifest)
    entry = doc.entry
    return int(entry.version.valueint or 0) if entry is not None else 0


@functools.lru_cache(maxsize=64)
def get_publisher_builds(scenario: Scenario) -> frozenset[tuple[bytes, bool]]:
    """PROP-1/PROP-40: (image data, signed) for every build a publisher release delivers."""
    out = set()
    for i in range(scenario.release_count):
        facts = get_facts(scenario, i)
        if facts.publisher and facts.image is not None:
            out.add((facts.image.data, facts.signed))
    return frozenset(out)


def is_publisher_image(scenario: Scenario, image: AppImage) -> bool:
    """PROP-40: the factory image or a build the publisher made (signed, in secure builds)."""
    if image.factory:
        return True
    secure = scenario.config.secure_boot
    return any(
        data == image.data and (signed or not secure)
        for data, signed in get_publisher_builds(scenario)
    )


@functools.lru_cache(maxsize=64)
def get_max_publisher_version(scenario: Scenario) -> int:
    """PROP-42: the highest compiled version among the publisher's releases."""
    best = int(scenario.factory.version)
    for i in range(scenario.release_count):
        facts = get_facts(scenario, i)
        if facts.publisher and facts.image is not None and not facts.erase:
            best = max(best, facts.image.version)
    return best


# ------------------------------------------------------------------ stored images


@attrs.frozen
class Row:
    name: str
    status: int | None
    version: int | None  # as the device's code reads it (base 16)
    digest: str | None


def get_rows(fs: Fs) -> tuple[Row, ...] | None:
    """The DB rows on the file system as performed (None: no DB or unreadable)."""
    return _parse_rows(fs.get(DB_NAME))


@functools.lru_cache(maxsize=8192)
def _parse_rows(data: bytes | None) -> tuple[Row, ...] | None:
    """Remembered by the DB file's bytes, not by the file system: a file system holds
    every file's chunks (the images' too), which the cache would keep alive."""
    result, db = otadb.load(data)
    if result != 0 or db is None or db.rows == (("",),):
        return None
    rows = []
    for i in range(len(db.rows)):
        rows.append(
            Row(
                otadb.get_field_string(db, i, 0) or "",
                otadb.get_field_value(db, i, 1),
                otadb.get_field_value_32bit(db, i, 2),
                otadb.get_field_string(db, i, 4),
            )
        )
    return tuple(rows)


def get_ctx(world: World) -> Scenario:
    """The scenario as the environment knows it (hashable by identity, for the caches)."""
    scenario = world.scenario
    if type(scenario) is Scenario:  # the usual case, without a call
        return scenario
    return get_world_scenario(world)


def identify_file(world: World, data: bytes | None) -> AppImage | None:
    return identify_data(world.scenario, data)


def identify_data(ctx: DeviceContext, data: bytes | None) -> AppImage | None:
    """Which known build a file holds (observation only)."""
    if not data:
        return None
    return ctx.identify(data.ljust(ctx.geometry.slot_size, b"\xff"))


def find_row_of(world: World, image: AppImage) -> Row | None:
    """The DB row whose file holds ``image`` (the environment identifies the content)."""
    return find_row_in(world.scenario, world.fs, image)


def find_row_in(ctx: DeviceContext, fs: Fs, image: AppImage) -> Row | None:
    """:func:`find_row_of` on a file system, with the context that identifies builds."""
    for row in get_rows(fs) or ():
        found = identify_data(ctx, fs.get(row.name))
        if found is not None and found.data == image.data:
            return row
    return None


__all__ = [
    "ReleaseFacts",
    "Row",
    "find_row_in",
    "find_row_of",
    "get_ctx",
    "get_facts",
    "get_max_publisher_version",
    "get_rows",
    "get_target",
    "identify_file",
    "is_publisher_image",
    "is_publisher_release",
]
