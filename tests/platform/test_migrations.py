"""Index migrations (issue 2, item 6): up/down/status, changelog, checksum, lock, mongosh."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from uptime.cli import app
from uptime.platform.migrations import (
    CHANGELOG,
    LOCK_COLLECTION,
    LOCK_ID,
    MigrationError,
    MigrationLockError,
    MigrationsPendingError,
    ensure_current,
    load_migrations,
    migrate_down,
    migrate_up,
    migration_status,
)
from uptime.platform.resources import migrations_dir

REPO = Path(__file__).resolve().parents[2]
UTC = timezone.utc


def _migration(directory: Path, name: str, collection: str, index: str) -> Path:
    path = directory / name
    path.write_text(
        json.dumps(
            {
                "up": [
                    {
                        "createIndexes": collection,
                        "indexes": [{"key": {index: 1}, "name": f"{index}_1"}],
                    }
                ],
                "down": [{"dropIndexes": collection, "index": f"{index}_1"}],
            }
        )
    )
    return path


@pytest.fixture
def mig_dir(tmp_path: Path) -> Path:
    """Three small migrations a, b, c creating one index each on collection ``t``."""
    d = tmp_path / "migrations"
    d.mkdir()
    _migration(d, "20240101000000-a.json", "t", "a")
    _migration(d, "20240102000000-b.json", "t", "b")
    _migration(d, "20240103000000-c.json", "t", "c")
    return d


async def _index_names(db, collection: str) -> set[str]:
    if collection not in await db.list_collection_names():
        return set()
    return set((await db[collection].index_information()).keys())


def test_shipped_migrations_are_valid_and_name_every_index() -> None:
    """Rule: files are YYYYMMDDHHMMSS-slug.json; every createIndexes index has a name, and
    the first migration creates the indexes the report and the import need."""
    migrations = load_migrations()
    assert migrations, "no migration shipped"
    first = migrations[0]
    created = {}
    for m in migrations:
        for cmd in m.up:
            if "createIndexes" in cmd:
                for index in cmd["indexes"]:
                    assert index.get("name"), f"{m.file_name}: unnamed index {index}"
                    created[(cmd["createIndexes"], index["name"])] = dict(index["key"])
    assert created[("store_status", "store_id_1_timestamp_utc_1")] == {
        "store_id": 1,
        "timestamp_utc": 1,
    }
    assert created[("store_hours", "store_id_1")] == {"store_id": 1}
    assert created[("store_timezones", "store_id_1")] == {"store_id": 1}
    assert first.checksum == hashlib.sha256(first.path.read_bytes()).hexdigest()


async def test_up_down_up_with_the_shipped_migrations(db) -> None:
    """Rule: up creates the indexes and records {file_name, applied_at, checksum}; down drops
    them and removes the record; up again restores both."""
    names = [m.file_name for m in load_migrations()]
    assert await migrate_up(db) == names
    # the second migration replaced the first one's poll index by the covering one
    assert "store_id_1_timestamp_utc_1_status_1" in await _index_names(db, "store_status")
    assert "store_id_1_timestamp_utc_1" not in await _index_names(db, "store_status")
    entries = await db[CHANGELOG].find({}, {"_id": 0}).to_list()
    assert [e["file_name"] for e in entries] == names
    assert (
        entries[0]["checksum"]
        == hashlib.sha256((migrations_dir() / names[0]).read_bytes()).hexdigest()
    )
    assert isinstance(entries[0]["applied_at"], datetime)
    assert await migrate_up(db) == []

    assert await migrate_down(db, all=True) == list(reversed(names))
    assert await _index_names(db, "store_status") <= {"_id_"}
    assert "store_id_1" not in await _index_names(db, "store_hours")
    assert await db[CHANGELOG].count_documents({}) == 0

    assert await migrate_up(db) == names
    assert "store_id_1_timestamp_utc_1_status_1" in await _index_names(db, "store_status")
    assert "store_id_1" in await _index_names(db, "store_timezones")
    assert {"reports_status_lease", "reports_created_at"} <= await _index_names(db, "reports")


async def test_down_reverts_only_the_last_applied(db, mig_dir: Path) -> None:
    """Rule: `down` reverts the last applied migration only; `down` again the one before."""
    await migrate_up(db, directory=mig_dir)
    assert await migrate_down(db, directory=mig_dir) == ["20240103000000-c.json"]
    assert await _index_names(db, "t") == {"_id_", "a_1", "b_1"}
    assert await migrate_down(db, directory=mig_dir) == ["20240102000000-b.json"]
    assert [s.state for s in await migration_status(db, mig_dir)] == [
        "applied",
        "pending",
        "pending",
    ]


async def test_concurrent_up_in_one_process_applies_each_once(db, mig_dir: Path) -> None:
    """Rule: two concurrent `migrate up` never apply one migration twice (the lock)."""
    results = await asyncio.gather(*(migrate_up(db, directory=mig_dir) for _ in range(3)))
    applied = sorted(name for result in results for name in result)
    assert applied == sorted(p.name for p in mig_dir.iterdir())
    assert await db[CHANGELOG].count_documents({}) == 3
    assert await db[LOCK_COLLECTION].count_documents({}) == 0  # released


async def test_concurrent_up_in_two_processes_applies_each_once(
    db, mig_dir: Path, mongo_uri: str
) -> None:
    """Rule: two `uptime-monitor migrate up` processes started together apply each file exactly once."""
    env = {**os.environ, "MONGODB_URI": mongo_uri, "MONGODB_DATABASE": db.name}
    cmd = [sys.executable, "-m", "uptime.cli", "migrate", "up", "--dir", str(mig_dir)]
    procs = [
        await asyncio.create_subprocess_exec(
            *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    lines = [
        line
        for out, _ in outputs
        for line in out.decode().splitlines()
        if line.startswith("applied ")
    ]
    assert sorted(lines) == sorted(f"applied {p.name}" for p in mig_dir.iterdir())
    assert await db[CHANGELOG].count_documents({}) == 3


async def test_status_flags_pending_changed_and_missing(db, mig_dir: Path) -> None:
    """Rule: status lists applied / pending; an applied file whose bytes changed is 'changed';
    an applied file no longer present is 'missing'."""
    _migration(mig_dir, "20240104000000-d.json", "t", "d")
    await migrate_up(db, directory=mig_dir)
    (mig_dir / "20240104000000-d.json").unlink()
    _migration(mig_dir, "20240105000000-e.json", "t", "e")
    b = mig_dir / "20240102000000-b.json"
    b.write_text(b.read_text() + "\n")  # one byte more: another checksum
    states = {s.file_name: s.state for s in await migration_status(db, mig_dir)}
    assert states == {
        "20240101000000-a.json": "applied",
        "20240102000000-b.json": "changed",
        "20240103000000-c.json": "applied",
        "20240104000000-d.json": "missing",
        "20240105000000-e.json": "pending",
    }


def test_status_command_output(
    mongo_uri: str, mig_dir: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    """Rule: `uptime-monitor migrate status` prints one line per file and exits 1 while one is pending."""
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("MONGODB_DATABASE", "test_mig_status_cli")
    runner = CliRunner()
    try:
        pending = runner.invoke(app, ["migrate", "status", "--dir", str(mig_dir)])
        assert pending.exit_code == 1
        assert pending.output.count("PENDING") == 3
        up = runner.invoke(app, ["migrate", "up", "--dir", str(mig_dir)])
        assert up.exit_code == 0 and up.output.count("applied 2024") == 3
        done = runner.invoke(app, ["migrate", "status", "--dir", str(mig_dir)])
        assert done.exit_code == 0, done.output
        assert done.output.count("  applied") == 3 and "PENDING" not in done.output
        down = runner.invoke(app, ["migrate", "down", "--dir", str(mig_dir)])
        assert down.exit_code == 0 and "reverted 20240103000000-c.json" in down.output
    finally:
        from pymongo import MongoClient

        with MongoClient(mongo_uri) as c:
            c.drop_database("test_mig_status_cli")


async def test_live_lock_blocks_and_stale_lock_is_taken_over(db, mig_dir: Path) -> None:
    """Rule: a held lock makes `up` wait then fail naming the holder; a lock past its
    expires_at (dead holder) is taken over and `up` proceeds."""
    now = datetime.now(UTC)
    await db[LOCK_COLLECTION].insert_one(
        {
            "_id": LOCK_ID,
            "owner": "other-host:1",
            "acquired_at": now,
            "expires_at": now + timedelta(minutes=5),
        }
    )
    with pytest.raises(MigrationLockError, match="other-host:1"):
        await migrate_up(db, directory=mig_dir, lock_wait=0.3)
    assert await db[CHANGELOG].count_documents({}) == 0
    await db[LOCK_COLLECTION].update_one(
        {"_id": LOCK_ID}, {"$set": {"expires_at": now - timedelta(seconds=1)}}
    )
    assert len(await migrate_up(db, directory=mig_dir, lock_wait=0.3)) == 3
    assert await db[LOCK_COLLECTION].count_documents({}) == 0


async def test_lock_is_renewed_while_held(
    db, mig_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: the holder renews expires_at, so a long migration is not taken over."""
    import uptime.platform.migrations as m

    seen: list[datetime] = []
    original = m._run_commands

    async def slow(database, migration, part):
        seen.append((await database[LOCK_COLLECTION].find_one({"_id": LOCK_ID}))["expires_at"])
        await asyncio.sleep(0.5)
        seen.append((await database[LOCK_COLLECTION].find_one({"_id": LOCK_ID}))["expires_at"])
        await original(database, migration, part)

    monkeypatch.setattr(m, "_run_commands", slow)
    await migrate_up(db, directory=mig_dir, lock_ttl=0.6)
    assert seen[1] > seen[0]


