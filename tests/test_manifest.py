"""The OTA manifest as the service reads it (otamodel.formats.manifest)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otamodel.errors import ManifestError
from otamodel.formats import manifest as mf
from otamodel.formats.manifest import OMIT, JsonField, PatchSpec
from otamodel.formats.signature import encode_signature

DIGEST = "ab" * 32
URL = "http://server/dir/app_v2.bin"
SIGNATURE = encode_signature(bytes(range(64)))


def doc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def entry(**fields: Any) -> mf.OtaEntry:
    m = mf.parse(doc({"ota": [fields]}))
    assert m.entry is not None
    return m.entry


# -- syntax (cJSON) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b"{}",
        b"[01, 1., -.5, 1e5, -0]",
        b'{"a":1} trailing garbage',
        b"\xef\xbb\xbf {}",
        b'"raw\x01control"',
        b"nullx",
        b'{"ota":[]}\x00{broken',
    ],
)
def test_accepted_like_cjson(text: bytes) -> None:
    mf.parse(text)


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        (b"", 0),
        (b"   ", 3),
        (b"NaN", 0),
        (b"[Infinity]", 1),
        (b"[-Infinity]", 1),
        (b"[+1]", 1),
        (b"[.5]", 1),
        (b'{"a":1,}', 7),
        (b"[1,]", 3),
        (b"[1 2]", 3),
        (b'{"a" 1}', 5),
        (b'{"a":1', 6),
        (b'"abc', 0),
        (b'"\\x"', 1),
        (b'"\\udc00"', 1),
        (b'"\\ud800x"', 1),
        (b"{a:1}", 1),
        (b"[1e]", 2),
        (b"\x00{}", 0),
    ],
)
def test_rejected_like_cjson_with_offset(text: bytes, offset: int) -> None:
    with pytest.raises(ManifestError) as info:
        mf.parse(text)
    assert info.value.where == offset


def test_nesting_limit_is_1000() -> None:
    mf.parse(b"[" * 1000 + b"]" * 1000)
    with pytest.raises(ManifestError, match="nesting"):
        mf.parse(b"[" * 1001 + b"]" * 1001)


def test_trailing_text_is_ignored_and_end_offset_kept() -> None:
    m = mf.parse(b'{"ota":[]} {"ota":[{"Version":9}]}')
    assert m.entry is None and m.end_offset == 10


# -- lookups ----------------------------------------------------------------------------------


def test_only_last_ota_element_is_used() -> None:
    m = mf.parse(doc({"ota": [{"Version": 5, "URL": "a"}, {"Version": 6}]}))
    assert m.elements == 2
    assert m.entry is not None and m.entry.version.valueint == 6
    assert not m.entry.url.is_present()


def test_keys_are_case_insensitive_and_first_duplicate_wins() -> None:
    m = mf.parse(b'{"OTA":[{"version":3,"VERSION":4,"uRl":"x"}]}')
    assert m.entry is not None
    assert m.entry.version.valueint == 3 and m.entry.url.text == "x"


@pytest.mark.parametrize(
    ("text", "elements", "kind"),
    [
        (b"{}", 0, "absent"),
        (b'{"ota":[]}', 0, "array"),
        (b'{"ota":"x"}', 0, "string"),
        (b'[{"ota":[{}]}]', 0, "absent"),
        (b'{"ota":{"a":{"Version":1},"b":{"Version":7}}}', 2, "object"),
    ],
)
def test_ota_shapes(text: bytes, elements: int, kind: str) -> None:
    m = mf.parse(text)
    assert (m.elements, m.ota.kind) == (elements, kind)
    if elements:
        assert m.entry is not None and m.entry.version.valueint == 7
    else:
        assert m.entry is None


def test_non_object_last_element_has_every_field_absent() -> None:
    m = mf.parse(doc({"ota": [{"Version": 1}, [1, 2]]}))
    assert m.entry == mf.OtaEntry(kind="array")


def test_field_kinds() -> None:
    e = entry(Version="2", URL=None, Digest=[], EraseVer=True, Signature={})
    assert e.version == JsonField("string", text="2")
    assert e.url.kind == "null" and e.digest.kind == "array" and e.signature.kind == "object"
    assert e.erase_ver == JsonField("bool", valueint=1, boolean=True)
    assert entry(EraseVer=False).erase_ver.valueint == 0
    assert not entry().version.is_present()


@pytest.mark.parametrize(
    ("number", "valueint"),
    [
        (b"2.9", 2),
        (b"-2.9", -2),
        (b"1e999", 0x7FFFFFFF),
        (b"-1e999", -0x80000000),
        (b"2147483648", 0x7FFFFFFF),
        (b"-2147483649", -0x80000000),
        (b"0.5", 0),
        (b"01", 1),
    ],
)
def test_valueint_saturates_and_truncates(number: bytes, valueint: int) -> None:
    m = mf.parse(b'{"ota":[{"Version":' + number + b"}]}")
    assert m.entry is not None and m.entry.version.valueint == valueint


def test_strings_are_c_strings_one_char_per_byte() -> None:
    assert entry(URL="a\u0000b").url.text == "a"
    assert entry(URL="\u00e9").url.text == "\xc3\xa9"
    raw = mf.parse('{"ota":[{"URL":"é"}]}'.encode())
    assert raw.entry is not None and raw.entry.url.text == "\xc3\xa9"
    assert entry(URL="\U0001f600").url.text == "\U0001f600".encode().decode("latin-1")
    odd = mf.parse(b'{"ota":[{"URL":"a\\uZZZZb"}]}')  # parse_hex4 gives 0: cut at the NUL
    assert odd.entry is not None and odd.entry.url.text == "a"


def test_patch_shapes() -> None:
    assert entry().patch is None
    element = {"BaseVersion": 1, "BaseVerDigest": DIGEST, "PatchURL": URL}
    e = entry(Patch=[element, 5])
    assert e.patch is not None and len(e.patch) == 2
    assert e.patch[0].base_version.valueint == 1 and not e.patch[0].target_digest.is_present()
    assert e.patch[1] == mf.PatchEntry(kind="number")
    assert entry(Patch="x").patch == () and entry(Patch="x").patch_field.kind == "string"
    by_member = entry(Patch={"k": element})
    assert by_member.patch is not None and by_member.patch[0].patch_url.text == URL


def test_files_element() -> None:
    m = mf.parse(doc({"ota": [{"a": 1}, {"FILES": []}, {"files": 1}, {}]}))
    assert m.files_element == 1


# -- serialize / make_manifest ----------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = ["Version", "version", "URL", "Digest", "EraseVer", "Signature", "Patch", "files", "x"]
PATCH_KEYS = [
    "BaseVersion",
    "baseversion",
    "BaseVerDigest",
    "PatchURL",
    "PatchDigest",
    "TargetDigest",
]
patch_elements = st.dictionaries(st.sampled_from(PATCH_KEYS), json_values, max_size=5) | json_values
entries = st.dictionaries(
    st.sampled_from(KEYS), json_values | st.lists(patch_elements, max_size=3), max_size=7
)
manifests = st.one_of(
    st.fixed_dictionaries({"ota": st.lists(entries | json_values, max_size=3)}),
    st.fixed_dictionaries({"ota": st.dictionaries(st.text(max_size=2), entries, max_size=2)}),
    json_values,
)


@settings(max_examples=150, deadline=None)
@given(manifests, st.booleans())
def test_serialize_round_trip(obj: Any, ascii_only: bool) -> None:
    data = json.dumps(obj, ensure_ascii=ascii_only).encode()
    m = mf.parse(data)
    again = mf.parse(mf.serialize(m))
    assert again == m
    assert mf.serialize(again) == mf.serialize(m)
    hash(m)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120) | manifests.map(lambda o: json.dumps(o).encode()[:-1]))
def test_random_input_raises_only_manifest_error(data: bytes) -> None:
    try:
        m = mf.parse(data)
    except ManifestError as exc:
        assert isinstance(exc.where, int) and 0 <= exc.where <= len(data)
        malformed = True
    else:
        hash(m)
        malformed = False
    problems = mf.lint(data)
    assert all(p.severity in ("error", "warning") for p in problems)
    assert malformed == any(p.message.startswith("malformed JSON") for p in problems)


def test_make_manifest() -> None:
    data = mf.make_manifest(2, URL, DIGEST, signature=SIGNATURE)
    assert data == (
        b'{"ota":[{"Version":2,"URL":"http://server/dir/app_v2.bin","Digest":"'
        + DIGEST.encode()
        + b'","Signature":"'
        + SIGNATURE.encode()
        + b'"}]}'
    )
    spec = PatchSpec(1, DIGEST, "http://s/p.patch", DIGEST, DIGEST)
    m = mf.parse(mf.make_manifest("2", OMIT, DIGEST, erase_ver=False, patches=[spec]))
    assert m.entry is not None
    assert m.entry.version.kind == "string" and not m.entry.url.is_present()
    assert m.entry.erase_ver.boolean is False
    assert m.entry.patch is not None and m.entry.patch[0].patch_url.text == "http://s/p.patch"
    with pytest.raises(ManifestError):
        mf.make_manifest(float("nan"), URL, DIGEST)


# -- core helpers -----------------------------------------------------------------------------


def test_get_digest_bytes() -> None:
    assert mf.get_digest_bytes(DIGEST.upper()) == bytes([0xAB]) * 32
    assert mf.get_digest_bytes("0102") == bytes([1, 2]) + bytes(30)
    assert mf.get_digest_bytes("abc") == bytes([0xAB, 0x0C]) + bytes(30)
    assert mf.get_digest_bytes("zz1g f-1x1") == bytes([0, 1, 0x0F, 0xFF, 0]) + bytes(27)
    assert mf.get_digest_bytes("ab\0\0cd") == bytes([0xAB, 0, 0xCD]) + bytes(29)
    assert mf.get_digest_bytes("ab" * 40)[-1] == 0xAB
    assert mf.truncate_digest_string("c" * 70) == "c" * 64
    assert mf.truncate_digest_string("ab\0cd") == "ab"


@pytest.mark.parametrize(
    ("url", "patch", "name"),
    [
        ("http://h/dir/app_v2.bin", False, "app_v2.bin"),
        ("http://h/app.hex", False, "app.bin"),
        ("http://h/a.tar.gz", False, "a.tar.bin"),
        ("http://h/f.bin?x=1.2", False, "f.bin?x=1.bin"),
        ("http://h/x.y/app.", False, "app.bin"),
        ("http://h/app_v3.bin", True, "app_v3.patch"),
    ],
)
def test_get_image_file_name(url: str, patch: bool, name: str) -> None:
    assert mf.get_image_file_name(url, patch) == name
    assert mf.get_image_path(url, patch) == "/mnt/myDrive1/ota/" + name


@pytest.mark.parametrize("url", ["http://h/x.y/app", "http://h/", "no-slash.bin"])
def test_get_image_file_name_undefined_cases_raise(url: str) -> None:
    with pytest.raises(ManifestError):
        mf.get_image_file_name(url)


def test_get_sign_file_name() -> None:
    assert mf.get_sign_file_name("http://h/d/app_v2.bin") == "app_v2_sign.txt"
    assert mf.get_sign_file_name("app.v2.bin") == "app.v2_sign.txt"
    with pytest.raises(ManifestError):
        mf.get_sign_file_name("http://h/noext")


def test_is_url_accepted() -> None:
    assert mf.is_url_accepted("http://x/a.bin") and mf.is_url_accepted("https://x/a.bin")
    assert not mf.is_url_accepted("HTTP://x/a.bin") and not mf.is_url_accepted("http:/x")
    assert not mf.is_url_accepted("http://x/a.bin", enforce_tls=True)


# -- lint -------------------------------------------------------------------------------------


def paths(data: bytes, severity: str | None = None) -> list[str]:
    return [p.path for p in mf.lint(data) if severity in (None, p.severity)]


def test_lint_clean_manifest() -> None:
    assert mf.lint(mf.make_manifest(2, URL, DIGEST, signature=SIGNATURE)) == []
    spec = PatchSpec(1, DIGEST, "https://s/p.patch", DIGEST, DIGEST)
    assert mf.lint(mf.make_manifest(3, URL, DIGEST, patches=[spec])) == []


def test_lint_malformed_json_is_one_problem_with_offset() -> None:
    (problem,) = mf.lint(b'{"ota":[1,]}')
    assert problem.path == "$" and "offset 10" in problem.message


def test_lint_missing_fields_and_types() -> None:
    data = doc({"ota": [{"Version": "2", "URL": 5}]})
    assert paths(data) == ["$.ota[0].Version", "$.ota[0].URL", "$.ota[0].Digest"]
    assert paths(doc({"ota": []})) == ["$.ota"]
    assert paths(doc({"ota": {"a": {}}}))[0] == "$.ota"
    assert paths(doc([1])) == ["$"]
    assert paths(doc({})) == ["$.ota"]


def test_lint_version_rules() -> None:
    def version_messages(value: Any) -> list[tuple[str, str]]:
        data = mf.make_manifest(value, URL, DIGEST)
        return [(p.severity, p.message) for p in mf.lint(data)]

    assert version_messages(99) == []
    assert [s for s, _ in version_messages(0)] == ["error"]
    assert [s for s, _ in version_messages(-3)] == ["error"]
    assert [s for s, _ in version_messages(100)] == ["warning"]
    assert [s for s, _ in version_messages(256)] == ["error"]
    assert [s for s, _ in version_messages(1000)] == ["error", "error"]
    assert [s for s, _ in version_messages(2.5)] == ["warning"]
    assert "0x100" in version_messages(100)[0][1]


def test_lint_url_rules() -> None:
    def url_messages(url: str) -> list[str]:
        return [p.message for p in mf.lint(mf.make_manifest(2, url, DIGEST))]

    assert len(url_messages("http://h/" + "a" * 86 + ".bin")) == 1  # 99 bytes: fits
    assert "buffer" in url_messages("http://h/" + "a" * 87 + ".bin")[0]  # 100 bytes
    assert url_messages("ftp://h/a.bin") == [
        'must start with "http://" or "https://" (case-sensitive)'
    ]
    assert "'.'" in url_messages("http://h/app")[0]
    assert "path buffer" in url_messages("http://h/" + "b" * 80 + ".bin")[0]


def test_lint_digest_signature_erase_patch() -> None:
    data = mf.make_manifest(
        2,
        URL,
        "AB" * 31,
        signature="not base64!",
        erase_ver=1,
        patches=[{"BaseVersion": 1, "BaseVerDigest": DIGEST, "PatchDigest": "x"}, 3],
    )
    assert paths(data) == [
        "$.ota[0].EraseVer",
        "$.ota[0].Digest",
        "$.ota[0].Signature",
        "$.ota[0].Patch[0].PatchDigest",
        "$.ota[0].Patch[0].TargetDigest",
        "$.ota[0].Patch[0].PatchURL",
        "$.ota[0].Patch[1]",
        "$.ota[0].Signature",
    ]
    assert paths(mf.make_manifest(2, URL, DIGEST, erase_ver=True), "warning") == [
        "$.ota[0].EraseVer"
    ]


def test_lint_warnings_for_ignored_content() -> None:
    data = b'{"ota":[{"Version":1},{"version":2,"URL":"' + URL.encode() + b'","Digest":"'
    data += DIGEST.encode() + b'","Digest":"x","Extra":1}]} junk'
    assert paths(data, "warning") == [
        "$",
        "$.ota[0]",
        "$.ota[1].version",
        "$.ota[1].Digest",
        "$.ota[1].Extra",
    ]
    assert paths(data, "error") == []


def test_lint_size_and_nul() -> None:
    big = mf.make_manifest(2, URL, DIGEST)[:-1] + b" " * 2000 + b"}"
    assert [p.path for p in mf.lint(big)] == ["$"]
    assert "1990" in mf.lint(big)[0].message
    with_nul = mf.make_manifest(2, URL, DIGEST) + b"\0junk"
    assert ["NUL" in p.message for p in mf.lint(with_nul)] == [True]
