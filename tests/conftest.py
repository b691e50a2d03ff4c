"""Shared fixtures: a real mongod for the whole session and a fresh database per test.

The server is ``UPTIME_TEST_MONGODB_URI`` when set; otherwise one is started through the
product's own embedded launcher (``uptime.platform.embedded.EmbeddedMongo``) in a temporary data dir.

The tests of the default report path also run against a plain **standalone** mongod (no
replica set, so no change streams: issue 14): ``standalone_uri`` (``UPTIME_TEST_STANDALONE_URI``
when set, else the same binary started without ``--replSet``), and the parametrised
``server_kind`` / ``any_uri`` / ``any_db`` / ``any_settings`` fixtures (``["standalone",
"replset"]``).
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient, MongoClient

from uptime.platform.db import make_client
from uptime.platform.embedded import EmbeddedMongo
from uptime.platform.settings import Settings, get_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
# The public Loop files: UPTIME_PUBLIC_DATA, else ../shared/data/public beside the checkout
# (where CI lays its copy of shared/).
PUBLIC_DATA = Path(
    os.environ.get("UPTIME_PUBLIC_DATA") or REPO_ROOT.parent / "shared" / "data" / "public"
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist turns xdist_group marks into groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: ``-n 2 --dist loadgroup``) every worker is its own
    process with its own session fixtures (its own mongod, temp dirs); the tests of the
    three-member replica set share one ``xdist_group`` so the set starts on one worker only."""
    for item in items:
        if "replset" in getattr(item, "fixturenames", ()) or item.get_closest_marker("replset"):
            item.add_marker(pytest.mark.xdist_group("replset"))


#: seconds the session gives the asyncio tasks tests left behind to end once cancelled
LEFTOVER_TASKS_S = 10.0


@pytest.fixture(scope="session", autouse=True)
async def _leftover_tasks_end() -> AsyncIterator[None]:
    """At the end of a worker's session (torn down last: autouse, set up first), cancel the
    asyncio tasks tests left running and give them ``LEFTOVER_TASKS_S`` to end. A task that
    ignores its cancellation (seen after a ``kill -9`` of a mongod: a driver call in flight
    outlived its cancellation) is printed with its stack to stderr and unregistered, so closing
    the session's event loop cannot hang the worker for ever (pytest-asyncio's loop close waits
    on every task without a limit)."""
    yield
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in left:
        task.cancel()
    if not left:
        return
    _done, stuck = await asyncio.wait(left, timeout=LEFTOVER_TASKS_S)
    for task in stuck:
        buf = io.StringIO()
        task.print_stack(file=buf)
        print(f"\nasyncio task still running {LEFTOVER_TASKS_S:g} s after its cancellation "
              f"at the end of the session, left behind: {task!r}\n{buf.getvalue()}",
              file=sys.stderr)
        asyncio._unregister_task(task)  # documented in asyncio-extending


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of a real MongoDB server for the test session."""
    configured = os.environ.get("UPTIME_TEST_MONGODB_URI")
    if configured:
        yield configured
        return
    with EmbeddedMongo(tmp_path_factory.mktemp("mongod")) as server:
        assert server.uri is not None
        yield server.uri


@pytest.fixture(scope="session")
def standalone_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of a real standalone mongod (no ``--replSet``: no change streams, no cluster time)
    for the session: ``UPTIME_TEST_STANDALONE_URI``, else the embedded launcher's binary
    started here on a free port and stopped (SIGTERM, then kill) at the end. No binary: skipped
    locally, a failure when ``CI`` is set."""
    import subprocess
    import time

    from pymongo import MongoClient

    from uptime.platform.embedded import find_mongod, free_port

    configured = os.environ.get("UPTIME_TEST_STANDALONE_URI")
    if configured:
        yield configured
        return
    from uptime.platform.embedded import EmbeddedServerError

    try:
        binary = find_mongod()
    except EmbeddedServerError as exc:  # e.g. not Linux x86_64 and no mongod on PATH
        if os.environ.get("CI"):
            pytest.fail(f"no mongod for the standalone-server tests in CI: {exc}")
        pytest.skip(f"no mongod binary for a standalone server (set UPTIME_TEST_STANDALONE_URI): {exc}")
    folder = tmp_path_factory.mktemp("mongod-standalone")
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "--dbpath", str(folder), "--bind_ip", "127.0.0.1",
         "--port", str(port), "--logpath", str(folder / "mongod.log"), "--quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with MongoClient(uri, serverSelectionTimeoutMS=500) as probe:
                    hello = probe.admin.command("hello")
                assert not hello.get("setName"), "expected a standalone server"
                break
            except Exception:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"standalone mongod did not start; see {folder}/mongod.log")
                time.sleep(0.2)
        yield uri
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["standalone", "replset"])
def server_kind(request: pytest.FixtureRequest) -> str:
    """The kind of server a default-report-path test runs on (issue 14: the main job must work
    on a standalone server as on a replica set)."""
    return request.param


