"""Faithfulness of the bootloader's reads and writes (SCN-10..SCN-12)."""

from __future__ import annotations

from _drive import run

from otamodel.env import build_scenario, initial_world
from otamodel.formats import otadb
from otamodel.model import BlTask, Phase, World
from otamodel.model._bootloader import SelectOutcome, get_select, process_invalidate
from otamodel.model._enums import SelectStep
from otamodel.model._state import replace
from otamodel.model._storage import DB_NAME, set_boot


def _in_select(db_text: bytes, files: dict[str, bytes]) -> World:
    scenario = build_scenario({"releases": [{"version": 2}]})
    world = run(initial_world(scenario), until=lambda w: w.phase is Phase.APP)
    fs = world.fs.with_file(DB_NAME, db_text)
    for name, data in files.items():
        fs = fs.with_file(name, data)
    _, db = otadb.load(db_text)
    assert db is not None
    return set_boot(
        replace(world, fs=fs, phase=Phase.BOOTLOADER),
        task=BlTask.SELECT_IMAGE,
        factory_reset=False,
        db=db.rows,
        select_step=SelectStep.S_PARSE_DB,
    )


def test_digest_field_up_to_100_characters_is_read_and_overflows() -> None:
    # SCN-10: GetFieldString accepts up to 100 characters; strcpy copies them and the NUL.
    digest = "ab" * 50
    world = _in_select(b"app.bin,FE,2,0x01," + digest.encode(), {"app.bin": b"x" * 600})
    selection = get_select(world)
    new = selection.world
    assert selection.outcome is SelectOutcome.SUCCESS
    assert new.boot.digest_str == digest.encode() + b"\x00"
    too_long = _in_select(b"app.bin,FE,2,0x01," + b"a" * 101, {"app.bin": b"x" * 600})
    assert get_select(too_long).outcome is SelectOutcome.ERROR


def test_a_shorter_digest_leaves_the_stale_bytes_after_its_nul() -> None:
    world = _in_select(b"app.bin,FE,2,0x01,abcd", {"app.bin": b"x" * 600})
    world = set_boot(world, digest_str=b"f" * 64)
    new = get_select(world).world
    assert new.boot.digest_str == b"abcd\x00" + b"f" * 59


def test_invalidate_through_a_null_db_is_a_cpu_exception() -> None:
    # SCN-12 / DEV-6: blank boot control -> CheckImage never creates imageDB.
    world = _in_select(b"", {})
    world = set_boot(world, db=None, task=BlTask.INVALIDATE_IMAGE, factory_reset=True)
    new = process_invalidate(world)
    assert new.phase is Phase.HUNG
    assert any("NULL imageDB" in n for n in new.notes)


def test_no_db_file_gives_an_empty_db_that_invalidate_saves() -> None:
    from otamodel.model._bootloader import get_check_decision

    scenario = build_scenario({"releases": [{"version": 2}]})
    world = run(initial_world(scenario), until=lambda w: w.phase is Phase.APP)
    world = replace(world, phase=Phase.BOOTLOADER, fs=world.fs.without(DB_NAME))
    world = replace(
        world, flash=replace(world.flash, pages=(b"\x00" * 256, *world.flash.pages[1:]))
    )
    decision = get_check_decision(world)
    assert decision.db == () and decision.factory_reset is True
    world = set_boot(world, db=(), selected_row=-1)
    new = process_invalidate(world)
    assert new.phase is Phase.BOOTLOADER and new.pending  # the empty DB is written back


def test_an_image_larger_than_the_slot_is_written_past_it() -> None:
    # SCN-11: neither side checks the size; programming writes the page after the slot.
    scenario = build_scenario({"releases": [{"version": 2, "pages": 4}]})
    (image,) = scenario.images
    assert len(image.data) > scenario.geometry.slot_size
    world = run(
        initial_world(scenario),
        until=lambda w: w.phase is Phase.APP and w.running is not None and w.running.version == 2,
        max_steps=4000,
    )
    page = scenario.geometry.page_size
    assert world.flash.beyond == image.data[-page:]
    assert world.flash.get_contents()[page:] == image.data[page:]
