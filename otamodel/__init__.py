"""otamodel: an executable, model-checked specification of Microchip Harmony's
PIC32MZ-W1 OTA System Service, OTA core and OTA bootloader."""

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
