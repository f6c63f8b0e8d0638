"""House rules checked on the code itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_services_never_import_each_other() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_netweave_is_a_namespace_package_everywhere() -> None:
    offenders = list(ROOT.glob("*/*/src/netweave/__init__.py"))
    assert offenders == []


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_the_code_is_ruff_clean() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([_tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_code_is_mypy_strict_clean() -> None:
    targets = [*(str(p) for p in sorted(ROOT.glob("*/*/src"))), "tests"]
    result = subprocess.run([_tool("mypy"), *targets], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-6000:]
