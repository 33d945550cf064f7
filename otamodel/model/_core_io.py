"""The core's file-heavy tasks: clean-up, download, digest checks and the patch build."""

from __future__ import annotations

import hashlib

from otamodel.errors import ManifestError, PatchError
from otamodel.formats import jdiff, otadb
from otamodel.formats import manifest as mf
from otamodel.model._config import Defect
from otamodel.model._enums import CoreResult, CoreTask, DownloadStep
from otamodel.model._machine import send
from otamodel.model._physics import FsClose, FsCreate, FsDelete, FsWrite, PersistentOp
from otamodel.model._state import World
from otamodel.model._storage import (
    FACTORY_FILE,
    enqueue,
    get_fs_view,
    load_db,
    process_exception,
    set_core,
    set_net,
)

R = CoreResult


def get_cleanup_deletes(w: World) -> list[PersistentOp]:
    """CORE-11: ``OTA_CleanUp`` deletes every ``*.bin`` except ``factory_reset.bin*`` that no
    DB row name starts with (all of them when there is no DB; none when the DB fails to load)."""
    fs = get_fs_view(w)
    result, db = load_db(w)
    names: list[str] | None = None
    if result != 1:
        if result != 0 or db is None:
            return []
        names = [otadb.get_field_string(db, row, 0) or "" for row in range(len(db.rows))]
    ops: list[PersistentOp] = []
    for fname, _ in fs.files:
        if not fname.endswith(".bin") or fname.startswith(FACTORY_FILE):
            continue
        if names is not None and any(name.startswith(fname) for name in names):
            continue
        ops.append(FsDelete(fname))
    return ops


def get_image_name(w: World) -> str | None:
    try:
        return mf.get_image_file_name(w.core.params.url, patch=w.core.params.patch_request)
    except ManifestError:
        return None


def is_image_name_bad(w: World) -> bool:
    """CORE-15: ``create_image_file`` on a URL without a name writes through NULL."""
    return get_image_name(w) is None


def process_download_crash(w: World) -> World:
    """CORE-15, DEV-6: DOWNLOAD_START is emitted, then the CPU hangs."""
    w = send(w, "service", "core_result", R.IMAGE_DOWNLOAD_START)
    return process_exception(w, f"create_image_file on {w.core.params.url!r}")


def process_download_init(w: World) -> World:
    """CORE-15: D_INIT emits DOWNLOAD_START and creates/truncates the file."""
    w = send(w, "service", "core_result", R.IMAGE_DOWNLOAD_START)
    name = get_image_name(w)
    assert name is not None
    w = enqueue(w, [FsCreate(name)])
    return set_core(w, image_name=name, copied=0, total=0, idle=False)


def is_read_failed(w: World) -> bool:
    """CORE-18: a negative read (or no response)."""
    net = w.net
    return net.failed or net.body is None or not w.network_up


def process_read_failed(w: World) -> World:
    """CORE-18: a failed read gives IMAGE_DOWNLOAD_FAILED and leaves the file open."""
    w = set_net(w, failed=False)
    return set_core(w, result=R.IMAGE_DOWNLOAD_FAILED)


def is_first_buffer_short(w: World) -> bool:
    """CORE-16: fewer than 4096 bytes never complete the first buffer."""
    body = w.net.body
    return body is not None and len(body) < w.scenario.geometry.chunk


def process_download_timeout(w: World) -> World:
    """CORE-16: the 1000 s timeout (or ENV-6 a connection that ended early):
    IMAGE_DOWNLOAD_FAILED."""
    return set_core(w, result=R.IMAGE_DOWNLOAD_FAILED)


def _get_window(w: World) -> tuple[int, int]:
    core = w.core
    if core.sub is DownloadStep.D_GET_CONTENT_LENGTH:
        return 0, w.net.content_length  # CORE-16: the first 4 KB fixes the total
    return core.copied, core.total


def is_download_complete(w: World) -> bool:
    start, total = _get_window(w)
    return start >= total


def is_body_truncated(w: World) -> bool:
    """ENV-6: the server sent fewer bytes than Content-Length and the connection ended
    (dropped, or stalled into the 1000 s timeout) before this buffer filled: the read is
    negative and the partial buffer is not written."""
    start, total = _get_window(w)
    body = w.net.body
    return body is not None and start + min(w.scenario.geometry.chunk, total - start) > len(body)


def get_truncated_length(w: World) -> int | None:
    """ENV-8: the Content-Length a ``truncate`` input makes the device use: one byte more than
    it has copied, while it downloads an image whose length so far ends later (None: refused)."""
    core = w.core
    if core.task is not CoreTask.DOWNLOAD_IMAGE or not w.net.open or w.net.body is None:
        return None
    if core.sub not in (DownloadStep.D_GET_CONTENT_LENGTH, DownloadStep.D_DOWNLOAD):
        return None
    start, total = _get_window(w)
    claimed = start + 1
    return claimed if claimed < total and claimed <= len(w.net.body) else None


