"""The properties of issue 12 (PROP-30..PROP-44) and the fixed PROP-1/3/4/7/8: each holds on a
world built by running a scenario and fails on a world where its situation is made to happen
(by a planted defect, a fault, or a hand-edited state)."""

from __future__ import annotations

from _drive import apply, callbacks, run

from otamodel.checker import check
from otamodel.env import (
    build_scenario,
    enabled_actions,
    get_scenario,
    initial_world,
    with_defects,
    with_variant,
)
from otamodel.env._ghost import update_ghost
from otamodel.env._oracle import get_facts, get_target, is_publisher_image
from otamodel.formats import bootctl
from otamodel.model import Action, BlTask, CoreTask, Phase, StepResult, SvcState, SvcStatus, World
from otamodel.model._state import Expect, replace
from otamodel.verify import _predicates as pr
from otamodel.verify._properties import OtaModel, is_flash_physical, is_jump_valid, is_no_downgrade


def _running(version: int):  # type: ignore[no-untyped-def]
    def predicate(world: World) -> bool:
        return (
            world.phase is Phase.APP
            and world.running is not None
            and world.running.version == version
            and world.core.task is CoreTask.IDLE
            and not world.pending
        )

    return predicate


def _updated(name: str = "transfer", **kw: object) -> tuple[World, list[str]]:
    scenario = get_scenario(name)
    if kw.get("defects"):
        scenario = with_defects(scenario, kw["defects"])  # type: ignore[arg-type]
    log: list[str] = []
    world = run(initial_world(scenario), until=_running(2), log=log, max_steps=4000)
    return world, log


def _ghost(world: World, **changes: object) -> World:
    return replace(world, ghost=replace(world.ghost, **changes))


def _with_db(world: World, text: bytes) -> World:
    return replace(world, fs=world.fs.with_file("image_database.csv", text))


# ------------------------------------------------------------------ fixed properties


def test_boots_valid_image_uses_the_environment_oracle() -> None:
    world, _ = _updated()
    assert is_jump_valid(world) and world.ghost.last_jump_ok
    # A bootloader that skips its signature check boots the attacker's v3 (PROP-1, PROP-40).
    scenario = with_defects(get_scenario("secure"), ["bootloader-skips-signature"])
    world = run(initial_world(scenario), until=_running(2), max_steps=4000)
    attacker = scenario.images[1]
    assert not is_publisher_image(scenario, attacker)
    world = apply(world, Action("publish", "1"))
    world = run(world, until=_running(3), max_steps=4000)
    assert not is_jump_valid(world) and not pr.is_authentic(world)
    assert not pr.is_no_fast_forward(world)


def test_validation_counts_once_durable() -> None:
    scenario = get_scenario("transfer")
    world = run(initial_world(scenario), until=_running(1))
    # Run until the v2 boot-control validation write is queued but not performed.
    world = run(
        world,
        until=lambda w: (
            w.running is not None
            and w.running.version == 2
            and w.core.sub == "S_DONE"
            and bool(w.pending)
        ),
        max_steps=4000,
    )
    assert world.ghost.max_validated == 0
    world = run(world, until=lambda w: not w.pending)
    assert world.ghost.max_validated == 2 and 2 in world.ghost.validated
    assert ("app_v2.bin", 2) in world.ghost.kept
    older = replace(world, running=scenario.factory)
    assert is_no_downgrade(world) and not is_no_downgrade(older)
    # PROP-41 ignores the factory image (PROP-3 does not).
    assert pr.is_no_rollback_attack(older)
    v2 = replace(world, ghost=replace(world.ghost, max_validated=3))
    assert not pr.is_no_rollback_attack(v2)


def test_progress_target_is_compiled_and_not_lowered_by_an_attacker() -> None:
    scenario = build_scenario(
        {
            "name": "t",
            "releases": [
                {"version": 2},
                {"version": 3, "claimed_version": 9},
                {"version": 4, "origin": "attacker"},
                {"kind": "erase", "version": 2, "erase_version": 2},
                {"kind": "erase", "version": 3, "erase_version": 3, "origin": "attacker"},
            ],
        }
    )
    assert [get_facts(scenario, i).target for i in range(5)] == [2, 3, 0, 0, 0]
    assert get_target(scenario, frozenset({0, 1})) == 3
    assert get_target(scenario, frozenset({0, 2})) == 2  # the attacker's release: no target
    assert get_target(scenario, frozenset({0, 3})) == 0  # the publisher withdrew v2
    assert get_target(scenario, frozenset({1, 4})) == 3  # an attacker's erase does not
    secure = get_scenario("secure")
    assert [get_facts(secure, i).target for i in range(2)] == [2, 0]  # v3: wrong key


