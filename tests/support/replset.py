"""A real three-member replica set ``rs0`` for the failover tests (issue 10, item 1).

Three ``mongod`` processes from the wheel (``uptime.platform.embedded.find_mongod``) on free
loopback ports, each with its own data dir. All members have priority 1 (no priority
takeover: a stepped-down or restarted member does not force a second election in the middle
of a test); a test asks ``primary()`` which member leads. Elections are fast:
``electionTimeoutMillis`` 1000 and ``heartbeatIntervalMillis`` 200 (defaults 10 s / 2 s), so a
killed primary is replaced in about 1-3 s. Small WiredTiger caches keep three servers within
the 2-core CI machine's memory.

No process is left behind: every started mongod is tracked in a module-level set and killed
by ``stop()`` (pytest fixture teardown, in ``finally``) and by an ``atexit`` hook (an
interrupted session); each mongod also runs in its own session so Ctrl-C does not kill it
mid-write.

Use through the ``replset`` fixture (``tests/conftest.py``), marked ``replset``:
``pytest -m replset`` selects the failover tests; they run by default too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from uptime.platform.embedded import find_mongod, free_port

REPLICA_SET = "rs0"
ELECTION_TIMEOUT_MS = 1000
HEARTBEAT_INTERVAL_MS = 200
START_TIMEOUT_S = 60.0

_LIVE: set[int] = set()  # pids of every mongod this module started and has not reaped


def _kill_all_at_exit() -> None:
    for pid in list(_LIVE):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _LIVE.discard(pid)


atexit.register(_kill_all_at_exit)


def _exit_on_sigterm() -> None:
    """SIGTERM to the test process unwinds it (``SystemExit``) so fixture teardown and the
    ``atexit`` hook stop the members (Python's default SIGTERM action skips both)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def _reap(member: Member, timeout_s: float) -> None:
    """Wait for ``member``'s signalled process to exit (SIGKILL after ``timeout_s``)."""
    assert member.proc is not None
    try:
        member.proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        member.proc.kill()
        member.proc.wait()
    _LIVE.discard(member.proc.pid)
    member.proc = None


@dataclass
class Member:
    """One mongod of the set: its port, data dir, log, and process while it runs."""

    index: int
    port: int
    dbpath: Path
    log: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def direct(self, timeout_ms: int = 2000) -> MongoClient:
        """A client connected to this member only (``directConnection``)."""
        return MongoClient(
            f"mongodb://{self.host}/?directConnection=true",
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
        )


class ReplicaSet:
    """Start, inspect, step down, kill and restart the members of a local ``rs0``.

    Attributes:
        members: the three members, index 0 preferred as primary.
        uri: the set's connection string (all three hosts, ``replicaSet=rs0``).
    """

    def __init__(self, root: Path, size: int = 3) -> None:
        self.binary = find_mongod(None)
        self.members = []
        for i in range(size):
            dbpath = root / f"m{i}"
            dbpath.mkdir(parents=True, exist_ok=True)
            self.members.append(Member(i, free_port(), dbpath, root / f"m{i}.log"))

    @property
    def uri(self) -> str:
        hosts = ",".join(m.host for m in self.members)
        return f"mongodb://{hosts}/?replicaSet={REPLICA_SET}"

    # -- processes -------------------------------------------------------------------------
    def start_member(self, member: Member) -> None:
        """Start ``member``'s mongod (same port and data dir as before) and wait for ping."""
        if member.running:
            return
        with open(member.log, "ab") as log:
            member.proc = subprocess.Popen(
                [
                    str(self.binary),
                    "--replSet", REPLICA_SET,
                    "--bind_ip", "127.0.0.1",
                    "--port", str(member.port),
                    "--dbpath", str(member.dbpath),
                    "--oplogSize", "64",
                    "--wiredTigerCacheSizeGB", "0.25",
                    "--setParameter", "diagnosticDataCollectionEnabled=false",
                    "--quiet",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _LIVE.add(member.proc.pid)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if member.proc.poll() is not None:
                _LIVE.discard(member.proc.pid)
                tail = member.log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(f"mongod {member.host} exited:\n" + "\n".join(tail))
            client = member.direct(500)
            try:
                client.admin.command("ping")
                return
            except PyMongoError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
            finally:
                client.close()

    def kill(self, member: Member, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (default SIGKILL, ``kill -9``) to ``member`` and reap it."""
        if member.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            member.proc.send_signal(sig)
        _reap(member, 60)

    def start(self) -> None:
        """Start every member, initiate ``rs0`` and wait for a primary and secondaries."""
        _exit_on_sigterm()
        for member in self.members:
            self.start_member(member)
        config = {
            "_id": REPLICA_SET,
            "members": [
                {"_id": m.index, "host": m.host, "priority": 1}
                for m in self.members
            ],
            "settings": {
                "electionTimeoutMillis": ELECTION_TIMEOUT_MS,
                "heartbeatIntervalMillis": HEARTBEAT_INTERVAL_MS,
                "catchUpTimeoutMillis": 2000,
            },
        }
        client = self.members[0].direct()
        try:
            try:
                client.admin.command("replSetInitiate", config)
            except OperationFailure as exc:
                if exc.code != 23:  # AlreadyInitialized
                    raise
        finally:
            client.close()
        self.wait_healthy()

    def stop(self) -> None:
        """Stop every member (SIGTERM, then SIGKILL after 20 s); safe to call twice."""
        for member in self.members:
            if member.proc is None:
                continue
            with contextlib.suppress(ProcessLookupError):
                member.proc.terminate()
        for member in self.members:
            if member.proc is not None:
                _reap(member, 20)

    # -- state -----------------------------------------------------------------------------
    def states(self) -> dict[int, str]:
        """``{member index: stateStr}`` as the first reachable member sees it."""
        for member in self.members:
            if not member.running:
                continue
            client = member.direct(1000)
            try:
                status = client.admin.command("replSetGetStatus")
            except PyMongoError:
                continue
            finally:
                client.close()
            by_host = {m.host: m.index for m in self.members}
            return {by_host[s["name"]]: s["stateStr"] for s in status["members"]}
        return {}

    def primary(self, timeout_s: float = 30.0) -> Member:
        """The member that says it is writable primary (waits up to ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for member in self.members:
                if not member.running:
                    continue
                client = member.direct(500)
                try:
                    if client.admin.command("hello").get("isWritablePrimary"):
                        return member
                except PyMongoError:
                    pass
                finally:
                    client.close()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no primary after {timeout_s} s: {self.states()}")
            time.sleep(0.05)

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Restart stopped members; wait until one is primary and the others secondaries."""
        for member in self.members:
            self.start_member(member)
        deadline = time.monotonic() + timeout_s
        while True:
            states = sorted(self.states().values())
            if states == ["PRIMARY"] + ["SECONDARY"] * (len(self.members) - 1):
                self.primary(timeout_s)  # and the primary says so itself
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica set not healthy after {timeout_s} s: {states}")
            time.sleep(0.1)

    def step_down(self, member: Member, seconds: int = 5) -> None:
        """``replSetStepDown`` on ``member`` (it cannot be re-elected for ``seconds``)."""
        client = member.direct()
        try:
            client.admin.command("replSetStepDown", seconds, secondaryCatchUpPeriodSecs=2)
        except PyMongoError:
            pass  # older servers drop the connection as they step down
        finally:
            client.close()
