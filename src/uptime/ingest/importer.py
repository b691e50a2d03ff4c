"""CSV import of polls, business hours and timezones into the three input collections.

``uptime import [--status FILE] [--hours FILE] [--timezones FILE] [--rejects PATH]`` and the
library functions :func:`import_file` / :func:`import_files` (reused by the demo and the
benchmark). Spec: issue 2, items 4-5 (storage schema, import rules).

Files (UTF-8, optional BOM, LF or CRLF, final newline optional; header columns in any order,
names matched case-insensitively, extra columns ignored):

* status -> ``store_status {_id, store_id: str, timestamp_utc: Date (UTC, ms), status}``;
  columns ``store_id, status, timestamp_utc``.
* hours -> ``store_hours {_id, store_id: str, dayOfWeek: int 0..6 (0 = Monday),
  start_time_local: "HH:MM:SS", end_time_local: "HH:MM:SS"}``; columns ``store_id,
  day`` (or ``dayOfWeek``) ``, start_time_local, end_time_local``.
* timezones -> ``store_timezones {_id, store_id: str, timezone_str: IANA name}``; columns
  ``store_id, timezone_str``.

Rules:

* Polls are deduplicated by a deterministic ``_id`` ``"<store_id>|<UTC ISO ms>|<a|i>"``
  (for example ``"8419537941919820732|2023-01-22T12:09:39.388|a"``): an exact duplicate (same
  store, instant at millisecond precision -- what a BSON Date holds -- and status) is stored
  once and counted *already present*; conflicting polls at one instant are both kept. No
  unique index on data fields is needed, so data written by other systems may hold
  duplicates.
* An hours or timezones file is the new truth for the stores it mentions (stores with at
  least one valid row): rows are inserted with a deterministic ``_id`` (identical rows already
  stored count *already present* and are not rewritten), then every other row of those stores
  is deleted (*replaced*). Stores the file does not mention keep their rows.
* Bad rows are written to a rejects CSV (``line,reason,<the row's fields>``) and are not
  loaded; the valid rows are loaded all the same. Counting: ``loaded + already_present +
  rejected`` = the data rows of the file (blank lines are not rows).

Memory: a status import holds two batches of rows at most (plus the set of distinct store ids
already validated); an hours/timezones import also holds the ids of the rows it loaded (about
100 bytes per row), which the replacement step needs.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import sys
import time
import zoneinfo
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pymongo.errors import BulkWriteError

from uptime.report.pipeline import zone_known

Kind = Literal["status", "hours", "timezones"]
KINDS: tuple[Kind, ...] = ("timezones", "hours", "status")

COLLECTIONS: dict[str, str] = {
    "status": "store_status",
    "hours": "store_hours",
    "timezones": "store_timezones",
}

#: Required columns per kind (normalised: stripped, lower-case); ``day`` is an alias of
#: ``dayofweek``.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "status": ("store_id", "status", "timestamp_utc"),
    "hours": ("store_id", "dayofweek", "start_time_local", "end_time_local"),
    "timezones": ("store_id", "timezone_str"),
}
_ALIASES = {"day": "dayofweek"}

BATCH_SIZE = 5000
#: Insert batches sent but not yet acknowledged (MongoDB works on them while we parse).
IN_FLIGHT = 1
_DELETE_CHUNK = 1000
_VALID_ID_CACHE_MAX = 1_000_000

_DUPLICATE_KEY = 11000
_REJECTS_HEADER_START = "line,reason"


class ImportFileError(Exception):
    """A whole file cannot be imported (missing file, missing column, not CSV, unwritable
    rejects file...). The message names the file and what is wrong; the CLI exits 2."""


class RowError(ValueError):
    """One row is invalid; the message is the reason written to the rejects file."""


@dataclass
class ImportSummary:
    """What one file's import did.

    Attributes:
        kind: ``status``, ``hours`` or ``timezones``.
        path: the input file.
        collection: the target collection.
        loaded: rows inserted by this import.
        already_present: valid rows that were stored already (earlier import, other writer
            using the same ``_id``, or an exact duplicate earlier in the same file).
        rejected: rows not loaded; each is in the rejects file.
        replaced: hours/timezones only: old rows of the mentioned stores deleted because the
            file no longer lists them (always 0 for status).
        seconds: wall time of the import.
        rows_per_second: data rows (loaded + already present + rejected) per second.
        rejects_path: the rejects CSV written, or ``None`` when no row was rejected.
        notes: remarks for the user (ignored columns, rejects file moved...).
    """

    kind: str
    path: Path
    collection: str
    loaded: int = 0
    already_present: int = 0
    rejected: int = 0
    replaced: int = 0
    seconds: float = 0.0
    rows_per_second: float = 0.0
    rejects_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Data rows read: loaded + already present + rejected."""
        return self.loaded + self.already_present + self.rejected

    def describe(self) -> str:
        """One line for humans, e.g. ``store_hours <- menu_hours.csv: loaded 86,198, ...``."""
        text = (
            f"{self.collection} <- {self.path}: loaded {self.loaded:,}, already present "
            f"{self.already_present:,}, rejected {self.rejected:,}"
        )
        if self.kind != "status":
            text += f", replaced {self.replaced:,}"
        text += f" ({self.rows:,} rows in {self.seconds:.2f} s, {self.rows_per_second:,.0f} rows/s)"
        if self.rejects_path is not None:
            text += f"\n  rejected rows written to {self.rejects_path}"
        for note in self.notes:
            text += f"\n  note: {note}"
        return text


