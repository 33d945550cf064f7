"""What makes two OTA violations the same finding (TRACE-30, TRACE-31): the keys the generic
classifier (``otamodel.checker``, CHK-30..CHK-33) groups violations by.

* an edge (a violating step, or the step entering a trap region) is keyed by the action, the
  persistent operation it performed, cut or tore (kind, medium, file or flash region), the
  machine transition it fired, and the machines' states before it;
* a terminal behaviour (where the device ends, a bottom SCC of the recovery graph) is keyed by
  the machines' states it cycles through and the persistent facts that keep it there: what the
  boot-control header says, what the slot holds, which files exist and whether the image
  database agrees with them, the network and the published release.

Nothing in a key depends on fault budgets, ghost history or the order states were explored.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence

from otamodel.formats import bootctl, otadb
from otamodel.formats import manifest as mf
from otamodel.model import Action, AppImage, DeviceContext, Flash, Fs, Phase, World, step
from otamodel.model._physics import (
    FlashErase,
    FlashProgram,
    FsClose,
    FsCreate,
    FsDelete,
    FsFormat,
    FsMkdir,
    FsRename,
    FsWrite,
    PersistentOp,
)

Key = tuple[str, ...]

PREFIXES = {
    "boots-valid-image": "BV",
    "no-brick": "NB",
    "no-unintended-downgrade": "ND",
    "progress": "PG",
    "no-stuck-service": "SS",
    "store-consistency": "SC",
    "flash-physics": "FP",
}


def get_file_role(name: str) -> str:
    """A file as the code sees it: the DB, the factory files by name; an update's image or
    signature file by its role (its version is in the name and says nothing more)."""
    if re.fullmatch(r"app_v\d+\.bin", name):
        return "an image file"
    if re.fullmatch(r"app_v\d+_sign\.txt", name):
        return "a signature file"
    return name


def describe_op(op: PersistentOp, row_size: int = 0, *, exact: bool = False) -> str:
    """TRACE-30/TRACE-33: an operation and its target, one wording for keys and stories.
    Keys (``exact`` false) name the medium and region without offsets that only say *which*
    of many equal writes it was (a slot page, a header row, a write call of a file) and
    update files by role; stories (``exact``) name the page, row and file."""
    if isinstance(op, FlashErase):
        text = "erase boot-control page" if op.page == 0 else "erase slot page"
        return f"{text} {op.page}" if exact and op.page else text
    if isinstance(op, FlashProgram):
        if op.page == 0:
            inside = op.row * row_size < bootctl.HEADER_SIZE
            text = "program boot-control header" if inside or exact else "program boot-control page"
            return f"program boot-control row {op.row}" if exact else text
        return f"program slot page {op.page} row {op.row}" if exact else "program slot row"
    if isinstance(op, FsRename):
        source, target = (
            (op.source, op.target) if exact else map(get_file_role, (op.source, op.target))
        )
        return f"rename {source} to {target}"
    if isinstance(op, FsFormat):
        return "format the FS"
    if isinstance(op, FsMkdir):
        return "mkdir ota"
    verbs = {FsCreate: "create", FsWrite: "write", FsClose: "close", FsDelete: "delete"}
    verb = verbs.get(type(op))
    if verb is not None:
        name = str(getattr(op, "name", ""))
        return f"{verb} {name if exact else get_file_role(name)}"
    return op.describe()


def get_op_target(op: PersistentOp, row_size: int = 0) -> str:
    """TRACE-30: an operation's key (:func:`describe_op` without offsets)."""
    return describe_op(op, row_size)


def get_stage(world: World) -> str:
    """The stage of the update a step happens in (TRACE-30): the bootloader's task, or the OTA
    core's task while the app runs (the service's polling state is left out: it does not
    change what a fault or input does to the update)."""
    if world.phase is Phase.BOOTLOADER:
        return f"bootloader:{world.boot.task.name}"
    if world.phase is Phase.APP:
        return f"app:{world.core.task.name}"
    return str(world.phase.value)


def get_machines(world: World) -> str:
    """The machines' states: ``bootloader:TASK`` or ``app:SVC/CORE`` or ``hung``."""
    if world.phase is Phase.BOOTLOADER:
        return f"bootloader:{world.boot.task.name}"
    if world.phase is Phase.APP:
        return f"app:{world.service.state.name}/{world.core.task.name}"
    return str(world.phase.value)


def get_phase(world: World) -> str:
    """The coarse phase: ``bootloader``, ``app`` or ``hung`` (TRACE-30)."""
    return str(world.phase.value)


def get_transfer_role(url: str) -> str:
    """What a download fetches, by role (TRACE-30): the manifest, an image, a signature."""
    name = url.rsplit("/", 1)[-1].lower()
    if "sign" in name or name.endswith(".txt"):
        return "the signature download"
    if name.endswith(".json") or "manifest" in name or not name:
        return "the manifest download"
    return "the image download"


