"""The library's scenario loading keeps the file bounds (BOUND-5, BOUND-6) and the strict
loader's checks (SCN-1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from otamodel.env import load_scenario_file
from otamodel.errors import OtaModelError


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = " + "[" * 600 + "]" * 600 + "\n", "nested too deeply"),
        ("[geometry]\npage_size = 256\nrow_size = 0\n", "row_size"),
    ],
)
def test_load_scenario_file_is_bounded(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(OtaModelError, match=message):
        load_scenario_file(path)
