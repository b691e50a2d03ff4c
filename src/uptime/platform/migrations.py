"""Index migrations, migrate-mongo style: ``uptime-monitor migrate up|down|status``.

Why this module is over 400 lines: one job, applying and recording the migrations in
``migrations/`` (runner, lock with its lease renewer, status); the CLI lives in
``uptime.cli.migrate``.

Spec: issue 2, item 6.

* Files: ``migrations/YYYYMMDDHHMMSS-slug.json`` (UTC timestamp), applied in name order.
  Each is Extended JSON ``{"description": str?, "up": [<command>...], "down": [<command>...]}``
  where a command is a database command document (``createIndexes``, ``dropIndexes``, ...),
  run with ``db.runCommand`` as is. So a DBA can apply the same file from mongosh
  (``migrations/apply.mongosh.js``). Every index has an explicit ``name``.
* Changelog: collection ``migrations_changelog {file_name, applied_at: Date (UTC), checksum:
  sha256 hex of the file's bytes}`` with a unique index on ``file_name``. ``status`` flags an
  applied file whose bytes changed since.
* Lock: ``migrations_lock {_id: "migrations", owner, acquired_at, expires_at}``. Taking it is
  one atomic upsert of that fixed ``_id`` that sets this process as owner only if there is no
  owner or ``expires_at`` passed (the holder died); all times are the server's clock
  (``$$NOW``). The holder renews it every ``ttl / 3`` while working. A second ``migrate up`` waits for the lock (up to
  ``wait`` seconds), then re-reads the changelog, so no migration is ever applied twice.
* ``dropIndexes`` of an index or collection that does not exist counts as done (a revert
  can be repeated); every other command error stops the run, naming file and command. A
  command cut by a failover (not primary, step-down, connection lost) is sent again to the
  new primary for up to ``FAILOVER_RETRY_S`` seconds.
* On a replica set a ``createIndexes`` without its own ``commitQuorum`` is sent with
  ``commitQuorum: "majority"`` (issue 10): the server's default, all voting members, makes an
  index build wait forever while one secondary is down; a majority commits it and the member
  that was down builds the index when it catches up.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bson import json_util
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from uptime.platform.probes import is_replica_set
from uptime.platform.resources import migrations_dir
from uptime.platform.tasks import is_transient

CHANGELOG = "migrations_changelog"
LOCK_COLLECTION = "migrations_lock"
LOCK_ID = "migrations"
LOCK_TTL_S = 300.0
LOCK_WAIT_S = 120.0

_NAME = re.compile(r"^(\d{14})-[A-Za-z0-9][A-Za-z0-9_.-]*\.json$")
_IGNORABLE_DROP_CODES = {26, 27}  # NamespaceNotFound, IndexNotFound


class MigrationError(RuntimeError):
    """A migration file is invalid or one of its commands failed (message names both)."""


class MigrationsPendingError(MigrationError):
    """Migrations are pending and automatic migration is off.

    Attributes:
        pending: the pending file names, in the order they would be applied.
    """

    def __init__(self, pending: list[str]) -> None:
        self.pending = pending
        super().__init__(
            f"{len(pending)} database migration(s) pending: {', '.join(pending)}. "
            "Run `uptime-monitor migrate up` (or set UPTIME_AUTO_MIGRATE=true)."
        )


class MigrationLockError(MigrationError):
    """The migrations lock is held by another process for longer than we wait."""


@dataclass(frozen=True)
class Migration:
    """One migration file: ``file_name``, ``checksum`` (sha256 hex of the bytes), commands."""

    file_name: str
    path: Path
    checksum: str
    up: list[dict]
    down: list[dict]
    description: str = ""


@dataclass(frozen=True)
class MigrationStatus:
    """One line of ``migrate status``: ``state`` is ``applied``, ``pending``, ``changed``
    (applied, but the file's checksum differs now) or ``missing`` (applied, file gone)."""

    file_name: str
    state: str
    applied_at: datetime | None = None


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Read every ``*.json`` migration in ``directory`` (default: the shipped
    ``migrations/``), sorted by name.

    Raises:
        MigrationError: a misnamed ``.json`` file, invalid Extended JSON, or ``up``/``down``
            not lists of command documents.
    """
    directory = migrations_dir() if directory is None else Path(directory)
    found = []
    for path in sorted(directory.glob("*.json")):
        if not _NAME.match(path.name):
            raise MigrationError(
                f"{path}: migration files are named YYYYMMDDHHMMSS-slug.json (UTC timestamp)"
            )
        data = path.read_bytes()
        try:
            doc = json_util.loads(data)
        except ValueError as exc:
            raise MigrationError(f"{path}: not valid Extended JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise MigrationError(f"{path}: expected an object with 'up' and 'down'")
        for part in ("up", "down"):
            commands = doc.get(part)
            if not isinstance(commands, list) or not all(
                isinstance(c, dict) and c for c in commands
            ):
                raise MigrationError(f"{path}: '{part}' must be a list of command documents")
        found.append(
            Migration(
                file_name=path.name,
                path=path,
                checksum=hashlib.sha256(data).hexdigest(),
                up=doc["up"],
                down=doc["down"],
                description=str(doc.get("description", "")),
            )
        )
    return found


# --------------------------------------------------------------------------- lock


class _Lock:
    """The migrations lock (see the module docstring)."""

    def __init__(self, db: Any, *, ttl: float = LOCK_TTL_S, wait: float = LOCK_WAIT_S) -> None:
        self.collection = db[LOCK_COLLECTION]
        self.ttl = ttl
        self.wait = wait
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renewer: asyncio.Task | None = None

    async def _try_acquire(self) -> bool:
        """Take the lock if it is free or expired, in one atomic upsert with an update
        pipeline: ``acquired_at``/``expires_at`` are the server's ``$$NOW`` (and ``$$NOW`` +
        ttl) when the write is applied, so a process whose clock is off, or that waited out
        an outage, never writes a lock that has already expired (issue 10, item 6b). Returns
        True if the lock is now ours."""
        free = {
            "$or": [
                {"$eq": [{"$type": "$owner"}, "missing"]},
                {"$lt": ["$expires_at", "$$NOW"]},
            ]
        }

        def take(value: Any, current: str) -> dict:
            return {"$cond": [free, value, current]}

        try:
            doc = await self.collection.find_one_and_update(
                {"_id": LOCK_ID},
                [
                    {
                        "$set": {
                            "owner": take({"$literal": self.owner}, "$owner"),
                            "acquired_at": take("$$NOW", "$acquired_at"),
                            "expires_at": take(
                                {"$add": ["$$NOW", int(self.ttl * 1000)]}, "$expires_at"
                            ),
                        }
                    }
                ],
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # two first-ever upserts raced: the other one won
            return False
        return doc is not None and doc.get("owner") == self.owner

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                result = await self.collection.update_one(
                    {"_id": LOCK_ID, "owner": self.owner},
                    [{"$set": {"expires_at": {"$add": ["$$NOW", int(self.ttl * 1000)]}}}],
                )
            except PyMongoError:
                continue  # a blip; try again well before the lock expires
            if result.matched_count == 0:
                return  # taken over: ensure_held() fails from now on

    async def ensure_held(self) -> None:
        """Raise ``MigrationLockError`` unless this process still holds the lock."""
        if await self.collection.find_one({"_id": LOCK_ID, "owner": self.owner}) is None:
            raise MigrationLockError(
                "lost the migrations lock (it expired and was taken over, e.g. while a long "
                "index build ran); run `uptime-monitor migrate status`, then `uptime-monitor migrate up` again"
            )

    async def __aenter__(self) -> _Lock:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        delay = 0.05
        while not await self._try_acquire():
            if loop.time() >= deadline:
                holder = await self.collection.find_one({"_id": LOCK_ID}) or {}
                raise MigrationLockError(
                    f"the migrations lock is held by {holder.get('owner', '?')} since "
                    f"{holder.get('acquired_at', '?')}; it expires at "
                    f"{holder.get('expires_at', '?')} if its holder died "
                    f"(collection {LOCK_COLLECTION})"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        self._renewer = asyncio.create_task(self._renew())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            try:
                await self._renewer
            except (asyncio.CancelledError, Exception):
                pass
        await self.collection.delete_one({"_id": LOCK_ID, "owner": self.owner})


# --------------------------------------------------------------------------- running


async def _changelog(db: Any) -> dict[str, dict]:
    return {doc["file_name"]: doc async for doc in db[CHANGELOG].find({}, {"_id": 0})}


async def _commit_quorum(db: Any) -> dict[str, str]:
    """``{"commitQuorum": "majority"}`` on a replica set, ``{}`` on a standalone (which
    refuses the option)."""
    return {"commitQuorum": "majority"} if await is_replica_set(db) else {}


#: How long a migration command is retried through a failover (seconds).
FAILOVER_RETRY_S = 60.0


async def _command(db: Any, command: dict) -> None:
    """Run one migration command; retry it through a failover (not-primary, step-down,
    connection lost: ``tasks.is_transient``) for up to ``FAILOVER_RETRY_S`` seconds. Commands
    are not retried by the driver, and a repeated ``createIndexes``/``dropIndexes`` of the same
    spec is harmless (an existing identical index is a no-op; a missing one on drop counts as
    done)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FAILOVER_RETRY_S
    while True:
        try:
            await db.command(command)
            return
        except PyMongoError as exc:
            if not is_transient(exc) or loop.time() >= deadline:
                raise
            await asyncio.sleep(0.5)


