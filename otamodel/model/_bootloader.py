"""The OTA bootloader machine, ``Bootloader_Tasks`` (research note §5.4)."""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib

import attrs

from otamodel.errors import ManifestError
from otamodel.formats import bootctl, otadb, signature
from otamodel.formats import manifest as mf
from otamodel.model._config import Defect, Variant
from otamodel.model._enums import BackupStep, BlTask, FileState, SelectStep
from otamodel.model._machine import MachineDef, Nest, row
from otamodel.model._physics import (
    FlashErase,
    FsClose,
    FsCreate,
    FsDelete,
    FsFormat,
    FsMkdir,
    FsWrite,
    PersistentOp,
    get_page_program_ops,
)
from otamodel.model._state import World, replace
from otamodel.model._storage import (
    BOOT_ADDR,
    DB_NAME,
    FACTORY_DIGEST_FILE,
    FACTORY_FILE,
    FACTORY_SIGN_FILE,
    enqueue,
    get_bootctl,
    get_db_save_ops,
    get_fs_view,
    load_db,
    process_exception,
    set_boot,
)

B = BlTask
VALID, DOWNLOADED, DISABLED = (
    bootctl.ImageStatus.VALID,
    bootctl.ImageStatus.DOWNLOADED,
    bootctl.ImageStatus.DISABLED,
)
STATUS_MASK = bootctl.ImageStatus.UNBOOTED
"""BL-13's ``status &= 0xFC`` (the UNBOOTED value as a mask)."""


def _header_with(data: bytes, **fields: int) -> bytes:
    header = replace(bootctl.unpack(data[: bootctl.HEADER_SIZE]), **fields)
    return header.pack() + data[bootctl.HEADER_SIZE :]


# ------------------------------------------------------------------ INIT (BL-1)


def is_debug_type(w: World) -> bool:
    return get_bootctl(w).type == bootctl.ImageType.DEBUG


def is_factory_valid(w: World) -> bool:
    header = get_bootctl(w)
    return header.type == bootctl.ImageType.FACTORY_RESET and header.status == VALID


def is_factory_first_boot(w: World) -> bool:
    header = get_bootctl(w)
    return header.type == bootctl.ImageType.FACTORY_RESET and header.status != VALID


# ------------------------------------------------------------------ first-boot backup (BL-3)


def process_format(w: World) -> World:
    """BL-2: FACTORY_RESET type without F8 is the first boot: format the disk."""
    return enqueue(w, [FsFormat()])


def process_mkdir(w: World) -> World:
    """BL-3: create the ``ota`` directory."""
    return enqueue(w, [FsMkdir()])


def process_backup(w: World) -> World:
    """BL-3: create ``factory_reset.bin``, copy the slot (page 0 forced to
    F8/FACTORY_RESET/boot address), write boot control WITHOUT erase from the last page read
    with the three fields set, close, digest file (secure); then a software reset."""
    geometry = w.scenario.geometry
    pages = w.flash.pages
    first = _header_with(
        pages[0], status=VALID, type=bootctl.ImageType.FACTORY_RESET, boot_addr=BOOT_ADDR
    )
    chunks = [first, *pages[1:]]
    ops: list[PersistentOp] = [FsCreate(FACTORY_FILE)]
    ops.extend(FsWrite(FACTORY_FILE, i * geometry.page_size, c) for i, c in enumerate(chunks))
    last = _header_with(
        pages[-1], status=VALID, type=bootctl.ImageType.FACTORY_RESET, boot_addr=BOOT_ADDR
    )
    commit = get_page_program_ops(0, last, geometry)
    digest_ops: list[PersistentOp] = []
    if w.scenario.config.secure_boot:
        digest = hashlib.sha256(b"".join(chunks)).digest()
        digest_ops = [
            FsCreate(FACTORY_DIGEST_FILE),
            FsWrite(FACTORY_DIGEST_FILE, 0, digest),
            FsClose(FACTORY_DIGEST_FILE),
        ]
    if w.scenario.config.is_hardened and not w.scenario.config.has(Defect.BACKUP_COMMIT_FIRST):
        # HARD-8: everything the factory path needs is on disk before boot control says F8.
        ops.extend([FsClose(FACTORY_FILE), *digest_ops, *commit])
    else:
        ops.extend([*commit, FsClose(FACTORY_FILE), *digest_ops])
    return enqueue(w, ops)


