"""The extra environment inputs (SCN-13..SCN-18) and the file-system switches (SCN-30..SCN-33)."""

from __future__ import annotations

from _drive import apply, run

from otamodel.env import build_scenario, enabled_actions, get_scenario, initial_world, step
from otamodel.model import Action, CoreTask, Phase, SvcState, World
from otamodel.model._enums import DownloadStep
from otamodel.model._physics import FsClose, FsCreate, FsWrite, apply_fs
from otamodel.model._state import Fs


def _app(world: World) -> bool:
    return world.phase is Phase.APP and world.core.task is CoreTask.IDLE


def _kinds(world: World) -> set[str]:
    return {str(a) for a in enabled_actions(world)}


def test_tamper_flips_a_bit_of_a_file_or_of_internal_flash_and_spends_budget() -> None:
    world = run(initial_world(get_scenario("tamper")), until=_app)
    offered = _kinds(world)
    assert {"tamper(flip:factory_reset.bin)", "tamper(flip:nvm:bootctl)"} <= offered
    assert "tamper(truncate:factory_reset.bin)" in offered
    before = world.fs.get("factory_reset.bin")
    assert before is not None
    result = step(world, Action("tamper", "flip:factory_reset.bin"))
    assert result.transition == "bit flip in factory_reset.bin on external flash"
    after = result.world.fs.get("factory_reset.bin")
    assert after is not None and after[0] == before[0] ^ 1 and after[1:] == before[1:]
    assert result.world.get_budget("tamper") == 0
    assert not any(a.kind == "tamper" for a in enabled_actions(result.world))
    again = step(result.world, Action("tamper", "flip:nvm:bootctl"))
    assert again.is_refused and "budget" in (again.refusal or "")
    flash = step(world, Action("tamper", "flip:nvm:slot")).world.flash
    assert flash.pages[1][0] == world.flash.pages[1][0] ^ 1
    assert step(world, Action("tamper", "flip:nope.bin")).is_refused


def test_a_build_that_fails_before_validation_resets_at_every_boot() -> None:
    scenario = get_scenario("fail-boot")
    log: list[str] = []
    world = initial_world(scenario)
    seen = 0
    for _ in range(3000):
        action = Action("timer") if Action("timer") in enabled_actions(world) else Action("tick")
        result = step(world, action)
        world = result.world
        if result.transition == "crash at start-up":
            seen += 1
            log.extend(result.notes)
            if seen == 3:
                break
    assert seen == 3
    assert any("fails at start-up" in n for n in log)


def test_console_changes_runtime_options_until_the_next_boot() -> None:
    world = run(initial_world(get_scenario("console")), until=_app)
    assert {"console(periodic=0)", "console(autoreset=0)", "console(autoupdate=0)"} <= _kinds(world)
    world = run(world, until=lambda w: w.service.state is SvcState.WAIT_FOR_OTA_TIMER_TRIGGER)
    result = step(world, Action("console", "periodic=0"))
    assert result.transition == "console: sysota set periodic 0"
    new = result.world
    assert new.service.runtime is not None and not new.service.runtime.periodic
    # With periodic off, WAIT_FOR_OTA_TIMER_TRIGGER does nothing even when triggered.
    new = apply(new, Action("timer"))
    for _ in range(6):
        new = apply(new, Action("tick"))
    assert new.service.state is SvcState.WAIT_FOR_OTA_TIMER_TRIGGER and new.service.timer_trigger
    # The options live in RAM: a reset brings back the generated ones.
    rebooted = apply(new, Action("reset")) if new.get_budget("reset") else None
    assert rebooted is None
    from otamodel.model._device import process_reset

    again = run(process_reset(new, "reset"), until=_app)
    assert again.service.runtime is None


def test_set_parameters_writes_a_releases_url_version_and_digest() -> None:
    scenario = get_scenario("set-parameters")
    world = run(initial_world(scenario), until=_app)
    assert {"set_params(0)", "set_params(1)"} <= _kinds(world)
    new = apply(world, Action("set_params", "1"))
    url, version, digest = scenario.get_release_params(1)  # type: ignore[misc]
    assert (new.service.params.url, new.service.params.version) == (url, version)
    assert new.service.params.digest == digest
    assert new.get_budget("console") == 0