# --------------------------------------------------------------------------- field parsers

_FLOAT_ID = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)[eE][+-]?\d+|[+-]?(?:\d+\.\d*|\.\d+)")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})(?:\.\d{1,9})?")
_UTC = timezone.utc
_fromisoformat = datetime.fromisoformat


def parse_store_id(text: str) -> str:
    """Return the store id, stripped of surrounding blanks, kept exact as a string.

    Raises:
        RowError: empty; written in float or scientific notation (``8.139926242460185E+018``,
            ``123.0``: a spreadsheet lost the id's digits); not valid UTF-8.
    """
    sid = text.strip()
    if not sid:
        raise RowError("empty store_id")
    if _FLOAT_ID.fullmatch(sid):
        raise RowError(
            f"store_id {sid!r} is in float/scientific notation (digits lost, e.g. by a "
            "spreadsheet); ids must be kept exact"
        )
    if not sid.isascii():
        try:
            sid.encode("utf-8")
        except UnicodeEncodeError:
            raise RowError("store_id is not valid UTF-8") from None
    return sid


def parse_timestamp(text: str) -> datetime:
    """Parse a poll timestamp to a naive UTC ``datetime`` (stored at millisecond precision).

    Accepted: ``YYYY-MM-DD HH:MM:SS[.f{1,6}] UTC`` (the Loop files), ISO 8601 extended format
    with ``T`` or a space, with ``Z`` or a ``+HH:MM`` offset (converted to UTC), or without
    any zone (read as UTC: the column is ``timestamp_utc``). Milliseconds are kept (a BSON
    Date holds milliseconds); finer digits are truncated.

    Raises:
        RowError: anything else (date only, basic format, out-of-range fields, junk).
    """
    t = text.strip()
    utc_suffix = t.endswith(" UTC")
    core = t[:-4] if utc_suffix else t
    if len(core) < 19 or core[10] not in " T" or core[4] != "-":
        raise RowError(
            f"unparseable timestamp {text!r} (expected e.g. 2023-01-22 12:09:39.388884 UTC)"
        )
    try:
        dt = _fromisoformat(core)
    except ValueError:
        raise RowError(
            f"unparseable timestamp {text!r} (expected e.g. 2023-01-22 12:09:39.388884 UTC)"
        ) from None
    if dt.tzinfo is not None:
        if utc_suffix:
            raise RowError(f"unparseable timestamp {text!r} (both an offset and 'UTC')")
        dt = dt.astimezone(_UTC).replace(tzinfo=None)
    # Sub-millisecond digits are kept here; BSON encoding floors to milliseconds, and the
    # poll _id uses isoformat(timespec="milliseconds"), which truncates the same way.
    return dt


