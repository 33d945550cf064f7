"""REL-10..REL-22: each lint rule's example, linted and then run through the model, which must
show the effect the linter states (outcome, status, property)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from _release import BASE_URL, Run, get_image, make, make_scenario, publish_when_running
from _release import run_releases as run_model

from otamodel.env import Scenario
from otamodel.formats import signature
from otamodel.model import SMALL_GEOMETRY, Action, AppImage, World
from otamodel.model._enums import SvcState
from otamodel.model._product import APP_MAGIC
from otamodel.release import make_release
from otamodel.release._lint import (
    Effect,
    LintContext,
    Outcome,
    ReleaseProblem,
    lint_directory,
    load_bases,
)
from otamodel.verify._properties import is_store_consistent


@attrs.frozen
class Example:
    """A release set, the lint context, the rule expected, and how to run the model."""

    scenario: Scenario
    folders: tuple[Path, ...]  # the releases the server publishes, in order
    ctx: LintContext
    new_version: int
    inject: Callable[[World], Action | None] | None = None


def _ctx(bases: tuple[Path, ...] = (), **kw: object) -> LintContext:
    return LintContext(
        bases=load_bases(bases),
        chunk=SMALL_GEOMETRY.chunk,
        slot_size=SMALL_GEOMETRY.slot_size,
        **kw,  # type: ignore[arg-type]
    )


def _edit_manifest(folder: Path, edit: Callable[[dict[str, object]], None]) -> None:
    path = folder / "ota.json"
    data = json.loads(path.read_bytes())
    edit(data["ota"][0])
    path.write_bytes(json.dumps(data, separators=(",", ":")).encode())


def _simple(tmp: Path, **spec: object) -> tuple[Scenario, Path]:
    scenario = make_scenario(releases=[{"version": 2}], **spec)
    return scenario, make(tmp, get_image(scenario, 2).data, 2)


def ex_digest(tmp: Path) -> Example:
    scenario, r2 = _simple(tmp)
    _edit_manifest(r2, lambda e: e.update(Digest="ab" * 32))
    return Example(scenario, (r2,), _ctx(), 2)


def ex_missing(tmp: Path) -> Example:
    scenario, r2 = _simple(tmp)
    (r2 / "app_v2.bin").unlink()
    return Example(scenario, (r2,), _ctx(), 2)


def ex_small(tmp: Path) -> Example:
    scenario = make_scenario(releases=[{"version": 2}])
    image = get_image(scenario, 2).data[: SMALL_GEOMETRY.chunk - 56]
    return Example(scenario, (make(tmp, image, 2),), _ctx(), 2)


def ex_device_file(tmp: Path) -> Example:
    scenario, r2 = _simple(tmp)
    (r2 / "app_v2.bin").rename(r2 / "factory_reset.bin")
    _edit_manifest(r2, lambda e: e.update(URL=f"{BASE_URL}/factory_reset.bin"))
    return Example(scenario, (r2,), _ctx(), 2)


def ex_base_file(tmp: Path) -> Example:
    scenario = make_scenario(releases=[{"version": 2}, {"version": 3}], budget={"publish": 1})
    r2 = make(tmp, get_image(scenario, 2).data, 2, name="app")
    r3 = make(tmp, get_image(scenario, 3).data, 3, name="app")
    return Example(scenario, (r2, r3), _ctx((r2,)), 3, publish_when_running(2))


def ex_not_newer(tmp: Path) -> Example:
    scenario = make_scenario(releases=[{"version": 2}])
    r1 = make(tmp, get_image(scenario, 2).data, 1)
    return Example(scenario, (r1,), _ctx(device_version=1), 1)


def ex_signature(tmp: Path) -> Example:
    scenario = make_scenario(releases=[{"version": 2}], config={"secure_boot": True})
    other = signature.generate_private_key_pem()
    r2 = make(tmp, get_image(scenario, 2).data, 2, key_pem=other)
    return Example(scenario, (r2,), _ctx(public_key_pem=scenario.public_key_pem), 2)


def ex_signature_missing(tmp: Path) -> Example:
    scenario = make_scenario(releases=[{"version": 2}], config={"secure_boot": True})
    r2 = make(tmp, get_image(scenario, 2).data, 2)
    return Example(scenario, (r2,), _ctx(public_key_pem=scenario.public_key_pem), 2)


def _patch_pair(tmp: Path, variant: str, base: int = 2, new: int = 3) -> Example:
    scenario = make_scenario(
        variant=variant,
        config={"patch": True},
        releases=[{"version": base}, {"version": new}],
        budget={"publish": 1},
    )
    rb = make(tmp, get_image(scenario, base).data, base)
    rn = make(tmp, get_image(scenario, new).data, new, bases=(rb,))
    return Example(
        scenario, (rb, rn), _ctx((rb,), variant=variant), new, publish_when_running(base)
    )


def _small_patch(tmp: Path, min_patch: int) -> Example:
    """v3 differs from v2 in a few bytes: its jdiff patch is far below one download chunk."""
    scenario = make_scenario(
        variant="harmony-3.9.0",
        config={"patch": True},
        releases=[{"version": 2}],
        budget={"publish": 1},
    )
    v2 = get_image(scenario, 2)
    data = bytearray(v2.data)
    at = SMALL_GEOMETRY.chunk + len(APP_MAGIC)
    data[at] = 3  # the version byte of the body
    data[-4:] = b"v3v3"
    v3 = AppImage(3, "app_v3", bytes(data))
    scenario = attrs.evolve(scenario, images=(v2, v3))
    r2 = make(tmp, v2.data, 2)
    source = tmp / "v3.bin"
    source.write_bytes(v3.data)
    r3 = tmp / "r3"
    make_release(
        source, r3, version=3, base_url=BASE_URL, name="app_v3", bases=[r2], min_patch=min_patch
    )
    ctx = _ctx((r2,), variant="harmony-3.9.0")
    return Example(scenario, (r2, r3), ctx, 3, publish_when_running(2))


def ex_small_patch(tmp: Path) -> Example:
    return _small_patch(tmp, 0)


def test_a_padded_small_patch_is_clean_and_patches(tmp_path: Path) -> None:
    """REL-7: the same tiny change, padded to the small geometry's chunk, downloads."""
    example = _small_patch(tmp_path, SMALL_GEOMETRY.chunk)
    assert [p for p in lint_directory(example.folders[1], example.ctx) if p.effect] == []
    run = run_model(example.scenario, example.folders, inject=example.inject)
    assert 3 in run.versions
    assert any(u.endswith("from-v2/app_v3.patch") for u in run.urls)


