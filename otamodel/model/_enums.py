"""The code's enums, by name and in order (research note §2.1, §2.7, §3.1, §5.3)."""

from __future__ import annotations

import enum


class SvcState(enum.IntEnum):
    """``SYS_OTA_STATES`` as the main service state (sub-states are :class:`CheckState`)."""

    REGWIFISRVCALLBCK = 0
    WAITFOR_NETWORK_CONNECTION = 1
    WAITFOR_OTAIDLE = 2
    REGOTACALLBCK = 3
    AUTO_CONFIGURATION_CHECK = 4
    SERVER_UPDATE_CHECK = 5
    WAIT_FOR_OTA_TIMER_TRIGGER = 6
    AUTO_UPDATE_CHECK = 7
    TRIGGER_OTA = 8
    WAIT_FOR_OTA_COMPLETE = 9
    ERASE_IMAGE = 10
    FACTORY_RESET = 11
    ROLLBACK = 12
    UPDATE_USER = 13
    AUTORESET = 14
    SYSTEM_RESET = 15
    STATE_IDLE = 16
    SERVER_UPDATE_CHECK_TRIGGER = 23
    # Not in the code's enum: where ``SYS_RESET_SoftwareReset`` leaves the service (the
    # device reboots in the same step; drawn as a final state).
    SOFTWARE_RESET = 100


class CheckState(enum.IntEnum):
    """``update_check_state``: the sub-states used by ``SYS_OTA_Update_Check``."""

    CNCT_TO_SRVR = 18
    READ_JSON = 19
    JSON_CONTENT = 20
    DONE = 22


class DownloadStep(enum.StrEnum):
    """``OTA_Task_DownloadImage``'s states (D_WRITE is folded into D_DOWNLOAD)."""

    D_INIT = "D_INIT"
    D_GET_CONTENT_LENGTH = "D_GET_CONTENT_LENGTH"
    D_DOWNLOAD = "D_DOWNLOAD"
    D_DONE = "D_DONE"


class SetStatusStep(enum.StrEnum):
    """``OTA_Task_SetImageStatus``'s states."""

    S_INIT = "S_INIT"
    S_UPDATE_DB = "S_UPDATE_DB"
    S_WRITE_BOOT_CONTROL = "S_WRITE_BOOT_CONTROL"
    S_DONE = "S_DONE"


class FactoryResetStep(enum.StrEnum):
    """``OTA_Task_FactoryReset``'s states (F_DISABLE_IMAGE does nothing the model sees)."""

    F_INIT = "F_INIT"
    F_INVALIDATE_BOOT_CTL = "F_INVALIDATE_BOOT_CTL"
    F_DONE = "F_DONE"


# Sub-states are ``str`` enums whose values are the code's names: ``core.sub == "D_DONE"``
# reads as before, and no two sub-state enums share a value.
CoreStep = DownloadStep | SetStatusStep | FactoryResetStep


class SvcStatus(enum.IntEnum):
    """``SYS_OTA_STATUS``: the values the app callback receives."""

    IDLE = 0
    WAITING_FOR_NETWORK_CONNECTION = 1
    WAITING_FOR_OTACORE_IDLE = 2
    WAITING_FOR_USER_DEFINED_PERIOD = 3
    UPDATE_CHECK_START = 4
    UPDATE_CHECK_FAILED = 5
    UPDATE_AVAILABLE = 6
    UPDATE_NOTAVAILABLE = 7
    TRIGGER_OTA_FAILED = 8
    FACTORY_RESET_SUCCESS = 9
    FACTORY_RESET_FAILED = 10
    ROLLBACK_SUCCESS = 11
    ROLLBACK_FAILED = 12
    PATCH_BASEVERSION_NOTFOUND = 13
    PATCH_EVENT_START = 14
    PATCH_EVENT_COMPLETED = 15
    DOWNLOAD_START = 16
    DOWNLOAD_SUCCESS = 17
    DOWNLOAD_FAILED = 18
    IMAGE_DIGEST_VERIFY_START = 19
    IMAGE_DIGEST_VERIFY_SUCCESS = 20
    IMAGE_DIGEST_VERIFY_FAILED = 21
    PATCH_IMAGE_DIGEST_VERIFY_START = 22
    PATCH_IMAGE_DIGEST_VERIFY_SUCCESS = 23
    PATCH_IMAGE_DIGEST_VERIFY_FAILED = 24
    DB_ENTRY_SUCCESS = 25
    IMAGE_ERASE_FAILED = 26
    IMAGE_ERASED = 27
    IMAGE_DATABASE_FULL = 28
    NONE = 29