def _until_open(url_part: str):  # type: ignore[no-untyped-def]
    return lambda w: w.net.open and url_part in w.net.url and not w.pending


def test_mitm_substitutes_manifest_and_image_and_his_build_runs() -> None:
    scenario = get_scenario("mitm")
    world = run(initial_world(scenario), until=_until_open("ota.json"))
    assert "mitm(manifest)" in _kinds(world)
    world = apply(world, Action("mitm", "manifest"))
    assert world.net.body == scenario.mitm_manifest
    world = run(world, until=_until_open("mitm.bin"))
    assert world.net.body is None  # the real server has no such file
    world = apply(world, Action("mitm", "image"))
    world = run(
        world,
        until=lambda w: (
            w.phase is Phase.APP and w.running is not None and w.running.label == "mitm"
        ),
        max_steps=5000,
    )
    assert world.running is not None and world.running.version == 200


def test_freeze_and_replay() -> None:
    scenario = get_scenario("server-freeze")
    world = initial_world(scenario)
    assert "freeze" in _kinds(world) and not any(a.startswith("replay") for a in _kinds(world))
    frozen = apply(world, Action("freeze"))
    assert frozen.published == scenario.get_frozen_index() == 2
    assert scenario.serve(2, scenario.manifest_url) is None
    assert "replay(0)" in _kinds(frozen) and "replay(1)" in _kinds(frozen)
    moved = apply(world, Action("publish", "1"))
    assert "replay(0)" in _kinds(moved)
    replayed = step(moved, Action("replay", "0"))
    assert replayed.world.published == 0 and replayed.transition == "server replays release 0"
    assert step(world, Action("replay", "0")).is_refused


def test_resume_ends_a_freeze_or_a_replay() -> None:
    """SCN-17: ``resume`` serves the publisher's newest release again; it is offered only
    while the server serves another one, is no fault and spends no budget."""
    scenario = get_scenario("server-freeze")
    world = initial_world(scenario)
    assert "resume" not in _kinds(world)
    assert step(world, Action("resume")).is_refused
    frozen = apply(world, Action("freeze"))
    assert "resume" in _kinds(frozen) and not Action("resume").is_fault()
    back = step(frozen, Action("resume"))
    assert back.world.published == 0 and "serves release 0 again" in back.transition
    assert back.world.budget == frozen.budget
    newer = apply(world, Action("publish", "1"))
    replayed = apply(newer, Action("replay", "0"))
    assert apply(replayed, Action("resume")).published == 1  # the newest, not the first
    assert "resume" not in _kinds(apply(replayed, Action("resume")))


def test_data_durable_only_at_close() -> None:
    fs = Fs(formatted=True, has_dir=True).with_file("a.bin", b"old")
    opened = apply_fs(fs, FsCreate("a.bin"), torn=False, at_close=True)
    written = apply_fs(opened, FsWrite("a.bin", 0, b"new"), torn=False, at_close=True)
    assert written.get("a.bin") == b"new" and written.dirty == (("a.bin", b""),)
    assert written.get_after_reset().get("a.bin") == b""  # the truncate was durable, the write not
    closed = apply_fs(written, FsClose("a.bin"), torn=False, at_close=True)
    assert closed.dirty == () and closed.get_after_reset().get("a.bin") == b"new"


def test_a_limit_of_open_handles() -> None:
    fs = Fs(formatted=True, has_dir=True)
    one = apply_fs(fs, FsCreate("a.bin"), torn=False, max_open=1)
    assert one.handles == ("a.bin",)
    refused = apply_fs(one, FsCreate("b.bin"), torn=False, max_open=1)
    assert refused == one and not refused.is_present("b.bin")
    assert apply_fs(one, FsWrite("b.bin", 0, b"x"), torn=False, max_open=1) == one
    closed = apply_fs(one, FsClose("a.bin"), torn=False, max_open=1)
    assert closed.handles == ()
    leaked = apply_fs(one, FsWrite("a.bin", 0, b"x"), torn=False, max_open=1)
    assert leaked.get_after_reset().handles == ()


