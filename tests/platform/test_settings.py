"""Settings from the environment (``uptime.platform.settings``): a value a setting cannot take
is one clear line naming its variable, never a traceback; a secret is never repeated."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from uptime.platform.settings import Settings, env_name, settings_errors


def test_errors_name_the_variable_and_the_bound(monkeypatch):
    """UPTIME_REPORT_PARALLEL=0 (the range is 1..16): the line names the variable, the value
    given and the bound it breaks."""
    monkeypatch.setenv("UPTIME_REPORT_PARALLEL", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert settings_errors(caught.value) == [
        "UPTIME_REPORT_PARALLEL='0': Input should be greater than or equal to 1"]


def test_a_secret_is_never_repeated():
    """A bad MONGODB_URI (may hold a password) is named, its value is not."""
    with pytest.raises(ValidationError) as caught:
        Settings(mongodb_uri=["mongodb://user:hunter2@host/"])
    (line,) = settings_errors(caught.value)
    assert line.startswith("MONGODB_URI: ") and "hunter2" not in line


def test_empty_means_the_default(monkeypatch):
    """A variable set to "" is as if unset (shells and docker-compose pass such)."""
    monkeypatch.setenv("UPTIME_REPORT_PARALLEL", "")
    monkeypatch.setenv("UPTIME_LEASE_SECONDS", "")
    settings = Settings()
    assert settings.report_parallel == 2 and settings.lease_seconds == 30
    assert env_name("report_parallel") == "UPTIME_REPORT_PARALLEL"
    assert env_name("mongodb_uri") == "MONGODB_URI"


def test_the_command_line_says_it_in_one_line_and_exits_2(tmp_path):
    """``uptime-monitor`` (here ``python -m uptime``) with two bad settings: two lines on
    stderr, no traceback, exit 2 (the README's code for setup errors)."""
    env = {**os.environ, "UPTIME_REPORT_PARALLEL": "abc", "UPTIME_LEASE_SECONDS": "-1",
           "UPTIME_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "uptime", "migrate", "status"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert any(line.startswith("error: UPTIME_REPORT_PARALLEL='abc': ") for line in lines)
    assert any(line.startswith("error: UPTIME_LEASE_SECONDS='-1': ") for line in lines)
    assert "Traceback" not in done.stderr
