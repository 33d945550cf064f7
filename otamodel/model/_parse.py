"""``SYS_OTA_ParseJsonContent``: the service's reading of a manifest (SVC-20..SVC-29)."""

from __future__ import annotations

import attrs

from otamodel.formats import manifest as mf
from otamodel.formats import otadb, signature
from otamodel.model._config import Defect, Variant
from otamodel.model._state import OtaParams, World, replace
from otamodel.model._storage import load_db

URL_SIZE = 100


@attrs.frozen
class ParseOutcome:
    """What the parse leaves: its return value, the flags, params, and whether it jumped
    the service straight to ERASE_IMAGE."""

    result: bool
    erase_request: bool
    patch_request: bool
    params: OtaParams
    erase: bool = False
    why: str = ""


def _is_string(field: mf.JsonField | None) -> bool:
    return field is not None and field.kind == "string"


def _is_present(field: mf.JsonField | None) -> bool:
    return field is not None and field.kind != "absent"


def _valueint(field: mf.JsonField | None) -> int | None:
    """A number field's cJSON ``valueint`` (None when the field is not a number)."""
    if field is None or field.kind != "number":
        return None
    return int(field.valueint or 0)


def search_image_version(world: World, version: int, digest: str) -> str | None:
    """CORE-40: ``OTA_Search_ImageVersion``: the last DB row whose hex-parsed version equals
    ``version`` and whose digest has the same first 64 characters; returns its file name."""
    result, db = load_db(world)
    if result != 0 or db is None:
        return None
    row = otadb.get_image_row(db, version & 0xFFFFFFFF)
    if row < 0:
        return None
    stored = otadb.get_field_string(db, row, 4)
    if stored is None or _strncmp64(stored, digest) != 0:
        return None
    return otadb.get_field_string(db, row, 0)


def _strncmp64(a: str, b: str) -> int:
    a, b = a[:64].split("\0", maxsplit=1)[0], b[:64].split("\0", maxsplit=1)[0]
    return 0 if a == b else 1


def copy_url(params: OtaParams, url: str) -> OtaParams:
    """SVC-27: the URL is copied with ``strlen+1`` bytes into ``char[100]``; what does not fit
    runs on into ``serv_app_digest_string`` that follows it in memory."""
    raw = url + "\0"
    if len(raw) <= URL_SIZE:
        return replace(params, url=url)
    spill = raw[URL_SIZE:]
    digest = (spill + params.digest[len(spill) :])[:66]
    return replace(params, url=url, digest=digest.split("\0")[0] if "\0" in spill else digest)


def get_erase_statement(version: int) -> bytes:
    """HARD-15: what the publisher signs to ask for an erase: ``EraseVer:<Version>`` in ASCII
    (a statement no image signature can stand for)."""
    return b"EraseVer:%d" % version


def is_erase_authorised(world: World, sig: mf.JsonField, version: int) -> bool:
    """HARD-15: the hardened service in a secure build honours EraseVer only when the
    manifest's ``Signature`` (ECDSA P-256 raw r||s, base64) verifies over the erase statement
    with the publisher key the bootloader holds. Other builds and v3.9.x take any erase."""
    config = world.scenario.config
    if not (config.is_hardened and config.secure_boot):
        return True
    if not _is_string(sig) or not sig.text:
        return False
    if config.has(Defect.ERASE_SIGNATURE_PRESENCE_ONLY):
        return True  # PROP-45: a Signature is required but never verified
    key = world.scenario.public_key_pem
    if key is None:
        return False
    try:
        return bool(signature.verify(get_erase_statement(version), sig.text[:96], key))
    except ValueError:
        return False


def is_version_newer(world: World, running: int, offered: int) -> bool:
    """SVC-29: an update is available iff the compiled app version is strictly lower (also
    HARD-17's test of the version a download would start with)."""
    if world.scenario.config.has(Defect.ACCEPTS_OLDER_VERSION):
        return running != offered  # PROP-45: "different" instead of "newer"
    return running < offered