def test_progress_goal_and_freeze_replay() -> None:
    scenario = get_scenario("store")
    world = run(initial_world(scenario), until=_running(1))
    model = OtaModel(scenario)
    assert model.is_progress_goal(world) is False and world.ghost.max_target == 2
    world = apply(world, Action("publish", "1"))
    world = apply(world, Action("publish", "0"))
    assert world.ghost.max_target == 3  # the replay of v2 does not lower the target
    assert not model.is_progress_goal(world)
    assert pr.is_not_frozen(world)  # no SCN-17 attack here: PROP-4 judges this state
    assert "sec-freeze-replay" not in {p.name for p in model.properties()}


def _freeze_world(variant: str) -> World:
    """server-freeze: v3 is published, the check finds it, and the server freezes before
    the image download opens."""
    scenario = with_variant(get_scenario("server-freeze"), variant)
    world = apply(initial_world(scenario), Action("publish", "1"))
    world = run(world, until=lambda w: w.service.state is SvcState.TRIGGER_OTA, max_steps=4000)
    return apply(world, Action("freeze"))


def test_freeze_replay_holds_before_an_attack_and_fails_on_lasting_damage() -> None:
    world = _freeze_world("harmony-3.9.1")
    assert pr.is_attacked(world) and world.ghost.max_target == 3
    assert not pr.is_not_frozen(world)
    assert pr.is_not_frozen(replace(world, budget=world.scenario.budget))  # no attack yet
    # The download fails; the released service rests in STATE_IDLE (HARD-3 is missing), so
    # once the attack ends v3 still never installs: lasting damage.
    world = run(world, until=lambda w: w.service.state is SvcState.STATE_IDLE)
    world = apply(world, Action("resume"))
    assert "timer" not in {a.kind for a in enabled_actions(world)}
    for _ in range(300):
        world = apply(world, Action("tick"))
    assert world.service.state is SvcState.STATE_IDLE and not pr.is_not_frozen(world)
    # The hardened service re-arms the RTCC and installs v3 once the server serves it again.
    hardened = _freeze_world("hardened")
    hardened = run(hardened, until=lambda w: w.service.state is SvcState.WAIT_FOR_OTA_TIMER_TRIGGER)
    done = run(apply(hardened, Action("resume")), until=pr.is_not_frozen, max_steps=6000)
    assert done.running is not None and done.running.version == 3


def test_freeze_replay_edges_add_only_the_end_of_the_attack() -> None:
    assert pr.is_attack_over_action(Action("resume")) and pr.is_attack_over_action(Action("tick"))
    assert pr.is_attack_over_action(Action("ctrl", "update_check"))
    assert not pr.is_attack_over_action(Action("freeze"))
    assert not pr.is_attack_over_action(Action("replay", "0"))
    assert not pr.is_attack_over_action(Action("publish", "1"))


def test_freeze_replay_verdicts_on_small_scenarios() -> None:
    """PROP-43 fails for v3.9.1 (a failed download ends periodic checking; a replayed EraseVer
    manifest stays in force) and holds for the hardened design (HARD-3, HARD-16)."""
    for name in ("server-freeze", "erase-replay"):
        for variant, verdict in (("harmony-3.9.1", "violated"), ("hardened", "holds")):
            report = check(OtaModel(with_variant(get_scenario(name), variant)))
            result = next(r for r in report.results if r.name == "sec-freeze-replay")
            assert result.verdict.value == verdict, (name, variant)


def test_flash_physics_records_locations() -> None:
    world, _ = _updated()
    assert not is_flash_physical(world)  # BL-13 programs boot control without erase
    assert world.flash.overprogrammed and all(p == 0 for p, _ in world.flash.overprogrammed)
    assert 1 <= world.flash.overprograms <= 3