def test_a_failed_download_leaks_its_handle_and_blocks_the_db_save() -> None:
    world = run(initial_world(get_scenario("fs-open-handles")), until=_app)
    world = run(
        world, until=lambda w: w.core.task is CoreTask.DOWNLOAD_IMAGE and w.fs.handles != ()
    )
    world = run(
        world,
        until=lambda w: w.net.open and not w.pending and w.core.sub is DownloadStep.D_DOWNLOAD,
    )
    world = apply(world, Action("transfer_fail"))
    world = run(world, until=lambda w: w.core.task is CoreTask.IDLE and not w.pending)
    assert world.fs.handles == ("app_v2.bin",)


def test_a_torn_format_damages_the_volume_and_the_mount_fails_for_ever() -> None:
    world = initial_world(get_scenario("fs-mount-damaged"))
    world = run(world, until=lambda w: bool(w.pending) and "format" in w.pending[0].describe())
    assert "power_cut_torn" in _kinds(world)
    result = step(world, Action("power_cut_torn"))
    assert result.world.fs.damaged and result.ops == ("FS format (torn)",)
    stuck = step(result.world, Action("tick"))
    assert stuck.world == result.world and stuck.transition == "mount fails: the volume is damaged"
    plain = initial_world(
        build_scenario({"releases": [{"version": 2}], "budget": {"power_cut": 1}})
    )
    plain = run(plain, until=lambda w: bool(w.pending) and "format" in w.pending[0].describe())
    assert "power_cut_torn" not in _kinds(plain)  # default as today: a format is not torn


def test_files_present_at_first_boot() -> None:
    world = initial_world(get_scenario("fs-preload"))
    assert world.fs.is_present("app_v2.bin") and world.fs.formatted
    world = run(world, until=lambda w: w.phase is Phase.APP)
    assert not world.fs.is_present("app_v2.bin")


def test_extra_inputs_show_in_the_replayed_timeline_and_the_story() -> None:
    from otamodel.verify._findings import get_fault_story
    from otamodel.verify._tracefile import replay

    scenario = get_scenario("tamper")
    world = run(initial_world(scenario), until=_app)
    actions: list[Action] = []
    probe = initial_world(scenario)
    while probe != world:
        action = Action("timer") if Action("timer") in enabled_actions(probe) else Action("tick")
        actions.append(action)
        probe = step(probe, action).world
    actions.append(Action("tamper", "flip:nvm:bootctl"))
    steps, problem = replay(scenario, actions)
    assert problem is None
    last = steps[-1]
    assert last.result.transition == "bit flip in internal flash (bootctl)"
    assert any(c.startswith("NVM boot control: status F9") for c in last.changes)
    story = get_fault_story(scenario, actions)
    assert story and "tamper(flip:nvm:bootctl)" in story[-1]


def test_tamper_is_total_in_every_variant() -> None:
    # A truncated DB between SET_IMAGE_STATUS's S_INIT and S_UPDATE_DB is a read error there.
    from otamodel.checker import check
    from otamodel.env import with_variant
    from otamodel.verify._properties import OtaModel

    for variant in ("harmony-3.9.0", "hardened"):
        report = check(OtaModel(with_variant(get_scenario("tamper"), variant)), time_limit=60)
        assert report.is_complete


def test_simulate_accepts_the_extra_inputs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from otamodel.cli import main

    actions = tmp_path / "actions.txt"
    actions.write_text("tick\n" * 3 + "tamper(flip:nvm:bootctl)\n")
    result = CliRunner().invoke(
        main, ["simulate", "--scenario", "tamper", "--actions", str(actions)]
    )
    assert result.exit_code == 0, result.output
    assert "bit flip in internal flash (bootctl)" in result.output


