"""Scenarios: the product build, the server's releases, and the fault budgets.

A scenario is described as data (a dict, TOML or JSON) and built into concrete bytes:
images, SHA-256 digests, ECDSA signatures, jdiff patches and manifests in the real formats.
"""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import attrs

from otamodel.env._transport import ReleaseServer, Transport
from otamodel.errors import ScenarioError
from otamodel.formats import jdiff, signature
from otamodel.formats import manifest as mf
from otamodel.model import BUDGET_KINDS as ACTION_BUDGETS
from otamodel.model import (
    REAL_GEOMETRY,
    SMALL_GEOMETRY,
    AppImage,
    Config,
    Defect,
    Geometry,
    Reply,
    Scheduler,
    TearMode,
    Variant,
    make_image,
)

SERVER = "http://127.0.0.1:8000"
MANIFEST_URL = f"{SERVER}/ota.json"
TEST_KEY_SCALAR = 0x6F74616D6F64656C2D746573742D6B6579  # "otamodel-test-key"
OTHER_KEY_SCALAR = 0x61747461636B6572  # "attacker"

BUDGET_KINDS = ACTION_BUDGETS  # from ActionKind's metadata (otamodel.model._action)


@attrs.frozen
class Release:
    """What the server publishes at one time: a manifest and the files it names."""

    name: str
    manifest: bytes = attrs.field(repr=False)
    files: tuple[tuple[str, bytes], ...] = attrs.field(repr=False)
    description: str = ""

    def get_file(self, url: str) -> bytes | None:
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
    source: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    transport: Transport | None = attrs.field(default=None, repr=False)

    @property
    def release_count(self) -> int:
        return len(self.releases)

    def serve(self, release: int, url: str) -> bytes | Reply | None:
        """ENV-1: the server answers 200 with the file, or an error status (None), through
        the scenario's transport (ENV-5; the in-memory server by default)."""
        transport = self.transport if self.transport is not None else ReleaseServer(self.releases)
        return transport.get(release, url)

    @cached_property
    def _known(self) -> tuple[AppImage, ...]:
        return tuple(sorted((self.factory, *self.images), key=lambda i: -len(i.data)))

    def identify(self, slot: bytes) -> AppImage | None:
        """Which known build's code the slot holds (observation only)."""
        chunk = self.geometry.chunk
        for image in self._known:
            body = image.data[chunk:]
            if image.factory:
                body = body.rstrip(b"\xff")
            if slot[chunk : chunk + len(body)] == body:
                return image
        return None


def _key_pem(scalar: int) -> bytes:
    return signature.derive_private_key_pem(scalar)


def _sign(data: bytes, scalar: int) -> str:
    return signature.sign(data, _key_pem(scalar), deterministic=True)