@pytest.fixture
def any_uri(server_kind: str, request: pytest.FixtureRequest) -> str:
    """URI of the ``server_kind`` server: the standalone one, or the session's replica set."""
    name = "standalone_uri" if server_kind == "standalone" else "mongo_uri"
    return request.getfixturevalue(name)


@pytest.fixture
async def any_db(any_uri: str, db_name: str) -> AsyncIterator:
    """A fresh database on the ``server_kind`` server, dropped after the test."""
    c = make_client(any_uri)
    try:
        yield c[db_name]
    finally:
        await c.drop_database(db_name)
        await c.close()


@pytest.fixture
def any_settings(any_uri: str, db_name: str, tmp_path: Path) -> Settings:
    """Settings pointing at the ``server_kind`` server and this test's database."""
    return Settings(mongodb_uri=any_uri, mongodb_database=db_name, data_dir=tmp_path / "data")


@pytest.fixture
async def client(mongo_uri: str) -> AsyncIterator[AsyncMongoClient]:
    """An ``AsyncMongoClient`` (tz-aware UTC) on the session server."""
    c = make_client(mongo_uri)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
def db_name() -> str:
    """A database name unique to this test."""
    return f"test_{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def db(client: AsyncMongoClient, db_name: str) -> AsyncIterator:
    """A fresh, empty database, dropped after the test."""
    database = client[db_name]
    try:
        yield database
    finally:
        await client.drop_database(db_name)


@pytest.fixture
def settings(mongo_uri: str, db_name: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test server and this test's database."""
    return Settings(mongodb_uri=mongo_uri, mongodb_database=db_name, data_dir=tmp_path / "data")


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """The CLI reads its settings once per process (``get_settings`` is cached): re-read them
    before and after the test, so the environment the test sets is the one the command sees."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def cli_env(mongo_uri: str, db_name: str, monkeypatch: pytest.MonkeyPatch, fresh_settings) -> str:
    """The CLI's environment for this test: ``MONGODB_URI`` = the session server,
    ``MONGODB_DATABASE`` = this test's database (the ``db`` fixture's), migrations applied on
    start. Returns the database name."""
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("MONGODB_DATABASE", db_name)
    monkeypatch.setenv("UPTIME_AUTO_MIGRATE", "true")
    return db_name


@pytest.fixture
def cli_db(mongo_uri: str, cli_env: str) -> Iterator:
    """A sync (PyMongo) handle on ``cli_env``'s database, for a CLI test to seed and check what
    the command did; the database is dropped after the test."""
    client = MongoClient(mongo_uri)
    try:
        yield client[cli_env]
    finally:
        client.drop_database(cli_env)
        client.close()


@pytest.fixture(scope="session")
def public_data() -> Path:
    """The public Loop data folder; tests needing it are skipped when it is absent."""
    if not PUBLIC_DATA.is_dir():
        pytest.skip(f"public data not found at {PUBLIC_DATA} (set UPTIME_PUBLIC_DATA)")
    return PUBLIC_DATA


def _find_mongosh() -> str | None:
    import shutil

    configured = os.environ.get("UPTIME_MONGOSH")
    if configured:
        return configured
    local = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "mongosh"
    if local.exists():  # `make mongosh` installs it here
        return str(local)
    return shutil.which("mongosh")


@pytest.fixture(scope="session")
def mongosh() -> str:
    """Path of the real mongosh (``UPTIME_MONGOSH``, ``.tools/``, or ``PATH``).

    Skipped when absent on a developer machine; in CI (``CI`` set) a missing mongosh fails,
    so the runner tests can never silently not run there.
    """
    path = _find_mongosh()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("mongosh not found in CI: `make mongosh` should have installed it")
        pytest.skip("mongosh not installed (run `make mongosh`)")
    return path


@pytest.fixture(scope="session")
def replset(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real three-member replica set ``rs0`` (``tests/support/replset.py``), started once for the
    session and stopped at its end (also on failure; an ``atexit`` hook kills leftovers).

    Tests using it are marked ``replset``; each gets the set healthy again (one primary, the
    others secondaries) through the ``rs`` fixture."""
    from support.replset import ReplicaSet

    rs = ReplicaSet(tmp_path_factory.mktemp("replset"))
    try:
        rs.start()
        yield rs
    finally:
        rs.stop()


@pytest.fixture
def rs(replset):
    """The session's replica set, healthy at the start of the test (stopped members restarted,
    one primary, the others secondaries)."""
    replset.wait_healthy()
    return replset