# ------------------------------------------------------------------ CHECK_IMAGE (BL-4)


@attrs.frozen
class CheckDecision:
    """BL-4's decision and the statics it leaves (None: left as it was)."""

    jump: bool
    factory_reset: bool
    db: tuple[tuple[str, ...], ...] | None = None
    abandon: bool = False  # HARD-9: the last trial boot of this image failed
    database_found: bool | None = None
    selected_row: int | None = None

    def apply(self, w: World) -> World:
        boot = replace(
            w.boot, factory_reset=self.factory_reset, db=self.db, select_step=SelectStep.S_PARSE_DB
        )
        if self.database_found is not None:
            boot = replace(boot, database_found=self.database_found)
        if self.selected_row is not None:
            boot = replace(boot, selected_row=self.selected_row)
        return replace(w, boot=boot)


def get_check_decision(w: World) -> CheckDecision:
    """BL-4: blank first 16 bytes → factory; no DB → factory; otherwise jump iff boot
    control is F8 and the row (bootloader lookup, uint8 cast) is F8 with the same version."""
    page = w.flash.pages[0]
    if bootctl.is_blank_prefix(page):
        return CheckDecision(jump=False, factory_reset=True)
    header = get_bootctl(w)
    if w.scenario.config.has(Defect.BOOTLOADER_TRUSTS_HEADER) and header.status == VALID:
        return CheckDecision(jump=True, factory_reset=False)  # PROP-45: boot control decides
    result, db = load_db(w)
    if result == 1 or db is None:
        # SCN-12: imageDB was created before the load, so it is an empty DB, not NULL.
        return CheckDecision(jump=False, factory_reset=True, database_found=False, db=())
    row_index = otadb.get_image_row(db, header.version, bootloader=True)
    select = CheckDecision(
        jump=False, factory_reset=False, db=db.rows, database_found=True, selected_row=row_index
    )
    if row_index < 0:
        return select
    status = otadb.get_field_value(db, row_index, 1)
    version = otadb.get_field_value_32bit(db, row_index, 2)
    if status is None or version is None:
        return select
    if is_trial_failed(w, header.status, status, version == header.version):
        return replace(select, abandon=True)  # HARD-9
    never = w.scenario.config.has(Defect.BOOTLOADER_NEVER_FAST_PATH)  # PROP-45
    if header.status == VALID and version == header.version and status == VALID and not never:
        return replace(select, jump=True)
    return select


def is_trial_failed(w: World, boot_status: int, row_status: int, same: bool) -> bool:
    """HARD-9: boot control FC over an FE row means the bootloader programmed this image and
    started it, and the app never validated it: the trial boot failed, so the hardened
    bootloader invalidates the row instead of programming the same image again."""
    config = w.scenario.config
    if not config.is_hardened or config.has(Defect.TRIAL_BOOT_NOT_TRACKED):
        return False
    return same and boot_status == (DOWNLOADED & STATUS_MASK) and row_status == DOWNLOADED


def process_check_abandon(w: World) -> World | None:
    """HARD-9: a failed trial boot: invalidate its row (BL-14) and select again."""
    decision = get_check_decision(w)
    return decision.apply(w) if decision.abandon else None


def process_check_jump(w: World) -> World | None:
    """BL-4: the image in the slot is valid: jump (recording the statics the check leaves)."""
    decision = get_check_decision(w)
    return decision.apply(w) if decision.jump else None


def process_check_select(w: World) -> World:
    """BL-4: otherwise select an image (recording the statics the check leaves)."""
    return get_check_decision(w).apply(w)


# ------------------------------------------------------------------ SELECT_IMAGE (BL-5..BL-8)


def _overwrite(buffer: bytes, data: bytes) -> bytes:
    """SCN-10: a copy into a static buffer: the bytes after the copied ones stay as they were."""
    return data + buffer[len(data) :]