def _console_app(version: int = 2, **console: object) -> World:
    spec = {"releases": [{"version": version}], "budget": {"console": 2}, "console": console}
    return run(initial_world(build_scenario(spec)), until=_app)


def test_console_interval_is_stored_and_read_at_the_next_arming() -> None:
    """SCN-34, SVC-42: the value is stored as typed; the armed alarm keeps the old interval."""
    world = run(
        _console_app(1, intervals=[86400, 300]),  # nothing newer: the check re-arms
        until=lambda w: w.service.state is SvcState.WAIT_FOR_OTA_TIMER_TRIGGER,
    )
    assert world.service.rtcc_interval == 60
    assert {"console(interval=86400)", "console(interval=300)"} <= _kinds(world)
    result = step(world, Action("console", "interval=86400"))
    assert result.transition == (
        "console: sysota set interval 86400 (from the next RTCC arming the alarm fires 2 s "
        "after it)"
    )
    new = result.world
    assert new.service.runtime is not None and new.service.runtime.interval == 86400
    assert new.service.rtcc_interval == 60  # not re-armed yet
    assert "console(interval=86400)" not in _kinds(new)
    assert step(new, Action("console", "interval=7")).is_refused  # not a console value
    new = run(apply(new, Action("timer")), until=lambda w: w.service.check_in_progress)
    new = run(new, until=lambda w: w.service.state is SvcState.WAIT_FOR_OTA_TIMER_TRIGGER)
    assert new.service.rtcc_interval == 86400  # SVC-7 re-armed with the console's value


def test_console_url_is_used_by_every_check_until_the_next_boot() -> None:
    """SCN-35: a URL the HTTP client refuses fails each check at once; a reset restores it."""
    world = _console_app(urls=["HTTP://127.0.0.1:8000/ota.json"], inputs=["url"])
    assert _kinds(world) >= {"console(url=0)"}
    assert not any(a.kind == "set_params" or "periodic" in a.arg for a in enabled_actions(world))
    result = step(world, Action("console", "url=0"))
    assert result.transition == "console: sysota set url HTTP://127.0.0.1:8000/ota.json"
    new = result.world
    assert "console(url=0)" not in _kinds(new)
    assert step(new, Action("console", "url=1")).is_refused
    log: list[str] = []
    for _ in range(3):  # three alarms, three failed checks, still v1
        new = run(new, until=lambda w: Action("timer") in enabled_actions(w))
        new = apply(new, Action("timer"))
        for _ in range(8):
            res = step(new, Action("tick"))
            log.extend(res.world.notes[len(new.notes) :])
            new = res.world
    assert log.count("app callback: UPDATE_CHECK_FAILED") == 3
    assert new.running is not None and new.running.version == 1
    from otamodel.model._device import process_reset

    again = run(process_reset(new, "reset"), until=_app)
    assert again.service.runtime is None


def test_console_url_the_server_lacks_fails_at_the_read() -> None:
    """SCN-35, ENV-1: a well-formed URL the server does not serve is opened, then fails."""
    world = _console_app(urls=["http://127.0.0.1:8000/v2/ota.json"])
    new = apply(world, Action("console", "url=0"))
    new = run(new, until=lambda w: w.net.open and not w.pending)
    assert new.net.url == "http://127.0.0.1:8000/v2/ota.json" and new.net.body is None


def test_console_interval_url_scenario_shows_the_wrap_and_the_lost_updates() -> None:
    """The shipped scenario: PROP-46 catches the wrapped alarm, PROP-4 the unusable URL, and
    the story tells the console command."""
    from otamodel.checker import check
    from otamodel.verify._findings import get_story
    from otamodel.verify._properties import OtaModel

    model = OtaModel(get_scenario("console-interval-url"))
    report = check(model, findings=True, cost=model.get_action_cost)
    by_prop: dict[str, list[str]] = {}
    for finding in report.findings:
        by_prop.setdefault(finding.property, []).append(get_story(finding))
    assert any("interval is 86400 s" in s for s in by_prop["check-interval"])
    assert any("sysota set url HTTP://" in s for s in by_prop["progress"])