async def test_ensure_current_refuses_or_applies(
    db, mig_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule: with auto-migrate off, pending migrations raise an error naming them and telling
    the user to run `uptime-monitor migrate up`; with it on they are applied once."""
    import uptime.platform.migrations as m

    monkeypatch.setattr(m, "migrations_dir", lambda: mig_dir)
    with pytest.raises(MigrationsPendingError, match="uptime-monitor migrate up") as info:
        await ensure_current(db, apply=False)
    assert info.value.pending == sorted(p.name for p in mig_dir.iterdir())
    assert await ensure_current(db, apply=True) == info.value.pending
    assert await ensure_current(db, apply=False) == []


async def test_failing_command_names_file_and_is_not_recorded(db, tmp_path: Path) -> None:
    """Rule: a failing command stops with the file and command named; it is not recorded;
    a dropIndexes of a missing index counts as done (a revert can be repeated)."""
    d = tmp_path / "m"
    d.mkdir()
    (d / "20240101000000-bad.json").write_text(
        json.dumps({"up": [{"createIndexes": "t", "indexes": [{"key": {"a": 1}}]}], "down": []})
    )
    with pytest.raises(MigrationError, match=r"20240101000000-bad.json: up\[0\] \(createIndexes"):
        await migrate_up(db, directory=d)
    assert await db[CHANGELOG].count_documents({}) == 0
    (d / "20240101000000-bad.json").write_text(
        json.dumps(
            {
                "up": [{"dropIndexes": "nope", "index": "x_1"}],
                "down": [{"dropIndexes": "nope", "index": "x_1"}],
            }
        )
    )
    assert await migrate_up(db, directory=d) == ["20240101000000-bad.json"]
    assert await migrate_down(db, directory=d) == ["20240101000000-bad.json"]


def test_misnamed_file_is_an_error(tmp_path: Path) -> None:
    """Rule: migration files must be named YYYYMMDDHHMMSS-slug.json."""
    (tmp_path / "2024-01-01-a.json").write_text('{"up": [], "down": []}')
    with pytest.raises(MigrationError, match="YYYYMMDDHHMMSS"):
        load_migrations(tmp_path)


async def test_mongosh_applies_the_same_file_and_records_it(
    db, mongo_uri: str, mongosh: str
) -> None:
    """Rule: a DBA applies a migration file from mongosh with migrations/apply.mongosh.js; the
    indexes exist and `uptime-monitor migrate status` sees it applied (same checksum)."""
    first = load_migrations()[0]
    uri = mongo_uri.rstrip("/").split("?")[0]
    base = uri if uri.count("/") < 3 else uri.rsplit("/", 1)[0]

    async def run(direction: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            mongosh,
            f"{base}/{db.name}",
            "--quiet",
            "--eval",
            f'const MIGRATION = {json.dumps(str(first.path))}, DIRECTION = "{direction}"',
            "--file",
            str(REPO / "migrations" / "apply.mongosh.js"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return out.decode()

    assert f"applied {first.file_name}" in await run("up")
    assert "store_id_1_timestamp_utc_1" in await _index_names(db, "store_status")
    states = {s.file_name: s.state for s in await migration_status(db)}
    assert states[first.file_name] == "applied"
    assert "already applied" in await run("up")
    assert f"reverted {first.file_name}" in await run("down")
    assert "store_id_1_timestamp_utc_1" not in await _index_names(db, "store_status")
    assert await db[CHANGELOG].count_documents({}) == 0


async def test_a_lock_taken_over_midway_stops_before_recording(db) -> None:
    """Rule: if the lock expired and another process took it (e.g. during a long index build),
    the first process records nothing more and says so (MigrationLockError)."""
    from uptime.platform.migrations import _Lock

    async with _Lock(db, ttl=60) as lock:
        await lock.ensure_held()  # held: no error
        await db[LOCK_COLLECTION].update_one({"_id": LOCK_ID}, {"$set": {"owner": "other"}})
        with pytest.raises(MigrationLockError, match="lost the migrations lock"):
            await lock.ensure_held()
    assert (await db[LOCK_COLLECTION].find_one({"_id": LOCK_ID}))["owner"] == "other"
