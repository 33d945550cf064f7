"""Scenarios: the product build, the server's releases, and the fault budgets.

A scenario is described as data (a dict, TOML or JSON) and built into concrete bytes:
images, SHA-256 digests, ECDSA signatures, jdiff patches and manifests in the real formats.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import attrs

from otamodel.env._spec import (
    BUDGET_KINDS,
    ConsoleInput,
    ConsoleSpec,
    DigestMode,
    FsSpec,
    GeometryName,
    GeometrySpec,
    Origin,
    ReleaseKind,
    ReleaseSpec,
    SignatureMode,
    make_error,
    structure_spec,
)
from otamodel.env._transport import ReleaseServer, Transport
from otamodel.errors import ScenarioError
from otamodel.formats import jdiff, signature
from otamodel.formats import manifest as mf
from otamodel.model import (
    REAL_GEOMETRY,
    SMALL_GEOMETRY,
    AppImage,
    Config,
    Geometry,
    Reply,
    World,
    make_image,
)
from otamodel.model._parse import get_erase_statement

SERVER = "http://127.0.0.1:8000"
MANIFEST_URL = f"{SERVER}/ota.json"
TEST_KEY_SCALAR = 0x6F74616D6F64656C2D746573742D6B6579  # "otamodel-test-key"
OTHER_KEY_SCALAR = 0x61747461636B6572  # "attacker"


@attrs.frozen
class Release:
    """What the server publishes at one time: a manifest and the files it names."""

    name: str
    manifest: bytes = attrs.field(repr=False)
    files: tuple[tuple[str, bytes], ...] = attrs.field(repr=False)
    description: str = ""
    withheld: bool = False  # SCN-17: the frozen server answers nothing

    def get_file(self, url: str) -> bytes | None:
        if self.withheld:
            return None
        if url == MANIFEST_URL:
            return self.manifest
        for path, data in self.files:
            if path == url:
                return data
        return None


@attrs.frozen(eq=False)
class Scenario:
    """A checkable world: implements the model's ``DeviceContext``."""

    name: str
    config: Config
    geometry: Geometry
    factory: AppImage
    images: tuple[AppImage, ...]
    releases: tuple[Release, ...]
    budget: tuple[tuple[str, int], ...]
    tears: bool = True
    user_actions: tuple[str, ...] = ()
    witnesses: tuple[str, ...] | None = None
    fs_write_calls: bool = False
    description: str = ""
    public_key_pem: bytes | None = None
    factory_signature: str = ""
    manifest_url: str = MANIFEST_URL
    fs_options: FsSpec = attrs.field(factory=FsSpec)
    mitm_manifest: bytes = attrs.field(default=b"", repr=False)
    mitm_image: AppImage | None = attrs.field(default=None, repr=False)
    # SCN-14/15/34/35: the console inputs offered, and the values `sysota set` may type.
    console_inputs: tuple[str, ...] = ("periodic", "autoreset", "autoupdate", "set_params")
    console_intervals: tuple[int, ...] = ()
    console_urls: tuple[str, ...] = ()
    source: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    transport: Transport | None = attrs.field(default=None, repr=False)

    @property
    def release_count(self) -> int:
        return len(self.releases)

    def serve(self, release: int, url: str) -> bytes | Reply | None:
        """ENV-1: the server answers 200 with the file, or an error status (None), through
        the scenario's transport (ENV-5; the in-memory server by default)."""
        if url == self.manifest_url:
            url = MANIFEST_URL  # SCN-7: the build's manifest URL reaches the server's manifest
        transport = self.transport if self.transport is not None else ReleaseServer(self.releases)
        return transport.get(release, url)

    @cached_property
    def has_extra_inputs(self) -> bool:
        """Whether any budget of SCN-13..SCN-17 is given (a fast path for the checker)."""
        return any(kind in ("tamper", "console", "mitm", "freeze") for kind, _ in self.budget)

    @cached_property
    def budget_keys(self) -> frozenset[str]:
        """The budgets the scenario gives units to (an input of another budget is never
        offered)."""
        return frozenset(kind for kind, count in self.budget if count > 0)

    def get_frozen_index(self) -> int | None:
        """SCN-17: the index of the frozen server's pseudo-release, if the scenario has one."""
        last = len(self.releases) - 1
        return last if last >= 0 and self.releases[last].withheld else None

    def get_release_params(self, release: int) -> tuple[str, int, str] | None:
        """SCN-15: the URL, Version and Digest of a release's manifest (for an app that calls
        ``SYS_OTA_SET_PARAMETERS`` with them), or None for an erase or malformed one."""
        if not 0 <= release < len(self.releases) or self.releases[release].withheld:
            return None
        try:
            entry = json.loads(self.releases[release].manifest)["ota"][-1]
        except (ValueError, KeyError, IndexError, TypeError):
            return None
        url, version, digest = entry.get("URL"), entry.get("Version"), entry.get("Digest")
        if entry.get("EraseVer") is True or not isinstance(url, str):
            return None
        if not isinstance(version, int) or not isinstance(digest, str):
            return None
        return url, version, digest

    @cached_property
    def _known(self) -> tuple[AppImage, ...]:
        return tuple(sorted((self.factory, *self.images), key=lambda i: -len(i.data)))

    @cached_property
    def _bodies(self) -> tuple[tuple[AppImage, bytes], ...]:
        """Each known build's code after the first chunk (a factory image without its 0xFF
        fill), computed once; SCN-5: a .bin smaller than one chunk holds no code."""
        chunk = self.geometry.chunk
        out = []
        for image in self._known:
            body = image.data[chunk:]
            if image.factory:
                body = body.rstrip(b"\xff")
            if body:
                out.append((image, body))
        return tuple(out)

    def identify(self, slot: bytes) -> AppImage | None:
        """Which known build's code the slot holds (observation only)."""
        chunk = self.geometry.chunk
        for image, body in self._bodies:
            if slot.startswith(body, chunk):  # slot[chunk : chunk + len(body)] == body
                return image
        return None


