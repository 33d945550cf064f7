from __future__ import annotations

import subprocess
import sys

import pytest

import otamodel
from otamodel.errors import FormatError, OtaModelError


def test_errors_subclass_builtin() -> None:
    for name in otamodel.__all__:
        obj = getattr(otamodel, name)
        if isinstance(obj, type) and issubclass(obj, FormatError):
            assert issubclass(obj, ValueError)
            assert issubclass(obj, OtaModelError)


def test_format_error_message_names_offset() -> None:
    err = otamodel.PatchError("truncated length", where=17)
    assert "offset 17" in str(err)
    with pytest.raises(ValueError):
        raise err


def test_cli_help_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "otamodel", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage" in out.stdout
