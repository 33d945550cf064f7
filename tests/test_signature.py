"""ECDSA P-256 raw r‖s signatures (otamodel.formats.signature): vectors, OpenSSL, properties."""

from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from hypothesis import given, settings
from hypothesis import strategies as st

from otamodel.errors import SignatureError
from otamodel.formats import signature as sig
from otamodel.formats.digest import sha256_bytes

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")

KEY_1 = sig.derive_private_key_pem(1)
KEY_2 = sig.derive_private_key_pem(0xC0FFEE)


def _rows(folder: Path) -> list[dict[str, str]]:
    lines = (folder / "SIGNATURES.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:] if line]


@pytest.fixture(scope="module")
def sigdir(vectors_dir: Path) -> Path:
    return vectors_dir / "signature"


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, check=False)


# --------------------------------------------------------------------------- vectors


def test_every_vector_row(sigdir: Path) -> None:
    """Each row of SIGNATURES.tsv gets the conclusion its ``expect`` column states."""
    pub = (sigdir / "ECC_prime256v1.pub").read_bytes()
    private = (sigdir / "ECC_prime256v1.key").read_bytes()
    other = (sigdir / "other.pub").read_bytes()
    rows = _rows(sigdir)
    assert len(rows) >= 10
    for row in rows:
        data = (sigdir / row["file"]).read_bytes()
        assert sha256_bytes(data).hex() == row["sha256"]
        text, expect = row["signature_rs_b64"], row["expect"]
        try:
            sig.decode_signature(text)
        except SignatureError:
            well_formed = False
        else:
            well_formed = True
        if expect == "valid":
            assert sig.verify(data, text, pub), row
            assert sig.verify(data, text, private), row  # a private PEM verifies too
            assert sig.verify_digest(bytes.fromhex(row["sha256"]), text, pub), row
        else:
            assert expect.startswith("invalid"), row
            if well_formed:
                assert sig.verify(data, text, pub) is False, row
            else:
                with pytest.raises(SignatureError):
                    sig.verify(data, text, pub)
        if well_formed and expect != "invalid-wrong-key":
            assert sig.verify(data, text, other) is False, row


def test_wrong_key_row_is_signed_by_other_key(sigdir: Path) -> None:
    """The README says no signature verifies with other.pub, but the ``invalid-wrong-key`` row
    was made with other.pub's private key: it verifies there (OpenSSL agrees, see below)."""
    other = (sigdir / "other.pub").read_bytes()
    [row] = [row for row in _rows(sigdir) if row["expect"] == "invalid-wrong-key"]
    data = (sigdir / row["file"]).read_bytes()
    assert sig.verify(data, row["signature_rs_b64"], other)


@needs_openssl
def test_every_well_formed_row_agrees_with_openssl(sigdir: Path, tmp_path: Path) -> None:
    """For both public keys, the project and ``openssl dgst -verify`` reach the same verdict."""
    der_path = tmp_path / "sig.der"
    checked = 0
    for row in _rows(sigdir):
        try:
            raw = sig.decode_signature(row["signature_rs_b64"])
        except SignatureError:
            continue
        der_path.write_bytes(sig.raw_to_der(raw))
        for pub in ("ECC_prime256v1.pub", "other.pub"):
            done = _openssl(
                "dgst",
                "-sha256",
                "-verify",
                sigdir / pub,
                "-signature",
                der_path,
                sigdir / row["file"],
            )
            ours = sig.verify(
                (sigdir / row["file"]).read_bytes(),
                row["signature_rs_b64"],
                (sigdir / pub).read_bytes(),
            )
            assert ours == (done.returncode == 0), (row, pub, done.stdout)
            checked += 1
    assert checked >= 16


def test_vector_malformed_rows_raise_and_zero_is_false(sigdir: Path) -> None:
    """garbage and short are malformed (typed error); an all-zero r‖s is well formed but false."""
    by_kind = {row["expect"]: row for row in _rows(sigdir)}
    pub = (sigdir / "ECC_prime256v1.pub").read_bytes()
    for kind in ("invalid-garbage", "invalid-short"):
        with pytest.raises(SignatureError):
            sig.decode_signature(by_kind[kind]["signature_rs_b64"])
    zero = by_kind["invalid-zero"]
    assert sig.decode_signature(zero["signature_rs_b64"]) == bytes(64)
    assert sig.verify((sigdir / zero["file"]).read_bytes(), zero["signature_rs_b64"], pub) is False


def test_vector_key_is_p256_and_public_matches(sigdir: Path) -> None:
    private = (sigdir / "ECC_prime256v1.key").read_bytes()
    pub = (sigdir / "ECC_prime256v1.pub").read_bytes()
    assert sig.load_private_key(private).curve.name == "secp256r1"
    assert sig.public_key_pem(private) == sig.public_key_pem(pub)
    assert sig.public_key_pem(private).decode() == pub.decode()


# --------------------------------------------------------------------------- OpenSSL interop


