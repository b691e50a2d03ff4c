"""`uptime report --output`: a path the CSV cannot be written to is a usage error (exit 2)
found before any report is generated, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from uptime.cli import app


@pytest.mark.parametrize(
    ("make_output", "message"),
    [
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: tmp / "missing" / "r.csv", "does not exist"),
    ],
)
def test_unwritable_output_fails_fast_with_exit_2(
    tmp_path: Path, monkeypatch, make_output, message
):
    """Rule: exit 2 and a one-line reason naming --output; nothing is generated (no database
    is even contacted: MONGODB_URI points at a port nothing listens on) and no folder is made."""
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    output = make_output(tmp_path)
    result = CliRunner().invoke(app, ["report", "--output", str(output)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())  # the console wraps long lines
    assert message in text and "--output" in text
    assert "Traceback" not in result.output
    assert not (tmp_path / "missing").exists()
