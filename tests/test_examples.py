"""Every script in examples/ runs offline, exits 0 and prints what it is about.

The scripts are found by globbing the directory, so a new example is run as soon as it
exists; each needs a line in ``EXPECTED`` (a substring of its output), or the test says
so. ``test_*.py`` examples are pytest files: they run under pytest, from the repository
(with this project's pytest configuration) and copied alone into an empty directory (as
in a user's project, with ``-W error`` standing in for ``filterwarnings = error``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 60

# A substring each example's output must contain (stdout, or pytest's summary).
EXPECTED = {
    "file_in_file_out.py": "written to answer.wav",
    "interruption.py": "interrupted: truncate at",
    "push_to_talk.py": "reply:      2.49 s of audio",
    "test_my_agent.py": "4 passed",
    "text_chat.py": "assistant: You said: What is the capital of France?",
    "tools.py": "answer:    It is 18 degrees Celsius, 64.4 Fahrenheit",
}

SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("test_"))
TEST_FILES = sorted(p.name for p in EXAMPLES.glob("test_*.py"))


def offline_env() -> dict[str, str]:
    """The environment without credentials, so nothing can reach a real endpoint."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "OPENAI_API_KEY" and not k.startswith(("AZURE_", "PYTEST_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # nothing written into examples/
    return env


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def expected(name: str) -> str:
    assert name in EXPECTED, f"examples/{name} has no entry in EXPECTED ({__file__})"
    return EXPECTED[name]


def test_the_examples_are_found() -> None:
    assert {"text_chat.py", "tools.py"} <= set(SCRIPTS)
    assert "test_my_agent.py" in TEST_FILES


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_offline(name: str, tmp_path: Path) -> None:
    want = expected(name)
    output = run(["-W", "error", str(EXAMPLES / name)], cwd=tmp_path)
    assert want in output, output


@pytest.mark.parametrize("name", TEST_FILES)
def test_example_tests_pass_in_this_repository(name: str) -> None:
    want = expected(name)
    output = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", f"examples/{name}"], cwd=ROOT)
    assert want in output, output


@pytest.mark.parametrize("name", TEST_FILES)
def test_example_tests_pass_standalone(name: str, tmp_path: Path) -> None:
    want = expected(name)
    shutil.copy(EXAMPLES / name, tmp_path / name)
    output = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", name], tmp_path)
    assert want in output, output