async def _run_commands(db: Any, migration: Migration, part: str) -> None:
    quorum = await _commit_quorum(db)
    for index, command in enumerate(getattr(migration, part)):
        name = next(iter(command))
        if name == "createIndexes" and "commitQuorum" not in command:
            command = {**command, **quorum}
        try:
            await _command(db, command)
        except OperationFailure as exc:
            if name == "dropIndexes" and exc.code in _IGNORABLE_DROP_CODES:
                continue
            raise MigrationError(
                f"{migration.file_name}: {part}[{index}] ({name} {command.get(name)!r}) failed: "
                f"{exc.details.get('errmsg', exc) if exc.details else exc}"
            ) from None


async def pending_migrations(db: Any, directory: Path | None = None) -> list[str]:
    """Names of the migration files not yet recorded in ``migrations_changelog``."""
    applied = await _changelog(db)
    return [m.file_name for m in load_migrations(directory) if m.file_name not in applied]


async def migrate_up(
    db: Any,
    *,
    directory: Path | None = None,
    lock_ttl: float = LOCK_TTL_S,
    lock_wait: float = LOCK_WAIT_S,
) -> list[str]:
    """Apply every pending migration in name order, under the lock; return the names applied
    (empty when none was pending).

    Raises:
        MigrationError: a command failed (the migrations before it stay applied and
            recorded; the failing one is not recorded).
        MigrationLockError: the lock stayed held longer than ``lock_wait`` seconds.
    """
    migrations = load_migrations(directory)
    applied_now: list[str] = []
    async with _Lock(db, ttl=lock_ttl, wait=lock_wait) as lock:
        await db[CHANGELOG].create_indexes(
            [IndexModel([("file_name", ASCENDING)], name="file_name_unique", unique=True)],
            **await _commit_quorum(db),
        )
        applied = await _changelog(db)  # read under the lock
        for migration in migrations:
            if migration.file_name in applied:
                continue
            await _run_commands(db, migration, "up")
            await lock.ensure_held()
            await db[CHANGELOG].insert_one(
                {
                    "file_name": migration.file_name,
                    "applied_at": datetime.now(timezone.utc),
                    "checksum": migration.checksum,
                }
            )
            applied_now.append(migration.file_name)
    return applied_now