def process_manifest(world: World, data: bytes, app_version: int) -> ParseOutcome:
    """SVC-20: parse a manifest the way ``SYS_OTA_ParseJsonContent`` does (called after the
    cJSON syntax check passed). Only the last ``ota[]`` element counts (SVC-21)."""
    svc = world.service
    config = world.scenario.config
    params = svc.params
    erase_request = svc.erase_request
    if config.is_hardened and not config.has(Defect.ERASE_REQUEST_STICKY):
        erase_request = False  # HARD-16: each manifest asks for an erase or not by itself
    patch_request = svc.patch_request
    doc = mf.parse(data)
    entry = doc.entry

    def done(result: bool, why: str, *, erase: bool = False) -> ParseOutcome:
        return ParseOutcome(result, erase_request, patch_request, params, erase=erase, why=why)

    def field(name: str) -> mf.JsonField:
        value = getattr(entry, name) if entry is not None else mf.ABSENT
        assert isinstance(value, mf.JsonField)
        return value

    erase_ver = field("erase_ver")
    version = field("version")
    # SVC-22: EraseVer must be a bool; true needs a Version key; false clears; absent keeps.
    if _is_present(erase_ver):
        if erase_ver.kind != "bool":
            return done(False, "EraseVer is not a bool")
        if erase_ver.boolean:
            if not _is_present(version):
                return done(False, "EraseVer true without Version")
            erase_request = True
        else:
            erase_request = False
    if erase_request:
        # SVC-23: the erase path jumps the service to ERASE_IMAGE and returns false.
        value = _valueint(version)
        if not value:
            return done(False, "erase: Version is not a non-zero number")
        if not is_erase_authorised(world, field("signature"), value):
            erase_request = False  # HARD-15: an unsigned erase is refused, not remembered
            return done(False, "erase: no publisher signature over the erase")
        params = replace(params, delete_img_version=value)
        return done(False, "erase requested", erase=True)
    url, digest = field("url"), field("digest")
    if not (_is_present(version) and _is_present(url) and _is_present(digest)):
        return done(False, "Version, URL or Digest missing")
    err = False
    patches = entry.patch if entry is not None else None
    if config.patch:
        if patches is not None:
            # SVC-24: patch elements are scanned from the last to the first.
            for item in reversed(patches):
                if not _is_present(item.base_version):
                    return done(False, "Patch element without BaseVersion")
                if not _is_string(item.base_ver_digest):
                    return done(False, "BaseVerDigest is not a string")
                base = (
                    int(item.base_version.valueint or 0)
                    if item.base_version.kind == "number"
                    else 0
                )
                base_digest = item.base_ver_digest.text or ""
                if search_image_version(world, base, base_digest) is None:
                    continue
                if _is_string(item.patch_digest):
                    params = replace(
                        params,
                        patch_base_version=base,
                        base_digest=base_digest[:64],
                        patch_digest=(item.patch_digest.text or "")[:64],
                    )
                    if _is_string(item.patch_url):
                        params = copy_url(params, item.patch_url.text or "")
                        patch_request = True
                    else:
                        err = True
                    if _is_string(item.target_digest):
                        params = replace(params, target_digest=(item.target_digest.text or "")[:64])
                    else:
                        err = True
                else:
                    err = True
                if config.variant is Variant.V3_9_1:  # HARD-5: hardened keeps the 3.9.0 flow
                    # SVC-25: v3.9.1 returns at the first match, skipping everything below.
                    return done(not err, "patch base matched (v3.9.1 early return)")
                break  # SVC-26: v3.9.0 leaves the loop and goes on
        if not patch_request:
            if _is_string(url):
                params = copy_url(params, url.text or "")
            else:
                err = True
        else:
            params = replace(params, patch_request=True)
        if not patch_request:
            if _is_string(digest):
                params = replace(params, digest=(digest.text or "")[:64])
            else:
                err = True
        else:
            params = replace(params, digest=params.target_digest)
    else:
        if _is_string(url):
            params = copy_url(params, url.text or "")
        else:
            err = True
        if _is_string(digest):
            params = replace(params, digest=(digest.text or "")[:64])
        else:
            err = True
        signature = field("signature")
        if config.secure_boot and _is_present(signature):
            # SVC-28: only secure non-patch builds read Signature.
            if _is_string(signature):
                params = replace(
                    params, signature=(signature.text or "")[:96], signature_verification=True
                )
            else:
                err = True
    value = _valueint(version)
    if not value:
        err = True
    if err:
        return done(False, "a field has the wrong type")
    assert value is not None
    newer = is_version_newer(world, app_version, value)
    if world.scenario.config.has(Defect.OFFERED_VERSION_SKIPPED):
        newer = max(app_version, params.version) < value  # PROP-45: "offered once" is "done"
    if newer:
        params = replace(params, version=value)
        return done(True, f"version {value} > {app_version}")
    return done(False, f"version {value} not newer than {app_version}")