def get_world_scenario(world: World) -> Scenario:
    """The world's context as the environment knows it: the model types it as the narrower
    ``DeviceContext``; a world the environment steps carries a :class:`Scenario` (checked)."""
    scenario = world.scenario
    if not isinstance(scenario, Scenario):
        raise TypeError(f"the world's context is a {type(scenario).__name__}, not a Scenario")
    return scenario


def _key_pem(scalar: int) -> bytes:
    return signature.derive_private_key_pem(scalar)


def _sign(data: bytes, scalar: int) -> str:
    return signature.sign(data, _key_pem(scalar), deterministic=True)


def get_geometry(value: GeometryName | GeometrySpec) -> Geometry:
    """``small`` (256-byte pages, 4-page slot), ``real`` (4 KB pages, 0xDF000 slot) or a
    custom ``{page_size, row_size, slot_pages}``."""
    if value is GeometryName.SMALL:
        return SMALL_GEOMETRY
    if value is GeometryName.REAL:
        return REAL_GEOMETRY
    assert isinstance(value, GeometrySpec)
    return Geometry(page_size=value.page_size, row_size=value.row_size, slot_pages=value.slot_pages)


def build_scenario(
    spec: Mapping[str, Any], *, text: str | None = None, file: str | None = None
) -> Scenario:
    """ENV-2, SCN-1: build a scenario from its description (``docs/spec/scenarios.md``)."""
    parsed = structure_spec(spec, text=text, file=file)

    def fail(reason: str, *path: str | int) -> ScenarioError:
        return make_error(reason, path, text=text, file=file)

    cfg = parsed.config
    config = Config(
        autoreset=cfg.autoreset,
        auto_update=cfg.auto_update,
        periodic=cfg.periodic,
        interval=cfg.interval,
        num_imgs=cfg.num_imgs,
        secure_boot=cfg.secure_boot,
        patch=cfg.patch,
        tls=cfg.tls,
        enforce_tls=cfg.enforce_tls,
        scheduler=cfg.scheduler,
        tear_mode=cfg.tear_mode,
        variant=parsed.variant,
        json_max_size=cfg.json_max_size,
        defects=frozenset(parsed.defects),
    )
    geometry = get_geometry(parsed.geometry)
    # The application never reaches the slot's last page (the linker stops 4 KB short), so
    # images have at most ``slot_pages - 2`` pages after the boot-control placeholder. On the
    # real geometry the default builds are small (2 pages) so that a run stays short.
    max_pages = geometry.slot_pages - 2
    default_pages = max_pages if geometry.slot_pages <= 8 else 2
    body_pages = parsed.factory_pages if parsed.factory_pages is not None else default_pages
    if not 1 <= body_pages <= max_pages:
        raise fail(f"factory_pages must be 1..{max_pages}", "factory_pages")
    factory = make_image(geometry, parsed.factory_version, "factory", body_pages, factory=True)
    builder = _ReleaseBuilder(geometry, config, factory, body_pages, fail)
    releases = [builder.build(rel, index) for index, rel in enumerate(parsed.releases)]
    if not releases:
        empty = mf.make_manifest(
            version=parsed.factory_version, url=f"{SERVER}/none.bin", digest="0" * 64
        )
        releases.append(Release("nothing", empty, ()))
    if parsed.budget.freeze is not None:
        # SCN-17: the frozen server is one more "release" that answers nothing.
        frozen = mf.make_manifest(
            version=parsed.factory_version, url=f"{SERVER}/none.bin", digest="0" * 64
        )
        releases.append(Release("frozen", frozen, (), "the server answers nothing", True))
    budget = tuple(
        (kind, value)
        for kind in BUDGET_KINDS
        if (value := getattr(parsed.budget, kind)) is not None
    )
    key_scalar = TEST_KEY_SCALAR
    mitm_manifest, mitm_image = b"", None
    if parsed.budget.mitm is not None:
        mitm_manifest, mitm_image = _get_mitm_release(geometry, config, body_pages)
        builder.images.append(mitm_image)
    factory_sig = _sign(factory.data, key_scalar) if config.secure_boot else ""
    public = signature.public_key_pem(_key_pem(key_scalar)) if config.secure_boot else None
    return Scenario(
        name=parsed.name or "custom",
        config=config,
        geometry=geometry,
        factory=factory,
        images=tuple(builder.images),
        releases=tuple(releases),
        budget=budget,
        tears=parsed.tears,
        user_actions=tuple(a.value for a in parsed.user_actions),
        witnesses=tuple(w.value for w in parsed.witnesses)
        if parsed.witnesses is not None
        else None,
        fs_write_calls=parsed.fs_write_calls,
        description=parsed.description,
        public_key_pem=public,
        factory_signature=factory_sig,
        manifest_url=cfg.manifest_url if cfg.manifest_url is not None else MANIFEST_URL,  # SCN-7
        fs_options=parsed.fs,
        mitm_manifest=mitm_manifest,
        mitm_image=mitm_image,
        console_inputs=get_console_inputs(parsed.console),
        console_intervals=tuple(parsed.console.intervals),
        console_urls=tuple(parsed.console.urls),
        source=dict(spec),
    )


