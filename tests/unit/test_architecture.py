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
    offenders = [p for p in ROOT.glob("*/*/src/netweave/__init__.py")]
    assert offenders == []