def _as_bool(spec: Mapping[str, Any], key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise ScenarioError(f"{key} must be true or false", where=key)
    return value


def _as_int(spec: Mapping[str, Any], key: str, default: int, where: str) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{key} must be an integer", where=f"{where}.{key}")
    return value


def get_geometry(geo: Any) -> Geometry:
    """``"small"`` (256-byte pages, 4-page slot), ``"real"`` (4 KB pages, 0xDF000 slot) or a
    table ``{page_size, row_size, slot_pages}``."""
    if geo == "small":
        return SMALL_GEOMETRY
    if geo == "real":
        return REAL_GEOMETRY
    if not isinstance(geo, Mapping):
        raise ScenarioError("geometry is 'small', 'real' or a table", where="geometry")
    geometry = Geometry(
        page_size=_as_int(geo, "page_size", 256, "geometry"),
        row_size=_as_int(geo, "row_size", 128, "geometry"),
        slot_pages=_as_int(geo, "slot_pages", 4, "geometry"),
    )
    if geometry.page_size < 256 or geometry.page_size % geometry.row_size or geometry.row_size < 8:
        raise ScenarioError(
            "page_size must be >= 256 (the header) and a multiple of row_size (>= 8)",
            where="geometry",
        )
    if geometry.slot_pages < 3:
        raise ScenarioError("slot_pages must be >= 3", where="geometry.slot_pages")
    return geometry


def build_scenario(spec: Mapping[str, Any]) -> Scenario:
    """ENV-2: build a scenario from its description (``docs/spec/properties.md``)."""
    if not isinstance(spec, Mapping):
        raise ScenarioError("a scenario is a table/object")
    name = str(spec.get("name", "custom"))
    cfg_spec = spec.get("config", {})
    if not isinstance(cfg_spec, Mapping):
        raise ScenarioError("config must be a table", where="config")
    try:
        variant = Variant.from_name(str(spec.get("variant", Variant.V3_9_1.value)))
        config = Config(
            autoreset=_as_bool(cfg_spec, "autoreset", True),
            auto_update=_as_bool(cfg_spec, "auto_update", True),
            periodic=_as_bool(cfg_spec, "periodic", True),
            interval=_as_int(cfg_spec, "interval", 60, "config"),
            num_imgs=_as_int(cfg_spec, "num_imgs", 2, "config"),
            secure_boot=_as_bool(cfg_spec, "secure_boot", False),
            patch=_as_bool(cfg_spec, "patch", False),
            scheduler=Scheduler(str(cfg_spec.get("scheduler", "freertos"))),
            tear_mode=TearMode(str(cfg_spec.get("tear_mode", "word"))),
            variant=variant,
            defects=_get_defects(spec),
        )
    except ValueError as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise ScenarioError(str(exc), where="config") from None
    geometry = get_geometry(spec.get("geometry", "small"))
    # The application never reaches the slot's last page (the linker stops 4 KB short), so
    # images have at most ``slot_pages - 2`` pages after the boot-control placeholder. On the
    # real geometry the default builds are small (2 pages) so that a run stays short.
    max_pages = geometry.slot_pages - 2
    default_pages = max_pages if geometry.slot_pages <= 8 else 2
    body_pages = _as_int(spec, "factory_pages", default_pages, name)
    if not 1 <= body_pages <= max_pages:
        raise ScenarioError(f"factory_pages must be 1..{max_pages}", where="factory_pages")
    factory_version = _as_int(spec, "factory_version", 1, name)
    factory = make_image(geometry, factory_version, "factory", body_pages, factory=True)
    images: dict[int, AppImage] = {}
    releases: list[Release] = []
    rel_specs = spec.get("releases", [])
    if not isinstance(rel_specs, list):
        raise ScenarioError("releases must be a list", where="releases")
    key_scalar = TEST_KEY_SCALAR
    for index, rel in enumerate(rel_specs):
        releases.append(
            _build_release(rel, index, geometry, config, images, factory, key_scalar, body_pages)
        )
    if not releases:
        empty = mf.make_manifest(version=factory_version, url=f"{SERVER}/none.bin", digest="0" * 64)
        releases.append(Release("nothing", empty, ()))
    budget_spec = spec.get("budget", {})
    if not isinstance(budget_spec, Mapping):
        raise ScenarioError("budget must be a table", where="budget")
    for key in budget_spec:
        if key not in BUDGET_KINDS:
            raise ScenarioError(
                f"unknown budget {key!r} (known: {', '.join(BUDGET_KINDS)})", where="budget"
            )
    budget = tuple(
        (k, _as_int(budget_spec, k, 0, "budget")) for k in BUDGET_KINDS if k in budget_spec
    )
    user = spec.get("user_actions", [])
    if not isinstance(user, list):
        raise ScenarioError("user_actions must be a list", where="user_actions")
    factory_sig = _sign(factory.data, key_scalar) if config.secure_boot else ""
    public = signature.public_key_pem(_key_pem(key_scalar)) if config.secure_boot else None
    return Scenario(
        name=name,
        config=config,
        geometry=geometry,
        factory=factory,
        images=tuple(images.values()),
        releases=tuple(releases),
        budget=budget,
        tears=_as_bool(spec, "tears", True),
        user_actions=tuple(str(u) for u in user),
        witnesses=_get_witnesses(spec),
        fs_write_calls=_as_bool(spec, "fs_write_calls", False),
        description=str(spec.get("description", "")),
        public_key_pem=public,
        factory_signature=factory_sig,
        source=dict(spec),
    )


def _build_release(
    rel: Any,
    index: int,
    geometry: Geometry,
    config: Config,
    images: dict[int, AppImage],
    factory: AppImage,
    key_scalar: int,
    factory_pages: int,
) -> Release:
    where = f"releases[{index}]"
    if not isinstance(rel, Mapping):
        raise ScenarioError("a release is a table", where=where)
    version = _as_int(rel, "version", 2, where)
    kind = str(rel.get("kind", "full"))
    label = str(rel.get("label", f"app_v{version}"))
    pages = _as_int(rel, "pages", factory_pages, where)
    if not 1 <= pages <= geometry.slot_pages - 2:
        raise ScenarioError(f"pages must be 1..{geometry.slot_pages - 2}", where=f"{where}.pages")
    image = images.get(version) or make_image(geometry, version & 0xFF, label, pages)
    if _as_bool(rel, "crashes", False) and not image.crashes:
        # ENV-31: this build fails at start-up, before validation, at every boot.
        image = attrs.evolve(image, crashes=True)
        images[version] = image
    images.setdefault(version, image)
    if rel.get("origin", "publisher") not in ("publisher", "attacker"):
        raise ScenarioError("origin is 'publisher' or 'attacker'", where=f"{where}.origin")
    url = str(rel.get("url", f"{SERVER}/{label}.bin"))
    digest = image.digest.hex()
    files: list[tuple[str, bytes]] = [(url, image.data)]
    if rel.get("digest") == "wrong":
        digest = "00" * 32
    if rel.get("digest") == "upper":
        digest = digest.upper()
    extra: dict[str, Any] = {}
    sig_mode = rel.get("signature", "valid" if config.secure_boot else "none")
    if sig_mode == "valid":
        extra["signature"] = _sign(image.data, key_scalar)
    elif sig_mode == "other-key":
        extra["signature"] = _sign(image.data, OTHER_KEY_SCALAR)
    elif sig_mode == "garbage":
        extra["signature"] = base64.b64encode(b"\x01" * 64).decode()
    elif sig_mode != "none":
        raise ScenarioError(f"unknown signature mode {sig_mode!r}", where=f"{where}.signature")
    if kind == "erase":
        erase_version = _as_int(rel, "erase_version", version, where)
        manifest = mf.make_manifest(version=erase_version, url=url, digest=digest, erase_ver=True)
        return Release(f"erase v{erase_version}", manifest, (), str(rel.get("description", "")))
    patches: list[dict[str, Any]] = []
    if kind == "patch":
        base_version = _as_int(rel, "base_version", factory.version, where)
        base = images.get(base_version, factory if base_version == factory.version else None)
        if base is None:
            raise ScenarioError(
                f"no image with version {base_version} before this release", where=where
            )
        base_data = base.data
        patch = jdiff.encode(base_data, image.data)
        patch_url = str(rel.get("patch_url", f"{SERVER}/{label}.patch"))
        files.append((patch_url, patch))
        base_digest = base.digest.hex() if rel.get("base_digest") != "wrong" else "11" * 32
        patches.append(
            {
                "BaseVersion": _as_int(rel, "claimed_base_version", base_version, where),
                "BaseVerDigest": base_digest,
                "PatchDigest": __import__("hashlib").sha256(patch).hexdigest(),
                "PatchURL": patch_url,
                "TargetDigest": digest,
            }
        )
    elif kind != "full":
        raise ScenarioError(
            f"unknown release kind {kind!r} (full, patch, erase)", where=f"{where}.kind"
        )
    if "erase_ver" in rel:
        extra["erase_ver"] = rel["erase_ver"]
    manifest = mf.make_manifest(
        version=_as_int(rel, "claimed_version", version, where),
        url=url,
        digest=digest,
        patches=tuple(patches),
        **extra,
    )
    return Release(f"{kind} v{version}", manifest, tuple(files), str(rel.get("description", "")))


def _get_defects(spec: Mapping[str, Any]) -> frozenset[Defect]:
    """PROP-45: ``defects = ["name", ...]`` plants self-test defects (unknown names refused)."""
    value = spec.get("defects", [])
    if not isinstance(value, list):
        raise ScenarioError("defects must be a list of names", where="defects")
    known = {d.value: d for d in Defect}
    for name in value:
        if name not in known:
            raise ScenarioError(
                f"unknown defect {name!r} (known: {', '.join(known)})", where="defects"
            )
    return frozenset(known[name] for name in value)


def _get_witnesses(spec: Mapping[str, Any]) -> tuple[str, ...] | None:
    known = ("full-update", "patch-update", "rollback", "factory-restore")
    value = spec.get("witnesses")
    if value is None:
        return None
    if not isinstance(value, list) or any(v not in known for v in value):
        raise ScenarioError(f"witnesses must be a list of {', '.join(known)}", where="witnesses")
    return tuple(value)


def load_scenario_file(path: str | Path) -> Scenario:
    """Load a TOML or JSON scenario description."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read {p}: {exc.strerror}") from None
    try:
        spec = json.loads(text) if p.suffix == ".json" else tomllib.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{p}: {exc}") from None
    spec.setdefault("name", p.stem)
    return build_scenario(spec)
