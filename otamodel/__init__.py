"""otamodel: an executable, model-checked specification of Microchip Harmony's
PIC32MZ-W1 OTA System Service, OTA core and OTA bootloader.

The public API (imported on first use)::

    world = initial_world("default")          # a scenario's world as the programmer leaves it
    enabled_actions(world)                    # the inputs the environment may give now
    step(world, Action("tick"))               # one step: a StepResult (new world or a refusal)
    trace = run(world, parse_actions("tick*30, timer"))
    print(trace.get_story())                  # the steps that matter
    report = check(OtaModel("erase"))         # every reachable state, every property
    OtaModel("erase", extra_properties=[my_predicate])   # your own properties too

Scenarios: :func:`get_scenario_names`, :func:`get_scenario`, :func:`build_scenario`.
Traces: :func:`write_trace`, :func:`read_trace`, :func:`replay`, :func:`write_itf`.
Power cuts: :func:`get_cut_table` (what ``otamodel cuts`` prints).

Rule IDs cited in docstrings (``DEV-1``, ``CHK-15``, ``CUT-3`` ...) are defined in the
specification ``docs/spec/*.md`` of the source tree and the source distribution
(``docs/spec/README.md`` is the index).
"""

from __future__ import annotations

from otamodel.errors import (
    BootControlError,
    DatabaseError,
    FormatError,
    HexFileError,
    ManifestError,
    ModelDefinitionError,
    OtaModelError,
    PatchError,
    ScenarioError,
    SignatureError,
    TraceError,
)

_LAZY = {
    "Action": "otamodel.model",
    "World": "otamodel.model",
    "StepResult": "otamodel.model",
    "Scenario": "otamodel.env",
    "build_scenario": "otamodel.env",
    "enabled_actions": "otamodel.env",
    "get_scenario": "otamodel.env",
    "get_scenario_names": "otamodel.env",
    "initial_world": "otamodel.env",
    "load_scenario_file": "otamodel.env",
    "step": "otamodel.env",
    "check": "otamodel.checker",
    "CheckReport": "otamodel.checker",
    "OtaModel": "otamodel.verify",
    "run": "otamodel.verify",
    "replay": "otamodel.verify",
    "read_trace": "otamodel.verify",
    "write_trace": "otamodel.verify",
    "Trace": "otamodel.checker",
    "Property": "otamodel.checker",
    "Verdict": "otamodel.checker",
    "format_actions": "otamodel.env",
    "parse_actions": "otamodel.env",
    "get_cut_table": "otamodel.verify",
    "write_itf": "otamodel.verify",
}


def __getattr__(name: str) -> object:
    """The spec API, imported on first use so ``import otamodel.formats`` stays light."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otamodel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API (``help(otamodel)`` and tab completion list the lazy names too)."""
    return sorted({*__all__, "errors"})


__all__ = [  # noqa: PLE0604
    *_LAZY,
    "BootControlError",
    "DatabaseError",
    "FormatError",
    "HexFileError",
    "ManifestError",
    "ModelDefinitionError",
    "OtaModelError",
    "PatchError",
    "ScenarioError",
    "SignatureError",
    "TraceError",
]
