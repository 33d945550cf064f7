"""README.md works verbatim: every command of its ``sh`` blocks runs, and its library example
is a doctest.

The commands run in order in a temporary folder holding a copy of ``examples/`` (as in a fresh
clone), with the ``otamodel`` of the interpreter running the tests. Skipped, and only these:
the lines that create or activate a virtual environment or install packages (``python3 -m
venv``, ``pip install``) and the ones that run tox — the test already runs inside an installed
environment, and tox is what runs this test.

Commands that serve until Ctrl-C (``otamodel explore``) pass when they are still serving after
a few seconds; the test then stops them (SIGINT, then SIGTERM).
"""

from __future__ import annotations

import doctest
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
FENCE = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
SKIPPED = ("python3 -m venv", "pip install", "tox")
# Commands whose job is to report violations: exit 1 is their documented "found something".
MAY_FAIL = re.compile(r"^otamodel (check|release lint|sweep)\b")
# Commands that serve until interrupted.
SERVERS = re.compile(r"^otamodel (explore|serve)\b")


def get_commands() -> list[str]:
    """Every command line of README's ``sh`` blocks, in order (comments kept: sh ignores them)."""
    commands = []
    for block in FENCE.findall(README.read_text(encoding="utf-8")):
        for line in block.splitlines():
            text = line.strip()
            if text and not text.startswith("#"):
                commands.append(text)
    return commands


def is_skipped(command: str) -> bool:
    return any(word in command for word in SKIPPED)


def test_the_readme_has_commands() -> None:
    commands = get_commands()
    assert any(c.startswith("otamodel cuts") for c in commands)
    skipped = [c for c in commands if is_skipped(c)]
    assert skipped == [
        "python3 -m venv .venv && . .venv/bin/activate",
        "python -m pip install .",
        "python -m pip install tox && python -m tox",
    ]


def test_every_readme_command_runs(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    for command in get_commands():
        if is_skipped(command):
            continue
        if SERVERS.match(command):
            _check_server(command, tmp_path, env)
            continue
        result = subprocess.run(
            ["sh", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        allowed = (0, 1) if MAY_FAIL.match(command) else (0,)
        assert result.returncode in allowed, (command, result.stdout[-2000:], result.stderr)
        assert "Traceback" not in result.stderr, (command, result.stderr)
    assert (tmp_path / "traces" / "FP-a0e3.json").is_file()  # one trace file per finding ID
    assert (tmp_path / "new-again.bin").read_bytes() == (REPO / "examples/new.bin").read_bytes()


PYCON = re.compile(r"^```pycon\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _check_server(command: str, folder: Path, env: dict[str, str]) -> None:
    """A serving command is alive after a few seconds (or says its port is taken)."""
    import signal

    process = subprocess.Popen(
        ["sh", "-c", f"exec {command}"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        code = process.wait(timeout=8)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return
    stderr = process.stderr.read() if process.stderr else ""
    if "in use" not in stderr:  # another process holds the documented port: not our defect
        raise AssertionError((command, code, stderr))


def test_the_library_example_is_a_doctest() -> None:
    blocks = PYCON.findall(README.read_text(encoding="utf-8"))
    assert blocks
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    for number, block in enumerate(blocks):
        test = parser.get_doctest(block, {}, f"README.md pycon block {number}", str(README), 0)
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted >= 10
    assert results.failed == 0


def test_every_scenario_the_readme_names_exists() -> None:
    from otamodel.env import get_scenario_names

    text = README.read_text(encoding="utf-8")
    sentence = text[text.index("The library `otamodel/scenarios/*.toml`") :].split(
        "`--scenario`", 1
    )[0]
    named = re.findall(r"`([a-z0-9-]+)`", sentence)
    assert named and set(named) <= set(get_scenario_names())


def test_the_examples_are_what_the_script_writes(tmp_path: Path) -> None:
    """examples/ is generated, deterministic, and small."""
    pytest.importorskip("bincopy")
    script = REPO / "examples" / "make_examples.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True)
    written = sorted(p.name for p in tmp_path.iterdir())
    shipped = sorted(p.name for p in (REPO / "examples").iterdir() if p.name != script.name)
    assert written == shipped
    for name in written:
        assert (tmp_path / name).read_bytes() == (REPO / "examples" / name).read_bytes(), name
        assert (tmp_path / name).stat().st_size < 64 * 1024