def get_console_inputs(console: ConsoleSpec) -> tuple[str, ...]:
    """SCN-34, SCN-35: the inputs listed, else the four of SCN-14/15 and those with values."""
    if console.inputs is not None:
        return tuple(item.value for item in console.inputs)
    out = [ConsoleInput.PERIODIC, ConsoleInput.AUTORESET, ConsoleInput.AUTOUPDATE]
    out.append(ConsoleInput.SET_PARAMS)
    if console.intervals:
        out.append(ConsoleInput.INTERVAL)
    if console.urls:
        out.append(ConsoleInput.URL)
    return tuple(item.value for item in out)


MITM_VERSION = 200


def _get_mitm_release(geometry: Geometry, config: Config, pages: int) -> tuple[bytes, AppImage]:
    """SCN-16: the man in the middle's build and a self-consistent manifest for it (its true
    digest; in secure builds a signature by his own key)."""
    image = make_image(geometry, MITM_VERSION, "mitm", pages)
    extra: dict[str, Any] = {}
    if config.secure_boot:
        extra["signature"] = _sign(image.data, OTHER_KEY_SCALAR)
    manifest = mf.make_manifest(
        version=MITM_VERSION, url=f"{SERVER}/mitm.bin", digest=image.digest.hex(), **extra
    )
    return manifest, image


