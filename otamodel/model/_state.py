"""Frozen, hashable device state.

``World`` = persistent storage (internal flash, external FS) + volatile RAM (service,
core, bootloader, the queue of persistent operations being performed) + the network
side the device sees + ghost variables that only properties read.
"""

from __future__ import annotations

import enum
import uuid
import weakref
from typing import TYPE_CHECKING

from otamodel.model._enums import (
    BackupStep,
    BlTask,
    CheckState,
    CoreResult,
    CoreStep,
    CoreTask,
    FileState,
    Phase,
    SelectStep,
    SvcState,
    SvcStatus,
)
from otamodel.model._product import AppImage, DeviceContext
from otamodel.model._record import field, get_fields, record, replace

if TYPE_CHECKING:  # the operations' module builds on this one
    from otamodel.model._physics import PersistentOp


def get_bytes_repr(data: bytes | None) -> str:
    """Reprs name a byte string by its size and first bytes, never dump it."""
    if data is None or len(data) <= 16:
        return repr(data)
    return f"<{len(data)} B {data[:8].hex()}…>"


# ---------------------------------------------------------------------------- persistent


_CONTENTS: dict[int, tuple[object, bytes]] = {}
"""Flash.get_contents results by the identity of the (immutable) flash object."""
_CONTENTS_KEPT = 4


@record
class Flash:
    """Internal flash pages of the application slot; page 0 is the boot-control page."""

    def get_contents(self) -> bytes:
        """The slot and, when a write reached it, the page after it (SCN-11). The last few
        results are kept by the flash object's identity (a step often asks twice)."""
        hit = _CONTENTS.get(id(self))
        if hit is not None and hit[0] is self:
            return hit[1]
        data = b"".join(self.pages) + self.beyond
        if len(_CONTENTS) >= _CONTENTS_KEPT:
            del _CONTENTS[next(iter(_CONTENTS))]
        _CONTENTS[id(self)] = (self, data)  # the entry keeps the object, so its id stays its
        return data

    pages: tuple[bytes, ...]
    # SCN-11: the page of internal flash after the slot (b"": erased); only a write past the
    # slot (an image larger than the slot) reaches it.
    beyond: bytes = b""
    # Row programs that needed to set bits over cleared ones (physics violations): a count
    # saturating at OVERPROGRAM_CAP and the (page, row) locations, so that distinct
    # over-programs are distinct states (PROP-7).
    overprograms: int = 0
    overprogrammed: frozenset[tuple[int, int]] = frozenset()

    def __repr__(self) -> str:
        """Short: page count and size, never the bytes."""
        size = len(self.pages[0]) if self.pages else 0
        return f"Flash({len(self.pages)} pages x {size} B, overprograms={self.overprograms})"


FILE_CHUNK = 4096
"""File contents are kept as chunks of this size at fixed offsets (the last one shorter), so
a write shares every untouched chunk with the previous state and equal contents have equal
chunk tuples."""


def split_chunks(data: bytes) -> tuple[bytes, ...]:
    """The canonical chunks of a file's content, each one shared object per distinct content
    (while :data:`_CHUNKS` keeps it): equal files built along different paths then compare
    chunk by chunk by identity, not byte by byte (a step memory or a predicate cache compares
    the file systems of worlds that are equal)."""
    size = FILE_CHUNK
    if len(data) <= size:
        return (_get_shared(data),) if data else ()
    return tuple([_get_shared(data[i : i + size]) for i in range(0, len(data), size)])


_CHUNKS: dict[bytes, bytes] = {}
_CHUNKS_KEPT = 8_192
"""At most this many distinct chunks are shared (32 MiB); then the table starts again."""


def _get_shared(chunk: bytes) -> bytes:
    shared = _CHUNKS.get(chunk)
    if shared is None:
        if len(_CHUNKS) >= _CHUNKS_KEPT:
            _CHUNKS.clear()
        shared = _CHUNKS[chunk] = chunk
    return shared


