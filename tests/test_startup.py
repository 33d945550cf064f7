"""Commands import only what they use: ``otamodel patch`` never loads the model, rich,
transitions or cryptography (start-up time and memory of the patch tool)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "rich",
    "transitions",
    "cryptography",
    "bincopy",
    "otamodel.model",
    "otamodel.checker",
)


def get_loaded(*args: str) -> list[str]:
    code = (
        "import json, sys\n"
        "from otamodel.cli import main\n"
        f"try:\n    main({list(args)!r})\n"
        "except SystemExit:\n    pass\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def test_patch_command_imports_no_model_and_no_heavy_library() -> None:
    assert get_loaded("patch", "apply", "--help") == []


def test_help_still_lists_every_command_family() -> None:
    from click.testing import CliRunner

    from otamodel.cli import main

    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("patch", "check", "manifest", "keygen", "simulate"):
        assert name in result.output


def test_patch_size_bound_is_the_slot() -> None:
    from otamodel.cli import patch
    from otamodel.formats import hexfile

    assert patch.DEFAULT_MAX_SIZE == hexfile.DEFAULT_SIZE