#: Inputs that change only the environment (the server, the network), not the device: the
#: device meets them later, through its own steps, so they never stand for the cause of a
#: later step (they are keyed as themselves when they are the violating or entering step).
ENVIRONMENT_KINDS = frozenset({"publish", "freeze", "replay", "net_down"})


def is_cause_action(action: Action) -> bool:
    """TRACE-30/CHK-34: faults and inputs that act on the device (power cuts, resets, crashes,
    transfer faults, tampering, the user's and the console's inputs) are causes; the device's
    own progress (ticks, the RTCC alarm, the network coming back) and inputs that change only
    the environment are not."""
    return not action.is_recovery() and action.kind not in ENVIRONMENT_KINDS


#: The causes whose key needs the state they happen in (what was in flight, which download).
STATEFUL_CAUSES = frozenset({"power_cut", "power_cut_torn", "reset", "transfer_fail", "corrupt"})


def is_cause_state_needed(action: Action) -> bool:
    """Whether :func:`get_cause_key` needs the state ``action`` happens in (CHK-34)."""
    return action.kind in STATEFUL_CAUSES


def get_cause_key(before: World | None, action: Action | None) -> Key:
    """TRACE-30: a cause as a firmware engineer names it: the fault or input kind; for a
    power cut or reset what it hit (the persistent operation in flight, cut before it or
    torn, and the phase); for a transfer fault which download; for user and attacker inputs
    their argument. The machine states an input happens in are left out (they say when,
    not what)."""
    if action is None:
        return ("the fault-free start",)
    kind = action.kind
    if before is None:
        return (str(kind),) if kind in STATEFUL_CAUSES else (str(action),)
    if kind in ("power_cut", "power_cut_torn", "reset"):
        if before.pending:
            op = get_op_target(before.pending[0], before.scenario.geometry.row_size)
            how = "torn" if kind == "power_cut_torn" else "cut before"
            return (str(kind), f"{how}: {op}", get_phase(before))
        return (str(kind), "nothing in flight", get_phase(before))
    if kind in ("transfer_fail", "corrupt"):
        return (str(kind), get_transfer_role(before.net.url))
    if kind in ("crash", "net_down", "freeze", "replay", "factory_sign"):
        return (str(kind),)
    return (str(action),)


def get_edge_key(
    prop: str,
    before: World | None,
    action: Action | None,
    after: World | None,
    *,
    eventually: bool = False,
) -> Key:
    """TRACE-30: the key of a violating or trap-entering step: the cause it is (a fault or
    input), or what the device's own step did (the persistent operation it completed; for
    ``always`` the machine states it moved between), and for ``always`` properties what the
    violation looks like after it. The checker adds the last cause before a step of the
    device's own (CHK-34). ``after`` is ``None`` for a trap-entering step (CHK-31)."""
    if before is None or action is None:
        assert after is not None, "an initial state is keyed by itself"
        shown = () if eventually else get_outcome(prop, after)
        return ("initial state", get_stage(after), *shown)
    if eventually:
        outcome: Key = ()
    else:
        assert after is not None, "an always violation is keyed by what it looks like"
        outcome = get_outcome(prop, after)
    if not action.is_recovery():
        return (*get_cause_key(before, action), *outcome)
    label = str(action.kind)
    if before.pending:
        op = get_op_target(before.pending[0], before.scenario.geometry.row_size)
        where = get_phase(before) if eventually else get_stage(before)
        return (label, f"done: {op}", where, *outcome)
    if eventually:
        return ()
    after_step = step(before, action).world
    moved = f"{get_machines(before)} → {get_machines(after_step)}"
    if get_machines(before) == get_machines(after_step):
        moved = f"a step within {get_machines(before)}"
    return (label, moved, *outcome)


def get_outcome(prop: str, after: World) -> Key:
    """What an ``always`` violation looks like in the violating state (TRACE-30)."""
    if prop == "store-consistency":
        data = after.fs.get("image_database.csv")
        return (f"DB {get_db_state(after.fs, data) if data is not None else 'missing'}",)
    if prop == "no-unintended-downgrade" and after.running is not None:
        return (
            f"{get_image_role(after.running)} runs after a newer version was validated",
            get_flash_facts(after.flash, after.scenario),
        )
    if prop == "check-interval":
        return ("the RTCC alarm is set sooner than the interval (it wraps modulo a day)",)
    if prop == "boots-valid-image":
        running = get_image_role(after.running) if after.running is not None else "no application"
        return (f"jumped into {running}", get_flash_facts(after.flash, after.scenario))
    return ()


_FLASH_FACTS: dict[tuple[Flash, int], tuple[DeviceContext, str]] = {}


def get_flash_facts(flash: Flash, scenario: DeviceContext) -> str:
    """Boot control and the slot's content (memoised per flash and scenario object)."""
    key = (flash, id(scenario))
    cached = _FLASH_FACTS.get(key)
    if cached is not None and cached[0] is scenario:
        return cached[1]
    if len(_FLASH_FACTS) > 4096:
        _FLASH_FACTS.clear()
    text = _get_flash_facts(flash, scenario)
    _FLASH_FACTS[key] = (scenario, text)
    return text


