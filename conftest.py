"""Root conftest: Hypothesis profiles (registered with explicit parents, see tooling note §2.3)."""

from __future__ import annotations

import logging
import os

from hypothesis import HealthCheck, Phase, Verbosity, settings

_DEFAULT = settings.get_profile("default")
_CI = settings.get_profile("ci")

settings.register_profile(
    "dev", parent=_DEFAULT, max_examples=100, stateful_step_count=40, deadline=None
)
settings.register_profile(
    "ci",
    parent=_CI,
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    parent=_DEFAULT,
    max_examples=5_000,
    stateful_step_count=100,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "debug",
    parent=_DEFAULT,
    verbosity=Verbosity.verbose,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
settings.register_profile(  # the long fuzz run (tox -e fuzz), tests/fuzz
    "fuzz",
    parent=_DEFAULT,
    max_examples=int(os.getenv("OTAMODEL_FUZZ_EXAMPLES", "10000")),
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "ci" if os.getenv("CI") else "dev"))

logging.getLogger("transitions").setLevel(logging.WARNING)