def parse_status(text: str) -> str:
    """Return ``active`` or ``inactive`` (input trimmed, lower-cased). Raises RowError."""
    s = text.strip().lower()
    if s == "active" or s == "inactive":
        return s
    raise RowError(f"status {text!r} is not active/inactive")


def parse_day(text: str) -> int:
    """Return the day of week 0..6 (0 = Monday). Raises RowError otherwise."""
    d = text.strip()
    if len(d) == 1 and "0" <= d <= "6":
        return ord(d) - 48
    raise RowError(f"dayOfWeek {text!r} is not an integer 0..6 (0 = Monday)")


def parse_clock(text: str, column: str) -> str:
    """Return a local clock time as ``HH:MM:SS``.

    Accepted: ``H:MM:SS`` or ``HH:MM:SS`` with an optional fraction of a second, which is
    truncated (``23:59:59.999`` -> ``23:59:59``). Hours 0-23, minutes and seconds 0-59.

    Raises:
        RowError: anything else, e.g. ``24:00:00``, ``9:00``, ``noon``.
    """
    t = text.strip()
    if (
        len(t) == 8
        and t[2] == ":"
        and t[5] == ":"
        and t[:2].isdigit()
        and t[3:5].isdigit()
        and t[6:].isdigit()
    ):
        h, m, s = int(t[:2]), int(t[3:5]), int(t[6:])
    else:
        match = _CLOCK.fullmatch(t)
        if match is None:
            raise RowError(f"{column} {text!r} is not a clock time HH:MM:SS")
        h, m, s = int(match[1]), int(match[2]), int(match[3])
    if h > 23 or m > 59 or s > 59:
        raise RowError(f"{column} {text!r} is out of range (00:00:00..23:59:59)")
    return f"{h:02d}:{m:02d}:{s:02d}"


# --------------------------------------------------------------------------- timezones


