"""Frozen, hashable device state.

``World`` = persistent storage (internal flash, external FS) + volatile RAM (service,
core, bootloader, the queue of persistent operations being performed) + the network
side the device sees + ghost variables that only properties read.
"""

from __future__ import annotations

import enum
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

    pages: tuple[bytes, ...]
    # Row programs that needed to set bits over cleared ones (physics violations): a count
    # saturating at OVERPROGRAM_CAP and the (page, row) locations, so that distinct
    # over-programs are distinct states (PROP-7).
    overprograms: int = 0
    overprogrammed: frozenset[tuple[int, int]] = frozenset()

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


@attrs.frozen
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