def ex_patch_391(tmp: Path) -> Example:
    return _patch_pair(tmp, "harmony-3.9.1")


def ex_patch_base_digest(tmp: Path) -> Example:
    example = _patch_pair(tmp, "harmony-3.9.1")

    def edit(entry: dict[str, object]) -> None:
        patches = entry["Patch"]
        assert isinstance(patches, list)
        patches[0]["BaseVerDigest"] = "11" * 32

    _edit_manifest(example.folders[1], edit)
    return example


def ex_base_version_hex(tmp: Path) -> Example:
    return _patch_pair(tmp, "harmony-3.9.0", base=10, new=11)


def ex_manifest_size(tmp: Path) -> Example:
    scenario, r2 = _simple(tmp)
    path = r2 / "ota.json"
    path.write_bytes(path.read_bytes() + b" " * 2000)
    return Example(scenario, (r2,), _ctx(), 2)


def _erase(tmp: Path, version: int) -> Path:
    out = tmp / f"erase_v{version}"
    make_release(None, out, version=version, erase=True)
    return out


def ex_erase_running(tmp: Path) -> Example:
    scenario = make_scenario(releases=[{"version": 2}], budget={"publish": 1})
    r2 = make(tmp, get_image(scenario, 2).data, 2)
    e2 = _erase(tmp, 2)
    return Example(scenario, (r2, e2), _ctx((r2,), device_version=2), 2, publish_when_running(2))