def _db(w: World) -> otadb.ImageDatabase | None:
    return otadb.ImageDatabase(rows=w.boot.db) if w.boot.db is not None else None


class SelectOutcome(enum.Enum):
    MORE = "more"  # BUSY: call again
    ERROR = "error"
    SUCCESS = "success"


@attrs.frozen
class Selection:
    outcome: SelectOutcome
    world: World


def get_select(w: World) -> Selection:
    """BL-5..BL-8: one call of ``Bootloader_Task_SelectImage``."""
    boot = w.boot
    fs = get_fs_view(w)
    secure = w.scenario.config.secure_boot
    if boot.factory_reset:
        if not boot.file_opened:
            # BL-5: the factory prologue reads sign/digest files (secure) and opens the backup.
            changes: dict[str, object] = {}
            if secure:
                sign = fs.get(FACTORY_SIGN_FILE)
                if sign is not None:
                    changes["signature_str"] = _overwrite(boot.signature_str, sign[:100])
                digest = fs.get(FACTORY_DIGEST_FILE)
                if digest is not None:
                    changes["digest_str"] = _overwrite(boot.digest_str, digest[:32])
            if boot.file_state is FileState.ERROR or not fs.is_present(FACTORY_FILE):
                return Selection(
                    SelectOutcome.MORE, set_boot(w, file_state=FileState.ERROR, **changes)
                )
            return Selection(
                SelectOutcome.MORE, set_boot(w, file_opened=True, file_name=FACTORY_FILE, **changes)
            )
        # BL-5: the DB is deleted on every call of the factory path.
        w = enqueue(w, [FsDelete(DB_NAME)])
        data = fs.get(FACTORY_FILE)
        closed = boot.file_state is FileState.CLOSED and not w.scenario.config.is_hardened
        if closed or not data:
            return Selection(
                SelectOutcome.ERROR, w
            )  # BL-7: EOF (empty file or closed handle) is an ERROR; HARD-4
        first = data[: w.scenario.geometry.chunk]
        header = first[: bootctl.HEADER_SIZE]
        w = set_boot(w, img=header, boot_ctl=first, file_name=FACTORY_FILE)
        if w.scenario.config.is_hardened:
            w = set_boot(w, new_image=False)  # HARD-13: the factory keeps its own header
        if bootctl.unpack(header).status != VALID:
            return Selection(SelectOutcome.ERROR, w)
        return Selection(SelectOutcome.SUCCESS, w)
    db = _db(w)
    if db is None:
        return Selection(SelectOutcome.ERROR, w)
    selected, best, status_seen = -1, 0, bootctl.unpack(boot.img).status
    total = otadb.get_total_imgs(db)
    for i in range(total):
        version = otadb.get_field_value_32bit(db, i, 2)
        if version is None and w.scenario.config.is_hardened:
            continue  # HARD-4: the hardened bootloader skips an unreadable row
        if version is None:
            # BL-6: an unreadable version: ERROR, and a 1-row DB switches to the factory path.
            return Selection(
                SelectOutcome.ERROR, set_boot(w, factory_reset=total == 1 or boot.factory_reset)
            )
        lowest = w.scenario.config.has(Defect.BOOTLOADER_RANKS_LOWEST)  # PROP-45
        if (best < version) if not lowest else (selected < 0 or version < best):
            status = otadb.get_field_value(db, i, 1)
            if status is None:
                return Selection(SelectOutcome.ERROR, w)
            status_seen = status
            ignore_new = w.scenario.config.has(Defect.BOOTLOADER_IGNORES_NEW_IMAGES)
            if status in ((VALID,) if ignore_new else (DOWNLOADED, VALID)):  # PROP-45
                selected, best = i, version
    img = _header_with(boot.img, status=status_seen, version=best)[: bootctl.HEADER_SIZE]
    if selected < 0:
        return Selection(
            SelectOutcome.MORE, set_boot(w, img=img, selected_row=-1, factory_reset=True)
        )
    name = otadb.get_field_string(db, selected, 0)
    # SCN-10: GetFieldString reads up to 100 characters and strcpy's them (with the NUL) over
    # digest_str[66]; what runs past it spills into digest_g, which formulate_digest rewrites.
    digest_text = otadb.get_field_string(db, selected, 4)
    if name is None or digest_text is None:
        return Selection(SelectOutcome.ERROR, set_boot(w, img=img, selected_row=selected))
    digest_str = _overwrite(boot.digest_str, digest_text.encode("latin-1") + b"\x00")
    changes = {"img": img, "selected_row": selected, "digest_str": digest_str}
    if secure:
        try:
            sign_name = mf.get_sign_file_name(name)
        except ManifestError:
            return Selection(
                SelectOutcome.MORE, process_exception(w, f"sign file name of {name!r}")
            )
        sign = fs.get(sign_name)
        if sign is not None:
            changes["signature_str"] = _overwrite(boot.signature_str, sign[:100])
    if not fs.is_present(name):
        # BL-8: an image that cannot be opened sends the next call to the factory path.
        return Selection(SelectOutcome.MORE, set_boot(w, factory_reset=True, **changes))
    data = fs.get(name) or b""
    first = data[: w.scenario.geometry.chunk]
    return Selection(
        SelectOutcome.SUCCESS,
        set_boot(w, new_image=True, file_name=name, boot_ctl=first, **changes),
    )