class ZoneChecker:
    """Decides whether a zone name is usable: an IANA name in Python's tz database
    (``zoneinfo.available_timezones()``) that the MongoDB server also knows (its own tz
    database may be older or newer; the report pipeline runs there). Results are cached."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._python = zoneinfo.available_timezones()
        self._known: dict[str, str | None] = {}  # zone -> None (ok) or the reason

    async def check(self, zone: str) -> str | None:
        """Return ``None`` when ``zone`` is usable, else the reason it is not."""
        if zone in self._known:
            return self._known[zone]
        if not zone:
            reason: str | None = "empty timezone_str"
        elif zone not in self._python:
            reason = f"timezone_str {zone!r} is not an IANA time zone name"
        else:
            reason = None
            if not await zone_known(self._db, zone):
                reason = (
                    f"timezone_str {zone!r} is unknown to the MongoDB server's time zone database"
                )
        self._known[zone] = reason
        return reason


# --------------------------------------------------------------------------- rejects file


class _Rejects:
    """Writes rejected rows lazily (the file only exists when a row was rejected)."""

    def __init__(self, target: Path, explicit: bool, header: list[str], input_path: Path) -> None:
        self.target = target
        self.explicit = explicit
        self.header = header
        self.input_path = input_path
        self.path: Path | None = None
        self.notes: list[str] = []
        self._file: io.TextIOWrapper | None = None
        self._writer: Any = None

    def _open(self) -> None:
        try:
            if self.target.resolve() == self.input_path.resolve():
                raise ImportFileError(f"the rejects file {self.target} would overwrite the input")
            if not self.explicit and _read_only_dir(self.target.parent):
                raise PermissionError(self.target.parent)
            self._file = open(
                self.target, "w", encoding="utf-8", errors="surrogateescape", newline=""
            )
            self.path = self.target
        except PermissionError:
            if self.explicit:
                raise ImportFileError(f"cannot write the rejects file {self.target}") from None
            fallback = Path.cwd() / self.target.name
            try:
                self._file = open(
                    fallback, "w", encoding="utf-8", errors="surrogateescape", newline=""
                )
            except OSError as exc:
                raise ImportFileError(
                    f"cannot write the rejects file {self.target} nor {fallback}: {exc}; "
                    "pass --rejects DIR"
                ) from None
            self.path = fallback
            self.notes.append(
                f"{self.target.parent} is not writable; rejects written to {fallback}"
            )
        except OSError as exc:
            raise ImportFileError(f"cannot write the rejects file {self.target}: {exc}") from None
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(["line", "reason", *self.header])

    def write(self, line: int, reason: str, row: list[str]) -> None:
        if self._writer is None:
            self._open()
        self._writer.writerow([line, reason, *row])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        elif self.target.is_file():
            # A rejects file left by an earlier run of the same input would mislead: remove it
            # (only if it is one of ours).
            try:
                with open(self.target, encoding="utf-8", errors="replace") as f:
                    ours = f.readline().startswith(_REJECTS_HEADER_START)
                if ours:
                    self.target.unlink()
            except OSError:
                pass


def _read_only_dir(directory: Path) -> bool:
    """True when ``directory`` has no write permission bit at all (a read-only data folder;
    checked on the mode bits because root may write anyway)."""
    try:
        return not (directory.stat().st_mode & 0o222) or not os.access(directory, os.W_OK)
    except OSError:
        return False


def rejects_target(
    input_path: Path, kind: str, rejects: Path | None, several: bool
) -> tuple[Path, bool]:
    """Where the rejects of ``input_path`` go, and whether the user chose it.

    * ``rejects`` unset: ``<input>.rejects.csv`` next to the input (if that folder is
      read-only: ``./<input name>.rejects.csv`` in the current directory).
    * ``rejects`` an existing directory (or ending in ``/``): ``<dir>/<input name>.rejects.csv``.
    * otherwise a file: used as is for a single input file; with several inputs the kind is
      inserted before the suffix (``bad.csv`` -> ``bad.status.csv``, ``bad.hours.csv``).
    """
    if rejects is None:
        return input_path.with_name(input_path.name + ".rejects.csv"), False
    if rejects.is_dir() or str(rejects).endswith(("/", os.sep)):
        return rejects / (input_path.name + ".rejects.csv"), True
    if not several:
        return rejects, True
    return rejects.with_name(f"{rejects.stem}.{kind}{rejects.suffix or '.csv'}"), True


# --------------------------------------------------------------------------- reading


@dataclass
class _Source:
    raw: Any
    text: io.TextIOWrapper
    reader: Any
    header: list[str]
    columns: dict[str, int]
    size: int
    notes: list[str]

    def close(self) -> None:
        self.text.close()


def _open_source(kind: str, path: Path) -> _Source:
    """Open ``path``, read and check its header.

    Raises:
        ImportFileError: unreadable, empty, or a required column missing/ambiguous.
    """
    if kind not in REQUIRED_COLUMNS:
        raise ImportFileError(f"unknown kind {kind!r}; expected status, hours or timezones")
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open: {exc.strerror or exc}") from None
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        text.close()
        raise ImportFileError(f"{path}: empty file; expected a header line") from None
    except csv.Error as exc:
        text.close()
        raise ImportFileError(f"{path}: line 1: not a CSV header: {exc}") from None
    names = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    columns: dict[str, int] = {}
    notes: list[str] = []
    for i, name in enumerate(names):
        if name in columns:
            text.close()
            raise ImportFileError(f"{path}: line 1: column {header[i].strip()!r} appears twice")
        columns[name] = i
    required = REQUIRED_COLUMNS[kind]
    missing = [c for c in required if c not in columns]
    if missing:
        text.close()
        shown = ["day (or dayOfWeek)" if c == "dayofweek" else c for c in missing]
        raise ImportFileError(
            f"{path}: line 1: missing required column(s) {', '.join(shown)} for a {kind} file; "
            f"header is {','.join(header)!r}; expected {','.join(required)} in any order"
        )
    extra = [header[i] for i, n in enumerate(names) if n not in required]
    if extra:
        notes.append(f"ignored column(s): {', '.join(extra)}")
    size = os.fstat(raw.fileno()).st_size
    return _Source(raw, text, reader, header, columns, size, notes)


def _rows(source: _Source, rejects: _Rejects) -> Iterable[tuple[int, list[str]]]:
    """Yield ``(line, fields)`` of the data rows; blank lines skipped. A row with a CSV syntax
    error or a field count other than the header's is written to ``rejects`` and yielded as
    ``(line, None)`` (the reader resumes on the next line)."""
    reader = source.reader
    ncols = len(source.header)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            rejects.write(reader.line_num, f"CSV syntax error: {exc}", [])
            yield reader.line_num, None  # type: ignore[misc]
            continue
        if not row:
            continue
        if len(row) != ncols:
            rejects.write(reader.line_num, f"{len(row)} fields, the header has {ncols}", row)
            yield reader.line_num, None  # type: ignore[misc]
            continue
        yield reader.line_num, row


# --------------------------------------------------------------------------- writing


class _Writer:
    """Unordered bulk inserts, ``IN_FLIGHT`` batches in flight while the next one is parsed.

    A duplicate ``_id`` is counted as *already present*. MongoDB handles a batch with
    duplicate-key errors slowly (it retries the batch row by row), so while duplicates are
    common (a re-import, or a collection that already holds rows) the ``_id``s of a batch are
    looked up first (a covered ``_id`` index read) and only the missing rows are inserted.
    """

    def __init__(self, collection: Any, precheck: bool) -> None:
        self.collection = collection
        self.loaded = 0
        self.already_present = 0
        self.precheck = precheck
        self._tasks: deque[asyncio.Task] = deque()

    async def _insert(self, docs: list[dict]) -> None:
        total = len(docs)
        if self.precheck:
            ids = [d["_id"] for d in docs]
            existing = {
                d["_id"] async for d in self.collection.find({"_id": {"$in": ids}}, {"_id": 1})
            }
            if existing:
                docs = [d for d in docs if d["_id"] not in existing]
                self.already_present += total - len(docs)
        duplicates = 0
        if docs:
            try:
                await self.collection.insert_many(docs, ordered=False)
                self.loaded += len(docs)
            except BulkWriteError as exc:
                details = exc.details
                errors = details.get("writeErrors", [])
                other = [e for e in errors if e.get("code") != _DUPLICATE_KEY]
                if other or details.get("writeConcernErrors"):
                    first = other[0] if other else details["writeConcernErrors"][0]
                    raise ImportFileError(
                        f"MongoDB refused rows of {self.collection.name}: {first.get('errmsg')}"
                    ) from exc
                self.loaded += details.get("nInserted", 0)
                duplicates = len(errors)
                self.already_present += duplicates
        # Look up the next batch first while more than 1 % of this one was already there.
        self.precheck = (total - len(docs) + duplicates) * 100 > total

    async def submit(self, docs: list[dict]) -> None:
        await self._drain(keep=IN_FLIGHT - 1)
        self._tasks.append(asyncio.create_task(self._insert(docs)))
        await asyncio.sleep(0)  # let it encode and send before we parse on

    async def wait(self) -> None:
        await self._drain(keep=0)

    async def _drain(self, keep: int) -> None:
        """Await the oldest batches until at most ``keep`` are in flight. If one fails, the
        others are cancelled (no inserts go on after the import reported its error)."""
        try:
            while len(self._tasks) > keep:
                await self._tasks.popleft()
        except BaseException:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
            raise


async def _finish(
    writer: _Writer, batch: list[dict], summary: ImportSummary, rejected: int
) -> None:
    """Insert the last partial ``batch``, wait for every insert, and fill in ``summary``."""
    if batch:
        await writer.submit(batch)
    await writer.wait()
    summary.loaded = writer.loaded
    summary.already_present = writer.already_present
    summary.rejected = rejected


async def _has_rows(collection: Any) -> bool:
    return await collection.find_one({}, {"_id": 1}) is not None


# --------------------------------------------------------------------------- progress


class _Progress:
    def __init__(self, enabled: bool, label: str, total: int) -> None:
        self._progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(label, total=total)

    def update(self, completed: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


# --------------------------------------------------------------------------- importers


async def _import_status(
    db: Any, src: _Source, rej: _Rejects, summary: ImportSummary, prog: _Progress
) -> None:
    c = src.columns
    i_sid, i_st, i_ts = c["store_id"], c["status"], c["timestamp_utc"]
    ncols = len(src.header)
    collection = db[COLLECTIONS["status"]]
    writer = _Writer(collection, await _has_rows(collection))
    valid_ids: set[str] = set()
    batch: list[dict] = []
    rejected = 0
    parse_ts = parse_timestamp
    reader = src.reader
    # The hot loop of the import: the row checks of _rows are inlined here (no generator per
    # row), to keep the per-row cost of a multi-million-row file down.
    while True:
        try:
            for row in reader:
                if len(row) != ncols:
                    if not row:
                        continue
                    rej.write(reader.line_num, f"{len(row)} fields, the header has {ncols}", row)
                    rejected += 1
                    continue
                try:
                    sid = row[i_sid].strip()
                    if sid not in valid_ids:
                        sid = parse_store_id(sid)
                        if len(valid_ids) < _VALID_ID_CACHE_MAX:
                            valid_ids.add(sid)
                    st = row[i_st]
                    if st != "active" and st != "inactive":
                        st = parse_status(st)
                    ts = parse_ts(row[i_ts])
                except RowError as exc:
                    rej.write(reader.line_num, str(exc), row)
                    rejected += 1
                    continue
                batch.append(
                    {
                        "_id": f"{sid}|{ts.isoformat(timespec='milliseconds')}|{st[0]}",
                        "store_id": sid,
                        "timestamp_utc": ts,
                        "status": st,
                    }
                )
                if len(batch) >= BATCH_SIZE:
                    await writer.submit(batch)
                    batch = []
                    prog.update(src.raw.tell())
            break
        except csv.Error as exc:
            rej.write(reader.line_num, f"CSV syntax error: {exc}", [])
            rejected += 1
    await _finish(writer, batch, summary, rejected)


async def _replace_rows(collection: Any, stores: Iterable[str], keep: Callable[[Any], bool]) -> int:
    """Delete the rows of ``stores`` whose ``_id`` ``keep`` refuses; return how many."""
    removed = 0
    stores = list(stores)
    for start in range(0, len(stores), _DELETE_CHUNK):
        chunk = stores[start : start + _DELETE_CHUNK]
        stale = [
            doc["_id"]
            async for doc in collection.find({"store_id": {"$in": chunk}}, {"_id": 1})
            if not keep(doc["_id"])
        ]
        for s in range(0, len(stale), _DELETE_CHUNK):
            result = await collection.delete_many({"_id": {"$in": stale[s : s + _DELETE_CHUNK]}})
            removed += result.deleted_count
    return removed


async def _import_hours(
    db: Any, src: _Source, rej: _Rejects, summary: ImportSummary, prog: _Progress
) -> None:
    c = src.columns
    i_sid, i_day = c["store_id"], c["dayofweek"]
    i_start, i_end = c["start_time_local"], c["end_time_local"]
    collection = db[COLLECTIONS["hours"]]
    writer = _Writer(collection, await _has_rows(collection))
    stores: set[str] = set()
    row_ids: set[str] = set()
    batch: list[dict] = []
    rejected = 0
    for line, row in _rows(src, rej):
        if row is None:  # already written to the rejects file by _rows
            rejected += 1
            continue
        try:
            sid = parse_store_id(row[i_sid])
            day = parse_day(row[i_day])
            start = parse_clock(row[i_start], "start_time_local")
            end = parse_clock(row[i_end], "end_time_local")
        except RowError as exc:
            rej.write(line, str(exc), row)
            rejected += 1
            continue
        _id = f"{sid}|{day}|{start}|{end}"
        stores.add(sid)
        row_ids.add(_id)
        batch.append(
            {
                "_id": _id,
                "store_id": sid,
                "dayOfWeek": day,
                "start_time_local": start,
                "end_time_local": end,
            }
        )
        if len(batch) >= BATCH_SIZE:
            await writer.submit(batch)
            batch = []
            prog.update(src.raw.tell())
    await _finish(writer, batch, summary, rejected)
    summary.replaced = await _replace_rows(collection, stores, row_ids.__contains__)


async def _import_timezones(
    db: Any, src: _Source, rej: _Rejects, summary: ImportSummary, prog: _Progress
) -> None:
    c = src.columns
    i_sid, i_tz = c["store_id"], c["timezone_str"]
    collection = db[COLLECTIONS["timezones"]]
    writer = _Writer(collection, await _has_rows(collection))
    zones = ZoneChecker(db)
    seen: dict[str, tuple[str, int]] = {}  # store -> (zone, line)
    batch: list[dict] = []
    rejected = 0
    for line, row in _rows(src, rej):
        if row is None:  # already written to the rejects file by _rows
            rejected += 1
            continue
        try:
            sid = parse_store_id(row[i_sid])
            zone = row[i_tz].strip()
            reason = await zones.check(zone)
            if reason is not None:
                raise RowError(reason)
            previous = seen.get(sid)
            if previous is not None and previous[0] != zone:
                raise RowError(
                    f"store {sid} already has timezone_str {previous[0]!r} on line {previous[1]}"
                )
        except RowError as exc:
            rej.write(line, str(exc), row)
            rejected += 1
            continue
        if previous is None:
            seen[sid] = (zone, line)
        batch.append({"_id": f"{sid}|{zone}", "store_id": sid, "timezone_str": zone})
        if len(batch) >= BATCH_SIZE:
            await writer.submit(batch)
            batch = []
            prog.update(src.raw.tell())
    await _finish(writer, batch, summary, rejected)
    keep = {f"{sid}|{zone}" for sid, (zone, _) in seen.items()}
    summary.replaced = await _replace_rows(collection, seen, keep.__contains__)


_IMPORTERS = {"status": _import_status, "hours": _import_hours, "timezones": _import_timezones}


async def import_file(
    db: Any,
    kind: Kind,
    path: Path,
    *,
    rejects: Path | None = None,
    progress: bool = False,
    _several: bool = False,
) -> ImportSummary:
    """Import one CSV file of ``kind`` into ``db`` (an ``AsyncDatabase``).

    Args:
        db: the target database (collections ``store_status``, ``store_hours``,
            ``store_timezones``).
        kind: ``"status"``, ``"hours"`` or ``"timezones"``.
        path: the CSV file.
        rejects: where rejected rows go: ``None`` -> ``<path>.rejects.csv``; a directory ->
            ``<dir>/<file name>.rejects.csv``; a file path -> that file.
        progress: show a rich progress bar on stderr.

    Returns:
        The :class:`ImportSummary` (counts, rows/s, rejects file).

    Raises:
        ImportFileError: the file cannot be imported at all (missing, unreadable, a required
            column missing, rejects file not writable, MongoDB refusing rows).
    """
    path = Path(path)
    started = time.perf_counter()
    src = _open_source(kind, path)
    target, explicit = rejects_target(
        path, kind, None if rejects is None else Path(rejects), _several
    )
    rej = _Rejects(target, explicit, src.header, path)
    summary = ImportSummary(
        kind=kind, path=path, collection=COLLECTIONS[kind], notes=list(src.notes)
    )
    prog = _Progress(progress, f"{kind} {path.name}", src.size)
    try:
        await _IMPORTERS[kind](db, src, rej, summary, prog)
        prog.update(src.size)
    finally:
        prog.close()
        src.close()
        rej.close()
    summary.rejects_path = rej.path
    summary.notes.extend(rej.notes)
    summary.seconds = time.perf_counter() - started
    summary.rows_per_second = summary.rows / summary.seconds if summary.seconds > 0 else 0.0
    return summary


async def import_files(
    db: Any,
    *,
    status: Path | None = None,
    hours: Path | None = None,
    timezones: Path | None = None,
    rejects: Path | None = None,
    progress: bool = False,
) -> list[ImportSummary]:
    """Import the given files in the order timezones, hours, status.

    Every file's header is checked before any row is written, so a wrong file stops the
    import before anything changed. ``rejects`` as in :func:`rejects_target`.

    Raises:
        ImportFileError: as :func:`import_file`.
    """
    files = [
        (k, Path(p))
        for k, p in (("timezones", timezones), ("hours", hours), ("status", status))
        if p
    ]
    for kind, path in files:
        _open_source(kind, path).close()
    several = len(files) > 1
    return [
        await import_file(db, kind, path, rejects=rejects, progress=progress, _several=several)  # type: ignore[arg-type]
        for kind, path in files
    ]


# --------------------------------------------------------------------------- CLI

_FileOption = dict(exists=True, dir_okay=False, readable=True, resolve_path=False)


def import_command(
    status: Annotated[
        Path | None,
        typer.Option("--status", help="Polls CSV: store_id,status,timestamp_utc.", **_FileOption),
    ] = None,
    hours: Annotated[
        Path | None,
        typer.Option(
            "--hours",
            help="Business hours CSV: store_id,day|dayOfWeek,start_time_local,end_time_local. "
            "The new truth for the stores it mentions.",
            **_FileOption,
        ),
    ] = None,
    timezones: Annotated[
        Path | None,
        typer.Option(
            "--timezones",
            help="Timezones CSV: store_id,timezone_str. The new truth for the stores it mentions.",
            **_FileOption,
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help="Where rejected rows go: a directory (<dir>/<file>.rejects.csv) or a file "
            "(with several inputs: <stem>.<kind>.csv). Default: <input>.rejects.csv.",
        ),
    ] = None,
) -> None:
    """Load CSV files into MongoDB; exit 1 if any row was rejected, 2 on a file error."""
    if status is None and hours is None and timezones is None:
        typer.echo("Error: give at least one of --status, --hours, --timezones", err=True)
        raise typer.Exit(2)

    from uptime.platform.db import open_database
    from uptime.platform.settings import get_settings

    async def run() -> list[ImportSummary]:
        async with open_database(get_settings()) as db:
            return await import_files(
                db,
                status=status,
                hours=hours,
                timezones=timezones,
                rejects=rejects,
                progress=sys.stderr.isatty(),
            )

    from uptime.platform.embedded import EmbeddedServerError
    from uptime.platform.migrations import MigrationError

    try:
        summaries = asyncio.run(run())
    except (ImportFileError, MigrationError, EmbeddedServerError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    for summary in summaries:
        typer.echo(summary.describe())
    if any(s.rejected for s in summaries):
        raise typer.Exit(1)