@record
class Fs:
    """The external FAT file system under ``/mnt/myDrive1`` (names relative to ``ota/``).

    ``chunks`` holds ``(name, content chunks)`` sorted by name; :attr:`files` and :meth:`get`
    give the contents as bytes."""

    formatted: bool = False
    has_dir: bool = False
    chunks: tuple[tuple[str, tuple[bytes, ...]], ...] = ()

    @property
    def files(self) -> tuple[tuple[str, bytes], ...]:
        """``(name, content)`` for every file, sorted by name."""
        return tuple((name, b"".join(parts)) for name, parts in self.chunks)

    damaged: bool = False  # SCN-32: a torn format left the volume unmountable
    # SCN-30: with data durable only at close, each file written since its open and the
    # content it falls back to at a reset.
    dirty: tuple[tuple[str, bytes], ...] = ()
    handles: tuple[str, ...] = ()  # SCN-31: open write handles (tracked with a limit only)

    def get_after_reset(self) -> Fs:
        """SCN-30, SCN-31: what a reset leaves: unclosed files fall back, handles are gone."""
        if not self.dirty and not self.handles:
            return self
        fs = replace(self, dirty=(), handles=())
        for name, data in self.dirty:
            if fs.is_present(name):
                fs = fs.with_file(name, data)
        return fs

    def __repr__(self) -> str:
        """Short: file names and sizes, never the contents."""
        files = ", ".join(f"{name}: {len(data)} B" for name, data in self.files)
        return f"Fs(formatted={self.formatted}, ota/={self.has_dir}, files={{{files}}})"

    def get(self, name: str) -> bytes | None:
        for fname, parts in self.chunks:
            if fname == name:
                return b"".join(parts)
        return None

    def get_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.chunks)

    def is_present(self, name: str) -> bool:
        return any(fname == name for fname, _ in self.chunks)

    def with_file(self, name: str, data: bytes) -> Fs:
        return self.with_chunks(name, split_chunks(data))

    def with_chunks(self, name: str, parts: tuple[bytes, ...]) -> Fs:
        rest = [item for item in self.chunks if item[0] != name]
        rest.append((name, parts))
        rest.sort(key=_get_name)
        return replace(self, chunks=tuple(rest))

    def get_chunks(self, name: str) -> tuple[bytes, ...] | None:
        for fname, parts in self.chunks:
            if fname == name:
                return parts
        return None

    def with_write(self, name: str, offset: int, data: bytes) -> Fs:
        """FS-5: ``data`` written at ``offset`` (zero-filled up to it when the file is
        shorter); only the chunks the write touches are rebuilt. A missing file is unchanged."""
        parts = self.get_chunks(name)
        if parts is None:
            return self
        size = sum(len(part) for part in parts)
        if offset > size or not data:
            old = b"".join(parts).ljust(offset, b"\x00")
            return self.with_chunks(
                name, split_chunks(old[:offset] + data + old[offset + len(data) :])
            )
        first = offset // FILE_CHUNK
        last = min((offset + len(data) - 1) // FILE_CHUNK, len(parts) - 1)
        region = b"".join(parts[first : last + 1])
        at = offset - first * FILE_CHUNK
        region = region[:at] + data + region[at + len(data) :]
        return self.with_chunks(name, (*parts[:first], *split_chunks(region), *parts[last + 1 :]))

    def without(self, name: str) -> Fs:
        return replace(self, chunks=tuple(item for item in self.chunks if item[0] != name))


def _get_name(item: tuple[str, tuple[bytes, ...]]) -> str:
    return item[0]


# ---------------------------------------------------------------------------- volatile


@record
class OtaParams:
    """``OTA_PARAMS`` (service copy and core copy have the same shape)."""

    url: str = ""
    version: int = 0
    digest: str = ""  # serv_app_digest_string (64-char strncpy view)
    signature: str = ""
    signature_verification: bool = False
    patch_request: bool = False
    patch_base_version: int = 0
    base_digest: str = ""
    patch_digest: str = ""
    target_digest: str = ""
    delete_img_version: int = 0


@record
class RuntimeConfig:
    """SCN-14: ``g_SysOtaConfig`` after a ``sysota set`` console command changed it (the
    macros are loaded again at every boot)."""

    periodic: bool
    autoreset: bool
    auto_update: bool
    interval: int = 60  # SCN-34: ``periodic_check_interval``, read at each RTCC arming
    url: str | None = None  # SCN-35: ``json_url`` -> ``json_url_cli`` (None: SYS_OTA_URL)


@record
class Service:
    """``sys_otaData`` plus the file-scope ``ota_params`` and the RTCC."""

    state: SvcState = SvcState.REGWIFISRVCALLBCK
    check: CheckState = CheckState.CNCT_TO_SRVR
    status: SvcStatus = SvcStatus.IDLE
    dev_cnctd_to_nw: bool = False
    update_check_failed: bool = False
    fw_in_progress: bool = False
    check_in_progress: bool = False
    erase_in_progress: bool = False
    download_success: bool = False
    erase_request: bool = False
    patch_request: bool = False
    parse_result: bool = False
    timer_trigger: bool = False
    rtcc_armed: bool = False
    rtcc_interval: int = 0  # SVC-42: the interval the last arming read (0: never armed)
    registered: bool = False
    params: OtaParams = OtaParams()
    runtime: RuntimeConfig | None = None  # SCN-14: None: the generated configuration


@record
class Core:
    """The OTA core's ``ota`` structure, task context and statics."""

    task: CoreTask = CoreTask.INIT
    sub: CoreStep | None = (
        None  # the nested state of DOWNLOAD_IMAGE, SET_IMAGE_STATUS, FACTORY_RESET
    )
    result: CoreResult = CoreResult.NONE
    idle: bool = False
    callback: bool = False
    new_downloaded_img: bool = False
    rollback_initiated: bool = False
    db_full: bool = False
    params: OtaParams = OtaParams()
    param_version: int = 0
    img_status: int = 0
    pfm_status: int = 0
    image_name: str = ""
    copied: int = 0
    total: int = 0
    erase_ver: int = 0
    patch_source: str = ""
    selected_row: int = -1
    row_version: int = 0


@record
class Bootloader:
    """``Bootloader_Tasks`` context and file statics (one boot)."""

    task: BlTask = BlTask.INIT
    sub: BackupStep | None = None  # the nested state of FACTORY_RESET (the first-boot backup)
    select_step: SelectStep | None = None  # written by CHECK_IMAGE, cleared by INVALIDATE_IMAGE
    factory_reset: bool = True
    new_image: bool = False
    selected_row: int = -1
    database_found: bool = False
    db: tuple[tuple[str, ...], ...] | None = None
    digest_str: bytes = b""
    signature_str: bytes = b""
    file_state: FileState = FileState.OPEN_FILE
    file_opened: bool = False
    file_name: str = ""
    img: bytes = field(default=bytes(256), repr=get_bytes_repr)  # param.img (header)
    boot_ctl: bytes = field(default=b"", repr=get_bytes_repr)  # RAM copy of sector 0
    copy_len: int = 0
    offset: int = 0
    verify_flag: int = 0


@record
class Transfer:
    """The single downloader instance as the device sees it."""

    url: str = ""
    open: bool = False
    failed: bool = False  # the next read returns -1
    corrupt: bool = False  # the next chunk arrives with one byte flipped
    # what the server answers for ``url`` (None: error status)
    body: bytes | None = field(default=None, repr=get_bytes_repr)
    content_length: int = 0  # the global field_content_length


class Expect(enum.IntEnum):
    """PROP-30: which request the app is waiting to hear the end of (ghost)."""

    NONE = 0
    CHECK = 1  # a periodic or manual update check (UPDATE_CHECK_START was delivered)
    UPDATE = 2  # a download the service triggered (or INITIATE_OTA)
    ROLLBACK = 3
    FACTORY_RESET = 4
    ERASE = 5


OVERPROGRAM_CAP = 3
STREAK_CAP = 3


@record
class Ghost:
    """History only the properties read (never read by the device's code). Every field is
    a flag, a small enum, a saturating counter or a set bounded by the scenario's images, so
    that no defect can make the state space infinite (PROP-*, docs/spec/properties.md)."""

    # Highest compiled version the app validated durably (F8 in boot control, PROP-3) since
    # the user last asked for a rollback or a factory reset.
    max_validated: int = 0
    # Versions ever validated durably (and the factory's once it ran): PROP-8 rollback.
    validated: frozenset[int] = frozenset()
    # PROP-1 / PROP-40: verdict of the environment's oracle on the last jump.
    last_jump_ok: bool = True
    last_jump_authentic: bool = True
    witnesses: frozenset[str] = frozenset()
    # PROP-30/11: the request awaiting its terminal callback, the first wrong event seen.
    expect: Expect = Expect.NONE
    event_fault: str = ""
    honesty_fault: str = ""
    # PROP-33: intents: the version a rollback left (0: none), a factory reset in flight,
    # the rows an erase must keep, the first intent broken.
    declined: int = 0
    factory_intent: bool = False
    erase_keep: tuple[str, ...] | None = None
    intent_fault: str = ""
    # PROP-8: the version an accepted rollback must end with (0: no rollback in flight).
    rollback_to: int = 0
    # PROP-35: stored images (file, version) only an explicit path may remove.
    kept: frozenset[tuple[str, int]] = frozenset()
    # PROP-36/17: program-mode entries of the same file in a row (saturating).
    program_name: str = ""
    program_streak: int = 0
    # PROP-4/43: the releases published so far, and the target they set.
    published_seen: frozenset[int] = frozenset()
    max_target: int = 0
    # PROP-44: the first erase requested by a manifest the publisher did not make.
    erase_forged: bool = False


@record
class World:
    """Everything the checker explores; ``scenario`` is constant context (not hashed)."""

    flash: Flash
    fs: Fs
    phase: Phase = Phase.BOOTLOADER
    running: AppImage | None = None  # the build the CPU runs while phase is APP
    service: Service = Service()
    core: Core = Core()
    boot: Bootloader = Bootloader()
    net: Transfer = Transfer()
    pending: tuple[PersistentOp, ...] = ()  # persistent operations still to perform, in order
    published: int = 0  # index of the release the server publishes
    network_up: bool = True
    # remaining fault budgets; outside the core: the step does not read them (ENV-9)
    budget: tuple[tuple[str, int], ...] = field(default=(), core=False)
    ghost: Ghost = Ghost()
    sched: int = 0  # position in the scheduler's cycle of service/core calls
    rx_len: int = 0  # the static receive offset of READ_JSON (survives checks, not resets)
    notes: tuple[str, ...] = field(default=(), eq=False, repr=False)
    scenario: DeviceContext = field(default=None, eq=False, repr=False)

    def __repr__(self) -> str:
        """Short: the one-line state summary (phase, machine states, boot control)."""
        from otamodel.model._device import get_state_summary

        return f"<World {get_state_summary(self)}>"

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled without the constant context: only its registered key travels
        (see :func:`register_context`)."""
        values = tuple(getattr(self, name) for name in _WORLD_PICKLED)
        return (_restore_world, (get_context_key(self.scenario), values))

    def note(self, text: str) -> World:
        return replace(self, notes=(*self.notes, text))

    def get_budget(self, name: str) -> int:
        for key, value in self.budget:
            if key == name:
                return value
        return 0

    def spend(self, name: str) -> World:
        """The world with one unit of the ``name`` budget spent (its core unchanged)."""
        return self.__evolve_outside_core__(budget=get_spent(self.budget, name))  # type: ignore[attr-defined,no-any-return]


Budget = tuple[tuple[str, int], ...]
_SPENT: dict[tuple[Budget, str], Budget] = {}
"""``(budget, name)`` -> the budget with one unit of ``name`` spent (ENV-9)."""
_BUDGETS: dict[Budget, Budget] = {}
"""One shared tuple per distinct spent budget."""


def get_spent(budget: Budget, name: str) -> Budget:
    """``budget`` with one unit of ``name`` spent, as one shared tuple per distinct result (a
    scenario has few): worlds that spent alike share their budgets by identity, which lets
    the checker's step memory (ENV-9) hand out a remembered world without a copy."""
    key = (budget, name)
    spent = _SPENT.get(key)
    if spent is None:
        if len(_SPENT) >= _SPENT_KEPT:
            _SPENT.clear()
            _BUDGETS.clear()
        made = tuple([(k, v - 1 if k == name else v) for k, v in budget])
        spent = _SPENT[key] = _BUDGETS.setdefault(made, made)
    return spent


_SPENT_KEPT = 65_536


# ---------------------------------------------------------------------------- context

_WORLD_PICKLED = tuple(name for name in get_fields(World) if name != "scenario")
_CONTEXTS: dict[str, list[weakref.ref[DeviceContext]]] = {}
"""Key -> the live contexts registered under it (equal copies: a model unpickled here)."""
_KEYS: dict[int, str] = {}


def register_context(context: DeviceContext, key: str | None = None) -> str:
    """Make ``context`` (a scenario) known under ``key`` in this process so pickled worlds
    can refer to it instead of carrying a copy; returns its key. A process that receives
    worlds registers the context once (unpickling a checker model does it)."""
    known = _KEYS.get(id(context))
    if known is not None and key in (None, known):
        return known
    key = key or uuid.uuid4().hex
    _CONTEXTS.setdefault(key, []).append(weakref.ref(context))
    _KEYS[id(context)] = key
    weakref.finalize(context, _forget_context, id(context), key)
    return key


def _forget_context(ident: int, key: str) -> None:
    _KEYS.pop(ident, None)
    alive = [ref for ref in _CONTEXTS.get(key, []) if ref() is not None]
    if alive:
        _CONTEXTS[key] = alive
    else:
        _CONTEXTS.pop(key, None)


def _get_context(key: str) -> DeviceContext | None:
    for ref in _CONTEXTS.get(key, []):
        context = ref()
        if context is not None:
            return context
    return None


def get_context_key(context: DeviceContext | None) -> str | None:
    """The key pickled worlds use for ``context`` (``None`` for a world without one)."""
    return None if context is None else register_context(context)


def _restore_world(key: str | None, values: tuple[object, ...]) -> World:
    context = None
    if key is not None:
        context = _get_context(key)
        if context is None:
            raise LookupError(
                f"a pickled world refers to scenario {key} that this process does not know: "
                "unpickle the model (or call register_context) first"
            )
    fields = dict(zip(_WORLD_PICKLED, values, strict=True))
    return replace(_BLANK, **fields, scenario=context)


_BLANK = World(flash=Flash(pages=()), fs=Fs())
"""What an unpickled world's fields replace (every field is given)."""


__all__ = [
    "Bootloader",
    "Core",
    "Flash",
    "Fs",
    "Ghost",
    "OtaParams",
    "Service",
    "Transfer",
    "World",
    "get_context_key",
    "register_context",
    "replace",
]