def _get_flash_facts(flash: Flash, scenario: DeviceContext) -> str:
    """``bootctl status F8 type 3, slot holds the factory image``."""
    header = bootctl.unpack(flash.pages[0][: bootctl.HEADER_SIZE])
    slot = b"".join(flash.pages)
    image = scenario.identify(slot)
    held = "no known image" if image is None else get_image_role(image)
    return f"bootctl status {header.status:02X} type {header.type}, slot holds {held}"


def get_image_role(image: AppImage) -> str:
    """``the factory image`` or ``an update image`` (versions differ between scenarios)."""
    return "the factory image" if image.factory else "an update image"


@functools.lru_cache(maxsize=4096)
def get_fs_facts(fs: Fs) -> str:
    """The files and whether the image database agrees with them."""
    if not fs.formatted:
        return "FS unformatted"
    data = fs.get("image_database.csv")
    referenced = get_db_names(data) if data is not None else set()
    names = [
        name
        for name, _ in fs.files
        if not name.startswith("app_") or name in referenced or name.split("_sign")[0] in referenced
    ]
    roles = sorted({get_file_role(name) for name in names})
    text = "files: " + (", ".join(roles) if roles else "none")
    if len(names) < len(fs.files):
        text += " (+ image files no DB row names)"
    if data is not None:
        text += f"; DB {get_db_state(fs, data)}"
    return text


def get_db_names(data: bytes) -> set[str]:
    """The file names (and their stems) the DB's rows name."""
    result, db = otadb.load(data)
    if result != 0 or db is None or db.rows == (("",),):
        return set()
    names = set()
    for row in range(len(db.rows)):
        name = otadb.get_field_string(db, row, 0)
        if name:
            names.add(name)
            names.add(name.rsplit(".", 1)[0])
    return names


def get_db_state(fs: Fs, data: bytes) -> str:
    """``ok`` / ``unreadable`` / ``empty`` / the kinds of problem its rows have (a row naming a
    missing file, a digest that does not match its file), without the (possibly torn) names."""
    result, db = otadb.load(data)
    if result != 0 or db is None:
        return "unreadable"
    if db.rows == (("",),):
        return "empty"
    problems = set()
    for row in range(len(db.rows)):
        name = otadb.get_field_string(db, row, 0)
        digest = otadb.get_field_string(db, row, 4)
        content = fs.get(name) if name else None
        if content is None:
            problems.add("a row names a missing file")
        elif digest is None or hashlib.sha256(content).digest() != mf.get_digest_bytes(digest):
            problems.add("a row's digest does not match its file")
    return "ok" if not problems else " and ".join(sorted(problems))


def get_persistent_facts(world: World, *, published: bool = True) -> str:
    """TRACE-31: what survives a reset and keeps a device where it is."""
    facts = [get_flash_facts(world.flash, world.scenario), get_fs_facts(world.fs)]
    if not published:
        return "; ".join(facts)
    if not world.network_up:
        facts.append("network down")
    if world.scenario is not None and world.scenario.release_count > 1:
        facts.append(f"release {world.published} published")
    return "; ".join(facts)


_CATEGORIES = ("bootctl", "slot", "files", "DB", "network", "release")


def get_fact_atoms(world: World, *, published: bool = True) -> dict[str, str]:
    """TRACE-31: the persistent facts by category (boot control, the slot, the files, the
    DB; with ``published`` the network and the published release)."""
    flash = get_flash_facts(world.flash, world.scenario)
    header, _, slot = flash.partition(", ")
    atoms = {"bootctl": header, "slot": slot}
    for part in get_fs_facts(world.fs).split("; "):
        atoms["DB" if part.startswith("DB ") else "files"] = part
    if published:
        atoms["network"] = "network up" if world.network_up else "network down"
        if world.scenario is not None and world.scenario.release_count > 1:
            atoms["release"] = f"release {world.published} published"
    return atoms


def get_terminal_key(prop: str, states: Sequence[World]) -> Key:
    """TRACE-31: the key of a terminal behaviour: the machine states it cycles through
    (sorted; more than four summarised per phase), then per category the persistent fact
    all its states share, or that the category varies along the loop."""
    machines = sorted({get_machines(w) for w in states})
    if len(machines) > 4:
        phases = sorted({m.split(":")[0] for m in machines})
        machines = [f"{p}: cycles through several states" for p in phases]
    environment = prop == "progress"  # the network and the published release matter there only
    atoms = [get_fact_atoms(w, published=environment) for w in states]
    facts = []
    for category in _CATEGORIES:
        values = {a.get(category, "") for a in atoms}
        if values == {""}:
            continue
        facts.append(values.pop() if len(values) == 1 else f"{category} varies")
    return (" | ".join(machines), *facts)