def test_rollback_witness_needs_the_previous_validated_version() -> None:
    scenario = get_scenario("rollback")
    log: list[str] = []
    world = run(
        initial_world(scenario),
        until=lambda w: _running(1)(w) and w.service.state is SvcState.STATE_IDLE,
    )
    world = apply(world, Action("ctrl", "update_check"), log)
    world = run(world, until=_running(2), log=log, max_steps=4000)
    world = run(world, until=lambda w: w.service.state is SvcState.STATE_IDLE)
    world = apply(world, Action("ctrl", "rollback"), log)
    world = run(
        world, until=lambda w: "ROLLBACK_SUCCESS" in callbacks(log) and not w.pending, log=log
    )
    assert world.ghost.rollback_to == 1 and world.ghost.declined == 2
    assert pr.is_intent_honoured(world)  # v2 still runs until the reset: not yet in effect
    world = apply(world, Action("power_cut"))
    world = run(world, until=_running(1), max_steps=4000)
    assert "rollback" in world.ghost.witnesses and world.ghost.rollback_to == 0
    # The periodic-less product: nothing reinstalls v2 by itself; a manual check does.
    assert pr.is_intent_honoured(world)
    world = run(world, until=lambda w: w.service.state is SvcState.STATE_IDLE)
    world = apply(world, Action("ctrl", "update_check"))
    world = run(
        world, until=lambda w: w.running is not None and w.running.version == 2, max_steps=4000
    )
    assert not pr.is_intent_honoured(world)


# ------------------------------------------------------------------ events and honesty


def test_event_delivery_holds_for_a_plain_update() -> None:
    world, _log = _updated()
    assert pr.is_event_delivery_ok(world) and pr.is_nothing_awaited(world)
    assert pr.is_outcome_honest(world)


def test_event_delivery_catches_duplicates_and_overwrites() -> None:
    scenario = with_defects(get_scenario("transfer"), ["callback-twice"])
    world = run(initial_world(scenario), until=lambda w: bool(w.ghost.event_fault), max_steps=4000)
    assert world.ghost.event_fault.startswith("unrequested:")
    assert not pr.is_event_delivery_ok(world)
    after = apply(world, Action("tick"))
    assert pr.is_event_delivery_ok(after) or after.ghost.event_fault != world.ghost.event_fault
    spec = dict(get_scenario("transfer").source)
    spec["config"] = {"scheduler": "bare-metal"}
    world = run(
        initial_world(build_scenario(spec)),
        until=lambda w: bool(w.ghost.event_fault),
        max_steps=4000,
    )
    assert world.ghost.event_fault == "overwritten:DOWNLOAD_SUCCESS"


def test_event_delivery_hook_on_hand_built_steps() -> None:
    world, _ = _updated()
    waiting = _ghost(world, expect=Expect.UPDATE)
    assert not pr.is_nothing_awaited(waiting)
    before = replace(
        world,
        service=replace(world.service, state=SvcState.UPDATE_USER, status=SvcStatus.DOWNLOAD_START),
    )
    after = before.note("core -> service: IMAGE_DOWNLOADED")
    out = update_ghost(before, StepResult(after, Action("tick")))
    assert out.ghost.event_fault == "overwritten:DOWNLOAD_START"
    dropped = update_ghost(
        world, StepResult(world.note("core -> service: IMAGE_DB_ENTRY_FAILED"), Action("tick"))
    )
    assert dropped.ghost.event_fault == "dropped:IMAGE_DB_ENTRY_FAILED"
    asked = update_ghost(
        world, StepResult(world.note("app callback: ROLLBACK_FAILED"), Action("tick"))
    )
    assert asked.ghost.event_fault == "unrequested:ROLLBACK_FAILED"


def test_outcome_honesty_on_db_entry() -> None:
    scenario = with_defects(get_scenario("transfer"), ["success-before-boot-control"])
    world = run(
        initial_world(scenario), until=lambda w: bool(w.ghost.honesty_fault), max_steps=4000
    )
    assert world.ghost.honesty_fault == "DB_ENTRY_SUCCESS:boot-control:v1:bcF8"
    assert not pr.is_outcome_honest(world)
    world, _ = _updated(defects=["core-skips-digest"])
    assert pr.is_outcome_honest(world)  # no corruption in this run: the digest is right


# ------------------------------------------------------------------ boot coherence and wear


def _just_booted_v2() -> World:
    scenario = get_scenario("transfer")
    world = run(initial_world(scenario), until=_running(1))
    return run(
        world,
        until=lambda w: w.running is not None and w.running.version == 2 and pr.is_just_booted(w),
        max_steps=4000,
    )


