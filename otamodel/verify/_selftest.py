"""PROP-45: the properties' self-test. Each planted defect (``Defect``) must be *killed* on
some shipped scenario: a property verdict that differs from the unmutated run, or a violating
state of an *always* property whose finding key the unmutated run never reaches (so a defect
that adds a new, distinct violation of an already-violated property still counts). A pinned
state count never counts as a kill."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from otamodel.checker import check
from otamodel.checker._model import Property, PropertyKind
from otamodel.env import Scenario, get_scenario, with_defects, with_variant
from otamodel.formats import bootctl
from otamodel.model import Action, Defect, World
from otamodel.verify._properties import OtaModel

RELEASED, HARDENED = "harmony-3.9.1", "hardened"
# Small shipped scenarios, cheapest first: where the kill table looks for kills.
KILL_SCENARIOS = (
    "bad-image",
    "transfer",
    "erase",
    "store",
    "attacker-patch",
    "patch",
    "signed",
    "signed-attack",
    "user",
    "secure",
    "rollback",
    "erase-secure",
    "erase-replay",
    "server-freeze",
    "user-power-cut",
)
# Where the test looks for each defect's kill (the generated table searches all of them).
KILLED_ON: dict[Defect, str] = {
    Defect.CORE_SKIPS_DIGEST: "transfer",
    Defect.SUCCESS_BEFORE_BOOT_CONTROL: "transfer",
    Defect.ACCEPTS_OLDER_VERSION: "store",
    Defect.ERASE_KEEPS_ROW: "erase",
    Defect.ERASE_WRONG_ROW: "erase",
    Defect.FACTORY_RESET_REPORTS_ONLY: "user",
    Defect.ROLLBACK_SKIPS_BOOT_CONTROL: "user",
    Defect.CALLBACK_TWICE: "transfer",
    Defect.STATE_KEPT_OVER_RESET: "signed",
    Defect.VALID_STATUS_AFTER_DOWNLOAD: "transfer",
    Defect.BOOT_STATUS_VALID_AT_PROGRAM: "transfer",
    Defect.BOOTLOADER_SKIPS_VERIFY: "signed-attack",
    Defect.BOOTLOADER_SKIPS_SIGNATURE: "signed-attack",
    Defect.BOOTLOADER_TRUSTS_HEADER: "signed-attack",
    Defect.BOOTLOADER_RANKS_LOWEST: "store",
    Defect.EVICTS_NEWEST: "store",
    Defect.DB_DELETE_BEFORE_RENAME: "user",
    Defect.BACKUP_COMMIT_FIRST: "signed-attack",
    Defect.PERIODIC_NOT_REARMED: "transfer",
    Defect.DOWNLOAD_FAILURE_DROPPED: "transfer",
    Defect.BOOTLOADER_IGNORES_NEW_IMAGES: "transfer",
    Defect.TRIAL_BOOT_NOT_TRACKED: "bad-image",
    Defect.BOOTLOADER_NEVER_FAST_PATH: "patch",
    Defect.PROGRAM_WITHOUT_ERASE: "transfer",
    Defect.OFFERED_VERSION_SKIPPED: "server-freeze",
    Defect.ERASE_SIGNATURE_PRESENCE_ONLY: "erase-secure",
    Defect.ERASE_REQUEST_STICKY: "erase-replay",
    Defect.MANUAL_OTA_ANY_VERSION: "user-power-cut",
}


def _header_key(world: World) -> tuple[int, int]:
    header = bootctl.unpack(world.flash.pages[0][: bootctl.HEADER_SIZE])
    return header.status, int(header.type)


def _running_key(world: World) -> str:
    return world.running.label if world.running is not None else world.phase.value


# Finding keys of *always* properties: distinct keys are distinct findings.
FINDING_KEYS: dict[str, Callable[[World], object]] = {
    "boots-valid-image": _running_key,
    "sec-authenticity": _running_key,
    "sec-fast-forward": _running_key,
    "sec-anti-rollback": _running_key,
    "no-unintended-downgrade": _running_key,
    "flash-physics": lambda w: w.flash.overprogrammed,
    "event-delivery": lambda w: w.ghost.event_fault,
    "outcome-honesty": lambda w: w.ghost.honesty_fault,
    "intent-honoured": lambda w: w.ghost.intent_fault or f"rerun v{w.ghost.declined}",
    "boot-coherence": lambda w: (_running_key(w), _header_key(w)),
    "no-data-loss": lambda w: w.ghost.kept,
    "no-needless-reprogram": _header_key,
}


def _no_key(world: World) -> object:
    return ""


@attrs.frozen
class Outcome:
    """One check: verdict per property and the finding keys of its always-violations."""

    verdicts: dict[str, str]
    keys: frozenset[tuple[str, object]]
    states: int
    seconds: float


class _KeyedModel(OtaModel):
    """The OTA model plus a collector property that records the finding key of every
    violating state of every *always* property (it always holds itself)."""

    def __init__(self, scenario: Scenario) -> None:
        super().__init__(scenario)
        self.keys: set[tuple[str, object]] = set()

    def properties(self) -> Sequence[Property[World, Action]]:
        props = list(super().properties())
        always = [p for p in props if p.kind is PropertyKind.ALWAYS]
        keys = self.keys

        def collect(world: World) -> bool:
            for prop in always:
                if not prop.predicate(world):
                    get_key = FINDING_KEYS.get(prop.name, _no_key)
                    key = get_key(world)
                    keys.add((prop.name, key))
            return True

        props.append(Property.always("selftest-collector", collect, "collects finding keys"))
        return props


def run_outcome(scenario: Scenario) -> Outcome:
    started = time.perf_counter()
    model = _KeyedModel(scenario)
    report = check(model)
    verdicts = {r.name: r.verdict.value for r in report.results if r.name != "selftest-collector"}
    seconds = time.perf_counter() - started
    return Outcome(verdicts, frozenset(model.keys), report.unique_states, seconds)


def get_kills(baseline: Outcome, mutant: Outcome) -> list[str]:
    """The properties that kill the mutant: changed verdicts, then new finding keys."""
    kills = [
        name for name, verdict in mutant.verdicts.items() if baseline.verdicts.get(name) != verdict
    ]
    for name, _ in sorted(mutant.keys - baseline.keys, key=repr):
        label = f"{name} (new finding)"
        if name not in kills and label not in kills:
            kills.append(label)
    return kills


_BASELINES: dict[tuple[str, str], Outcome] = {}


def get_baseline(name: str, variant: str) -> Outcome:
    key = (name, variant)
    if key not in _BASELINES:
        _BASELINES[key] = run_outcome(with_variant(get_scenario(name), variant))
    return _BASELINES[key]


def get_defect_kills(defect: Defect, name: str, variant: str) -> list[str]:
    """The kill verdicts of ``defect`` on scenario ``name`` in ``variant``."""
    scenario = with_defects(with_variant(get_scenario(name), variant), [defect.value])
    return get_kills(get_baseline(name, variant), run_outcome(scenario))


DESCRIPTIONS: dict[Defect, str] = {
    Defect.CORE_SKIPS_DIGEST: "the core's digest check of a download always passes",
    Defect.SUCCESS_BEFORE_BOOT_CONTROL: "DB_ENTRY_SUCCESS before the boot-control write",
    Defect.ACCEPTS_OLDER_VERSION: "the manifest check accepts any other version",
    Defect.ERASE_KEEPS_ROW: "an erase deletes the file but keeps its DB row",
    Defect.ERASE_WRONG_ROW: "an erase removes the last row instead of the found one",
    Defect.FACTORY_RESET_REPORTS_ONLY: "the factory-reset task reports success, does nothing",
    Defect.ROLLBACK_SKIPS_BOOT_CONTROL: "a rollback disables the row but not boot control",
    Defect.CALLBACK_TWICE: "UPDATE_USER delivers every status twice",
    Defect.STATE_KEPT_OVER_RESET: "otaFwInProgress survives a reset (no-init RAM)",
    Defect.VALID_STATUS_AFTER_DOWNLOAD: "boot control written F8, not F0, after a download",
    Defect.BOOT_STATUS_VALID_AT_PROGRAM: "BL-13 masks the status with 0xF8 instead of 0xFC",
    Defect.BOOTLOADER_SKIPS_VERIFY: "the bootloader's digest and signature check always pass",
    Defect.BOOTLOADER_SKIPS_SIGNATURE: "the bootloader checks the digest, not the signature",
    Defect.BOOTLOADER_TRUSTS_HEADER: "an F8 boot control alone takes the fast path",
    Defect.BOOTLOADER_RANKS_LOWEST: "the bootloader selects the lowest version",
    Defect.EVICTS_NEWEST: "a full store evicts its newest row",
    Defect.DB_DELETE_BEFORE_RENAME: "HARD-1 save deletes the DB before the rename",
    Defect.BACKUP_COMMIT_FIRST: "first-boot backup marks F8 before the files (undoes HARD-8)",
    Defect.PERIODIC_NOT_REARMED: "a finished periodic check does not re-arm the RTCC",
    Defect.DOWNLOAD_FAILURE_DROPPED: "_OTACallback has no case for IMAGE_DOWNLOAD_FAILED",
    Defect.BOOTLOADER_IGNORES_NEW_IMAGES: "the bootloader selects only F8 rows, never FE",
    Defect.TRIAL_BOOT_NOT_TRACKED: "a failed trial boot is not noticed (undoes HARD-9)",
    Defect.BOOTLOADER_NEVER_FAST_PATH: "CHECK_IMAGE never jumps: every boot reprograms",
    Defect.PROGRAM_WITHOUT_ERASE: "PROGRAM_IMAGE erases only boot control",
    Defect.OFFERED_VERSION_SKIPPED: "a Version offered once is not offered again until a reboot",
    Defect.ERASE_SIGNATURE_PRESENCE_ONLY: "an erase needs a Signature, never verified (HARD-15)",
    Defect.ERASE_REQUEST_STICKY: "an EraseVer request outlives its manifest (undoes HARD-16)",
    Defect.MANUAL_OTA_ANY_VERSION: "initiate_ota downloads with a stale version (undoes HARD-17)",
}


def render_defects_doc(cells: dict[Defect, tuple[str, str]]) -> str:
    """The Markdown of ``docs/defects.md`` from the kill cells (released, hardened)."""
    lines = [
        "# Planted defects and the properties that kill them (PROP-45)",
        "",
        "Generated by `python -m otamodel.verify._selftest docs/defects.md`. Each defect is a",
        "`Defect` flag on the build configuration (`defects = [...]` in a scenario) that plants",
        "one plausible design mistake behind a few guarded lines. A defect is *killed* on a",
        "scenario when a property verdict differs from the unmutated run of the same scenario",
        "and variant, or when an *always* property reaches a violation whose finding key the",
        'unmutated run never reaches ("new finding"). Each cell names the first shipped',
        "scenario that kills it (the one in `KILLED_ON` first) and the killing properties.",
        "`tests/test_selftest.py` re-checks every defect on its `KILLED_ON` scenario in both",
        "variants and requires a kill in at least one.",
        "",
        '"Not killed" in the released column means the released code already has the defect\'s',
        "effect, so the defect changes nothing there: it undoes a hardened fix (HARD-1, HARD-8,",
        "HARD-9, HARD-15, HARD-16, HARD-17) or is masked by a released failure (periodic",
        "checking already ends after a failed download). The hardened column is where such",
        "defects are caught.",
        "",
        "| defect | what it plants | released (harmony-3.9.1) | hardened |",
        "|---|---|---|---|",
    ]
    for defect in Defect:
        released, hardened = cells[defect]
        lines.append(f"| `{defect.value}` | {DESCRIPTIONS[defect]} | {released} | {hardened} |")
    lines.append("")
    return "\n".join(lines)


def write_defects_doc(path: Path, scenarios: Sequence[str] = KILL_SCENARIOS) -> None:
    """Generate ``docs/defects.md``: per defect and variant, the first scenario that kills it
    (``KILLED_ON`` first, then the order of ``scenarios``) and the killing properties."""
    cells: dict[Defect, tuple[str, str]] = {}
    for defect in Defect:
        found = []
        for variant in (RELEASED, HARDENED):
            cell = "**not killed**"
            order = [KILLED_ON[defect], *(n for n in scenarios if n != KILLED_ON[defect])]
            for name in order:
                kills = get_defect_kills(defect, name, variant)
                if kills:
                    cell = f"`{name}`: " + ", ".join(kills)
                    break
            found.append(cell)
            print(defect.value, variant, cell, file=sys.stderr, flush=True)
        cells[defect] = (found[0], found[1])
    path.write_text(render_defects_doc(cells), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - documentation generator
    write_defects_doc(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/defects.md"))
