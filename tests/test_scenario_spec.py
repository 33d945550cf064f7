"""Strict scenario files (SCN-1..SCN-4), release-building options (SCN-5..SCN-7), the blow-up
warning (SCN-20) and the JSON Schema shipped with the package."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from otamodel.cli import main
from otamodel.env import build_scenario, get_scenario, get_scenario_names, load_scenario_file
from otamodel.env._schema import get_all_keys, get_schema_text
from otamodel.errors import ScenarioError
from otamodel.formats import manifest as mf

REPO = Path(__file__).resolve().parent.parent

BAD_TOML = [
    ("[config]\nsecure_bot = true\n", "x.toml:2:1: config.secure_bot: unknown key"),
    (
        "[[releases]]\nversion = 2\n[[releases]]\nversion = 256\n",
        "x.toml:4:1: releases[1].version: 256 is out of range (0..255)",
    ),
    ("[config]\nnum_imgs = 7\n", "x.toml:2:1: config.num_imgs: 7 is out of range (0..5)"),
    ("[budget]\npower_cut = -1\n", "x.toml:2:1: budget.power_cut: -1 is out of range (>= 0)"),
    ("[config]\nautoreset = 1\n", "x.toml:2:1: config.autoreset: must be true or false"),
    ('[config]\ninterval = "60"\n', "x.toml:2:1: config.interval: must be an integer"),
    ("factory_version = 1.5\n", "x.toml:1:1: factory_version: must be an integer"),
    (
        '[[releases]]\nkind = "patch"\n',
        "x.toml:2:1: releases[0].kind: a patch release needs config.patch",
    ),
    (
        "[[releases]]\nbase_version = 1\n",
        "releases[0].base_version: base_version is only for kind patch",
    ),
    ('variant = "3.9.2"\n', "x.toml:1:1: variant: unknown value '3.9.2'"),
    (
        'user_actions = ["rollback", "rollback"]\n',
        "x.toml:1:1: user_actions: a user action is listed twice",
    ),
    ("[geometry]\npage_size = 100\n", "x.toml:1:1: geometry: page_size must be >= 256"),
    (
        "[[releases]]\nversion = 2\nrelabel_of = 9\n",
        "x.toml:3:1: releases[0].relabel_of: relabel_of names no earlier",
    ),
    (
        "[console]\nintervals = [60, -1]\n",
        "x.toml:2:1: console.intervals[1]: -1 is out of range (0..4294967295)",
    ),
    ('[console]\ninputs = ["url"]\n', "x.toml:2:1: console.inputs: input url needs console.urls"),
    ('[console]\nurls = ["a", "a"]\n', "console.urls: a value is listed twice"),
    ("[console]\nintervall = [5]\n", "x.toml:2:1: console.intervall: unknown key"),
    (
        '[[releases]]\nversion = 2\n  colour = "red"\n',
        "x.toml:3:3: releases[0].colour: unknown key",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_TOML)
def test_bad_toml_names_key_and_position(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario_file(path)
    assert message in str(info.value).replace(str(tmp_path) + "/", "")


def test_bad_json_names_key_and_position(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"config": {"periodic": true,\n   "num_imgs": 9},\n "releases": []}')
    with pytest.raises(ScenarioError, match=r"s\.json:2:4: config\.num_imgs: 9 is out of range"):
        load_scenario_file(path)
    path.write_text('{"releases": [{"version": 2},\n  {"verzion": 3}]}')
    with pytest.raises(ScenarioError, match=r"s\.json:2:4: releases\[1\]\.verzion: unknown key"):
        load_scenario_file(path)


def test_a_dict_gets_the_same_errors_without_position() -> None:
    with pytest.raises(ScenarioError, match=r"^scenario: config\.secure_bot: unknown key"):
        build_scenario({"config": {"secure_bot": True}})
    with pytest.raises(
        ScenarioError, match=r"releases\[0\]\.version: must be an integer, not a boolean"
    ):
        build_scenario({"releases": [{"version": True}]})


def test_check_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text("[config]\nsecure_bot = true\n")
    result = CliRunner().invoke(main, ["check", "--scenario", str(path), "-q"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "typo.toml:2:1: config.secure_bot: unknown key" in lines[0]


def test_huge_budget_warns_and_honours_max_states(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_text("[[releases]]\nversion = 2\n[budget]\npower_cut = 40\nreset = 10\n")
    result = CliRunner().invoke(
        main, ["check", "--scenario", str(path), "-q", "--max-states", "300"]
    )
    assert result.exit_code in (0, 1, 3), result.output  # 3: bounded, nothing new (check --help)
    assert "a total fault budget of 50" in result.output
    assert "300 states" in result.output.replace(",", "")


def test_shipped_schema_is_current() -> None:
    shipped = (resources.files("otamodel") / "scenarios" / "scenario.schema.json").read_text()
    assert shipped == get_schema_text(), "regenerate with otamodel.env._schema.get_schema_text()"
    schema = json.loads(shipped)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["config"]["properties"]["num_imgs"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 5,
        "description": "SYS_OTA_NUM_IMGS (0..5)",
    }


def test_docs_list_every_key() -> None:
    text = (REPO / "docs" / "spec" / "scenarios.md").read_text()
    missing = [key for key in get_all_keys() if f"`{key}`" not in text]
    assert not missing


def _check_against_schema(value: object, schema: dict[str, object], where: str) -> None:
    """A small validator for the subset of JSON Schema the generator emits."""
    if "anyOf" in schema:
        errors = 0
        for option in schema["anyOf"]:  # type: ignore[attr-defined]
            try:
                _check_against_schema(value, option, where)
            except AssertionError:
                errors += 1
        assert errors < len(schema["anyOf"]), where  # type: ignore[arg-type]
        return
    if "enum" in schema:
        assert value in schema["enum"], where  # type: ignore[operator]
        return
    kind = schema["type"]
    if kind == "object":
        assert isinstance(value, dict), where
        props = schema["properties"]
        for key, item in value.items():
            assert key in props, f"{where}.{key}"  # type: ignore[operator]
            _check_against_schema(item, props[key], f"{where}.{key}")  # type: ignore[index]
    elif kind == "array":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            _check_against_schema(item, schema["items"], f"{where}[{i}]")  # type: ignore[arg-type]
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where
        assert value >= schema["minimum"], where  # type: ignore[operator]
        assert value <= schema.get("maximum", value), where  # type: ignore[operator]
    elif kind == "boolean":
        assert isinstance(value, bool), where
    else:
        assert isinstance(value, str), where


def test_every_shipped_scenario_validates_against_the_schema() -> None:
    import tomllib

    schema = json.loads(get_schema_text())
    folder = resources.files("otamodel") / "scenarios"
    for name in get_scenario_names():
        data = tomllib.loads((folder / f"{name}.toml").read_text())
        _check_against_schema(data, schema, name)
        assert get_scenario(name).description, name


# ---------------------------------------------------------------------------- building


def test_tiny_image_holds_no_code() -> None:
    scenario = build_scenario({"releases": [{"version": 2, "size": 100}]})
    (image,) = scenario.images
    assert len(image.data) == 100
    slot = scenario.factory.data
    assert scenario.identify(slot) == scenario.factory
    assert scenario.identify(b"\xff" * len(slot)) is None


def test_two_builds_of_one_version_differ_and_relabel_reuses_bytes() -> None:
    scenario = build_scenario(
        {
            "config": {"secure_boot": True},
            "releases": [
                {"version": 2, "build": "a"},
                {"version": 2, "build": "b"},
                {"version": 3, "relabel_of": 2},
            ],
        }
    )
    a, b = scenario.images
    assert a.version == b.version == 2 and a.data != b.data
    third = json.loads(scenario.releases[2].manifest)["ota"][-1]
    assert third["Version"] == 3
    assert dict(scenario.releases[2].files)[third["URL"]] == a.data
    assert third["Digest"] == a.digest.hex()
    first = json.loads(scenario.releases[0].manifest)["ota"][-1]
    assert mf.parse(scenario.releases[2].manifest) is not None
    assert third["Signature"] == first["Signature"]


def test_url_length_and_manifest_size() -> None:
    scenario = build_scenario(
        {"releases": [{"version": 2, "url_length": 120, "manifest_size": 1991}]}
    )
    release = scenario.releases[0]
    ((url, _),) = release.files
    assert len(url) == 120 and url.endswith("/app_v2.bin")
    assert len(release.manifest) == 1991
    with pytest.raises(
        ScenarioError, match=r"releases\[0\]\.manifest_size: manifest_size must be >="
    ):
        build_scenario({"releases": [{"version": 2, "manifest_size": 10}]})


def test_config_keys_reach_the_model() -> None:
    scenario = build_scenario(
        {"config": {"json_max_size": 300, "manifest_url": "HTTP://x/ota.json", "num_imgs": 0}}
    )
    assert scenario.config.json_max_size == 300
    assert scenario.manifest_url == "HTTP://x/ota.json"
    assert scenario.config.num_imgs == 0


def test_enforce_tls_and_a_configured_manifest_url() -> None:
    from otamodel.model._core import is_url_accepted

    scenario = get_scenario("enforce-tls")
    assert scenario.config.enforce_tls
    assert scenario.serve(0, "https://127.0.0.1:8000/ota.json") == scenario.releases[0].manifest
    assert not is_url_accepted("http://127.0.0.1:8000/app_v2.bin", enforce_tls=True)
    assert is_url_accepted("https://127.0.0.1:8000/app_v3.bin", enforce_tls=True)
    assert is_url_accepted("http://127.0.0.1:8000/app_v2.bin")


def test_json_max_size_limits_the_manifest_read() -> None:
    from _drive import run

    from otamodel.env import initial_world
    from otamodel.model import Phase, SvcState

    def checked(size: int) -> bool:
        scenario = build_scenario(
            {
                "config": {"json_max_size": 200, "periodic": True},
                "releases": [{"version": 2, "manifest_size": size}],
            }
        )
        world = run(
            initial_world(scenario),
            until=lambda w: w.phase is Phase.APP and w.service.check_in_progress,
        )
        world = run(world, until=lambda w: not w.service.check_in_progress)
        return not world.service.update_check_failed or world.service.state is SvcState.UPDATE_USER

    assert checked(190)  # reads stop at 200 - 10 bytes: 190 fit
    assert not checked(191)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("list.json", b"[1, 2]", "a scenario is a table/object"),
        ("bad.toml", b"[config\n", "bad.toml: "),
        ("latin.toml", b"name = '\xe9'\n", "byte offset 8"),
        ("syntax.json", b'{"a": }', "Expecting value"),
    ],
)
def test_unreadable_files_are_one_line_errors(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    result = CliRunner().invoke(main, ["check", "--scenario", str(path), "-q"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and name in lines[0], lines


def test_scenario_budgets_are_the_action_kinds_budgets() -> None:
    from otamodel.env._spec import BUDGET_KINDS
    from otamodel.model import BUDGET_KINDS as ACTION_BUDGETS

    assert BUDGET_KINDS == ACTION_BUDGETS