class _ReleaseBuilder:
    """ENV-2, SCN-5: the images and manifests of the releases, in order."""

    def __init__(
        self,
        geometry: Geometry,
        config: Config,
        factory: AppImage,
        factory_pages: int,
        fail: Any,
    ) -> None:
        self.geometry = geometry
        self.config = config
        self.factory = factory
        self.factory_pages = factory_pages
        self.fail = fail
        self.by_version: dict[int, AppImage] = {}
        self.images: list[AppImage] = []

    def get_image(self, rel: ReleaseSpec, index: int, label: str) -> AppImage:
        if rel.relabel_of is not None:
            # SCN-5: an earlier build (and its valid signature) served under a new Version.
            if rel.relabel_of == self.factory.version and rel.relabel_of not in self.by_version:
                return self.factory
            return self.by_version[rel.relabel_of]
        pages = rel.pages if rel.pages is not None else self.factory_pages
        if not 1 <= pages <= self.geometry.slot_pages:
            raise self.fail(
                f"pages must be 1..{self.geometry.slot_pages}", "releases", index, "pages"
            )
        known = self.by_version.get(rel.version)
        if known is not None and rel.build is None and rel.size is None and rel.pages is None:
            return known
        image = make_image(self.geometry, rel.version, label, pages)
        if rel.size is not None:
            image = attrs.evolve(image, data=image.data[: rel.size])
        self.by_version.setdefault(rel.version, image)
        if image not in self.images:
            self.images.append(image)
        return image

    def get_url(self, rel: ReleaseSpec, index: int, label: str) -> str:
        if rel.url is not None:
            return rel.url
        url = f"{SERVER}/{label}.bin"
        if rel.url_length is not None:
            pad = rel.url_length - len(url) - 1
            if pad < 1:
                raise self.fail(
                    f"url_length must be > {len(url) + 1}", "releases", index, "url_length"
                )
            url = f"{SERVER}/{'d' * pad}/{label}.bin"
        return url

    def build(self, rel: ReleaseSpec, index: int) -> Release:
        version = rel.version
        default_label = f"app_v{version}" if rel.build is None else f"app_v{version}_{rel.build}"
        label = rel.label if rel.label is not None else default_label
        image = self.get_image(rel, index, label)
        if rel.crashes and not image.crashes:
            # ENV-31: this build fails at start-up, before validation, at every boot.
            image = attrs.evolve(image, crashes=True)
            self.by_version[rel.version] = image
            self.images = [image if i.data == image.data else i for i in self.images]
        url = self.get_url(rel, index, label)
        digest = image.digest.hex()
        if rel.digest is DigestMode.WRONG:
            digest = "00" * 32
        elif rel.digest is DigestMode.UPPER:
            digest = digest.upper()
        extra: dict[str, Any] = {}
        sig_mode = rel.signature or (
            SignatureMode.VALID if self.config.secure_boot else SignatureMode.NONE
        )
        if sig_mode is SignatureMode.VALID:
            extra["signature"] = _sign(image.data, TEST_KEY_SCALAR)
        elif sig_mode is SignatureMode.OTHER_KEY:
            extra["signature"] = _sign(image.data, OTHER_KEY_SCALAR)
        elif sig_mode is SignatureMode.GARBAGE:
            extra["signature"] = base64.b64encode(b"\x01" * 64).decode()
        files: list[tuple[str, bytes]] = [(url, image.data)]
        if rel.kind is ReleaseKind.ERASE:
            erase_version = rel.erase_version if rel.erase_version is not None else version
            manifest = mf.make_manifest(
                version=erase_version,
                url=url,
                digest=digest,
                erase_ver=True,
                **self.get_erase_signature(rel, erase_version),
            )
            manifest = self.pad(manifest, rel, index)
            return Release(f"erase v{erase_version}", manifest, (), rel.description)
        patches: list[dict[str, Any]] = []
        if rel.kind is ReleaseKind.PATCH:
            patches.append(self.get_patch(rel, index, image, label, digest, files))
        if rel.erase_ver is not None:
            extra["erase_ver"] = rel.erase_ver
        claimed = rel.claimed_version if rel.claimed_version is not None else version
        manifest = mf.make_manifest(
            version=claimed, url=url, digest=digest, patches=tuple(patches), **extra
        )
        manifest = self.pad(manifest, rel, index)
        return Release(f"{rel.kind.value} v{version}", manifest, tuple(files), rel.description)

    def get_erase_signature(self, rel: ReleaseSpec, version: int) -> dict[str, Any]:
        """HARD-15: in secure builds an EraseVer manifest carries a Signature over the erase
        statement: by the publisher's key, or (``signature = "other-key"`` or an attacker's
        release) by another key; ``garbage`` and ``none`` as for images."""
        if not self.config.secure_boot:
            return {}
        default = SignatureMode.OTHER_KEY if rel.origin is Origin.ATTACKER else SignatureMode.VALID
        mode = rel.signature or default
        statement = get_erase_statement(version)
        if mode is SignatureMode.VALID:
            return {"signature": _sign(statement, TEST_KEY_SCALAR)}
        if mode is SignatureMode.OTHER_KEY:
            return {"signature": _sign(statement, OTHER_KEY_SCALAR)}
        if mode is SignatureMode.GARBAGE:
            return {"signature": base64.b64encode(b"\x01" * 64).decode()}
        return {}

    def get_patch(
        self,
        rel: ReleaseSpec,
        index: int,
        image: AppImage,
        label: str,
        digest: str,
        files: list[tuple[str, bytes]],
    ) -> dict[str, Any]:
        base_version = rel.base_version if rel.base_version is not None else self.factory.version
        base = self.by_version.get(
            base_version, self.factory if base_version == self.factory.version else None
        )
        if base is None:
            raise self.fail(
                f"no image with version {base_version} before this release",
                "releases",
                index,
                "base_version",
            )
        patch = jdiff.encode(base.data, image.data)
        patch_url = rel.patch_url if rel.patch_url is not None else f"{SERVER}/{label}.patch"
        files.append((patch_url, patch))
        wrong = rel.base_digest is DigestMode.WRONG
        return {
            "BaseVersion": rel.claimed_base_version
            if rel.claimed_base_version is not None
            else base_version,
            "BaseVerDigest": "11" * 32
            if wrong
            else base.digest.hex().upper()
            if rel.base_digest is DigestMode.UPPER
            else base.digest.hex(),
            "PatchDigest": hashlib.sha256(patch).hexdigest(),
            "PatchURL": patch_url,
            "TargetDigest": digest,
        }

    def pad(self, manifest: bytes, rel: ReleaseSpec, index: int) -> bytes:
        if rel.manifest_size is None:
            return manifest
        if rel.manifest_size < len(manifest):
            raise self.fail(
                f"manifest_size must be >= {len(manifest)} (the manifest's own size)",
                "releases",
                index,
                "manifest_size",
            )
        return manifest.ljust(rel.manifest_size, b" ")


