"""Fuzz targets for every parser: only typed errors may escape (issue 17).

The example count comes from the Hypothesis profile (``dev``/``ci`` in the default run,
``fuzz`` in ``tox -e fuzz``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otamodel import _limits
from otamodel.errors import ScenarioError, TraceError
from otamodel.formats import bootctl, hexfile, jdiff, otadb, signature
from otamodel.formats import manifest as mf
from tests.fuzz import _seeds
from tests.fuzz._harness import inputs, run_target

_TOLERANT = settings(suppress_health_check=list(HealthCheck))


@_TOLERANT
@given(inputs(_seeds.manifests(), 4096))
def test_manifest(data: bytes) -> None:
    run_target("manifest.parse", lambda: mf.parse(data))
    run_target("manifest.lint", lambda: mf.lint(data))


@_TOLERANT
@given(inputs(_seeds.databases(), 4096))
def test_otadb(data: bytes) -> None:
    def target() -> None:
        db = otadb.parse(data)
        otadb.get_rows(db)
        otadb.get_total_imgs(db)
        otadb.serialize(db)

    run_target("otadb", target)


@_TOLERANT
@given(inputs(_seeds.bootctl_pages(), 8192))
def test_bootctl(data: bytes) -> None:
    def target() -> None:
        header = bootctl.unpack(data[: bootctl.HEADER_SIZE])
        header.get_status_name()
        header.get_type_name()
        if len(data) == bootctl.PAGE_SIZE:
            bootctl.unpack_page(data)
        bootctl.is_blank_prefix(data)

    run_target("bootctl", target)


@_TOLERANT
@given(inputs(_seeds.signatures(), 256), st.sampled_from([0, 1]))
def test_signature_text(data: bytes, key_index: int) -> None:
    text = data.decode("latin-1")
    key = _seeds.keys()[key_index]
    run_target("signature.decode", lambda: signature.decode_signature(text))
    run_target("signature.verify", lambda: signature.verify(b"data", text, key))


@_TOLERANT
@given(inputs(_seeds.keys(), 4096))
def test_signature_keys(data: bytes) -> None:
    run_target("signature.keys", lambda: signature.load_public_key(data))
    run_target("signature.der", lambda: signature.der_to_raw(data))


@_TOLERANT
@given(
    inputs(_seeds.patches(), 4096),
    st.sampled_from(jdiff.DIALECTS),
    st.booleans(),
)
def test_jdiff_decode(data: bytes, dialect: str, strict: bool) -> None:
    def target() -> None:
        jdiff.decode(_seeds.OLD_FILE, data, dialect=dialect, strict=strict, max_size=1 << 20)

    run_target("jdiff.decode", target)
    run_target("jdiff.list_ops", lambda: jdiff.list_ops(data, dialect, strict=strict))


@_TOLERANT
@given(inputs(_seeds.patches(), 4096), st.booleans())
def test_jdiff_apply_matches_decode(data: bytes, strict: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "old").write_bytes(_seeds.OLD_FILE)
        (root / "p").write_bytes(data)

        def target() -> None:
            try:
                expected = jdiff.decode(_seeds.OLD_FILE, data, strict=strict, max_size=1 << 20)
            except ValueError:
                expected = None
            try:
                jdiff.apply(root / "old", root / "p", root / "new", strict=strict, max_size=1 << 20)
            except ValueError:
                assert expected is None
                assert not (root / "new").exists()
                return
            assert (root / "new").read_bytes() == expected

        run_target("jdiff.apply", target)
        assert sorted(p.name for p in root.iterdir()) in (["new", "old", "p"], ["old", "p"])


@_TOLERANT
@given(inputs(_seeds.hex_files(), 8192), st.booleans())
def test_hexfile(data: bytes, factory: bool) -> None:
    text = data.decode("latin-1")

    def target() -> None:
        hexfile.hex_to_bin(text, factory=factory, size=0x10000, require_eof=factory)

    run_target("hex.hex_to_bin", target)
    run_target("hex.merge", lambda: hexfile.merge_hex(text, text, names=["a", "b"]))


@_TOLERANT
@given(inputs(_seeds.scenarios(), 8192), st.sampled_from([".toml", ".json"]))
def test_scenario_file(data: bytes, suffix: str) -> None:
    from otamodel.env import build_scenario

    def target() -> None:
        spec = _limits.parse_document(data, suffix, ScenarioError, "fuzz")
        _limits.check_scenario_spec(spec, "fuzz", ScenarioError)
        build_scenario(spec)

    run_target("scenario", target)


@_TOLERANT
@given(inputs(_seeds.traces(), 8192))
def test_trace_file(data: bytes) -> None:
    from otamodel.verify._tracefile import read_trace

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.json"
        path.write_bytes(data)
        run_target("trace", lambda: read_trace(path))
    _ = TraceError


_JSON = st.recursive(
    st.integers(-2, 300)
    | st.integers(-2, 300)
    | st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
    | st.sampled_from(["small", "real", "full", "patch", "erase", "valid", "wrong", "hardened"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_SCENARIO_KEYS = [
    "name",
    "variant",
    "geometry",
    "factory_pages",
    "factory_version",
    "releases",
    "budget",
    "config",
    "tears",
    "user_actions",
    "witnesses",
    "fs_write_calls",
    "description",
]
_RELEASE_KEYS = [
    "version",
    "kind",
    "label",
    "pages",
    "url",
    "digest",
    "signature",
    "erase_version",
    "base_version",
    "patch_url",
    "base_digest",
    "claimed_base_version",
    "erase_ver",
    "claimed_version",
    "description",
]
_CONFIG_KEYS = [
    "autoreset",
    "auto_update",
    "periodic",
    "interval",
    "num_imgs",
    "secure_boot",
    "patch",
    "scheduler",
    "tear_mode",
]


@st.composite
def _scenario_specs(draw: st.DrawFn) -> object:
    """A valid scenario description with a few fields replaced by arbitrary JSON values."""
    spec: dict[str, object] = {
        "name": "fuzz",
        "geometry": {"page_size": 256, "row_size": 128, "slot_pages": 5},
        "config": {"patch": True},
        "releases": [{"version": 2}, {"version": 3, "kind": "patch", "base_version": 2}],
        "budget": {"power_cut": 1},
    }
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(["top", "release", "config", "geometry", "budget"]))
        value = draw(_JSON)
        if where == "top":
            spec[draw(st.sampled_from(_SCENARIO_KEYS))] = value
        elif where == "release" and isinstance(spec.get("releases"), list) and spec["releases"]:
            releases = spec["releases"]
            assert isinstance(releases, list)
            target = releases[draw(st.integers(0, len(releases) - 1))]
            if isinstance(target, dict):
                target[draw(st.sampled_from(_RELEASE_KEYS))] = value
        elif isinstance(spec.get(where), dict):
            table = spec[where]
            assert isinstance(table, dict)
            keys = {
                "config": _CONFIG_KEYS,
                "geometry": ["page_size", "row_size", "slot_pages"],
                "budget": ["power_cut", "transfer_fail", "corrupt", "publish", "bogus"],
            }
            table[draw(st.sampled_from(keys[where]))] = value
    return spec


@_TOLERANT
@given(_scenario_specs())
def test_scenario_structured(spec: object) -> None:
    from otamodel.env import build_scenario

    def target() -> None:
        _limits.check_scenario_spec(spec, "fuzz", ScenarioError)
        assert isinstance(spec, dict)
        build_scenario(spec)

    run_target("scenario.structured", target)
