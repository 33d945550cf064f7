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

__all__ = [
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
