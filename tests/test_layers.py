"""The package's layers (docs/architecture.md): cli and tools on top, then web, report, ingest |
timeline (independent of each other), platform at the bottom; a layer imports only the ones
below it, so no import cycle can come back. The contract is in pyproject.toml
([tool.importlinter]); this test runs ``lint-imports`` on it, so `make test` and CI check it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_layers_only_point_down() -> None:
    """Rule: `lint-imports` keeps every contract of pyproject.toml (exit 0)."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    done = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