def test_boot_coherence() -> None:
    world = _just_booted_v2()
    assert pr.is_boot_coherent(world)
    text = world.fs.get("image_database.csv") or b""
    assert b",FE," in text
    assert not pr.is_boot_coherent(_with_db(world, text.replace(b",FE,", b",F0,")))
    assert not pr.is_boot_coherent(_with_db(world, text.replace(b",2,", b",3,")))
    factory = run(initial_world(get_scenario("transfer")), until=_running(1))
    assert pr.is_boot_coherent(factory)


def test_needless_reprogram_and_bounded_streak() -> None:
    world, _ = _updated()
    header = bootctl.unpack(world.flash.pages[0][:256])
    assert header.status == 0xF8
    entering = replace(
        world,
        phase=Phase.BOOTLOADER,
        running=None,
        boot=replace(world.boot, task=BlTask.PROGRAM_IMAGE, copy_len=0),
    )
    assert not pr.is_reprogram_needed(entering)
    page0 = bytes([0xF0]) + world.flash.pages[0][1:]
    invalid = replace(entering, flash=replace(world.flash, pages=(page0, *world.flash.pages[1:])))
    assert pr.is_reprogram_needed(invalid)
    assert pr.is_reprogram_bounded(world)
    assert not pr.is_reprogram_bounded(_ghost(world, program_streak=3))


def test_bad_image_is_abandoned_only_in_the_hardened_variant() -> None:
    for variant, expected in (("harmony-3.9.1", "violated"), ("hardened", "holds")):
        report = check(OtaModel(with_variant(get_scenario("bad-image"), variant)))
        assert report.get_result("bad-image-abandoned").verdict.value == expected
        assert report.get_result("bounded-reprogram").verdict.value == expected
    assert "bad-image-abandoned" not in [p.name for p in OtaModel("transfer").properties()]


# ------------------------------------------------------------------ intent and data


def test_intent_honoured_and_factory_intent() -> None:
    world, _ = _updated()
    assert pr.is_intent_honoured(world) and pr.is_factory_intent_done(world)
    assert not pr.is_intent_honoured(_ghost(world, declined=2))
    assert pr.is_intent_honoured(_ghost(world, declined=2, rollback_to=1))
    assert not pr.is_intent_honoured(_ghost(world, intent_fault="erase-removed:app_v3.bin"))
    assert not pr.is_factory_intent_done(_ghost(world, factory_intent=True))
    assert pr.is_intent_action(Action("tick")) and not pr.is_intent_action(Action("reset"))


def test_erase_of_the_wrong_row_is_an_intent_violation() -> None:
    for defects, ok in (((), True), (("erase-wrong-row",), False)):
        scenario = with_defects(get_scenario("erase"), list(defects))
        world = run(initial_world(scenario), until=_running(2), max_steps=4000)
        world = apply(world, Action("publish", "2"))
        world = run(world, until=_running(3), max_steps=4000)
        world = apply(world, Action("publish", "1"))
        log: list[str] = []
        world = run(
            world,
            until=lambda w, log=log: "IMAGE_ERASED" in callbacks(log),
            log=log,
            max_steps=4000,
        )
        assert pr.is_intent_honoured(world) is ok
        assert pr.is_outcome_honest(world) is ok


def test_no_data_loss() -> None:
    world, _ = _updated()
    assert pr.is_no_data_loss(world)
    gone = replace(world, fs=world.fs.without("app_v2.bin"))
    assert not pr.is_no_data_loss(gone)
    no_factory = replace(world, fs=world.fs.without("factory_reset.bin"))
    assert not pr.is_no_data_loss(no_factory)
    assert pr.is_no_data_loss(replace(gone, pending=(*world.pending, "x")))


# ------------------------------------------------------------------ security


def test_erase_authenticity_and_fast_forward_in_the_attacker_scenario() -> None:
    scenario = get_scenario("attacker")
    world = run(initial_world(scenario), until=_running(2), max_steps=4000)
    assert pr.is_erase_authentic(world) and pr.is_no_fast_forward(world)
    forged = apply(world, Action("publish", "3"))
    forged = run(forged, until=lambda w: w.ghost.erase_forged, max_steps=4000)
    assert not pr.is_erase_authentic(forged)
    assert pr.is_erase_authentic(apply(forged, Action("tick")))  # a mark on that state only
    v255 = next(i for i in scenario.images if i.version == 255)
    assert not pr.is_no_fast_forward(replace(world, running=v255))


