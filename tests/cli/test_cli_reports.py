"""`uptime-monitor report --output`: a path the CSV cannot be written to is a usage error (exit 2)
found before any report is generated, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from uptime.cli import app


# The CLI reads settings once per process (cached): re-read them for every test.
pytestmark = pytest.mark.usefixtures("fresh_settings")


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


def test_out_of_range_as_of_is_a_usage_error(monkeypatch):
    """Rule: an --as-of with no UTC equivalent (year 1 at +05:00) is exit 2, not a traceback."""
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    result = CliRunner().invoke(app, ["report", "--as-of", "0001-01-01T00:00:00+05:00"])
    assert result.exit_code == 2, result.output
    assert "out of range" in " ".join(result.output.split())


def test_unreachable_database_is_a_one_line_error(monkeypatch):
    """Rule: `uptime-monitor reports` against a server that does not answer exits 2 with the reason."""
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    result = CliRunner().invoke(app, ["reports"])
    assert result.exit_code == 2, result.output
    assert "MongoDB" in result.output and "Traceback" not in result.output
