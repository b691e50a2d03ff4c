"""The embedded mongod launcher (issue 2, item 3): real process, shared, no orphans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from uptime.platform.embedded import EmbeddedMongo, EmbeddedServerError, _ping, find_mongod


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_start_ping_stop_leaves_no_process(tmp_path: Path) -> None:
    """Rule: the server answers ping on 127.0.0.1 and is gone (no orphan) after exit."""
    with EmbeddedMongo(tmp_path) as server:
        assert server.started
        assert server.uri is not None and "127.0.0.1" in server.uri
        assert _ping(server.uri)
        pid = json.loads((tmp_path / "server.json").read_text())["pid"]
        assert _alive(pid)
    assert not _alive(pid)
    assert not (tmp_path / "server.json").exists()
    # mongod removes its lock content on a clean shutdown: the next start is clean.
    lock = tmp_path / "db" / "mongod.lock"
    assert not lock.exists() or lock.stat().st_size == 0


def test_second_user_reuses_and_last_one_stops(tmp_path: Path) -> None:
    """Rule: a second user of one data dir reuses the running server; the last to leave stops it."""
    first = EmbeddedMongo(tmp_path)
    first.start()
    pid = json.loads((tmp_path / "server.json").read_text())["pid"]
    with EmbeddedMongo(tmp_path) as second:
        assert not second.started
        assert second.uri == first.uri
    assert _alive(pid), "the first user still needs the server"
    first.stop()
    assert not _alive(pid)


def test_concurrent_processes_share_one_server(tmp_path: Path) -> None:
    """Rule: two commands started at once on one data dir do not start two servers."""
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from uptime.platform.embedded import EmbeddedMongo
        with EmbeddedMongo(Path({str(tmp_path)!r})) as s:
            print(s.uri, flush=True)
            time.sleep(2)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    assert not (tmp_path / "server.json").exists()


def test_sigkilled_owner_server_is_reused_then_stopped(tmp_path: Path) -> None:
    """Rule: after the starting process is SIGKILLed, the next user reuses and then stops it."""
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from uptime.platform.embedded import EmbeddedMongo
        s = EmbeddedMongo(Path({str(tmp_path)!r})); s.start()
        print("up", flush=True); time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    pid = json.loads((tmp_path / "server.json").read_text())["pid"]
    proc.kill()
    proc.wait()
    with EmbeddedMongo(tmp_path) as server:
        assert not server.started
    assert not _alive(pid)


def test_missing_binary_gives_clear_message(tmp_path: Path) -> None:
    """Rule: no usable binary -> one clear message telling the user to set MONGODB_URI."""
    with pytest.raises(EmbeddedServerError, match="MONGODB_URI"):
        find_mongod(tmp_path / "no-such-mongod")


def test_sigterm_to_the_user_stops_the_server(tmp_path: Path) -> None:
    """Rule: `kill <pid>` (SIGTERM) of a command using the embedded server stops mongod too."""
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from uptime.platform.embedded import EmbeddedMongo
        with EmbeddedMongo(Path({str(tmp_path)!r})):
            print("up", flush=True); time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    pid = json.loads((tmp_path / "server.json").read_text())["pid"]
    proc.terminate()
    assert proc.wait(timeout=60) == 143
    assert not _alive(pid)
    assert not (tmp_path / "server.json").exists()
