"""Scenario tests of the documented flows, step by step against the research note."""

from __future__ import annotations

import hashlib

from _drive import apply, callbacks, run

from otamodel.env import build_scenario, get_scenario, initial_world
from otamodel.formats import bootctl
from otamodel.model import Action, CoreTask, Phase, SvcState, World


def _bootctl(world: World) -> bootctl.BootControlHeader:
    return bootctl.unpack(world.flash.pages[0][:256])


def _running(version: int):  # type: ignore[no-untyped-def]
    def predicate(world: World) -> bool:
        return (
            world.phase is Phase.APP
            and world.running.version == version
            and world.core.task is CoreTask.IDLE
        )

    return predicate


def test_first_boot_backup_and_factory_jump() -> None:
    scenario = get_scenario("default")
    world = initial_world(scenario)
    assert _bootctl(world).status == 0xFF and _bootctl(world).type == 3
    assert world.fs.files == () and not world.fs.formatted
    world = run(world, until=lambda w: w.phase is Phase.APP)
    # BL-3: factory_reset.bin is the slot with page 0 forced to F8 (what hex2bin -f 0 makes)
    backup = world.fs.get("factory_reset.bin")
    assert backup is not None
    assert backup[: len(scenario.factory.data)] == scenario.factory.data
    header = _bootctl(world)
    assert (header.status, header.type, header.version, header.boot_addr) == (
        0xF8,
        3,
        1,
        0xB0021000,
    )
    assert world.running.factory


def test_full_update_callbacks_db_and_bootctl_bytes() -> None:
    scenario = get_scenario("default")
    log: list[str] = []
    world = run(initial_world(scenario), until=_running(1), log=log)
    v2 = next(i for i in scenario.images if i.version == 2)
    digest = v2.digest.hex()
    # Download to DB entry: the DB row is written with FE, decimal version, 0x01 and the digest.
    world = run(
        world,
        until=lambda w: w.fs.get("image_database.csv") not in (None, b"") and not w.pending,
        log=log,
    )
    assert world.fs.get("image_database.csv") == f"app_v2.bin,FE,2,0x01,{digest}".encode()
    assert world.fs.get("app_v2.bin") == v2.data
    # After the DB entry: boot control erased and written F0 / PRODUCTION / version 2.
    world = run(world, until=lambda w: _bootctl(w).status == 0xF0 and not w.pending, log=log)
    header = _bootctl(world)
    assert (header.type, header.version, header.boot_addr, header.order) == (1, 2, 0xB0021000, 0xFF)
    world = run(world, until=_running(2), log=log)
    assert callbacks(log) == [
        "UPDATE_CHECK_START",
        "UPDATE_AVAILABLE",
        "DOWNLOAD_START",
        "DOWNLOAD_SUCCESS",
        "IMAGE_DIGEST_VERIFY_START",
        "IMAGE_DIGEST_VERIFY_SUCCESS",
        "DB_ENTRY_SUCCESS",
    ]
    # Boot validation: the row becomes lower-case f8 and boot control F8 / PRODUCTION.
    assert world.fs.get("image_database.csv") == f"app_v2.bin,f8,2,0x01,{digest}".encode()
    header = _bootctl(world)
    assert (header.status, header.type, header.version) == (0xF8, 1, 2)
    # The bootloader verified the flash: slot holds v2 after the placeholder page.
    slot = b"".join(world.flash.pages)
    assert slot[256 : len(v2.data)] == v2.data[256:]


def test_bare_metal_loses_statuses_in_the_single_slot() -> None:
    spec = dict(get_scenario("default").source)
    spec["config"] = {"scheduler": "bare-metal"}
    scenario = build_scenario(spec)
    log: list[str] = []
    run(initial_world(scenario), until=_running(2), log=log, max_steps=4000)
    seen = callbacks(log)
    # Two core steps between service steps: DOWNLOAD_SUCCESS is overwritten in the single
    # status slot by IMAGE_DIGEST_VERIFY_START before the service delivers it.
    assert seen == [
        "UPDATE_CHECK_START",
        "UPDATE_AVAILABLE",
        "DOWNLOAD_START",
        "IMAGE_DIGEST_VERIFY_START",
        "IMAGE_DIGEST_VERIFY_SUCCESS",
        "DB_ENTRY_SUCCESS",
    ]


