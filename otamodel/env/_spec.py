"""The scenario file format: attrs records structured strictly by cattrs (SCN-1..SCN-4).

Every key a scenario file may hold is a field of one of the records below, with its type and
range. Structuring forbids unknown keys, converts nothing silently (``"5"`` is not an integer,
``1`` is not a boolean) and checks ranges with the hooks of the range types; an error names the
key path and, for a file, the line and column. The JSON Schema shipped in
``otamodel/scenarios/scenario.schema.json`` is generated from the same records
(:mod:`otamodel.env._schema`).
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Mapping
from typing import Any, NewType

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from otamodel.env._locate import PathItem, locate
from otamodel.errors import ScenarioError
from otamodel.model import Defect, Scheduler, TearMode, Variant
from otamodel.model._device import CTRL_MESSAGES

# ---------------------------------------------------------------------------- value types

Byte = NewType("Byte", int)
Count = NewType("Count", int)
NumImgs = NewType("NumImgs", int)
Interval = NewType("Interval", int)
ConsoleInterval = NewType("ConsoleInterval", int)
JsonSize = NewType("JsonSize", int)
ManifestVersion = NewType("ManifestVersion", int)
Positive = NewType("Positive", int)

#: SCN-2: the range of every integer type (inclusive; None: unbounded).
RANGES: dict[Any, tuple[int, int | None]] = {
    Byte: (0, 255),
    Count: (0, None),
    NumImgs: (0, 5),
    Interval: (0, 7200),
    ConsoleInterval: (0, 2**32 - 1),
    JsonSize: (0, 2000),
    ManifestVersion: (0, 2**31 - 1),
    Positive: (1, None),
}


class GeometryName(enum.Enum):
    SMALL = "small"
    REAL = "real"


class ReleaseKind(enum.Enum):
    FULL = "full"
    PATCH = "patch"
    ERASE = "erase"


class DigestMode(enum.Enum):
    RIGHT = "right"
    WRONG = "wrong"
    UPPER = "upper"


class SignatureMode(enum.Enum):
    VALID = "valid"
    OTHER_KEY = "other-key"
    GARBAGE = "garbage"
    NONE = "none"


class Witness(enum.Enum):
    FULL_UPDATE = "full-update"
    PATCH_UPDATE = "patch-update"
    ROLLBACK = "rollback"
    FACTORY_RESTORE = "factory-restore"


CtrlMessage = enum.Enum(  # type: ignore[misc]
    "CtrlMessage", {name.upper(): name for name in CTRL_MESSAGES}
)


class Origin(enum.Enum):
    PUBLISHER = "publisher"
    ATTACKER = "attacker"


class Durability(enum.Enum):
    """SCN-30: when the data of an FS write reaches the medium."""

    WRITE = "write"  # at each write call (today's model)
    CLOSE = "close"  # only when the handle is closed (a cut before close loses the writes)


class ConsoleInput(enum.Enum):
    """SCN-14, SCN-15, SCN-34, SCN-35: the console commands and app calls a scenario offers."""

    PERIODIC = "periodic"
    AUTORESET = "autoreset"
    AUTOUPDATE = "autoupdate"
    SET_PARAMS = "set_params"
    INTERVAL = "interval"
    URL = "url"


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


# ---------------------------------------------------------------------------- records


@attrs.frozen(kw_only=True)
class GeometrySpec:
    """A custom flash geometry."""

    page_size: Positive = attrs.field(
        default=Positive(256),
        metadata=_doc("page (and chunk) size in bytes, >= 256, a multiple of row_size"),
    )
    row_size: Positive = attrs.field(
        default=Positive(128), metadata=_doc("row-program size in bytes, >= 8")
    )
    slot_pages: Positive = attrs.field(
        default=Positive(4), metadata=_doc("pages of the slot incl. the boot-control page, >= 3")
    )


GeometryValue = GeometryName | GeometrySpec


@attrs.frozen(kw_only=True)
class ConfigSpec:
    """The MCC options of the product build (research note §6)."""

    autoreset: bool = attrs.field(default=True, metadata=_doc("SYS_OTA_AUTORESET_ENABLE"))
    auto_update: bool = attrs.field(default=True, metadata=_doc("SYS_OTA_AUTOUPDATE_ENABLE"))
    periodic: bool = attrs.field(default=True, metadata=_doc("SYS_OTA_PERODIC_UPDATE"))
    interval: Interval = attrs.field(
        default=Interval(60),
        metadata=_doc(
            "SYS_OTA_TIME_INTERVAL, seconds (0..7200); read at each RTCC arming (SVC-42), "
            "the alarm itself is the timer input"
        ),
    )
    num_imgs: NumImgs = attrs.field(default=NumImgs(2), metadata=_doc("SYS_OTA_NUM_IMGS (0..5)"))
    secure_boot: bool = attrs.field(
        default=False, metadata=_doc("SYS_OTA_SECURE_BOOT_ENABLED (app and bootloader)")
    )
    patch: bool = attrs.field(default=False, metadata=_doc("SYS_OTA_PATCH_ENABLE"))
    enforce_tls: bool = attrs.field(
        default=False, metadata=_doc("SYS_OTA_ENFORCE_TLS: only https: URLs are opened")
    )
    tls: bool = attrs.field(default=False, metadata=_doc("SYS_OTA_HTTP_SECURE (TLS compiled in)"))
    scheduler: Scheduler = attrs.field(
        default=Scheduler.FREERTOS, metadata=_doc("the RTOS choice: freertos or bare-metal")
    )
    tear_mode: TearMode = attrs.field(
        default=TearMode.WORD, metadata=_doc("what a torn row program leaves: word or bits")
    )
    json_max_size: JsonSize = attrs.field(
        default=JsonSize(2000),
        metadata=_doc("SYS_OTA_JSON_FILE_MAXSIZE (0..2000); reads stop 10 bytes short"),
    )
    manifest_url: str | None = attrs.field(
        default=None,
        metadata=_doc("SYS_OTA_URL, the manifest URL (default http://127.0.0.1:8000/ota.json)"),
    )


@attrs.frozen(kw_only=True)
class ReleaseSpec:
    """One release the server may publish: an image build and its manifest."""

    version: Byte = attrs.field(
        default=Byte(2), metadata=_doc("the compiled-in version of the image (0..255)")
    )
    kind: ReleaseKind = attrs.field(default=ReleaseKind.FULL, metadata=_doc("full, patch or erase"))
    label: str | None = attrs.field(
        default=None, metadata=_doc("the build's label and file base name (default app_v<version>)")
    )
    build: str | None = attrs.field(
        default=None, metadata=_doc("a build tag: a different build with the same version")
    )
    pages: Positive | None = attrs.field(
        default=None,
        metadata=_doc("image pages after the placeholder; up to slot_pages (larger than the slot)"),
    )
    size: Positive | None = attrs.field(
        default=None, metadata=_doc("cut the .bin to this many bytes (e.g. smaller than one chunk)")
    )
    relabel_of: Byte | None = attrs.field(
        default=None,
        metadata=_doc(
            "serve the (signed) image of this earlier version under this release's version"
        ),
    )
    url: str | None = attrs.field(
        default=None, metadata=_doc("the image URL (default <server>/<label>.bin)")
    )
    url_length: Positive | None = attrs.field(
        default=None, metadata=_doc("pad the default URL's directory to this total length")
    )
    digest: DigestMode = attrs.field(
        default=DigestMode.RIGHT, metadata=_doc("right, wrong or upper (upper-case hex)")
    )
    signature: SignatureMode | None = attrs.field(
        default=None,
        metadata=_doc("valid, other-key, garbage or none (default: valid in secure builds)"),
    )
    claimed_version: ManifestVersion | None = attrs.field(
        default=None, metadata=_doc("the manifest Version when it differs from the compiled one")
    )
    erase_version: ManifestVersion | None = attrs.field(
        default=None, metadata=_doc("kind erase: the Version to erase")
    )
    erase_ver: bool | None = attrs.field(
        default=None, metadata=_doc("an explicit EraseVer value on a full/patch release")
    )
    base_version: Byte | None = attrs.field(
        default=None, metadata=_doc("kind patch: the version of the patch base")
    )
    claimed_base_version: ManifestVersion | None = attrs.field(
        default=None, metadata=_doc("kind patch: the BaseVersion the manifest claims")
    )
    base_digest: DigestMode = attrs.field(
        default=DigestMode.RIGHT,
        metadata=_doc("kind patch: right, wrong or upper (upper-case hex) BaseVerDigest"),
    )
    patch_url: str | None = attrs.field(default=None, metadata=_doc("kind patch: the PatchURL"))
    crashes: bool = attrs.field(
        default=False,
        metadata=_doc("ENV-31: the build fails at start-up, before validation, at every boot"),
    )
    origin: Origin | None = attrs.field(
        default=None,
        metadata=_doc("ENV-30: publisher or attacker (default: by its signature)"),
    )
    manifest_size: Positive | None = attrs.field(
        default=None, metadata=_doc("pad the manifest with spaces to this many bytes")
    )
    description: str = attrs.field(default="", metadata=_doc("one line for reports"))


@attrs.frozen(kw_only=True)
class BudgetSpec:
    """How often each input may happen (absent: never offered)."""

    power_cut: Count | None = attrs.field(
        default=None, metadata=_doc("power cuts (between or tearing persistent operations)")
    )
    transfer_fail: Count | None = attrs.field(
        default=None, metadata=_doc("failed reads of an open transfer")
    )
    corrupt: Count | None = attrs.field(
        default=None, metadata=_doc("a flipped byte in a downloaded chunk")
    )
    truncate: Count | None = attrs.field(
        default=None,
        metadata=_doc("ENV-8: the image's Content-Length ends one byte into the next chunk"),
    )
    publish: Count | None = attrs.field(
        default=None, metadata=_doc("the server switches to another release")
    )
    ctrl: Count | None = attrs.field(
        default=None, metadata=_doc("control messages other than update_check")
    )
    crash: Count | None = attrs.field(
        default=None, metadata=_doc("an app crash before boot validation")
    )
    reset: Count | None = attrs.field(default=None, metadata=_doc("a reset between operations"))
    factory_sign: Count | None = attrs.field(
        default=None, metadata=_doc("`sysota set factory sign` (secure builds)")
    )
    net_down: Count | None = attrs.field(default=None, metadata=_doc("the network goes down"))
    tamper: Count | None = attrs.field(
        default=None,
        metadata=_doc("flip a bit in a file on external flash or a byte of internal flash"),
    )
    console: Count | None = attrs.field(
        default=None, metadata=_doc("`sysota set` console commands and SYS_OTA_SET_PARAMETERS")
    )
    mitm: Count | None = attrs.field(
        default=None, metadata=_doc("a man in the middle substitutes a manifest or an image body")
    )
    freeze: Count | None = attrs.field(
        default=None,
        metadata=_doc("the server freezes (answers nothing) or replays an older release"),
    )


@attrs.frozen(kw_only=True)
class FsSpec:
    """File-system semantics of the external flash (research note §11: unverified, switches)."""

    durability: Durability = attrs.field(
        default=Durability.WRITE,
        metadata=_doc("write: data durable at each write; close: only at close"),
    )
    max_open: Count | None = attrs.field(
        default=None, metadata=_doc("a limit on open file handles (absent: none)")
    )
    mount_fails_damaged: bool = attrs.field(
        default=False,
        metadata=_doc("a mount fails (and is retried forever) on a volume whose format was torn"),
    )
    preload: list[str] = attrs.field(
        factory=list,
        metadata=_doc(
            "files present on the volume at first boot (names under ota/, empty content)"
        ),
    )


@attrs.frozen(kw_only=True)
class ConsoleSpec:
    """What the operator may type at the console (spent from budget.console)."""

    intervals: list[ConsoleInterval] = attrs.field(
        factory=list,
        metadata=_doc("SCN-34: values for `sysota set interval` (seconds, 0..4294967295)"),
    )
    urls: list[str] = attrs.field(
        factory=list, metadata=_doc("SCN-35: manifest URLs for `sysota set url`")
    )
    inputs: list[ConsoleInput] | None = attrs.field(
        default=None,
        metadata=_doc(
            "the console inputs offered (default: periodic, autoreset, autoupdate, set_params, "
            "and interval / url when values are listed)"
        ),
    )


@attrs.frozen(kw_only=True)
class ScenarioSpec:
    """A scenario file."""

    name: str | None = attrs.field(
        default=None, metadata=_doc("the scenario's name (default: the file's stem)")
    )
    description: str = attrs.field(default="", metadata=_doc("what the scenario shows"))
    variant: Variant = attrs.field(
        default=Variant.V3_9_1, metadata=_doc("harmony-3.9.1, harmony-3.9.0 or hardened")
    )
    geometry: GeometryValue = attrs.field(
        default=GeometryName.SMALL, metadata=_doc("small, real or a table")
    )
    factory_pages: Positive | None = attrs.field(
        default=None, metadata=_doc("pages of the factory build after the placeholder")
    )
    factory_version: Byte = attrs.field(
        default=Byte(1), metadata=_doc("the factory image's SYS_OTA_APP_VER_NUM (0..255)")
    )
    config: ConfigSpec = attrs.field(factory=ConfigSpec, metadata=_doc("MCC options"))
    fs: FsSpec = attrs.field(factory=FsSpec, metadata=_doc("file-system semantics"))
    releases: list[ReleaseSpec] = attrs.field(
        factory=list, metadata=_doc("what the server may publish")
    )
    budget: BudgetSpec = attrs.field(factory=BudgetSpec, metadata=_doc("input budgets"))
    console: ConsoleSpec = attrs.field(
        factory=ConsoleSpec, metadata=_doc("what the console may set (SCN-34, SCN-35)")
    )
    user_actions: list[CtrlMessage] = attrs.field(
        factory=list, metadata=_doc("control messages the user may send")
    )
    witnesses: list[Witness] | None = attrs.field(
        default=None, metadata=_doc("the sometimes-properties this scenario must witness")
    )
    tears: bool = attrs.field(
        default=True, metadata=_doc("allow power cuts that tear an operation")
    )
    fs_write_calls: bool = attrs.field(
        default=False, metadata=_doc("one persistent write per csv_save call")
    )
    defects: list[Defect] = attrs.field(
        factory=list, metadata=_doc("PROP-45: planted self-test defects (by name)")
    )


BUDGET_KINDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(BudgetSpec))

# ---------------------------------------------------------------------------- converter


def _strict(kind: type, label: str) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _: Any) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"must be {label}, not a boolean")
        if not isinstance(value, kind):
            raise TypeError(f"must be {label}, not {type(value).__name__} {value!r}")
        return value

    return hook


def _ranged(kind: Any) -> Callable[[Any, Any], int]:
    low, high = RANGES[kind]
    check = _strict(int, "an integer")

    def hook(value: Any, _: Any) -> int:
        number = int(check(value, int))
        if number < low or (high is not None and number > high):
            span = f"{low}..{high}" if high is not None else f">= {low}"
            raise ValueError(f"{number} is out of range ({span})")
        return number

    return hook


def _enum_hook(value: Any, kind: type[enum.Enum]) -> enum.Enum:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {type(value).__name__} {value!r}")
    for member in kind:
        if value in (member.value, member.name):
            return member
    known = ", ".join(str(m.value) for m in kind)
    raise ValueError(f"unknown value {value!r} (known: {known})")


def _geometry_hook(value: Any, _: Any) -> GeometryName | GeometrySpec:
    if isinstance(value, Mapping):
        return CONVERTER.structure(value, GeometrySpec)
    if isinstance(value, str):
        return typing.cast(GeometryName, _enum_hook(value, GeometryName))
    raise TypeError("must be 'small', 'real' or a table")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(str, _strict(str, "a string"))
    for kind in RANGES:
        conv.register_structure_hook(kind, _ranged(kind))
    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _enum_hook
    )
    conv.register_structure_hook_func(lambda t: t == GeometryValue, _geometry_hook)
    return conv


CONVERTER = _make_converter()

# ---------------------------------------------------------------------------- errors


def _first_error(
    exc: BaseException, path: tuple[PathItem, ...]
) -> tuple[tuple[PathItem, ...], str]:
    """The first leaf error of a cattrs exception group and its key path."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            if isinstance(note, AttributeValidationNote):
                return _first_error(inner, (*path, note.name))
            if isinstance(note, IterableValidationNote):
                return _first_error(inner, (*path, note.index))
        for inner in without:
            return _first_error(inner, path)
    if isinstance(exc, ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)
        known = ", ".join(a.name for a in attrs.fields(exc.cl))
        return (*path, extra[0]), f"unknown key (known: {known})"
    if isinstance(exc, KeyError):
        return path, f"missing key {exc}"
    return path, str(exc)


