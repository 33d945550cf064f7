"""Build configuration (the MCC options of §6), geometry and code variants."""

from __future__ import annotations

import enum

import attrs


class Variant(enum.Enum):
    """Which code the model follows where releases differ."""

    V3_9_1 = "harmony-3.9.1"
    V3_9_0 = "harmony-3.9.0"
    HARDENED = "hardened"  # v3.9.1 with the fixes of docs/spec/hardened.md (HARD-*)

    @classmethod
    def from_name(cls, name: str) -> Variant:
        for member in cls:
            if name in (member.value, member.name):
                return member
        known = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown variant {name!r} (known: {known})")


class Defect(enum.Enum):
    """PROP-45: deliberately planted design defects (the properties' self-test). Each one is
    a plausible mistake guarded by a few lines where the code would make it; none is
    Microchip behaviour. ``docs/defects.md`` lists which property kills each."""

    CORE_SKIPS_DIGEST = "core-skips-digest"
    SUCCESS_BEFORE_BOOT_CONTROL = "success-before-boot-control"
    ACCEPTS_OLDER_VERSION = "accepts-older-version"
    ERASE_KEEPS_ROW = "erase-keeps-row"
    ERASE_WRONG_ROW = "erase-wrong-row"
    FACTORY_RESET_REPORTS_ONLY = "factory-reset-reports-only"
    ROLLBACK_SKIPS_BOOT_CONTROL = "rollback-skips-boot-control"
    CALLBACK_TWICE = "callback-twice"
    STATE_KEPT_OVER_RESET = "state-kept-over-reset"
    VALID_STATUS_AFTER_DOWNLOAD = "valid-status-after-download"
    BOOT_STATUS_VALID_AT_PROGRAM = "boot-status-valid-at-program"
    BOOTLOADER_SKIPS_VERIFY = "bootloader-skips-verify"
    BOOTLOADER_SKIPS_SIGNATURE = "bootloader-skips-signature"
    BOOTLOADER_TRUSTS_HEADER = "bootloader-trusts-header"
    BOOTLOADER_RANKS_LOWEST = "bootloader-ranks-lowest"
    EVICTS_NEWEST = "evicts-newest"
    DB_DELETE_BEFORE_RENAME = "db-delete-before-rename"
    BACKUP_COMMIT_FIRST = "backup-commit-first"
    PERIODIC_NOT_REARMED = "periodic-not-rearmed"
    DOWNLOAD_FAILURE_DROPPED = "download-failure-dropped"
    BOOTLOADER_IGNORES_NEW_IMAGES = "bootloader-ignores-new-images"
    TRIAL_BOOT_NOT_TRACKED = "trial-boot-not-tracked"
    BOOTLOADER_NEVER_FAST_PATH = "bootloader-never-fast-path"
    PROGRAM_WITHOUT_ERASE = "program-without-erase"
    OFFERED_VERSION_SKIPPED = "offered-version-skipped"
    ERASE_SIGNATURE_PRESENCE_ONLY = "erase-signature-presence-only"
    ERASE_REQUEST_STICKY = "erase-request-sticky"
    MANUAL_OTA_ANY_VERSION = "manual-ota-any-version"


class Scheduler(enum.Enum):
    """How the generated task loop interleaves ``SYS_OTA_Tasks`` and ``OTA_Tasks``."""

    FREERTOS = "freertos"  # service step, then one core step (the demo app)
    BARE_METAL = "bare-metal"  # core step, service step, core step per super loop


class TearMode(enum.Enum):
    """What a power cut in the middle of an internal-flash row program leaves."""

    WORD = "word"  # all-or-nothing per 32-bit word: a prefix of the words is programmed
    BITS = "bits"  # any subset of the cleared bits: the model takes every other byte


@attrs.frozen
class Geometry:
    """Flash geometry. ``REAL_GEOMETRY`` is the device; small ones keep checking finite.

    ``slot_pages`` counts the boot-control page (page 0 of the slot) and the application
    pages; ``chunk`` is the transfer/FS chunk (4096 on the device, one page here).
    """

    page_size: int = 4096
    row_size: int = 1024
    slot_pages: int = 0xDF
    header_size: int = 256

    @property
    def chunk(self) -> int:
        return self.page_size

    @property
    def slot_size(self) -> int:
        return self.page_size * self.slot_pages

    @property
    def rows_per_page(self) -> int:
        return self.page_size // self.row_size


REAL_GEOMETRY = Geometry()
SMALL_GEOMETRY = Geometry(page_size=256, row_size=128, slot_pages=4)


@attrs.frozen
class Config:
    """MCC options (defaults as generated) that do not differ between images of one product.

    The application version is per image (it is compiled in) and so lives in the image.
    """

    autoreset: bool = True
    auto_update: bool = True
    periodic: bool = True
    interval: int = 60
    num_imgs: int = 2
    secure_boot: bool = False
    patch: bool = False
    tls: bool = False
    fs_enabled: bool = True
    scheduler: Scheduler = Scheduler.FREERTOS
    tear_mode: TearMode = TearMode.WORD
    variant: Variant = Variant.V3_9_1
    enforce_tls: bool = False  # SYS_OTA_ENFORCE_TLS
    json_max_size: int = 2000  # SYS_OTA_JSON_FILE_MAXSIZE (0..2000)
    defects: frozenset[Defect] = frozenset()  # PROP-45: planted defects (self-test only)

    @property
    def is_hardened(self) -> bool:
        return self.variant is Variant.HARDENED

    def has(self, defect: Defect) -> bool:
        """PROP-45: whether this build carries a planted defect."""
        return defect in self.defects
