"""REL-1..REL-5: release make: contents, determinism, --force, atomicity, CLI errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from _release import BASE_URL
from click.testing import CliRunner

from otamodel.cli import main
from otamodel.formats import jdiff, signature
from otamodel.formats import manifest as mf
from otamodel.model import REAL_GEOMETRY, make_image
from otamodel.release import ReleaseError, _make, make_release, read_release


def _bin(tmp: Path, version: int) -> Path:
    path = tmp / f"app{version}.bin"
    path.write_bytes(make_image(REAL_GEOMETRY, version, "app", 3).data)
    return path


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_make_writes_image_manifest_patch_and_summary(tmp_path: Path) -> None:
    key = signature.derive_private_key_pem(12345)
    r2 = tmp_path / "r2"
    make_release(_bin(tmp_path, 2), r2, version=2, base_url=BASE_URL, name="app_v2")
    info = make_release(
        _bin(tmp_path, 3),
        tmp_path / "r3",
        version=3,
        base_url=BASE_URL + "/",
        name="app_v3",
        key_pem=key,
        bases=[r2],
    )
    tree = _tree(tmp_path / "r3")
    assert sorted(tree) == ["app_v3.bin", "from-v2/app_v3.patch", "ota.json", "release.json"]
    image = tree["app_v3.bin"]
    entry = mf.parse(tree["ota.json"]).entry
    assert entry is not None
    assert entry.version.valueint == 3
    assert entry.url.text == f"{BASE_URL}/app_v3.bin"
    assert entry.digest.text == hashlib.sha256(image).hexdigest()
    assert signature.verify(image, entry.signature.text or "", signature.public_key_pem(key))
    (patch,) = entry.patch or ()
    base = (r2 / "app_v2.bin").read_bytes()
    assert patch.base_version.valueint == 2
    assert patch.base_ver_digest.text == hashlib.sha256(base).hexdigest()
    assert patch.patch_url.text == f"{BASE_URL}/from-v2/app_v3.patch"
    data = tree["from-v2/app_v3.patch"]
    assert patch.patch_digest.text == hashlib.sha256(data).hexdigest()
    assert jdiff.decode(base, data, dialect="07", strict=True) == image
    assert mf.get_image_file_name(patch.patch_url.text or "") == "app_v3.bin"
    assert read_release(tmp_path / "r3") == info


def test_make_is_deterministic(tmp_path: Path) -> None:
    key = signature.derive_private_key_pem(777)
    source = _bin(tmp_path, 2)
    for out in ("a", "b"):
        make_release(source, tmp_path / out, version=2, base_url=BASE_URL, key_pem=key)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_make_from_hex_follows_hex2bin(tmp_path: Path) -> None:
    import bincopy

    image = make_image(REAL_GEOMETRY, 2, "app", 2).data
    records = bincopy.BinFile()
    records.add_binary(image, address=0x10020000)
    hex_path = tmp_path / "app.hex"
    hex_path.write_text(records.as_ihex())
    make_release(hex_path, tmp_path / "r", version=2, base_url=BASE_URL)
    assert (tmp_path / "r" / "app_v2.bin").read_bytes() == image


def test_existing_output_needs_force_and_must_be_a_release(tmp_path: Path) -> None:
    source = _bin(tmp_path, 2)
    out = tmp_path / "r"
    make_release(source, out, version=2, base_url=BASE_URL)
    with pytest.raises(ReleaseError, match="--force"):
        make_release(source, out, version=2, base_url=BASE_URL)
    make_release(source, out, version=3, base_url=BASE_URL, force=True)
    assert read_release(out).version == 3
    assert sorted(p.name for p in out.iterdir()) == ["app2_v3.bin", "ota.json", "release.json"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ReleaseError, match="not a release directory"):
        make_release(source, other, version=2, base_url=BASE_URL, force=True)
    assert (other / "keep.txt").read_text() == "mine"
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(ReleaseError):
        make_release(source, plain, version=2, base_url=BASE_URL, force=True)
    assert plain.read_text() == "x"


def test_a_failed_make_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _bin(tmp_path, 2)
    out = tmp_path / "r"
    make_release(source, out, version=2, base_url=BASE_URL)
    before = _tree(out)

    def broken(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_make.os, "replace", broken)
    with pytest.raises(OSError):
        make_release(source, out, version=3, base_url=BASE_URL, force=True)
    monkeypatch.undo()
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app2.bin", "r"]
    with pytest.raises(ReleaseError):
        make_release(source, tmp_path / "new", version=2, base_url="ftp://x", name="a")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "0"], "--version"),
        (["--version", "2", "--name", "factory_reset"], "own file"),
        (["--version", "2", "--name", "factory_image"], "own file"),
        (["--version", "2", "--name", "../x"], "--name"),
        (["--version", "2", "--base", "nowhere"], "release"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    source = _bin(tmp_path, 2)
    result = CliRunner().invoke(
        main, ["release", "make", str(source), str(tmp_path / "out"), "--base-url", BASE_URL, *args]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_make_and_lint(tmp_path: Path) -> None:
    runner = CliRunner()
    source = _bin(tmp_path, 2)
    out = tmp_path / "r2"
    result = runner.invoke(
        main,
        [
            "release",
            "make",
            str(source),
            str(out),
            "--version",
            "2",
            "--base-url",
            BASE_URL,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["image"]["file"] == "app2_v2.bin" and summary["lint"] == []
    result = runner.invoke(main, ["release", "lint", str(out)])
    assert result.exit_code == 0 and "no problems" in result.output
    os.remove(out / "app2_v2.bin")
    result = runner.invoke(main, ["release", "lint", str(out), "--json"])
    assert result.exit_code == 1
    (problem,) = json.loads(result.output)
    assert problem["rule"] == "REL-11"
    assert problem["effect"]["status"] == "DOWNLOAD_FAILED"


def test_small_patches_are_padded_to_the_first_download_buffer(tmp_path: Path) -> None:
    old = make_image(REAL_GEOMETRY, 2, "app", 3).data
    new = bytearray(old)
    new[5000:5004] = b"\xa7\xa7\x00\x01"  # a tiny change, with bytes that need escaping
    (tmp_path / "new.bin").write_bytes(bytes(new))
    r2 = tmp_path / "r2"
    (tmp_path / "old.bin").write_bytes(old)
    make_release(tmp_path / "old.bin", r2, version=2, base_url=BASE_URL, name="app_v2")
    for minimum, folder in ((4096, "r3"), (0, "r3-small")):
        make_release(
            tmp_path / "new.bin",
            tmp_path / folder,
            version=3,
            base_url=BASE_URL,
            name="app_v3",
            bases=[r2],
            min_patch=minimum,
        )
    padded = (tmp_path / "r3" / "from-v2" / "app_v3.patch").read_bytes()
    small = (tmp_path / "r3-small" / "from-v2" / "app_v3.patch").read_bytes()
    assert len(small) < 100
    assert 4096 <= len(padded) < 4096 + 64
    for patch in (small, padded):
        assert jdiff.decode(old, patch, dialect="07", strict=True) == bytes(new)
    assert _make.pad_patch(old, bytes(new), small, 4096) == padded
    assert _make.pad_patch(old, bytes(new), padded, 100) == padded
    nothing_equal = jdiff.encode(b"", b"x" * 10)
    assert _make.pad_patch(b"", b"x" * 10, nothing_equal, 4096) == nothing_equal


def test_normal_manifests_clear_an_erase_request(tmp_path: Path) -> None:
    """REL-9: every image release says "EraseVer": false (a device keeps an earlier erase
    request until a manifest clears it; the model shows it in test_release_lint)."""
    make_release(_bin(tmp_path, 2), tmp_path / "r2", version=2, base_url=BASE_URL)
    entry = json.loads((tmp_path / "r2" / "ota.json").read_bytes())["ota"][0]
    assert entry["EraseVer"] is False


def _erase_cli(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["release", "make", *args])
    return result.exit_code, result.output


def test_cli_makes_a_deterministic_erasever_release(tmp_path: Path) -> None:
    """REL-9: --erase-version N writes {"ota":[{"Version":N,"EraseVer":true}]} and a summary
    marked erase; the same call gives the same bytes; lint reports the erase's rules."""
    trees = []
    for name in ("e1", "e2"):
        code, output = _erase_cli(tmp_path, str(tmp_path / name), "--erase-version", "2")
        assert code == 0, output
        assert "EraseVer release of v2" in output
        trees.append(_tree(tmp_path / name))
    assert trees[0] == trees[1]
    assert json.loads(trees[0]["ota.json"]) == {"ota": [{"Version": 2, "EraseVer": True}]}
    info = read_release(tmp_path / "e1")
    assert info.erase and info.image is None and info.version == 2 and info.get_files() == ()
    summary = json.loads(trees[0]["release.json"])
    assert summary["erase"] is True and summary["image"] is None
    code, output = _erase_cli(
        tmp_path, str(tmp_path / "e3"), "--erase-version", "2", "--json", "--manifest-size", "64"
    )
    assert code == 0, output
    rules = [p["rule"] for p in json.loads(output)["lint"]]
    assert "REL-22" in rules and "MAN-31" in rules  # manifest lint's "asks to erase" warning
    assert len((tmp_path / "e3" / "ota.json").read_bytes()) == 64


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["OUT", "--erase-version", "2", "--version", "2"], "exclude each other"),
        (["SRC", "OUT", "--erase-version", "2"], "OUT (with --erase-version)"),
        (["OUT", "--erase-version", "0"], "--erase-version"),
        (["OUT", "--erase-version", "2", "--manifest-size", "10"], "--manifest-size"),
        (["SRC", "OUT", "--version", "2"], "--base-url"),
        (["SRC", "OUT", "--version", "2", "--base-url", BASE_URL, "--digest", "00"], "--unchecked"),
    ],
)
def test_erase_and_override_errors_are_one_line_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    source = _bin(tmp_path, 2)
    paths = {"SRC": str(source), "OUT": str(tmp_path / "out")}
    code, output = _erase_cli(tmp_path, *(paths.get(a, a) for a in args))
    assert code == 2, output
    assert message in output and "Traceback" not in output
    assert not (tmp_path / "out").exists()