def ex_erase_missing(tmp: Path) -> Example:
    scenario = make_scenario(releases=[{"version": 2}])
    return Example(scenario, (_erase(tmp, 3),), _ctx(device_version=1), 3)


def _check_manually(world: World) -> Action | None:
    """Publish release 1 once the device holds an erase request; check when idle."""
    svc = world.service
    if world.running is None or world.pending or svc.state is not SvcState.STATE_IDLE:
        return None
    if world.published == 0 and svc.erase_request:
        return Action("publish", "1")
    return Action("ctrl", "update_check")


def _after_erase(tmp: Path, clear: bool) -> Example:
    scenario = make_scenario(
        releases=[{"version": 2}],
        config={"periodic": False},
        user_actions=["update_check"],
        budget={"publish": 1},
    )
    r2 = make(tmp, get_image(scenario, 2).data, 2)
    if not clear:
        _edit_manifest(r2, lambda e: e.pop("EraseVer"))
    return Example(scenario, (_erase(tmp, 3), r2), _ctx(), 2, _check_manually)


def ex_erase_sticky(tmp: Path) -> Example:
    return _after_erase(tmp, clear=False)


def test_release_make_clears_an_earlier_erase_request(tmp_path: Path) -> None:
    """REL-9, REL-22: after an EraseVer manifest, release make's "EraseVer": false lets the
    device install the next release (without it, see ex_erase_sticky)."""
    example = _after_erase(tmp_path, clear=True)
    assert not [p for p in lint_directory(example.folders[1], example.ctx) if p.rule == "REL-22"]
    run = run_model(example.scenario, example.folders, inject=example.inject)
    assert "IMAGE_ERASE_FAILED" in run.callbacks  # the erase of v3, which it does not hold
    assert 2 in run.versions


EXAMPLES: dict[str, tuple[str, Callable[[Path], Example]]] = {
    "digest": ("REL-10", ex_digest),
    "missing": ("REL-11", ex_missing),
    "small": ("REL-12", ex_small),
    "small-patch": ("REL-12", ex_small_patch),
    "device-file": ("REL-13", ex_device_file),
    "base-file": ("REL-13", ex_base_file),
    "not-newer": ("REL-14", ex_not_newer),
    "signature": ("REL-15", ex_signature),
    "signature-missing": ("REL-15", ex_signature_missing),
    "patch-3.9.1": ("REL-16", ex_patch_391),
    "patch-base-digest": ("REL-16", ex_patch_base_digest),
    "base-version-hex": ("REL-17", ex_base_version_hex),
    "manifest-size": ("REL-18", ex_manifest_size),
    "erase-running": ("REL-20", ex_erase_running),
    "erase-missing": ("REL-21", ex_erase_missing),
    "erase-sticky": ("REL-22", ex_erase_sticky),
}


def _effects(problems: list[ReleaseProblem], rule: str) -> list[Effect]:
    """Every effect the linter states for the example; the example's rule must be among them."""
    assert any(p.rule == rule and p.effect is not None for p in problems), [
        (p.rule, p.message) for p in problems
    ]
    return [p.effect for p in problems if p.effect is not None]