@needs_openssl
def test_project_signature_verifies_with_openssl(sigdir: Path, tmp_path: Path) -> None:
    private = sig.generate_private_key_pem()
    (tmp_path / "k.pem").write_bytes(private)
    (tmp_path / "pub.pem").write_bytes(sig.public_key_pem(private))
    for name in ("app_v2.bin", "tiny.bin", "empty.bin"):
        data = (sigdir / name).read_bytes()
        text = sig.sign(data, private)
        assert len(text) == sig.SIGNATURE_B64_LENGTH
        (tmp_path / "sig.der").write_bytes(sig.raw_to_der(sig.decode_signature(text)))
        done = _openssl(
            "dgst",
            "-sha256",
            "-verify",
            tmp_path / "pub.pem",
            "-signature",
            tmp_path / "sig.der",
            sigdir / name,
        )
        assert done.returncode == 0, done.stderr
        assert b"Verified OK" in done.stdout


@needs_openssl
def test_openssl_signature_verifies_with_project(sigdir: Path, tmp_path: Path) -> None:
    key = sigdir / "ECC_prime256v1.key"
    pub = (sigdir / "ECC_prime256v1.pub").read_bytes()
    for name in ("app_v3.bin", "empty.bin"):
        done = _openssl("dgst", "-sha256", "-sign", key, sigdir / name)
        assert done.returncode == 0, done.stderr
        text = sig.encode_signature(sig.der_to_raw(done.stdout))
        data = (sigdir / name).read_bytes()
        assert sig.verify(data, text, pub)
        assert not sig.verify(data + b"\0", text, pub)


@needs_openssl
def test_generated_key_reads_in_openssl(tmp_path: Path) -> None:
    private = sig.generate_private_key_pem()
    assert private.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    (tmp_path / "k.pem").write_bytes(private)
    done = _openssl("ec", "-in", tmp_path / "k.pem", "-pubout")
    assert done.returncode == 0, done.stderr
    assert done.stdout == sig.public_key_pem(private)
    assert _openssl("ec", "-in", tmp_path / "k.pem", "-check", "-noout").returncode == 0


# --------------------------------------------------------------------------- behaviour


def test_sign_verify_round_trip_and_deterministic() -> None:
    text = sig.sign(b"image", KEY_1, deterministic=True)
    assert text == sig.sign(b"image", KEY_1, deterministic=True)
    assert len(text) == 88 and text.endswith("==")
    assert sig.verify(b"image", text, KEY_1)
    assert not sig.verify(b"image", text, KEY_2)
    assert not sig.verify(b"imagf", text, KEY_1)
    assert text == sig.sign_digest(sha256_bytes(b"image"), KEY_1, deterministic=True)
    assert sig.verify_digest(sha256_bytes(b"image"), text, sig.public_key_pem(KEY_1))
    randomised = {sig.sign(b"image", KEY_1) for _ in range(3)}
    assert len(randomised) == 3
    assert all(sig.verify(b"image", each, KEY_1) for each in randomised)


def test_str_pem_is_accepted() -> None:
    text = sig.sign(b"x", KEY_1.decode(), deterministic=True)
    assert sig.verify(b"x", text, sig.public_key_pem(KEY_1).decode())


def test_derive_private_key_bounds() -> None:
    assert sig.derive_private_key_pem(1) == KEY_1
    for bad in (0, -1, sig.CURVE_ORDER):
        with pytest.raises(SignatureError):
            sig.derive_private_key_pem(bad)
    sig.derive_private_key_pem(sig.CURVE_ORDER - 1)


def test_out_of_range_r_s_is_false_not_error() -> None:
    digest = sha256_bytes(b"x")
    order = sig.CURVE_ORDER.to_bytes(32, "big")
    for raw in (bytes(64), order + bytes(31) + b"\1", b"\xff" * 64):
        assert sig.verify_digest(digest, sig.encode_signature(raw), KEY_1) is False


def test_high_s_variant_also_verifies() -> None:
    """Malleability: (r, n - s) verifies as well (OpenSSL behaves the same)."""
    raw = sig.decode_signature(sig.sign(b"m", KEY_1, deterministic=True))
    s = int.from_bytes(raw[32:], "big")
    flipped = raw[:32] + (sig.CURVE_ORDER - s).to_bytes(32, "big")
    assert sig.verify(b"m", sig.encode_signature(flipped), KEY_1)


def test_non_canonical_base64_padding_bits_tolerated() -> None:
    text = sig.sign(b"m", KEY_1, deterministic=True)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(text[85])
    assert last & 0xF == 0
    mutated = text[:85] + alphabet[last | 1] + "=="
    assert sig.decode_signature(mutated) == sig.decode_signature(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A" * 88,
        "A" * 86 + "==" + "\n",
        " " + "A" * 86 + "==",
        "A" * 84 + "====",
        base64.b64encode(bytes(63)).decode(),
        base64.b64encode(bytes(65)).decode(),
        base64.b64encode(bytes(70)).decode(),
        "é" * 88,
    ],
)
def test_malformed_signature_text(text: str) -> None:
    with pytest.raises(SignatureError):
        sig.decode_signature(text)
    with pytest.raises(SignatureError):
        sig.verify(b"x", text, KEY_1)


