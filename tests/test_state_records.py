"""The state's fast records and chunked files behave like the plain values they replace."""

from __future__ import annotations

import pickle
import random

import pytest

from otamodel.model._record import replace
from otamodel.model._state import FILE_CHUNK, Flash, Fs, Service, World, register_context


def write_bytes(old: bytes, offset: int, data: bytes) -> bytes:
    """FS-5 on plain bytes: the reference the chunked files must agree with."""
    old = old.ljust(offset, b"\x00")
    return old[:offset] + data + old[offset + len(data) :]


def test_chunked_writes_agree_with_plain_bytes_and_stay_canonical() -> None:
    rng = random.Random(7)
    for _ in range(300):
        size = rng.choice([0, 1, FILE_CHUNK - 1, FILE_CHUNK, 3 * FILE_CHUNK + 5])
        content = rng.randbytes(size)
        fs = Fs(has_dir=True).with_file("f", content)
        for _ in range(4):
            offset = rng.choice([0, rng.randrange(0, 5 * FILE_CHUNK), len(content), FILE_CHUNK])
            data = rng.randbytes(rng.choice([0, 1, 100, FILE_CHUNK, 2 * FILE_CHUNK + 3]))
            content = write_bytes(content, offset, data)
            fs = fs.with_write("f", offset, data)
            assert fs.get("f") == content
            # Canonical: equal contents give equal (and equally hashed) file systems.
            fresh = Fs(has_dir=True).with_file("f", content)
            assert fs == fresh and hash(fs) == hash(fresh)


def test_a_write_shares_untouched_chunks() -> None:
    data = bytes(range(256)) * (4 * FILE_CHUNK // 256)
    fs = Fs(has_dir=True).with_file("img.bin", data)
    after = fs.with_write("img.bin", FILE_CHUNK, b"x" * FILE_CHUNK)
    before_parts, after_parts = fs.get_chunks("img.bin"), after.get_chunks("img.bin")
    assert before_parts is not None and after_parts is not None
    assert after_parts[0] is before_parts[0] and after_parts[2] is before_parts[2]
    assert fs.files == (("img.bin", data),)
    assert "files=" in repr(fs)


def test_records_are_frozen_compare_by_value_and_cache_their_hash() -> None:
    a = Service()
    b = replace(a, registered=True)
    assert a != b and replace(b, registered=False) == a
    assert hash(replace(b, registered=False)) == hash(a)
    with pytest.raises(AttributeError):
        a.registered = True  # type: ignore[misc]


def test_a_pickled_world_carries_a_key_to_its_scenario_not_a_copy() -> None:
    scenario = object.__new__(type("Ctx", (), {}))
    register_context(scenario)
    world = World(flash=Flash(pages=(b"\xff" * 8,)), fs=Fs(), scenario=scenario, notes=("n",))
    data = pickle.dumps(world)
    assert len(data) < 1000
    back = pickle.loads(data)
    assert back == world and back.scenario is scenario


def test_constructed_and_evolved_records_are_of_the_frozen_class() -> None:
    """Records are filled through a mutable slots base and then frozen (class swap)."""
    made = Service()
    evolved = replace(made, rtcc_armed=not made.rtcc_armed)
    for record in (made, evolved, pickle.loads(pickle.dumps(evolved))):
        assert type(record) is Service
        with pytest.raises(AttributeError):
            record.rtcc_armed = True  # type: ignore[misc]
    assert replace(evolved, rtcc_armed=made.rtcc_armed) == made
    assert hash(replace(evolved, rtcc_armed=made.rtcc_armed)) == hash(made)


def test_flash_contents_follow_the_object_not_a_stale_cache() -> None:
    pages = tuple(bytes([n]) * 16 for n in range(3))
    flashes = [Flash(pages=pages[: n + 1]) for n in range(3)] * 3
    for flash in flashes:
        assert flash.get_contents() == b"".join(flash.pages)


def test_a_world_core_leaves_out_the_budgets_and_survives_budget_copies() -> None:
    from otamodel.model._record import (
        get_core_hash,
        get_evolve,
        get_evolve_outside_core,
        is_same_core,
    )
    from otamodel.model._state import get_spent

    world = World(flash=Flash(pages=(b"\xff" * 256,)), fs=Fs(), budget=(("power_cut", 2),))
    core = get_core_hash(world)
    other = get_evolve_outside_core(World)(world, budget=(("power_cut", 1),))
    assert other._core is core  # type: ignore[attr-defined]  # kept, not recomputed
    assert world != other and hash(world) != hash(other)
    assert is_same_core(world, other) and get_core_hash(other) == core
    # Any core field makes the cores differ; a fresh equal world has the same core hash.
    moved = get_evolve(World)(world, sched=1)
    assert not is_same_core(world, moved) and moved._core is None  # type: ignore[attr-defined]
    twin = World(flash=Flash(pages=(b"\xff" * 256,)), fs=Fs(), budget=(("power_cut", 1),))
    assert twin == other and hash(twin) == hash(other)
    assert get_core_hash(twin) == get_core_hash(world) and is_same_core(twin, world)
    # Spent budgets are shared tuples (ENV-9); spending keeps the core.
    assert get_spent(world.budget, "power_cut") is get_spent(world.budget, "power_cut")
    spent = world.spend("power_cut")
    assert spent == twin and spent.budget is get_spent(world.budget, "power_cut")
    assert is_same_core(spent, world)
    # Pickled and restored: equal, same hashes (the caches are not pickled).
    from otamodel.env import get_scenario, initial_world

    start = initial_world(get_scenario("default"))
    spent = start.spend("power_cut")
    register_context(start.scenario)
    back = pickle.loads(pickle.dumps(spent))
    assert back == spent and hash(back) == hash(spent) and back != start
    assert get_core_hash(back) == get_core_hash(start) and is_same_core(back, start)


def test_equal_files_built_apart_share_their_chunks() -> None:
    # Two paths to the same content: a whole-file write and chunk-wise writes.
    data = bytes(range(256)) * (3 * FILE_CHUNK // 256) + b"tail"
    one = Fs(has_dir=True).with_file("img.bin", data)
    other = Fs(has_dir=True).with_file("img.bin", b"")
    for offset in range(0, len(data), 1000):
        other = other.with_write("img.bin", offset, data[offset : offset + 1000])
    assert one == other and one.get("img.bin") == data
    first, second = one.get_chunks("img.bin"), other.get_chunks("img.bin")
    assert first is not None and second is not None
    assert all(a is b for a, b in zip(first, second, strict=True))  # compared by identity
