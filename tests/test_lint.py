"""The code is formatted and linted by ruff, as configured in ``pyproject.toml`` (``[tool.ruff]``).

Run ``ruff format .`` and ``ruff check --fix .`` to fix what this test reports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")


@pytest.mark.parametrize("command", [["check", "--output-format", "concise"], ["format", "--check"]])
def test_ruff_is_clean(command: list[str]) -> None:
    assert RUFF.exists(), f"ruff is not installed beside {sys.executable}: pip install -e '.[test]'"
    done = subprocess.run([str(RUFF), *command, "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout}{done.stderr}"