def process_truncate(w: World) -> World:
    """ENV-8: the server's Content-Length (or the stale ``field_content_length`` the device
    keeps when the header is missing, ENV-6) ends one byte into the next chunk while the body
    goes on: the device copies that byte, reports IMAGE_DOWNLOADED and hashes only the
    Content-Length bytes (CORE-16, CORE-17, CORE-19). The length is chosen when the download
    reaches it, which the device cannot tell from the header arriving first."""
    claimed = get_truncated_length(w)
    assert claimed is not None
    w = set_net(w, content_length=claimed)
    if w.core.sub is DownloadStep.D_DOWNLOAD:
        w = set_core(w, total=claimed)
    return w


def process_downloaded(w: World) -> World:
    """CORE-17: every byte copied: IMAGE_DOWNLOADED."""
    return set_core(w, result=R.IMAGE_DOWNLOADED)


def process_download_chunk(w: World) -> World:
    """CORE-17: one chunk per step."""
    chunk = w.scenario.geometry.chunk
    net = w.net
    body = net.body
    assert body is not None
    start, total = _get_window(w)
    data = body[start : start + min(chunk, total - start)]
    if net.corrupt and data:
        data = bytes([data[0] ^ 0x01]) + data[1:]
        w = set_net(w, corrupt=False)
    w = enqueue(w, [FsWrite(w.core.image_name, start, data)])
    return set_core(w, total=total, copied=start + len(data))


def process_download_close(w: World) -> World:
    """CORE-18: D_DONE closes the downloader."""
    return set_net(w, open=False)


def process_verify(w: World) -> World:
    """CORE-19: SHA-256 over the file (Content-Length bytes, or the file size on the patch
    path) against the expected digest; a mismatch closes and deletes the file."""
    core = w.core
    patch_file = core.task is CoreTask.VERIFY_PATCH_IMAGE_DIGEST
    start = R.PATCH_IMAGE_DIGEST_VERIFY_START if patch_file else R.IMAGE_DIGEST_VERIFY_START
    w = send(w, "service", "core_result", start)
    data = get_fs_view(w).get(core.image_name) or b""
    if not core.params.patch_request:
        data = data[: w.net.content_length]
    expected = mf.get_digest_bytes(core.params.patch_digest if patch_file else core.params.digest)
    ok = hashlib.sha256(data).digest() == expected
    ok = ok or w.scenario.config.has(Defect.CORE_SKIPS_DIGEST)  # PROP-45
    if not ok:
        w = enqueue(w, [FsClose(core.image_name), FsDelete(core.image_name)])
        failed = R.PATCH_IMAGE_DIGEST_VERIFY_FAILED if patch_file else R.IMAGE_DIGEST_VERIFY_FAILED
        return set_core(w, result=failed, idle=False)
    w = enqueue(w, [FsClose(core.image_name)])
    success = R.PATCH_IMAGE_DIGEST_VERIFY_SUCCESS if patch_file else R.IMAGE_DIGEST_VERIFY_SUCCESS
    return set_core(w, result=success, new_downloaded_img=True, idle=False)


def process_patch_build(w: World) -> World:
    """CORE-41: janpatch the DB base file with the ``.patch`` into ``<patch base>.bin``; the
    target is created (truncated) first, so a target named like the base reads an empty base;
    the ``.patch`` is deleted; PATCH_EVENT_COMPLETED or PATCH_IMAGE_FAILED."""
    core = w.core
    fs = get_fs_view(w)
    patch_name = core.image_name
    target = patch_name.rsplit(".", 1)[0] + ".bin" if "." in patch_name else patch_name + "bin"
    source = b"" if core.patch_source == target else (fs.get(core.patch_source) or b"")
    patch = fs.get(patch_name) or b""
    ops: list[PersistentOp] = [FsClose(patch_name), FsCreate(target)]
    try:
        new = jdiff.decode(source, patch, dialect="07", strict=False)
    except PatchError:
        ops.append(FsDelete(patch_name))
        return set_core(enqueue(w, ops), result=R.PATCH_IMAGE_FAILED, image_name=target)
    chunk = w.scenario.geometry.chunk
    ops.extend(FsWrite(target, off, new[off : off + chunk]) for off in range(0, len(new), chunk))
    ops.extend([FsClose(target), FsDelete(patch_name)])
    return set_core(enqueue(w, ops), result=R.PATCH_EVENT_COMPLETED, image_name=target)