def process_select_success(w: World) -> World | None:
    """BL-5..BL-8: an image is selected: program it."""
    selection = get_select(w)
    return selection.world if selection.outcome is SelectOutcome.SUCCESS else None


def process_select(w: World) -> World:
    """BL-5..BL-8: run one call; ERROR keeps the task (no retry counter). HARD-4: in the
    hardened variant an ERROR of the normal branch falls back to the factory path."""
    selection = get_select(w)
    new = selection.world
    error = selection.outcome is SelectOutcome.ERROR
    if error and w.scenario.config.is_hardened and not new.boot.factory_reset:
        new = set_boot(new, factory_reset=True)
    return new


# ------------------------------------------------------------------ PROGRAM_IMAGE (BL-9)


def process_program(w: World) -> World:
    """BL-9: erase the whole slot (boot control first), program the body 4 KB at a time from
    the file, then the boot-control page last (new image: ``param.img`` as PRODUCTION with the
    status S_PARSE_DB left; factory: the file's first 4 KB)."""
    boot = w.boot
    geometry = w.scenario.geometry
    chunk = geometry.chunk
    data = get_fs_view(w).get(boot.file_name) or b""
    secure = w.scenario.config.secure_boot
    if boot.new_image or secure:
        copy_len = len(data)
        img = _header_with(boot.img, sz=len(data))[: bootctl.HEADER_SIZE]
    else:
        copy_len = geometry.slot_size
        img = boot.img
    ops: list[PersistentOp] = [FlashErase(p) for p in range(geometry.slot_pages)]
    if w.scenario.config.has(Defect.PROGRAM_WITHOUT_ERASE):
        ops = [FlashErase(0)]  # PROP-45: only boot control is erased
    buffer = boot.boot_ctl.ljust(chunk, b"\x00")
    offset = chunk
    while offset < copy_len:  # SCN-11: no bound: an image larger than the slot writes past it
        piece = data[offset : offset + chunk]
        buffer = piece + buffer[len(piece) :]  # a short read leaves the previous chunk's tail
        ops.extend(get_page_program_ops(offset // chunk, buffer, geometry))
        offset += chunk
    if boot.new_image:
        header = replace(
            bootctl.unpack(img), type=bootctl.ImageType.PRODUCTION, boot_addr=BOOT_ADDR
        )
        img = header.pack()
        page = (img + buffer[bootctl.HEADER_SIZE :])[:chunk]
    else:
        page = data[:chunk].ljust(chunk, b"\xff")
    ops.extend(get_page_program_ops(0, page, geometry))
    w = enqueue(w, ops)
    file_state = FileState.CLOSED if boot.factory_reset else boot.file_state
    return set_boot(w, img=img, copy_len=copy_len, file_state=file_state)


# ------------------------------------------------------------------ VERIFY_IMAGE (BL-10)


def get_expected_digest(w: World) -> bytes:
    """BL-10: ``formulate_digest``: raw bytes for the secure factory path, else hex pairs."""
    boot = w.boot
    if boot.factory_reset and w.scenario.config.secure_boot:
        return boot.digest_str[:32].ljust(32, b"\x00")
    return mf.get_digest_bytes(boot.digest_str.decode("latin-1"))


def is_signature_ok(w: World, digest: bytes) -> bool:
    """BL-11: base64 → r‖s (32+32, whatever the decoded length) → ECDSA P-256 over the
    expected digest with the compiled-in public key."""
    text = w.boot.signature_str.split(b"\x00")[0]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    key = w.scenario.public_key_pem
    if key is None or len(raw) < 64:
        return False
    return signature.verify_digest(digest, signature.encode_signature(raw[:64]), key)


def get_flash_digest(w: World) -> bytes:
    """BL-12: SHA-256 of ``sz`` bytes: the first 4 KB from the RAM copy, the rest from flash."""
    boot = w.boot
    size = bootctl.unpack(boot.img).sz
    chunk = w.scenario.geometry.chunk
    head = boot.boot_ctl[:chunk]
    key = (id(w.flash), head, size)
    hit = _DIGESTS.get(key)
    if hit is not None and hit[0] is w.flash:
        return hit[1]
    slot = w.flash.get_contents()
    digest = hashlib.sha256((head + slot[chunk:])[:size]).digest()
    if len(_DIGESTS) >= 16:
        del _DIGESTS[next(iter(_DIGESTS))]
    _DIGESTS[key] = (w.flash, digest)  # the entry keeps the flash object, so its id stays its
    return digest


_DIGESTS: dict[tuple[int, bytes, int], tuple[object, bytes]] = {}
"""Recent flash digests by the identity of the (immutable) flash object and the RAM copy."""


def is_verify_ok(w: World) -> bool:
    """BL-10: non-secure factory path skips verification; otherwise signature then digest."""
    secure = w.scenario.config.secure_boot
    if w.boot.factory_reset and not secure:
        return True
    if w.scenario.config.has(Defect.BOOTLOADER_SKIPS_VERIFY):
        return True  # PROP-45
    if w.scenario.config.has(Defect.BOOTLOADER_SKIPS_SIGNATURE):
        secure = False  # PROP-45
    expected = get_expected_digest(w)
    factory_trusted = w.boot.factory_reset and w.scenario.config.is_hardened
    # HARD-7: the hardened bootloader trusts the digest it wrote itself at backup time.
    if secure and not factory_trusted and not is_signature_ok(w, expected):
        return False
    return get_flash_digest(w) == expected


def process_verified(w: World) -> World:
    """BL-10: the check passed (PROP-1 judges the jump with the environment's oracle, not
    with this check)."""
    return w


def get_slot_body_digest(w: World) -> bytes:
    slot = w.flash.get_contents()
    return hashlib.sha256(slot[w.scenario.geometry.chunk :]).digest()


# ------------------------------------------------------------------ SET_IMAGE_STATUS / INVALIDATE


def process_set_status(w: World) -> World:
    """BL-13: read the page, ``status &= 0xFC``, copy ``param.img`` over the header, program
    WITHOUT erase (FE→FC, F8→F8, F0→F0)."""
    img = bootctl.unpack(w.boot.img)
    mask = VALID if w.scenario.config.has(Defect.BOOT_STATUS_VALID_AT_PROGRAM) else STATUS_MASK
    img = replace(img, status=img.status & mask)  # PROP-45: mask typo
    page = img.pack() + w.flash.pages[0][bootctl.HEADER_SIZE :]
    w = enqueue(w, get_page_program_ops(0, page, w.scenario.geometry))
    return set_boot(w, img=img.pack())


def process_invalidate(w: World) -> World:
    """BL-14: F0 into ``selected_row`` of the in-memory DB, delete that row, save the DB."""
    img = _header_with(w.boot.img, status=DISABLED)[: bootctl.HEADER_SIZE]
    w = set_boot(w, img=img, select_step=None)
    db = _db(w)
    if db is None:
        # SCN-12, DEV-6: imageDB is NULL (blank boot control: CheckImage never created it);
        # SetFieldValue writes through it.
        return process_exception(w, "INVALIDATE writes through a NULL imageDB")
    row = w.boot.selected_row
    if 0 <= row < len(db.rows):
        db = otadb.remove_row(otadb.set_status(db, row, "f0"), row)
    w = enqueue(w, get_db_save_ops(w, db))
    return set_boot(w, db=db.rows)


K = BackupStep
BOOTLOADER_TRANSITIONS: tuple[dict[str, object], ...] = (
    row("tick", B.INIT, B.JUMP_TO_APP, when=[is_debug_type]),
    row("tick", B.INIT, B.JUMP_TO_APP, when=[is_factory_valid]),
    row("tick", B.INIT, B.FACTORY_RESET, when=[is_factory_first_boot]),
    row("tick", B.INIT, B.CHECK_IMAGE),
    row(
        "tick", (B.FACTORY_RESET, K.FORMAT_DISK), (B.FACTORY_RESET, K.CREATE_DIR), do=process_format
    ),
    row("tick", (B.FACTORY_RESET, K.CREATE_DIR), (B.FACTORY_RESET, K.COPY_IMAGE), do=process_mkdir),
    row("tick", (B.FACTORY_RESET, K.COPY_IMAGE), (B.FACTORY_RESET, K.RESET), do=process_backup),
    row("tick", (B.FACTORY_RESET, K.RESET), B.SOFTWARE_RESET),
    row("tick", B.CHECK_IMAGE, B.JUMP_TO_APP, attempt=process_check_jump),
    row(
        "tick",
        B.CHECK_IMAGE,
        B.INVALIDATE_IMAGE,
        attempt=process_check_abandon,
        only=Variant.HARDENED,
    ),
    row("tick", B.CHECK_IMAGE, B.SELECT_IMAGE, do=process_check_select),
    row("tick", B.SELECT_IMAGE, B.PROGRAM_IMAGE, attempt=process_select_success),
    row("tick", B.SELECT_IMAGE, None, do=process_select),
    row("tick", B.PROGRAM_IMAGE, B.VERIFY_IMAGE, do=process_program),
    row("tick", B.VERIFY_IMAGE, B.SET_IMAGE_STATUS, when=[is_verify_ok], do=process_verified),
    row("tick", B.VERIFY_IMAGE, B.INVALIDATE_IMAGE),
    row("tick", B.SET_IMAGE_STATUS, B.JUMP_TO_APP, do=process_set_status),
    row("tick", B.INVALIDATE_IMAGE, B.SELECT_IMAGE, do=process_invalidate),
    # BL-15: jump to ``boot_addr`` as stored (the device then runs whatever is there).
    row("tick", B.JUMP_TO_APP, B.APPLICATION),
)


def _get_key(w: World) -> tuple[BlTask, BackupStep | None]:
    return (w.boot.task, w.boot.sub)


def _set_key(w: World, key: object) -> World:
    assert isinstance(key, tuple)
    return set_boot(w, task=key[0], sub=key[1])


BOOTLOADER_DEF = MachineDef(
    name="bootloader",
    states=(
        B.INIT,
        B.CHECK_IMAGE,
        B.SELECT_IMAGE,
        B.PROGRAM_IMAGE,
        B.VERIFY_IMAGE,
        B.SET_IMAGE_STATUS,
        B.INVALIDATE_IMAGE,
        B.JUMP_TO_APP,
        Nest(B.FACTORY_RESET, BackupStep),
        B.SOFTWARE_RESET,
        B.APPLICATION,
    ),
    initial=B.INIT,
    transitions=BOOTLOADER_TRANSITIONS,
    get_key=_get_key,
    set_key=_set_key,
    nested=True,
    finals=(B.SOFTWARE_RESET, B.APPLICATION),
)