async def migrate_down(
    db: Any,
    *,
    all: bool = False,
    directory: Path | None = None,
    lock_ttl: float = LOCK_TTL_S,
    lock_wait: float = LOCK_WAIT_S,
) -> list[str]:
    """Revert the last applied migration (latest ``applied_at``, then name), or all of them
    newest first; return the names reverted.

    Raises:
        MigrationError: the file of an applied migration is missing, or a command failed.
        MigrationLockError: as :func:`migrate_up`.
    """
    by_name = {m.file_name: m for m in load_migrations(directory)}
    reverted: list[str] = []
    async with _Lock(db, ttl=lock_ttl, wait=lock_wait) as lock:
        entries = [
            doc
            async for doc in db[CHANGELOG].find({}).sort([("applied_at", -1), ("file_name", -1)])
        ]
        for entry in entries if all else entries[:1]:
            migration = by_name.get(entry["file_name"])
            if migration is None:
                raise MigrationError(
                    f"cannot revert {entry['file_name']}: the file is not in the migrations folder"
                )
            await _run_commands(db, migration, "down")
            await lock.ensure_held()
            await db[CHANGELOG].delete_one({"_id": entry["_id"]})
            reverted.append(migration.file_name)
    return reverted


async def migration_status(db: Any, directory: Path | None = None) -> list[MigrationStatus]:
    """Every migration file and changelog entry with its state (see :class:`MigrationStatus`),
    in name order."""
    applied = await _changelog(db)
    files = {m.file_name: m for m in load_migrations(directory)}
    result = []
    for name in sorted(set(files) | set(applied)):
        entry = applied.get(name)
        if entry is None:
            result.append(MigrationStatus(name, "pending"))
        elif name not in files:
            result.append(MigrationStatus(name, "missing", entry.get("applied_at")))
        elif entry.get("checksum") != files[name].checksum:
            result.append(MigrationStatus(name, "changed", entry.get("applied_at")))
        else:
            result.append(MigrationStatus(name, "applied", entry.get("applied_at")))
    return result


async def ensure_current(db: Any, *, apply: bool) -> list[str]:
    """Make sure no migration is pending before ``serve``/``import``/``report`` work.

    With ``apply`` (``UPTIME_AUTO_MIGRATE``, default true) pending migrations are applied
    (under the lock) and their names returned; else nothing is written.

    Raises:
        MigrationsPendingError: ``apply`` is false and migrations are pending (names them and
            tells the user to run ``uptime-monitor migrate up``).
        MigrationError, MigrationLockError: as :func:`migrate_up`.
    """
    pending = await pending_migrations(db)
    if not pending:
        return []
    if not apply:
        raise MigrationsPendingError(pending)
    return await migrate_up(db)
