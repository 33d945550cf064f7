"""The core's file-heavy tasks: clean-up, download, digest checks and the patch build."""

from __future__ import annotations

import hashlib

from otamodel.errors import ManifestError, PatchError
from otamodel.formats import jdiff, otadb
from otamodel.formats import manifest as mf
from otamodel.model._callback import process_core_callback
from otamodel.model._enums import CoreResult, CoreTask
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


def process_download_step(w: World) -> World:
    """CORE-15..CORE-18: ``OTA_Task_DownloadImage``: D_INIT emits DOWNLOAD_START and
    creates/truncates the file; the first 4 KB fixes the total from Content-Length; then one
    chunk per step; a failed read gives IMAGE_DOWNLOAD_FAILED and leaves the file open."""
    core = w.core
    chunk = w.scenario.geometry.chunk
    if core.sub == "D_INIT":
        w = process_core_callback(w, R.IMAGE_DOWNLOAD_START)
        try:
            name = mf.get_image_file_name(core.params.url, patch=core.params.patch_request)
        except ManifestError:
            return process_exception(w, f"create_image_file on {core.params.url!r}")
        w = enqueue(w, [FsCreate(name)])
        return set_core(
            w, sub="D_GET_CONTENT_LENGTH", image_name=name, copied=0, total=0, idle=False
        )
    if core.sub == "D_DONE":
        return set_net(w, open=False)
    net = w.net
    if net.failed or net.body is None or not w.network_up:
        w = set_net(w, failed=False)
        return set_core(w, sub="D_DONE", result=R.IMAGE_DOWNLOAD_FAILED)
    body = net.body
    if core.sub == "D_GET_CONTENT_LENGTH":
        if len(body) < chunk:
            # CORE-16: fewer than 4096 bytes never complete the first buffer: the 1000 s timeout.
            return set_core(w, sub="D_DONE", result=R.IMAGE_DOWNLOAD_FAILED)
        total = net.content_length
        start = 0
    else:
        total = core.total
        start = core.copied
    if start >= total:
        return set_core(w, sub="D_DONE", result=R.IMAGE_DOWNLOADED)
    want = min(chunk, total - start)
    if start + want > len(body):
        # ENV-6: the server sent fewer bytes than Content-Length and the connection ended
        # (dropped, or stalled into the 1000 s timeout) before this buffer filled: the read
        # is negative and the partial buffer is not written.
        return set_core(w, sub="D_DONE", result=R.IMAGE_DOWNLOAD_FAILED)
    data = body[start : start + want]
    if net.corrupt and data:
        data = bytes([data[0] ^ 0x01]) + data[1:]
        w = set_net(w, corrupt=False)
    w = enqueue(w, [FsWrite(core.image_name, start, data)])
    copied = start + len(data)
    w = set_core(w, sub="D_DOWNLOAD", total=total, copied=copied)
    return w


def process_verify(w: World) -> World:
    """CORE-19: SHA-256 over the file (Content-Length bytes, or the file size on the patch
    path) against the expected digest; a mismatch closes and deletes the file."""
    core = w.core
    patch_file = core.task is CoreTask.VERIFY_PATCH_IMAGE_DIGEST
    start = R.PATCH_IMAGE_DIGEST_VERIFY_START if patch_file else R.IMAGE_DIGEST_VERIFY_START
    w = process_core_callback(w, start)
    data = get_fs_view(w).get(core.image_name) or b""
    if not core.params.patch_request:
        data = data[: w.net.content_length]
    expected = mf.get_digest_bytes(core.params.patch_digest if patch_file else core.params.digest)
    ok = hashlib.sha256(data).digest() == expected
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
