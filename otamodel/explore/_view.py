"""JSON views of a world and of one step, as the explorer page shows them (EXP-3, EXP-4).

Everything here is derived from a :class:`~otamodel.model.World` and the scenario; nothing
is cached in the world. The records are plain JSON-ready dicts (the HTTP API returns them
as they are, see ``docs/explorer.md``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from otamodel.env import Scenario
from otamodel.errors import OtaModelError
from otamodel.formats import bootctl, otadb
from otamodel.model import Action, Phase, StepResult, World
from otamodel.model._storage import DB_NAME
from otamodel.verify import get_persistent_changes

JsonDict = dict[str, Any]

CALLBACK_PREFIX = "app callback: "


def get_name(value: object) -> str | None:
    """An enum member's name (a sub-state), or None."""
    if value is None or value == "":
        return None
    return str(getattr(value, "name", value))


def get_machine_states(world: World) -> JsonDict:
    """The state (and sub-state) of each machine, or None when it is not running."""
    app = world.phase is Phase.APP
    booting = world.phase is Phase.BOOTLOADER
    service = world.service
    core = world.core
    boot = world.boot
    return {
        "phase": world.phase.value,
        "service": {
            "state": service.state.name if app else None,
            "sub": service.check.name if app else None,
            "status": service.status.name if app else None,
        },
        "core": {
            "state": core.task.name if app else None,
            "sub": get_name(core.sub) if app else None,
            "result": core.result.name if app else None,
        },
        "bootloader": {
            "state": boot.task.name if booting else None,
            "sub": get_name(boot.sub) if booting else None,
        },
    }


def get_bootctl_view(world: World) -> JsonDict:
    """EXP-3: the boot-control header decoded from internal flash page 0."""
    header = bootctl.unpack(world.flash.pages[0][: bootctl.HEADER_SIZE])
    return {
        "status": header.status,
        "status_name": header.get_status_name(),
        "type": header.type,
        "type_name": header.get_type_name(),
        "version": header.version,
        "boot_addr": f"0x{header.boot_addr:08X}",
        "sz": header.sz,
        "digest": header.digest.hex(),
        "blank": bootctl.is_blank_prefix(world.flash.pages[0]),
    }


def get_db_view(data: bytes | None) -> JsonDict:
    """EXP-3: the image database as bytes and both readings of each row (as ``db show``)."""
    if data is None:
        return {"present": False, "bytes": None, "rows": []}
    try:
        db = otadb.parse(data)
        rows = [
            {
                "row": r.row,
                "name": r.name,
                "status": r.status_text,
                "status_name": (
                    bootctl.get_status_name(r.status) if r.status is not None else None
                ),
                "version_written": r.version_text,
                "version_read": r.version_read,
                "type": r.type_text,
                "digest": r.digest,
            }
            for r in otadb.get_rows(db)
        ]
        problem = None
    except OtaModelError as exc:  # a damaged file is shown, not fatal
        rows, problem = [], str(exc)
    return {
        "present": True,
        "bytes": data.decode("latin-1"),
        "size": len(data),
        "rows": rows,
        "problem": problem,
    }


def get_files_view(world: World) -> list[JsonDict]:
    """EXP-3: the external files with sizes and SHA-256 digests."""
    return [
        {
            "name": name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "identifies": _identify(world, data),
        }
        for name, data in world.fs.files
    ]


def _identify(world: World, data: bytes) -> str | None:
    scenario: Any = world.scenario
    image = scenario.identify(data) if scenario is not None and data else None
    return image.describe() if image is not None else None


def get_budget_view(world: World, scenario: Scenario) -> list[JsonDict]:
    """EXP-3: each fault budget: what the scenario gave and what is left."""
    given = dict(scenario.budget)
    return [
        {"name": name, "given": given.get(name, 0), "left": left} for name, left in world.budget
    ]


def get_world_view(world: World, scenario: Scenario) -> JsonDict:
    """EXP-3: everything the page shows about one world."""
    running = world.running
    return {
        "machines": get_machine_states(world),
        "running": running.describe() if running is not None else None,
        "published": world.published,
        "network_up": world.network_up,
        "bootctl": get_bootctl_view(world),
        "db": get_db_view(world.fs.get(DB_NAME)),
        "files": get_files_view(world),
        "fs": {"formatted": world.fs.formatted, "has_dir": world.fs.has_dir},
        "pending": [op.describe() for op in world.pending],
        "budgets": get_budget_view(world, scenario),
    }


def get_callbacks(results: Sequence[StepResult]) -> list[JsonDict]:
    """EXP-3: the app callbacks so far, with the step each came at (1-based)."""
    out: list[JsonDict] = []
    for index, result in enumerate(results, 1):
        for note in result.notes:
            if note.startswith(CALLBACK_PREFIX):
                out.append({"step": index, "status": note[len(CALLBACK_PREFIX) :]})
    return out


def get_step_view(index: int, before: World, result: StepResult) -> JsonDict:
    """EXP-4: what one step changed: persistent diff, machine transitions, notes."""
    after = result.world
    old, new = get_machine_states(before), get_machine_states(after)
    moves = []
    for name in ("service", "core", "bootloader"):
        was, now = old[name], new[name]
        if was != now:
            moves.append({"machine": name, "from": was, "to": now})
    if old["phase"] != new["phase"]:
        moves.insert(0, {"machine": "device", "from": old["phase"], "to": new["phase"]})
    return {
        "index": index,
        "action": str(result.action),
        "transition": result.transition,
        "ops": list(result.ops),
        "notes": list(result.notes),
        "changes": get_persistent_changes(before, after),
        "machine_moves": moves,
    }


def get_action_view(action: Action, is_fault: bool) -> JsonDict:
    """EXP-5: one enabled action as a button."""
    return {"action": str(action), "kind": action.kind, "fault": is_fault}