def test_digest_failure_deletes_the_file() -> None:
    scenario = build_scenario({"name": "bad", "releases": [{"version": 2, "digest": "wrong"}]})
    log: list[str] = []
    world = run(initial_world(scenario), until=_running(1), log=log)
    world = run(
        world,
        until=lambda w: "IMAGE_DIGEST_VERIFY_FAILED" in callbacks(log) and not w.pending,
        log=log,
    )
    assert world.fs.get("app_v2.bin") is None
    assert world.fs.get("image_database.csv") is None
    assert not world.service.fw_in_progress
    assert callbacks(log)[-3:] == [
        "DOWNLOAD_SUCCESS",
        "IMAGE_DIGEST_VERIFY_START",
        "IMAGE_DIGEST_VERIFY_FAILED",
    ]


def test_erase_request_is_sticky() -> None:
    scenario = get_scenario("erase")
    log: list[str] = []
    world = run(initial_world(scenario), until=_running(2), log=log, max_steps=4000)
    world = apply(world, Action("publish", "1"))
    world = run(world, until=lambda w: "IMAGE_ERASED" in callbacks(log) and not w.pending, log=log)
    assert world.fs.get("app_v2.bin") is None
    assert world.fs.get("image_database.csv") == b""
    assert world.service.erase_request  # sticky until a manifest says "EraseVer": false
    # The erase ends in STATE_IDLE: the periodic check is never re-armed (SVC-7 is the only
    # re-arming path), so with v3 published nothing more happens without a control message.
    world = apply(world, Action("publish", "2"))
    for _ in range(200):
        world = apply(world, Action("tick"))
    assert world.service.state is SvcState.STATE_IDLE
    assert world.running.version == 2


def test_patch_update_on_3_9_0_and_not_on_3_9_1() -> None:
    for variant, expect_v3 in (("harmony-3.9.0", True), ("harmony-3.9.1", False)):
        spec = dict(get_scenario("patch").source)
        spec["variant"] = variant
        scenario = build_scenario(spec)
        log: list[str] = []
        world = run(initial_world(scenario), until=_running(2), log=log, max_steps=4000)
        world = apply(world, Action("publish", "1"))
        if expect_v3:
            world = run(world, until=_running(3), log=log, max_steps=4000)
            assert "PATCH_EVENT_COMPLETED" in [n.split(": ")[-1] for n in log]
            assert world.fs.get("app_v3.patch") is None
        else:
            # v3.9.1 returns from the parse at the base match: OTA_Start sees no patch request
            # and a stale digest, downloads the .patch URL as app_v3.bin, and the check fails.
            world = run(
                world,
                until=lambda w, log=log: "IMAGE_DIGEST_VERIFY_FAILED" in callbacks(log),
                log=log,
                max_steps=4000,
            )
            assert world.running.version == 2


def test_factory_reset_and_rollback() -> None:
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
    assert _bootctl(world).status == 0xF0
    assert (
        world.fs.get(
            "image_database.csv",
        )
        is not None
    )
    assert b",f0," in world.fs.get("image_database.csv")  # type: ignore[operator]
    # Rollback needs a reset: system reset is refused (no download), so power-cycle.
    world = apply(world, Action("power_cut"))
    world = run(world, until=_running(1), max_steps=4000)
    assert "rollback" in world.ghost.witnesses
    world = run(world, until=lambda w: w.service.state is SvcState.STATE_IDLE)
    world = apply(world, Action("ctrl", "factory_reset"), log)
    world = run(
        world, until=lambda w: "FACTORY_RESET_SUCCESS" in callbacks(log) and not w.pending, log=log
    )
    assert world.fs.get("image_database.csv") is None
    assert world.flash.pages[0] == b"\xff" * 256


def test_signature_failure_with_secure_boot() -> None:
    spec = {
        "name": "s",
        "config": {"secure_boot": True},
        "releases": [{"version": 2, "signature": "other-key"}],
    }
    scenario = build_scenario(spec)
    world = run(initial_world(scenario), until=_running(1))
    assert scenario.public_key_pem is not None
    assert world.fs.get("factory_image_sign.txt") is None
    world = run(
        world,
        until=lambda w: w.phase is Phase.BOOTLOADER and w.boot.task.name == "INVALIDATE_IMAGE",
        max_steps=4000,
    )
    # The image is refused; the factory path then needs factory_image_sign.txt, which only
    # the console command writes: its check fails too, and SELECT_IMAGE then loops on the
    # closed factory handle for ever (BL-7).
    for _ in range(300):
        world = apply(world, Action("tick"))
    assert world.phase is Phase.BOOTLOADER and world.boot.task.name == "SELECT_IMAGE"
    # With the console command done first, the same refusal falls back to the factory image.
    world = run(initial_world(scenario), until=_running(1))
    world = apply(world, Action("factory_sign"))
    world = run(
        world,
        until=lambda w: w.phase is Phase.APP and w.running.version == 1 and w.ghost.witnesses,
        max_steps=4000,
    )
    world = run(world, until=lambda w: "factory-restore" in w.ghost.witnesses, max_steps=4000)
    assert world.running.version == 1