def get_dotted(path: tuple[PathItem, ...]) -> str:
    out = ""
    for item in path:
        out += f"[{item}]" if isinstance(item, int) else (f".{item}" if out else item)
    return out or "(top level)"


def structure_spec(data: Any, *, text: str | None = None, file: str | None = None) -> ScenarioSpec:
    """SCN-1: structure a parsed scenario strictly; errors name the key and the position."""
    if not isinstance(data, Mapping):
        raise ScenarioError("a scenario is a table/object", where=file)
    try:
        spec: ScenarioSpec = CONVERTER.structure(dict(data), ScenarioSpec)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        path, reason = _first_error(exc, ())
        raise make_error(reason, path, text=text, file=file) from None
    check_consistency(spec, text=text, file=file)
    return spec


def make_error(
    reason: str, path: tuple[PathItem, ...], *, text: str | None, file: str | None
) -> ScenarioError:
    where = get_dotted(path)
    if file is not None:
        position = locate(text or "", file, path)
        prefix = f"{file}:{position[0]}:{position[1]}" if position else file
        where = f"{prefix}: {where}"
    return ScenarioError(reason, where=where)


def check_consistency(spec: ScenarioSpec, *, text: str | None, file: str | None) -> None:
    """SCN-3: contradictions between keys are errors too."""

    def fail(reason: str, *path: PathItem) -> None:
        raise make_error(reason, path, text=text, file=file)

    geometry = spec.geometry
    if isinstance(geometry, GeometrySpec):
        if geometry.page_size < 256 or geometry.page_size % geometry.row_size:
            fail("page_size must be >= 256 (the header) and a multiple of row_size", "geometry")
        if geometry.row_size < 8:
            fail("row_size must be >= 8", "geometry", "row_size")
        if geometry.slot_pages < 3:
            fail("slot_pages must be >= 3", "geometry", "slot_pages")
    cfg = spec.config
    for index, rel in enumerate(spec.releases):
        if rel.kind is ReleaseKind.PATCH and not cfg.patch:
            fail("a patch release needs config.patch = true", "releases", index, "kind")
        only: list[tuple[str, ReleaseKind]] = [
            ("erase_version", ReleaseKind.ERASE),
            ("base_version", ReleaseKind.PATCH),
            ("claimed_base_version", ReleaseKind.PATCH),
            ("patch_url", ReleaseKind.PATCH),
        ]
        for key, kind in only:
            if getattr(rel, key) is not None and rel.kind is not kind:
                fail(f"{key} is only for kind {kind.value}", "releases", index, key)
        if rel.url is not None and rel.url_length is not None:
            fail("give url or url_length, not both", "releases", index, "url_length")
        if rel.relabel_of is not None and rel.relabel_of not in {
            r.version for r in spec.releases[:index]
        } | {spec.factory_version}:
            fail(
                "relabel_of names no earlier release or the factory",
                "releases",
                index,
                "relabel_of",
            )
    if Witness.PATCH_UPDATE in (spec.witnesses or []) and not cfg.patch:
        fail("a patch-update witness needs config.patch = true", "witnesses")
    if len(set(spec.user_actions)) != len(spec.user_actions):
        fail("a user action is listed twice", "user_actions")
    check_console(spec.console, fail)


def check_console(console: ConsoleSpec, fail: Callable[..., None]) -> None:
    """SCN-34, SCN-35: console values are distinct, and an input listed has values to type."""
    for key in ("intervals", "urls"):
        values = getattr(console, key)
        if len(set(values)) != len(values):
            fail(f"a value is listed twice in console.{key}", "console", key)
    for index, url in enumerate(console.urls):
        if not url or len(url.encode()) >= 1000:
            fail("a console URL is 1..999 bytes (json_url_cli[1000])", "console", "urls", index)
    inputs = console.inputs or []
    if len(set(inputs)) != len(inputs):
        fail("an input is listed twice", "console", "inputs")
    if ConsoleInput.INTERVAL in inputs and not console.intervals:
        fail("input interval needs console.intervals", "console", "inputs")
    if ConsoleInput.URL in inputs and not console.urls:
        fail("input url needs console.urls", "console", "inputs")