def _check_outcome(effect: Effect, run: Run, example: Example) -> None:
    new = example.new_version
    outcome = effect.outcome
    if effect.status is not None:
        assert effect.status in run.callbacks, run.callbacks
    if outcome in (Outcome.NOT_OFFERED, Outcome.CHECK_FAILS):
        assert "DOWNLOAD_START" not in run.callbacks
    if outcome is Outcome.RUNNING_ERASED:
        assert any(w.fs.get(f"app_v{new}.bin") is not None for w in run.worlds)
        assert run.world.running is not None and run.world.running.version == new
        assert run.world.fs.get(f"app_v{new}.bin") is None
        assert f"{new}," not in (run.world.fs.get("image_database.csv") or b"").decode()
    if outcome in (
        Outcome.NOT_OFFERED,
        Outcome.CHECK_FAILS,
        Outcome.DOWNLOAD_FAILS,
        Outcome.REJECTED,
        Outcome.BOOT_REJECTED,
        Outcome.ERASE_FAILS,
        Outcome.TAKEN_AS_ERASE,
    ) and new not in {example.scenario.factory.version}:
        assert new not in run.versions, "the new version ran"
    if outcome is Outcome.FULL_IMAGE:
        image_url = json.loads((example.folders[-1] / "ota.json").read_bytes())["ota"][0]["URL"]
        assert new in run.versions
        assert image_url in run.urls
        assert not any(u.endswith(".patch") for u in run.urls)
    if outcome is Outcome.DEVICE_FILE_OVERWRITTEN:
        first = next(w for w in run.worlds if w.fs.get("factory_reset.bin") is not None)
        assert run.world.fs.get("factory_reset.bin") != first.fs.get("factory_reset.bin")
    if effect.prop == "store-consistency":
        assert not is_store_consistent(run.world)
        assert any(is_store_consistent(w) for w in run.worlds)
    if effect.prop == "no-brick":
        assert run.world.running is None, "an application runs"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_lint_rule_agrees_with_the_model(tmp_path: Path, name: str) -> None:
    rule, build = EXAMPLES[name]
    example = build(tmp_path)
    problems = lint_directory(example.folders[-1], example.ctx)
    effects = _effects(problems, rule)
    run = run_model(example.scenario, example.folders, inject=example.inject)
    for effect in effects:
        _check_outcome(effect, run, example)


def test_a_clean_release_has_no_problem_and_updates(tmp_path: Path) -> None:
    scenario, r2 = _simple(tmp_path)
    assert lint_directory(r2, _ctx()) == []
    run = run_model(scenario, (r2,))
    assert 2 in run.versions and "DB_ENTRY_SUCCESS" in run.callbacks


def test_a_patch_on_harmony_3_9_0_is_clean_and_patches(tmp_path: Path) -> None:
    example = _patch_pair(tmp_path, "harmony-3.9.0")
    assert [
        p for p in lint_directory(example.folders[1], example.ctx) if p.severity == "error"
    ] == []
    run = run_model(example.scenario, example.folders, inject=example.inject)
    assert 3 in run.versions
    assert any(u.endswith("from-v2/app_v3.patch") for u in run.urls)


def test_every_rule_with_an_effect_has_an_example() -> None:
    from otamodel.release import _lint

    text = Path(_lint.__file__).read_text()
    rules = set(re.findall(r'"(REL-\d+)"', text))
    assert len(rules) >= 9
    covered = {rule for rule, _ in EXAMPLES.values()}
    assert rules <= covered, rules - covered


def test_a_summary_cannot_point_the_manifest_outside_the_release(tmp_path: Path) -> None:
    """REL-3: release.json's manifest name stays inside the release directory."""
    import json

    from otamodel.errors import OtaModelError
    from otamodel.release._make import SUMMARY_FORMAT, read_release

    (tmp_path / "release.json").write_text(
        json.dumps(
            {
                "format": SUMMARY_FORMAT,
                "version": 2,
                "base_url": "http://127.0.0.1:8000",
                "manifest": "../../etc/passwd",
                "image": {
                    "file": "a.bin",
                    "url": "http://127.0.0.1:8000/a.bin",
                    "size": 1,
                    "sha256": "00",
                },
                "signed": False,
            }
        )
    )
    with pytest.raises(OtaModelError, match="outside the release"):
        read_release(tmp_path)