def test_store_full_evicts_the_lowest_version() -> None:
    spec = {
        "name": "full",
        "config": {"num_imgs": 2},
        "releases": [{"version": 2}, {"version": 3}, {"version": 4}],
        "budget": {"publish": 2},
    }
    scenario = build_scenario(spec)
    world = run(initial_world(scenario), until=_running(2), max_steps=4000)
    world = apply(world, Action("publish", "1"))
    world = run(world, until=_running(3), max_steps=4000)
    world = apply(world, Action("publish", "2"))
    world = run(world, until=_running(4), max_steps=4000)
    rows = world.fs.get("image_database.csv").split(b"\n")  # type: ignore[union-attr]
    names = [r.split(b",")[0] for r in rows]
    assert names == [b"app_v4.bin", b"app_v3.bin"]  # v2 (lowest) replaced in place
    assert (
        hashlib.sha256(world.fs.get("app_v4.bin") or b"").digest()
        == next(i for i in scenario.images if i.version == 4).digest
    )


def test_full_update_on_the_real_geometry() -> None:
    scenario = build_scenario({"name": "real", "geometry": "real", "releases": [{"version": 2}]})
    assert scenario.geometry.page_size == 4096 and scenario.geometry.slot_size == 0xDF000
    world = run(initial_world(scenario), until=_running(2), max_steps=20000)
    backup = world.fs.get("factory_reset.bin")
    assert backup is not None and len(backup) == 0xDF000  # the whole slot, 4 KB at a time
    v2 = next(i for i in scenario.images if i.version == 2)
    slot = b"".join(world.flash.pages)
    assert slot[4096 : len(v2.data)] == v2.data[4096:]


def test_every_persistent_write_of_a_full_update_in_program_order() -> None:
    """Research note §5.6: the download, DB entry, F0 boot control, the bootloader's slot
    erase/program/FE header/FC status, then the app's boot validation (f8 row, F8 header)."""
    from otamodel.env import enabled_actions, step

    scenario = build_scenario({"name": "seq", "releases": [{"version": 2}]})
    digest = next(i for i in scenario.images if i.version == 2).digest.hex()
    world = run(initial_world(scenario), until=_running(1))
    seen: list[tuple[str, object]] = []
    while not _running(2)(world):
        timers = [a for a in enabled_actions(world) if a.kind == "timer"]
        result = step(world, timers[0] if timers else Action("tick"))
        world = result.world
        for op in result.ops:
            if "page 0" in op:
                h = _bootctl(world)
                seen.append((op, f"{h.status:02X}/{h.type}/{h.version}"))
            elif "image_database" in op:
                seen.append((op, world.fs.get("image_database.csv")))
            else:
                seen.append((op, None))
    fe = f"app_v2.bin,FE,2,0x01,{digest}".encode()
    f8 = f"app_v2.bin,f8,2,0x01,{digest}".encode()
    blank = "FF/255/4294967295"
    assert seen == [
        ("FS create/truncate app_v2.bin", None),
        ("FS write app_v2.bin @0 (256 B)", None),
        ("FS write app_v2.bin @256 (256 B)", None),
        ("FS write app_v2.bin @512 (256 B)", None),
        ("FS close app_v2.bin", None),
        ("FS create/truncate image_database.csv", b""),
        ("FS write image_database.csv @0 (85 B)", fe),
        ("FS close image_database.csv", fe),
        ("NVM erase page 0", blank),
        ("NVM program page 0 row 0", "F0/1/2"),
        ("NVM program page 0 row 1", "F0/1/2"),
        ("NVM erase page 0", blank),
        ("NVM erase page 1", None),
        ("NVM erase page 2", None),
        ("NVM erase page 3", None),
        ("NVM program page 1 row 0", None),
        ("NVM program page 1 row 1", None),
        ("NVM program page 2 row 0", None),
        ("NVM program page 2 row 1", None),
        ("NVM program page 0 row 0", "FE/1/2"),
        ("NVM program page 0 row 1", "FE/1/2"),
        ("NVM program page 0 row 0", "FC/1/2"),
        ("NVM program page 0 row 1", "FC/1/2"),
        ("FS create/truncate image_database.csv", b""),
        ("FS write image_database.csv @0 (85 B)", f8),
        ("FS close image_database.csv", f8),
        ("NVM erase page 0", blank),
        ("NVM program page 0 row 0", "F8/1/2"),
        ("NVM program page 0 row 1", "F8/1/2"),
    ]
