"""ECDSA P-256 / SHA-256 image signatures in the form Harmony's tools and bootloader use.

A signature is made over the SHA-256 of the whole ``.bin`` file and travels as the raw
fixed-length ``r‖s`` string (32-byte big-endian ``r`` then ``s``, 64 bytes), base64-encoded to
88 characters: the manifest's ``Signature`` field and the ``*_sign.txt`` files. OpenSSL and the
``cryptography`` library speak DER instead; :func:`raw_to_der` and :func:`der_to_raw` convert.

Every malformed input (wrong length, bad base64, unreadable key, a key on another curve) raises
:class:`~otamodel.errors.SignatureError`. :func:`verify` returns ``False`` only for a well-formed
signature that does not match.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from otamodel.errors import SignatureError
from otamodel.formats.digest import DIGEST_SIZE, sha256_bytes

__all__ = [
    "CURVE_NAME",
    "CURVE_ORDER",
    "RAW_SIGNATURE_SIZE",
    "SIGNATURE_B64_LENGTH",
    "PemLike",
    "decode_signature",
    "der_to_raw",
    "derive_private_key_pem",
    "encode_signature",
    "generate_private_key_pem",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
    "raw_to_der",
    "sign",
    "sign_digest",
    "verify",
    "verify_digest",
]

PemLike = bytes | str
"""A PEM document, as bytes or text."""

CURVE_NAME = "secp256r1"
"""The only accepted curve (OpenSSL's ``prime256v1``)."""

CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
"""The order ``n`` of the P-256 group; valid private scalars and ``r``, ``s`` lie in [1, n)."""

_SCALAR_SIZE = 32
RAW_SIGNATURE_SIZE = 2 * _SCALAR_SIZE
"""A raw ``r‖s`` signature is 64 bytes."""

SIGNATURE_B64_LENGTH = 88
"""Base64 of 64 bytes, with its ``==`` padding, is 88 characters."""

_PUBLIC_BANNER = b"-----BEGIN PUBLIC KEY-----"


def _as_bytes(pem: PemLike) -> bytes:
    if isinstance(pem, str):
        try:
            return pem.encode("ascii")
        except UnicodeEncodeError as exc:
            raise SignatureError("key is not a PEM document (non-ASCII text)") from exc
    return bytes(pem)


def _check_curve(curve: ec.EllipticCurve, what: str) -> None:
    if curve.name != CURVE_NAME:
        raise SignatureError(f"{what} is on curve {curve.name}, not P-256 ({CURVE_NAME})")


# --------------------------------------------------------------------------- encoding


def encode_signature(raw: bytes) -> str:
    """Base64 of a raw 64-byte ``r‖s`` signature, 88 characters (TOOL-2)."""
    if len(raw) != RAW_SIGNATURE_SIZE:
        raise SignatureError(f"raw r||s must be {RAW_SIGNATURE_SIZE} bytes, got {len(raw)}")
    return base64.b64encode(bytes(raw)).decode("ascii")


_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=]")


def decode_signature(b64: str) -> bytes:
    """The raw 64-byte ``r‖s`` from its base64 form (TOOL-3).

    Standard alphabet with padding, no whitespace. Characters outside the alphabet, bad
    padding, or a decoded length other than 64 raise :class:`SignatureError`. Non-zero unused
    bits in the last character are tolerated, as common base64 decoders do.
    """
    if not isinstance(b64, str):
        raise SignatureError(f"expected base64 text, not {type(b64).__name__}")
    bad = _NOT_BASE64.search(b64)
    if bad is not None:  # the offset is the character's index in the text
        raise SignatureError(f"{bad.group()!r} is not a base64 character", where=bad.start())
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"invalid base64 ({exc})", where=len(b64)) from exc
    if len(raw) != RAW_SIGNATURE_SIZE:
        raise SignatureError(
            f"base64 decodes to {len(raw)} bytes, expected {RAW_SIGNATURE_SIZE} (raw r||s)"
        )
    return raw


def raw_to_der(raw: bytes) -> bytes:
    """The DER ``ECDSA-Sig-Value`` (what OpenSSL reads) of a raw ``r‖s`` signature (TOOL-4)."""
    if len(raw) != RAW_SIGNATURE_SIZE:
        raise SignatureError(f"raw r||s must be {RAW_SIGNATURE_SIZE} bytes, got {len(raw)}")
    r = int.from_bytes(raw[:_SCALAR_SIZE], "big")
    s = int.from_bytes(raw[_SCALAR_SIZE:], "big")
    return utils.encode_dss_signature(r, s)


def der_to_raw(der: bytes) -> bytes:
    """The raw 64-byte ``r‖s`` form of a DER ECDSA signature (TOOL-4).

    Malformed DER, or an ``r``/``s`` that does not fit in 32 bytes, raises SignatureError.
    """
    try:
        r, s = utils.decode_dss_signature(bytes(der))
    except ValueError as exc:
        raise SignatureError(f"not a DER ECDSA signature ({exc})") from exc
    limit = 1 << (8 * _SCALAR_SIZE)
    if not (0 <= r < limit and 0 <= s < limit):
        raise SignatureError("DER signature has r or s wider than 32 bytes")
    return r.to_bytes(_SCALAR_SIZE, "big") + s.to_bytes(_SCALAR_SIZE, "big")


# --------------------------------------------------------------------------- keys


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def generate_private_key_pem() -> bytes:
    """A fresh P-256 private key as unencrypted SEC1 PEM (``BEGIN EC PRIVATE KEY``) (TOOL-8).

    This is the form ``openssl ecparam -genkey -name prime256v1 -noout`` writes.
    """
    return _private_pem(ec.generate_private_key(ec.SECP256R1()))


