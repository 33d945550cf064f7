"""``otamodel keygen | sign | verify | hex2bin | hexmerge`` (otamodel.cli.crypto)."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from otamodel.cli import main
from otamodel.formats import hexfile as hx
from otamodel.formats import signature as sig
from otamodel.formats.digest import sha256_bytes

OPENSSL = shutil.which("openssl")
START = hx.DEFAULT_START


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


def assert_one_line_error(result: Result, code: int = 2) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error"), result.stderr
    assert result.stdout == ""


def rec(kind: int, offset: int, data: bytes = b"") -> str:
    body = bytes([len(data), offset >> 8, offset & 0xFF, kind]) + data
    return ":" + (body + bytes([-sum(body) & 0xFF])).hex().upper()


def records(address: int, data: bytes) -> str:
    return rec(4, 0, (address >> 16).to_bytes(2, "big")) + "\n" + rec(0, address & 0xFFFF, data)


def hex_text(*parts: tuple[int, bytes]) -> str:
    return "\n".join([*(records(a, d) for a, d in parts), ":00000001FF", ""])


# --------------------------------------------------------------------------- keys and signatures


def test_keygen_writes_key_and_pub(tmp_path: Path) -> None:
    key = tmp_path / "ota.key"
    result = run("keygen", key)
    assert result.exit_code == 0, result.stderr
    private = key.read_bytes()
    assert private.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    assert (tmp_path / "ota.pub").read_bytes() == sig.public_key_pem(private)
    assert stat.S_IMODE(key.stat().st_mode) & 0o077 == 0  # private key not group/world readable
    assert sig.load_private_key(private).curve.name == "secp256r1"


@pytest.mark.skipif(OPENSSL is None, reason="openssl CLI not installed")
def test_keygen_key_loads_in_openssl(tmp_path: Path) -> None:
    key = tmp_path / "ota.key"
    assert run("keygen", key).exit_code == 0
    assert OPENSSL is not None
    done = subprocess.run(
        [OPENSSL, "ec", "-in", str(key), "-pubout"], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (tmp_path / "ota.pub").read_bytes()


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    key = tmp_path / "ota.key"
    assert run("keygen", key).exit_code == 0
    before = key.read_bytes(), (tmp_path / "ota.pub").read_bytes()
    result = run("keygen", key)
    assert_one_line_error(result)
    assert "--force" in result.stderr
    assert (key.read_bytes(), (tmp_path / "ota.pub").read_bytes()) == before
    forced = run("keygen", "--force", key)
    assert forced.exit_code == 0
    assert key.read_bytes() != before[0]
    assert (tmp_path / "ota.pub").read_bytes() == sig.public_key_pem(key.read_bytes())


def test_keygen_existing_pub_alone_is_refused_and_no_pub_option(tmp_path: Path) -> None:
    (tmp_path / "a.pub").write_text("keep")
    assert_one_line_error(run("keygen", tmp_path / "a.key"))
    assert not (tmp_path / "a.key").exists()
    assert run("keygen", "--no-pub", tmp_path / "a.key").exit_code == 0
    assert (tmp_path / "a.pub").read_text() == "keep"


def test_sign_and_verify_exit_codes(vectors_dir: Path, tmp_path: Path) -> None:
    folder = vectors_dir / "signature"
    key, pub = folder / "ECC_prime256v1.key", folder / "ECC_prime256v1.pub"
    image = folder / "app_v2.bin"
    signed = run("sign", "--key", key, image)
    assert signed.exit_code == 0, signed.stderr
    text = signed.stdout.strip()
    assert len(text) == 88
    assert sig.verify(image.read_bytes(), text, pub.read_bytes())

    good = run("verify", "--key", pub, "--signature", text, image)
    assert (good.exit_code, good.stdout.strip()) == (0, "valid")
    assert run("verify", "-k", key, "-s", text + "\n", image).exit_code == 0
    bad = run("verify", "--key", pub, "--signature", text, folder / "app_v3.bin")
    assert (bad.exit_code, bad.stdout.strip()) == (1, "invalid")
    assert run("verify", "--key", folder / "other.pub", "--signature", text, image).exit_code == 1
    assert_one_line_error(run("verify", "--key", pub, "--signature", "%%%", image))
    assert_one_line_error(run("verify", "--key", pub, "--signature", text[:60], image))
    assert_one_line_error(run("verify", "--key", image, "--signature", text, image))
    assert_one_line_error(run("sign", "--key", pub, image))


def test_sign_deterministic_matches_library(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_bytes(sig.derive_private_key_pem(7))
    image = tmp_path / "img.bin"
    image.write_bytes(b"\x01" * 5000)
    result = run("sign", "--deterministic", "-k", key, image)
    assert result.stdout.strip() == sig.sign(image.read_bytes(), key.read_bytes(), True)


def test_every_vector_row_through_the_cli(vectors_dir: Path) -> None:
    folder = vectors_dir / "signature"
    lines = (folder / "SIGNATURES.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    expected = {"valid": 0, "invalid-garbage": 2, "invalid-short": 2}
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        result = run(
            "verify",
            "-k",
            folder / "ECC_prime256v1.pub",
            "-s",
            row["signature_rs_b64"],
            folder / row["file"],
        )
        assert result.exit_code == expected.get(row["expect"], 1), row


# --------------------------------------------------------------------------- hex2bin


def test_hex2bin_prints_digest_and_writes_default_output(tmp_path: Path) -> None:
    source = tmp_path / "app.hex"
    source.write_text(hex_text((START + 0x1000, b"\x12\x34")))
    result = run("hex2bin", "-i", source)
    assert result.exit_code == 0, result.stderr
    data = (tmp_path / "app.bin").read_bytes()
    assert data == b"\xff" * 0x1000 + b"\x12\x34"
    assert result.stdout.strip() == f'"Digest":"{sha256_bytes(data).hex()}"'


def test_hex2bin_factory_window_options_and_json(tmp_path: Path) -> None:
    source = tmp_path / "app.hex"
    source.write_text(hex_text((0x2000, b"\x00\x01"), (0x3000, b"\x02")))
    out = tmp_path / "f.bin"
    result = run(
        "hex2bin", "-i", source, "-o", out, "-s", "2000", "-z", "0x100", "--factory", "--json"
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    data = out.read_bytes()
    assert data == b"\xf8\x01" + b"\xff" * 0xFE
    assert summary["digest"] == sha256_bytes(data).hex()
    assert summary["size"] == 0x100 and summary["factory"] is True
    assert summary["start"] == 0x2000 and summary["end"] == 0x2100
    assert summary["placed_records"] == 1
    assert summary["dropped_records"] == [{"line": 4, "address": 0x3000, "length": 1}]


def test_hex2bin_reports_dropped_records_on_stderr(tmp_path: Path) -> None:
    source = tmp_path / "unified.hex"
    source.write_text(hex_text((0x1FC00000, b"\x01"), (START, b"\x02")))
    result = run("hex2bin", "-i", source, "-o", tmp_path / "o.bin")
    assert result.exit_code == 0
    assert "1 data record(s)" in result.stderr and "line 2" in result.stderr
    assert (tmp_path / "o.bin").read_bytes() == b"\x02"


def test_hex2bin_malformed_leaves_no_output(tmp_path: Path) -> None:
    source = tmp_path / "bad.hex"
    source.write_text(hex_text((START, b"\x01")).replace(":00000001FF", ":00000001FE"))
    out = tmp_path / "bad.bin"
    result = run("hex2bin", "-i", source, "-o", out)
    assert_one_line_error(result)
    assert "line 3" in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.hex"]  # no temporary left over

    out.write_bytes(b"previous")
    assert_one_line_error(run("hex2bin", "-i", source, "-o", out))
    assert out.read_bytes() == b"previous"


def test_hex2bin_bad_options(tmp_path: Path) -> None:
    source = tmp_path / "a.hex"
    source.write_text(hex_text((START, b"\x01")))
    assert run("hex2bin", "-i", source, "-s", "xyz").exit_code == 2
    assert_one_line_error(run("hex2bin", "-i", source, "-z", "0"))
    assert_one_line_error(run("hex2bin", "-i", source, "-o", source))
    assert run("hex2bin", "-i", tmp_path / "missing.hex").exit_code == 2
    assert not (tmp_path / "a.bin").exists()


def test_hex2bin_non_ascii_byte_names_line(tmp_path: Path) -> None:
    source = tmp_path / "a.hex"
    source.write_bytes(records(START, b"\x01").encode() + b"\n:\xff\xfe\n:00000001FF\n")
    result = run("hex2bin", "-i", source)
    assert_one_line_error(result)
    assert "line 3" in result.stderr


# --------------------------------------------------------------------------- hexmerge


def test_hexmerge(tmp_path: Path) -> None:
    boot, app, out = tmp_path / "boot.hex", tmp_path / "app.hex", tmp_path / "unified.hex"
    boot.write_text(hex_text((0x1FC00000, b"\xb0\xb1")))
    app.write_text(hex_text((START, b"\xa0")))
    result = run("hexmerge", boot, app, "-o", out)
    assert result.exit_code == 0, result.stderr
    image = hx.load_hex(out.read_text())
    assert image.segments == ((START, b"\xa0"), (0x1FC00000, b"\xb0\xb1"))


def test_hexmerge_conflict_leaves_no_output(tmp_path: Path) -> None:
    boot, app, out = tmp_path / "boot.hex", tmp_path / "app.hex", tmp_path / "unified.hex"
    boot.write_text(hex_text((START, b"\x01\x02")))
    app.write_text(hex_text((START + 1, b"\x03")))
    result = run("hexmerge", boot, app, "-o", out)
    assert_one_line_error(result)
    assert "0x10020001" in result.stderr and "app.hex" in result.stderr
    assert not out.exists()


def test_commands_are_registered() -> None:
    result = run("--help")
    for name in ("keygen", "sign", "verify", "hex2bin", "hexmerge"):
        assert name in result.stdout
