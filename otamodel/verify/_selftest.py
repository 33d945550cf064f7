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
    Defect.BOOTLOADER_NEVER_FAST_PATH: "transfer",
    Defect.PROGRAM_WITHOUT_ERASE: "transfer",
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


def write_defects_doc(path: Path, scenarios: Sequence[str] = KILL_SCENARIOS) -> None:
    """Generate ``docs/defects.md``: per defect and variant, the first scenario that kills it
    (``KILLED_ON`` first, then the order of ``scenarios``) and the killing properties."""
    lines = [
        "# Planted defects and the properties that kill them (PROP-45)",
        "",
        "Generated by `python -m otamodel.verify._selftest docs/defects.md`. Each defect is a",
        "`Defect` flag on the build configuration (`defects = [...]` in a scenario) that plants",
        "one plausible design mistake behind a few guarded lines. A defect is *killed* on a",
        "scenario when a property verdict differs from the unmutated run of the same scenario",
        "and variant, or when an *always* property reaches a violation whose finding key the",
        'unmutated run never reaches ("new finding"). `tests/test_selftest.py` re-checks the',
        "kill of every defect on the scenario named in `KILLED_ON`, in both variants.",
        "",
        "| defect | released (harmony-3.9.1) | hardened |",
        "|---|---|---|",
    ]
    for defect in Defect:
        cells = []
        for variant in (RELEASED, HARDENED):
            cell = "**not killed**"
            order = [KILLED_ON[defect], *(n for n in scenarios if n != KILLED_ON[defect])]
            for name in order:
                kills = get_defect_kills(defect, name, variant)
                if kills:
                    cell = f"`{name}`: " + ", ".join(kills)
                    break
            cells.append(cell)
            print(defect.value, variant, cell, file=sys.stderr, flush=True)
        lines.append(f"| `{defect.value}` | {cells[0]} | {cells[1]} |")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover - documentation generator
    write_defects_doc(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/defects.md"))