def derive_private_key_pem(scalar: int) -> bytes:
    """The SEC1 PEM of the P-256 key with private scalar ``scalar``, 1 ≤ scalar < n (TOOL-8).

    For fixed, reproducible test keys.
    """
    if not 1 <= scalar < CURVE_ORDER:
        raise SignatureError(f"private scalar must lie in [1, n), got {scalar:#x}")
    return _private_pem(ec.derive_private_key(scalar, ec.SECP256R1()))


@functools.lru_cache(maxsize=64)
def _load_private_cached(pem: bytes, password: bytes | None) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"cannot read private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignatureError(f"private key is {type(key).__name__}, not an EC key")
    _check_curve(key.curve, "private key")
    return key


@functools.lru_cache(maxsize=64)
def _load_public_cached(pem: bytes, password: bytes | None) -> ec.EllipticCurvePublicKey:
    if _PUBLIC_BANNER in pem:
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SignatureError(f"cannot read public key ({exc})") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureError(f"public key is {type(key).__name__}, not an EC key")
        _check_curve(key.curve, "public key")
        return key
    return _load_private_cached(pem, password).public_key()


def load_private_key(pem: PemLike, *, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    """Read a P-256 private key from PEM: SEC1 or PKCS#8, optionally encrypted (TOOL-7).

    An unreadable document, a wrong or missing passphrase, a non-EC key or another curve
    raises SignatureError.
    """
    return _load_private_cached(_as_bytes(pem), password)


def load_public_key(pem: PemLike, *, password: bytes | None = None) -> ec.EllipticCurvePublicKey:
    """Read a P-256 verification key from a public *or* private PEM document (TOOL-7).

    Like ``ecdsaSign.py``, a document with the ``BEGIN PUBLIC KEY`` banner is read as a
    SubjectPublicKeyInfo; anything else is read as a private key and its public half used.
    """
    return _load_public_cached(_as_bytes(pem), password)


def public_key_pem(pem: PemLike, *, password: bytes | None = None) -> bytes:
    """The SubjectPublicKeyInfo PEM (``BEGIN PUBLIC KEY``) of a private or public key (TOOL-8).

    This is the form ``openssl ec -pubout`` writes.
    """
    return load_public_key(pem, password=password).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------- sign / verify


def _check_digest(digest: bytes) -> bytes:
    if len(digest) != DIGEST_SIZE:
        raise SignatureError(f"digest must be {DIGEST_SIZE} bytes, got {len(digest)}")
    return bytes(digest)


def _prehashed(deterministic: bool) -> ec.ECDSA:
    return ec.ECDSA(utils.Prehashed(hashes.SHA256()), deterministic_signing=deterministic)


def sign_digest(
    digest: bytes,
    private_pem: PemLike,
    *,
    deterministic: bool = False,
    password: bytes | None = None,
) -> str:
    """Sign a 32-byte SHA-256 digest; the base64 raw ``r‖s`` signature (TOOL-6, TOOL-9).

    Randomised like ``ecdsaSign.py`` unless ``deterministic`` (RFC 6979), which makes the
    same key and digest always give the same signature.
    """
    key = load_private_key(private_pem, password=password)
    der = key.sign(_check_digest(digest), _prehashed(deterministic))
    return encode_signature(der_to_raw(der))


def sign(
    data: bytes,
    private_pem: PemLike,
    deterministic: bool = False,
    *,
    password: bytes | None = None,
) -> str:
    """Sign ``data``: ECDSA P-256 over SHA-256 of the whole of it, base64 raw ``r‖s`` (TOOL-1).

    See :func:`sign_digest` for ``deterministic`` (TOOL-9).
    """
    return sign_digest(
        sha256_bytes(data), private_pem, deterministic=deterministic, password=password
    )


@functools.lru_cache(maxsize=4096)
def _verify_digest_cached(digest: bytes, signature_b64: str, key_pem: bytes) -> bool:
    key = _load_public_cached(key_pem, None)
    der = raw_to_der(decode_signature(signature_b64))
    try:
        key.verify(der, digest, _prehashed(False))
    except InvalidSignature:
        return False
    return True


def verify_digest(digest: bytes, signature_b64: str, key_pem: PemLike) -> bool:
    """Whether ``signature_b64`` signs the 32-byte SHA-256 ``digest`` under ``key_pem`` (TOOL-6).

    This is the bootloader's check: it verifies the signature over the digest it expects and
    separately compares that digest with the hash of what it programmed. Results are memoised
    on ``(digest, signature, key)``. Malformed signatures or keys raise SignatureError (TOOL-5);
    ``key_pem`` may be public or unencrypted private PEM (TOOL-7).
    """
    if not isinstance(signature_b64, str):
        raise SignatureError(f"expected base64 text, not {type(signature_b64).__name__}")
    return _verify_digest_cached(_check_digest(digest), signature_b64, _as_bytes(key_pem))


def verify(data: bytes, signature_b64: str, key_pem: PemLike) -> bool:
    """Whether ``signature_b64`` is a valid signature of the whole of ``data`` (TOOL-1, TOOL-5).

    ``False`` only for a well-formed signature that does not match, including one whose ``r``
    or ``s`` is 0 or not below the group order. Bad base64, a decoded length other than 64,
    or an unreadable or non-P-256 key raise SignatureError.
    """
    return verify_digest(sha256_bytes(data), signature_b64, key_pem)
