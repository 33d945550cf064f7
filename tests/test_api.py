"""The Python API a new user meets: help/dir, short reprs, stories, extra properties and the
library's ``check`` choosing the same traces as the command line."""

from __future__ import annotations

import pydoc

import pytest

import otamodel
from otamodel.checker import Property, PropertyKind
from otamodel.model import get_fingerprint


def test_dir_and_help_list_the_public_api() -> None:
    names = dir(otamodel)
    for name in (
        "initial_world",
        "run",
        "check",
        "OtaModel",
        "Trace",
        "parse_actions",
        "write_itf",
    ):
        assert name in names
    assert not [n for n in names if n.startswith("_")]
    text = pydoc.render_doc(otamodel, renderer=pydoc.plaintext)
    assert "initial_world" in text and "OtaModel" in text and "docs/spec" in text
    for name in otamodel.__all__:
        assert (getattr(otamodel, name).__doc__ or "").strip(), f"{name} has no docstring"


def test_reprs_are_short() -> None:
    world = otamodel.initial_world("default")
    assert repr(world) == "<World bootloader bl=INIT bootctl=FF/t3/v1>"
    trace = otamodel.run(world, otamodel.parse_actions("tick*28, timer, tick*60"))
    state = trace.last_state
    for value in (state, state.flash, state.fs, state.boot, state.net, trace):
        assert len(repr(value)) < 700, repr(value)[:200]
    assert repr(trace).startswith("<Trace 89 steps [tick, tick, tick, …] -> <World app")
    assert "B" in repr(state.net) and "\\x" not in repr(state.net)


def test_fingerprint_still_sees_the_bytes() -> None:
    world = otamodel.initial_world("default")
    from otamodel.model._record import replace

    pages = (world.flash.pages[0], b"\x00" * len(world.flash.pages[1]), *world.flash.pages[2:])
    other = replace(world, flash=replace(world.flash, pages=pages))
    assert repr(other.flash) == repr(world.flash)
    assert get_fingerprint(other) != get_fingerprint(world)


def test_story_folds_quiet_ticks() -> None:
    """TRACE-20 is the story view of TRACE-33: writes, machine changes, notes, the loop."""
    trace = otamodel.run(otamodel.initial_world("default"), otamodel.parse_actions("tick*30"))
    story = trace.get_story().splitlines()
    assert story[0].split() == ["1", "bootloader:INIT", "→", "bootloader:FACTORY_RESET"]
    assert any("write factory_reset.bin → 1024 B" in line for line in story)
    assert any("jump: running factory (v1)" in line for line in story)
    assert "(stay)" not in trace.get_story()
    assert story[-2].strip().startswith("30  left alone, it loops through")
    assert story[-1].strip().startswith("ends: app app=v1")
    numbered = [line for line in story if line.strip()[:1].isdigit()]
    assert len(numbered) < 20  # of 30 steps: only those that do something visible


def test_extra_properties_and_cheapest_traces() -> None:
    def is_small_db(world: otamodel.World) -> bool:
        """The image database stays under 200 bytes."""
        return len(world.fs.get("image_database.csv") or b"") < 200

    never_v2 = Property.always(
        "never-v2", lambda w: w.running is None or w.running.version != 2, "v2 never runs"
    )
    model = otamodel.OtaModel("erase", extra_properties=[is_small_db, never_v2])
    names = [p.name for p in model.properties()]
    assert names[-2:] == ["small-db", "never-v2"]
    assert model.properties()[-2].kind is PropertyKind.ALWAYS
    report = otamodel.check(model)
    verdicts = {r.name: r for r in report.results}
    assert verdicts["small-db"].verdict.value == "holds"
    assert verdicts["never-v2"].verdict.value == "violated"
    cheapest = verdicts["progress"].trace
    plain = otamodel.check(model, shortest=True)
    shortest = {r.name: r for r in plain.results}["progress"].trace
    assert cheapest is not None and shortest is not None
    cost = model.get_action_cost
    assert sum(map(cost, cheapest.actions)) <= sum(map(cost, shortest.actions))
    assert len(shortest) <= len(cheapest)
    assert "publish(2)" in verdicts["progress"].trace.get_story(model)  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        otamodel.OtaModel("erase", extra_properties=[42])  # type: ignore[list-item]