def test_wrong_lengths_raise() -> None:
    for raw in (b"", bytes(63), bytes(65)):
        with pytest.raises(SignatureError):
            sig.encode_signature(raw)
        with pytest.raises(SignatureError):
            sig.raw_to_der(raw)
    for digest in (b"", bytes(31), bytes(33)):
        with pytest.raises(SignatureError):
            sig.verify_digest(digest, sig.encode_signature(bytes(64)), KEY_1)
        with pytest.raises(SignatureError):
            sig.sign_digest(digest, KEY_1)
    with pytest.raises(SignatureError):
        sig.verify_digest(bytes(32), b"not text", KEY_1)  # type: ignore[arg-type]


def test_der_too_wide_raises() -> None:
    with pytest.raises(SignatureError):
        sig.der_to_raw(utils.encode_dss_signature(1 << 256, 1))


def _pem_private(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_wrong_curve_and_algorithm_raise() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    ed = ed25519.Ed25519PrivateKey.generate()
    p384_pub = p384.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ed_pub = ed.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for pem in (_pem_private(p384), _pem_private(ed)):
        with pytest.raises(SignatureError):
            sig.load_private_key(pem)
        with pytest.raises(SignatureError):
            sig.sign(b"x", pem)
    for pem in (p384_pub, ed_pub, _pem_private(p384)):
        with pytest.raises(SignatureError):
            sig.load_public_key(pem)
        with pytest.raises(SignatureError):
            sig.verify(b"x", sig.encode_signature(bytes(64)), pem)
    with pytest.raises(SignatureError):  # a public key cannot sign
        sig.load_private_key(sig.public_key_pem(KEY_1))


def test_pkcs8_and_encrypted_keys() -> None:
    key = sig.load_private_key(KEY_2)
    pkcs8 = _pem_private(key)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    text = sig.sign(b"x", encrypted, password=b"secret")
    assert sig.verify(b"x", text, pkcs8)
    for password in (None, b"wrong"):
        with pytest.raises(SignatureError):
            sig.sign(b"x", encrypted, password=password)
    with pytest.raises(SignatureError):  # a passphrase for an unencrypted key
        sig.load_private_key(pkcs8, password=b"secret")
    with pytest.raises(SignatureError):  # encrypted private key without passphrase
        sig.verify(b"x", text, encrypted)


# --------------------------------------------------------------------------- properties


@settings(max_examples=60)
@given(raw=st.binary(min_size=64, max_size=64))
def test_raw_base64_der_round_trips(raw: bytes) -> None:
    text = sig.encode_signature(raw)
    assert len(text) == sig.SIGNATURE_B64_LENGTH
    assert sig.decode_signature(text) == raw
    der = sig.raw_to_der(raw)
    assert sig.der_to_raw(der) == raw
    assert sig.raw_to_der(sig.der_to_raw(der)) == der


@settings(max_examples=60)
@given(text=st.text(max_size=100) | st.text(alphabet="ABCDEFabcdef0123456789+/=", max_size=100))
def test_decode_signature_only_raises_typed(text: str) -> None:
    try:
        raw = sig.decode_signature(text)
    except SignatureError:
        return
    assert len(raw) == 64


@settings(max_examples=60)
@given(data=st.binary(max_size=120))
def test_der_to_raw_only_raises_typed(data: bytes) -> None:
    try:
        raw = sig.der_to_raw(data)
    except SignatureError:
        return
    assert len(raw) == 64


_BANNERS = ("PUBLIC KEY", "EC PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY")


@st.composite
def _pem_like(draw: st.DrawFn) -> bytes:
    banner = draw(st.sampled_from(_BANNERS))
    body = draw(st.binary(max_size=150))
    if draw(st.booleans()):  # start from a real key and damage it
        real = KEY_1 if "PRIVATE" in banner else sig.public_key_pem(KEY_1)
        real_body = base64.b64decode(b"".join(real.splitlines()[1:-1]))
        cut = draw(st.integers(0, len(real_body)))
        body = real_body[:cut] + body[:4] + real_body[cut + 4 :]
    encoded = base64.encodebytes(body)
    return b"-----BEGIN %s-----\n%s-----END %s-----\n" % (
        banner.encode(),
        encoded,
        banner.encode(),
    )


@settings(max_examples=60)
@given(pem=st.binary(max_size=200) | _pem_like())
def test_key_loading_only_raises_typed(pem: bytes) -> None:
    for load in (sig.load_private_key, sig.load_public_key):
        with contextlib.suppress(SignatureError):
            load(pem)


@settings(max_examples=20)
@given(message=st.binary(max_size=64), scalar=st.integers(1, sig.CURVE_ORDER - 1))
def test_sign_verify_property(message: bytes, scalar: int) -> None:
    key = sig.derive_private_key_pem(scalar)
    text = sig.sign(message, key, deterministic=True)
    assert sig.verify(message, text, key)
    assert not sig.verify(message + b"!", text, key)