def test_unchecked_writes_the_fields_as_given_and_records_them(tmp_path: Path) -> None:
    """REL-8: --unchecked makes a deliberately wrong release: a device-file name, an URL
    scheme the device refuses, a Version, Digest, BaseVersion and BaseVerDigest as given;
    release.json keeps the true files and names what was overridden; lint reports it."""
    r2 = tmp_path / "r2"
    make_release(_bin(tmp_path, 2), r2, version=2, base_url=BASE_URL, name="app_v2")
    with pytest.raises(ReleaseError, match="--unchecked"):
        make_release(
            _bin(tmp_path, 3), tmp_path / "x", version=3, base_url=BASE_URL, name="factory_reset"
        )
    overrides = _make.Overrides(version=1000, digest="00" * 32, base_version=7, base_digest="11")
    info = make_release(
        _bin(tmp_path, 3),
        tmp_path / "r3",
        version=3,
        base_url="HTTP://127.0.0.1:8000",
        name="factory_reset",
        bases=[r2],
        overrides=overrides,
        unchecked=True,
        manifest_size=1000,
    )
    assert info.unchecked == (
        "name",
        "base_url",
        "version",
        "digest",
        "base_version",
        "base_digest",
    )
    manifest = (tmp_path / "r3" / "ota.json").read_bytes()
    assert len(manifest) == 1000
    entry = json.loads(manifest)["ota"][0]
    assert (entry["Version"], entry["Digest"], entry["URL"]) == (
        1000,
        "00" * 32,
        "HTTP://127.0.0.1:8000/factory_reset.bin",
    )
    assert (entry["Patch"][0]["BaseVersion"], entry["Patch"][0]["BaseVerDigest"]) == (7, "11")
    image = (tmp_path / "r3" / "factory_reset.bin").read_bytes()
    assert read_release(tmp_path / "r3").get_image("r3").sha256 == hashlib.sha256(image).hexdigest()
    result = CliRunner().invoke(main, ["release", "lint", str(tmp_path / "r3"), "--json"])
    rules = {p["rule"] for p in json.loads(result.output)}
    assert {"REL-10", "REL-13"} <= rules


def test_cli_unchecked_overrides(tmp_path: Path) -> None:
    """REL-8 on the command line: the overrides need --unchecked and land in the manifest."""
    out = tmp_path / "r2"
    args = ["release", "make", str(_bin(tmp_path, 2)), str(out), "--version", "2"]
    args += ["--base-url", BASE_URL, "--manifest-version", "1000", "--digest", "ab" * 32]
    result = CliRunner().invoke(main, [*args, "--unchecked", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["unchecked"] == ["version", "digest"]
    assert "REL-10" in {p["rule"] for p in summary["lint"]}
    entry = json.loads((out / "ota.json").read_bytes())["ota"][0]
    assert (entry["Version"], entry["Digest"]) == (1000, "ab" * 32)