class CoreTask(enum.IntEnum):
    """``OTA_TASK_ID`` (the unused ALLOCATE_SLOT and CHECK_DB are never entered)."""

    INIT = 0
    IDLE = 1
    SEARCH_PATCH_BASEVERSION = 4
    DOWNLOAD_IMAGE = 5
    VERIFY_IMAGE_DIGEST = 6
    VERIFY_PATCH_IMAGE_DIGEST = 7
    PATCH_BUILD_IMAGE = 8
    DATABASE_ENTRY = 9
    SET_IMAGE_STATUS = 10
    FACTORY_RESET = 11
    ERASE_IMAGE = 12
    UPDATE_USER = 13


class CoreResult(enum.IntEnum):
    """``OTA_RESULT``: what the core reports to the service callback."""

    IMAGE_DOWNLOAD_START = 1
    PATCH_BASEVERSION_NOTFOUND = 2
    PATCH_EVENT_START = 3
    IMAGE_DOWNLOADED = 4
    IMAGE_DOWNLOAD_FAILED = 5
    PATCH_EVENT_COMPLETED = 6
    PATCH_IMAGE_FAILED = 7
    IMAGE_DIGEST_VERIFY_START = 8
    PATCH_IMAGE_DIGEST_VERIFY_START = 9
    IMAGE_DIGEST_VERIFY_SUCCESS = 10
    PATCH_IMAGE_DIGEST_VERIFY_SUCCESS = 11
    PATCH_IMAGE_DIGEST_VERIFY_FAILED = 12
    IMAGE_DIGEST_VERIFY_FAILED = 13
    IMAGE_STATUS_SET = 14
    IMAGE_DATABASE_FULL = 15
    IMAGE_DB_ENTRY_FAILED = 16
    IMAGE_ERASE_FAILED = 17
    IMAGE_ERASED = 18
    FACTORY_RESET_SUCCESS = 19
    ROLLBACK_DONE = 20
    NONE = 21


class BlTask(enum.IntEnum):
    """``BOOTLOADER_TASK_ID`` plus explicit absorbing states where the code spins."""

    INIT = 0
    CHECK_IMAGE = 1
    SELECT_IMAGE = 2
    PROGRAM_IMAGE = 3
    VERIFY_IMAGE = 4
    SET_IMAGE_STATUS = 5
    INVALIDATE_IMAGE = 6
    NO_IMAGE_FOUND = 7
    JUMP_TO_APP = 8
    FACTORY_RESET = 9
    # Not in the code's enum: where the bootloader leaves the CPU (drawn as final states).
    SOFTWARE_RESET = 10  # the first-boot backup ends in a software reset
    APPLICATION = 11  # the jump to ``boot_addr``


class BackupStep(enum.StrEnum):
    """The first-boot backup inside FACTORY_RESET (the code's ``file_state`` values)."""

    FORMAT_DISK = "FORMAT_DISK"
    CREATE_DIR = "CREATE_DIR"
    COPY_IMAGE = "COPY_IMAGE"  # the code's OPEN_FILE: create the backup file and copy the slot
    RESET = "RESET"


class SelectStep(enum.StrEnum):
    """``Bootloader_Task_SelectImage``'s sub-state static as CHECK_IMAGE leaves it (the model
    runs the selection in one call and never reads it back; it is kept as the code keeps it)."""

    S_PARSE_DB = "S_PARSE_DB"


class FileState(enum.StrEnum):
    """The bootloader's ``file_state`` as SELECT_IMAGE and PROGRAM_IMAGE read it."""

    OPEN_FILE = "OPEN_FILE"
    ERROR = "ERROR"
    CLOSED = "CLOSED"


class Phase(enum.Enum):
    """What the CPU is executing."""

    BOOTLOADER = "bootloader"
    APP = "app"
    HUNG = "hung"  # jumped into code that is not a known application image