def _erase_secure(variant: str, release: int) -> tuple[World, list[str]]:
    """erase-secure: v2 installed, then release ``release`` (1: the publisher's signed
    EraseVer of v2, 2: an attacker's one signed with another key) is published."""
    scenario = with_variant(get_scenario("erase-secure"), variant)
    world = run(initial_world(scenario), until=_running(2), max_steps=4000)
    log: list[str] = []
    world = apply(world, Action("publish", str(release)), log)
    for _ in range(400):
        if world.service.erase_in_progress or world.ghost.erase_forged:
            break
        actions = enabled_actions(world)
        timer = [a for a in actions if a.kind == "timer"]
        world = apply(world, timer[0] if timer else Action("tick"), log)
    return world, log


def test_erase_authenticity_with_signed_erase_manifests() -> None:
    """PROP-44 / HARD-15: in a secure build the hardened service erases only for a manifest
    whose Signature covers the erase statement with the publisher key; v3.9.1 erases for any."""
    scenario = get_scenario("erase-secure")
    assert get_facts(scenario, 1).publisher and not get_facts(scenario, 2).publisher
    released, _ = _erase_secure("harmony-3.9.1", 2)
    assert released.ghost.erase_forged and not pr.is_erase_authentic(released)
    hardened, log = _erase_secure("hardened", 2)
    assert not hardened.service.erase_in_progress and pr.is_erase_authentic(hardened)
    assert any("no publisher signature over the erase" in n for n in log)
    honest, _ = _erase_secure("hardened", 1)
    assert honest.service.erase_in_progress and pr.is_erase_authentic(honest)
    for variant, verdict in (("harmony-3.9.1", "violated"), ("hardened", "holds")):
        report = check(OtaModel(with_variant(scenario, variant)))
        result = next(r for r in report.results if r.name == "sec-erase-authenticity")
        assert result.verdict.value == verdict, variant


def test_small_scenario_verdicts() -> None:
    released = check(OtaModel(with_variant(get_scenario("transfer"), "harmony-3.9.1")))
    hardened = check(OtaModel(with_variant(get_scenario("transfer"), "hardened")))
    failing = {r.name for r in released.results if r.is_failing}
    assert failing == {"progress", "flash-physics"}
    assert {r.name for r in hardened.results if r.is_failing} == {"flash-physics"}


def test_erase_signature_covers_the_erase_statement() -> None:
    """HARD-15 on hand-built inputs: the publisher's signature over ``EraseVer:<Version>``
    passes; another key, garbage, none, or an image signature does not (hardened, secure)."""
    from otamodel.formats import manifest as mf
    from otamodel.model._parse import is_erase_authorised

    scenario = with_variant(get_scenario("erase-secure"), "hardened")
    world = initial_world(scenario)

    def sig(index: int) -> mf.JsonField:
        entry = mf.parse(scenario.releases[index].manifest).entry
        assert entry is not None
        return entry.signature

    assert is_erase_authorised(world, sig(1), 2)
    assert not is_erase_authorised(world, sig(1), 3)  # signed for another Version
    assert not is_erase_authorised(world, sig(2), 2)  # the attacker's key
    assert not is_erase_authorised(world, sig(0), 2)  # v2's image signature
    assert not is_erase_authorised(world, mf.ABSENT, 2)
    released = initial_world(with_variant(scenario, "harmony-3.9.1"))
    assert is_erase_authorised(released, sig(2), 2)  # v3.9.1 takes any erase
    planted = initial_world(with_defects(scenario, ["erase-signature-presence-only"]))
    assert is_erase_authorised(planted, sig(2), 2) and not is_erase_authorised(
        planted, mf.ABSENT, 2
    )


def test_erase_request_does_not_outlive_its_manifest_in_hardened() -> None:
    """HARD-16: with a stale erase request, v3.9.1 turns v3's manifest into an erase of v3;
    the hardened parse reads it as the update it is."""
    from otamodel.model._parse import process_manifest
    from otamodel.model._storage import set_service

    for variant, erase in (("harmony-3.9.1", True), ("hardened", False)):
        scenario = with_variant(get_scenario("erase-replay"), variant)
        world = set_service(initial_world(scenario), erase_request=True)
        out = process_manifest(world, scenario.releases[2].manifest, 1)
        assert out.erase is erase and out.result is not erase, variant
