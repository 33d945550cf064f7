"""The executable model: frozen device state, flash physics, and the service, core and
bootloader machines (``docs/spec/service.md``, ``core.md``, ``bootloader.md``, ``flash.md``)."""

from otamodel.model._bootloader import BOOTLOADER
from otamodel.model._config import (
    REAL_GEOMETRY,
    SMALL_GEOMETRY,
    Config,
    Geometry,
    Scheduler,
    TearMode,
    Variant,
)
from otamodel.model._core import CORE
from otamodel.model._device import (
    ACTION_KINDS,
    CTRL_MESSAGES,
    FAULT_KINDS,
    MACHINES,
    Action,
    StepResult,
    get_fingerprint,
    get_state_summary,
    make_initial_world,
    step,
)
from otamodel.model._enums import (
    BlTask,
    CheckState,
    CoreResult,
    CoreTask,
    Phase,
    SvcState,
    SvcStatus,
)
from otamodel.model._machine import (
    MachineSpec,
    Transition,
    build_machine,
    fire,
    get_dot,
    get_mermaid,
)
from otamodel.model._physics import PersistentOp, is_tearable
from otamodel.model._product import AppImage, DeviceContext, Reply, make_image
from otamodel.model._service import SERVICE
from otamodel.model._state import (
    Bootloader,
    Core,
    Flash,
    Fs,
    Ghost,
    OtaParams,
    Service,
    Transfer,
    World,
)

__all__ = [
    "ACTION_KINDS",
    "BOOTLOADER",
    "CORE",
    "CTRL_MESSAGES",
    "FAULT_KINDS",
    "MACHINES",
    "REAL_GEOMETRY",
    "SERVICE",
    "SMALL_GEOMETRY",
    "Action",
    "AppImage",
    "BlTask",
    "Bootloader",
    "CheckState",
    "Config",
    "Core",
    "CoreResult",
    "CoreTask",
    "DeviceContext",
    "Flash",
    "Fs",
    "Geometry",
    "Ghost",
    "MachineSpec",
    "OtaParams",
    "PersistentOp",
    "Phase",
    "Reply",
    "Scheduler",
    "Service",
    "StepResult",
    "SvcState",
    "SvcStatus",
    "TearMode",
    "Transfer",
    "Transition",
    "Variant",
    "World",
    "build_machine",
    "fire",
    "get_dot",
    "get_fingerprint",
    "get_mermaid",
    "get_state_summary",
    "is_tearable",
    "make_image",
    "make_initial_world",
    "step",
]
