"""``_OTACallback``: how core results reach the service, synchronously (SVC-30..SVC-33): the
service machine's event ``core_result``."""

from __future__ import annotations

from otamodel.model._config import Defect
from otamodel.model._enums import CoreResult, SvcStatus
from otamodel.model._state import World
from otamodel.model._storage import set_service

_SAME_NAME = {
    CoreResult.IMAGE_DOWNLOAD_START: SvcStatus.DOWNLOAD_START,
    CoreResult.IMAGE_DOWNLOADED: SvcStatus.DOWNLOAD_SUCCESS,
    CoreResult.IMAGE_DIGEST_VERIFY_START: SvcStatus.IMAGE_DIGEST_VERIFY_START,
    CoreResult.IMAGE_DIGEST_VERIFY_SUCCESS: SvcStatus.IMAGE_DIGEST_VERIFY_SUCCESS,
    CoreResult.PATCH_IMAGE_DIGEST_VERIFY_START: SvcStatus.PATCH_IMAGE_DIGEST_VERIFY_START,
    CoreResult.PATCH_IMAGE_DIGEST_VERIFY_SUCCESS: SvcStatus.PATCH_IMAGE_DIGEST_VERIFY_SUCCESS,
    CoreResult.PATCH_BASEVERSION_NOTFOUND: SvcStatus.PATCH_BASEVERSION_NOTFOUND,
    CoreResult.PATCH_EVENT_START: SvcStatus.PATCH_EVENT_START,
    CoreResult.PATCH_EVENT_COMPLETED: SvcStatus.PATCH_EVENT_COMPLETED,
    CoreResult.IMAGE_DATABASE_FULL: SvcStatus.IMAGE_DATABASE_FULL,
    CoreResult.FACTORY_RESET_SUCCESS: SvcStatus.FACTORY_RESET_SUCCESS,
    CoreResult.ROLLBACK_DONE: SvcStatus.ROLLBACK_SUCCESS,
}
_CLEARS_FW = {
    CoreResult.IMAGE_DOWNLOAD_FAILED: SvcStatus.DOWNLOAD_FAILED,
    CoreResult.IMAGE_DIGEST_VERIFY_FAILED: SvcStatus.IMAGE_DIGEST_VERIFY_FAILED,
    CoreResult.PATCH_IMAGE_DIGEST_VERIFY_FAILED: SvcStatus.PATCH_IMAGE_DIGEST_VERIFY_FAILED,
}
_CLEARS_ERASE = {
    CoreResult.IMAGE_ERASE_FAILED: SvcStatus.IMAGE_ERASE_FAILED,
    CoreResult.IMAGE_ERASED: SvcStatus.IMAGE_ERASED,
}


def is_callback_registered(world: World) -> bool:
    """SVC-30: the core calls ``_OTACallback`` only once it is registered."""
    return world.core.callback


def is_result_handled(world: World, result: CoreResult) -> bool:
    """SVC-32: ``IMAGE_STATUS_SET`` counts only while a download is in progress.
    SVC-33: ``IMAGE_DB_ENTRY_FAILED``, ``PATCH_IMAGE_FAILED`` and ``NONE`` have no case."""
    if result is CoreResult.IMAGE_STATUS_SET:
        return world.service.fw_in_progress
    if result is CoreResult.IMAGE_DOWNLOAD_FAILED and world.scenario.config.has(
        Defect.DOWNLOAD_FAILURE_DROPPED
    ):
        return False  # PROP-45: no case for the failure
    return result in _SAME_NAME or result in _CLEARS_FW or result in _CLEARS_ERASE


def process_core_result(world: World, result: CoreResult) -> World:
    """SVC-30: the core's result (event ``core_result``) writes the single status slot; the
    service goes to UPDATE_USER. SVC-31: failures clear ``otaFwInProgress``."""
    world = world.note(f"core -> service: {result.name}")
    if result in _SAME_NAME:
        return set_service(world, status=_SAME_NAME[result])
    if result in _CLEARS_FW:
        return set_service(world, status=_CLEARS_FW[result], fw_in_progress=False)
    if result in _CLEARS_ERASE:
        return set_service(world, status=_CLEARS_ERASE[result], erase_in_progress=False)
    assert result is CoreResult.IMAGE_STATUS_SET
    return set_service(
        world, status=SvcStatus.DB_ENTRY_SUCCESS, download_success=True, fw_in_progress=False
    )
