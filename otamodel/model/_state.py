"""Frozen, hashable device state.

``World`` = persistent storage (internal flash, external FS) + volatile RAM (service,
core, bootloader, the queue of persistent operations being performed) + the network
side the device sees + ghost variables that only properties read.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

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

_INIT_FIELDS: dict[type, tuple[str, ...]] = {}

T = TypeVar("T")


def replace(instance: T, **changes: Any) -> T:
    """``attrs.evolve`` for the model's frozen records, about twice as fast: the field names
    are looked up once per class (the checker spends most of its time building states)."""
    cls = type(instance)
    names = _INIT_FIELDS.get(cls)
    if names is None:
        names = tuple(a.name for a in attrs.fields(cls) if a.init)  # type: ignore[arg-type]
        _INIT_FIELDS[cls] = names
    values = {name: changes[name] if name in changes else getattr(instance, name) for name in names}
    return cls(**values)


def get_bytes_repr(data: bytes | None) -> str:
    """Reprs name a byte string by its size and first bytes, never dump it."""
    if data is None or len(data) <= 16:
        return repr(data)
    return f"<{len(data)} B {data[:8].hex()}…>"


# ---------------------------------------------------------------------------- persistent


@attrs.frozen(cache_hash=True)
class Flash:
    """Internal flash pages of the application slot; page 0 is the boot-control page."""

    def get_contents(self) -> bytes:
        """The slot and, when a write reached it, the page after it (SCN-11)."""
        return b"".join(self.pages) + self.beyond

    pages: tuple[bytes, ...]
    # SCN-11: the page of internal flash after the slot (b"": erased); only a write past the
    # slot (an image larger than the slot) reaches it.
    beyond: bytes = b""
    # Count of row programs that needed to set bits over cleared ones (physics violations).
    overprograms: int = 0

    def __repr__(self) -> str:
        """Short: page count and size, never the bytes."""
        size = len(self.pages[0]) if self.pages else 0
        return f"Flash({len(self.pages)} pages x {size} B, overprograms={self.overprograms})"


@attrs.frozen(cache_hash=True)
class Fs:
    """The external FAT file system under ``/mnt/myDrive1`` (names relative to ``ota/``)."""

    formatted: bool = False
    has_dir: bool = False
    files: tuple[tuple[str, bytes], ...] = ()
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
        for fname, data in self.files:
            if fname == name:
                return data
        return None

    def is_present(self, name: str) -> bool:
        return any(fname == name for fname, _ in self.files)

    def with_file(self, name: str, data: bytes) -> Fs:
        rest = tuple(item for item in self.files if item[0] != name)
        return replace(self, files=tuple(sorted((*rest, (name, data)))))

    def without(self, name: str) -> Fs:
        return replace(self, files=tuple(item for item in self.files if item[0] != name))


# ---------------------------------------------------------------------------- volatile


@attrs.frozen
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


@attrs.frozen
class RuntimeConfig:
    """SCN-14: ``g_SysOtaConfig`` after a ``sysota set`` console command changed it (the
    macros are loaded again at every boot)."""

    periodic: bool
    autoreset: bool
    auto_update: bool


@attrs.frozen
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
    registered: bool = False
    params: OtaParams = OtaParams()
    runtime: RuntimeConfig | None = None  # SCN-14: None: the generated configuration


@attrs.frozen
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


@attrs.frozen
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
    img: bytes = attrs.field(default=bytes(256), repr=get_bytes_repr)  # param.img (header)
    boot_ctl: bytes = attrs.field(default=b"", repr=get_bytes_repr)  # RAM copy of sector 0
    copy_len: int = 0
    offset: int = 0
    verify_flag: int = 0


@attrs.frozen
class Transfer:
    """The single downloader instance as the device sees it."""

    url: str = ""
    open: bool = False
    failed: bool = False  # the next read returns -1
    corrupt: bool = False  # the next chunk arrives with one byte flipped
    # what the server answers for ``url`` (None: error status)
    body: bytes | None = attrs.field(default=None, repr=get_bytes_repr)
    content_length: int = 0  # the global field_content_length


@attrs.frozen
class Ghost:
    """History only the properties read (never read by the device's code)."""

    verified: frozenset[bytes] = frozenset()  # SHA-256 of every slot body a bootloader check passed
    max_validated: int = (
        0  # highest version the app validated (F8) since the last authorised downgrade
    )
    last_jump_ok: bool = True
    last_version: int = 0
    witnesses: frozenset[str] = frozenset()


@attrs.frozen(cache_hash=True)
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
    pending: tuple[Any, ...] = ()  # persistent operations still to perform, in order
    published: int = 0  # index of the release the server publishes
    network_up: bool = True
    budget: tuple[tuple[str, int], ...] = ()  # remaining fault budgets
    ghost: Ghost = Ghost()
    sched: int = 0  # position in the scheduler's cycle of service/core calls
    rx_len: int = 0  # the static receive offset of READ_JSON (survives checks, not resets)
    notes: tuple[str, ...] = attrs.field(default=(), eq=False, repr=False)
    scenario: DeviceContext = attrs.field(default=None, eq=False, repr=False)

    def __repr__(self) -> str:
        """Short: the one-line state summary (phase, machine states, boot control)."""
        from otamodel.model._device import get_state_summary

        return f"<World {get_state_summary(self)}>"

    def note(self, text: str) -> World:
        return replace(self, notes=(*self.notes, text))

    def get_budget(self, name: str) -> int:
        for key, value in self.budget:
            if key == name:
                return value
        return 0

    def spend(self, name: str) -> World:
        return replace(
            self,
            budget=tuple((k, v - 1 if k == name else v) for k, v in self.budget),
        )