def load_scenario_text(text: str, file: str, name: str) -> Scenario:
    """SCN-1: parse a TOML or JSON description (by the file's suffix) and build it; errors
    name the file, the line and column, and the key."""
    try:
        spec = json.loads(text) if file.endswith(".json") else tomllib.loads(text)
    except ValueError as exc:
        raise ScenarioError(str(exc), where=file) from None
    if not isinstance(spec, dict):
        raise ScenarioError("a scenario is a table/object", where=file)
    spec.setdefault("name", name)
    return build_scenario(spec, text=text, file=file)


def load_scenario_file(path: str | Path) -> Scenario:
    """Load a TOML or JSON scenario description within the file bounds in force (BOUND-5,
    BOUND-6: size and nesting depth); the strict loader then names any bad key (SCN-1)."""
    from otamodel._limits import get_limits, read_document

    p = Path(path)
    read_document(p, ScenarioError, suffix=".json" if p.suffix == ".json" else ".toml")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read {p}: {exc.strerror}") from None
    if len(data) > get_limits().max_document_bytes:  # the file grew since it was checked
        raise ScenarioError(f"larger than {get_limits().max_document_bytes} bytes", where=str(p))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text at byte offset {exc.start}", where=str(p)) from None
    return load_scenario_text(text, str(p), p.stem)


#: SCN-20: rough growth of the state space per unit of each budget (measured on the library).
GROWTH: dict[str, int] = {
    "power_cut": 8,
    "reset": 8,
    "tamper": 6,
    "ctrl": 4,
    "console": 4,
}
LARGE_ESTIMATE = 5_000_000


def get_state_estimate(scenario: Scenario) -> int:
    """SCN-20: a rough order of magnitude of a scenario's state count (for warnings only)."""
    estimate = 2000 * max(1, len(scenario.releases))
    for kind, units in scenario.budget:
        factor = GROWTH.get(kind, max(2, len(scenario.releases)) if kind == "publish" else 3)
        estimate *= factor ** min(units, 40)
    return estimate
