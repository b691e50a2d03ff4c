"""CSV import of polls, business hours and timezones into the three input collections.

Why this module is over 400 lines: the per-kind import steps (status, hours, time zones) and
their shared progress; CSV reading, rejects and the writer are already in their own modules.

``uptime-monitor import [--status FILE] [--hours FILE] [--timezones FILE] [--rejects PATH]`` and the
library functions :func:`import_file` / :func:`import_files` (reused by the demo and the
benchmark). Spec: issue 2, items 4-5 (storage schema, import rules); issue 9 (files as
spreadsheets save them). Field rules live in :mod:`uptime.ingest.validate`, shared with
``POST /polls``.

Files (UTF-8 with optional BOM, or UTF-16/32 with a BOM; LF or CRLF, final newline optional;
delimiter ``,`` ``;`` or tab detected from the header, or set by a first line ``sep=X``; a
line with a NUL byte is rejected; header columns in any order, names matched
case-insensitively, extra columns ignored):

* status -> ``store_status {_id, store_id: str, timestamp_utc: Date (UTC, ms), status}``;
  columns ``store_id, status, timestamp_utc``.
* hours -> ``store_hours {_id, store_id: str, dayOfWeek: int 0..6 (0 = Monday),
  start_time_local: "HH:MM:SS", end_time_local: "HH:MM:SS"}``; columns ``store_id,
  day`` (or ``dayOfWeek``) ``, start_time_local, end_time_local``.
* timezones -> ``store_timezones {_id, store_id: str, timezone_str: a zone the MongoDB
  server accepts (IANA name or UTC offset; the summary counts offsets)}``; columns
  ``store_id, timezone_str``.

Rules:

* Polls are deduplicated by a deterministic 16-byte ``_id``
  (``uptime.platform.pollkey.poll_key(store_id, instant, status)``; before issue 18 the string
  ``"<store_id>|<UTC ISO ms>|<a|i>"``): an exact duplicate (same
  store, instant at millisecond precision -- what a BSON Date holds -- and status) is stored
  once and counted *already present*; conflicting polls at one instant are both kept. No
  unique index on data fields is needed, so data written by other systems may hold
  duplicates.
* An hours or timezones file is the new truth for the stores it mentions (stores with at
  least one valid row): rows are staged with a deterministic ``_id``, then each group of
  stores gets its staged rows inserted (identical rows already stored count *already
  present* and are not rewritten) and every other row deleted (*replaced*) in one
  transaction (``uptime.ingest.replace``), so a reader never sees a store's old and new rows
  together. Stores the file does not mention keep their rows.
* Bad rows are written to a rejects CSV (``line,reason,<the row's fields>``) and are not
  loaded; the valid rows are loaded all the same. Counting: ``loaded + already_present +
  rejected`` = the data rows of the file (blank lines are not rows).

Memory: a status import holds two batches of rows at most (plus the set of distinct store ids
already validated); an hours/timezones import stages its rows in a collection and holds
one group of stores' rows (``replace.STORES_PER_TRANSACTION`` stores) while replacing them.
"""

from __future__ import annotations

import csv
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from uptime.ingest.csvsource import _open_source, _rows, _Source, row_problem
from uptime.ingest.rejects import ImportFileError, _Rejects, rejects_target  # noqa: F401 - ImportFileError re-exported
from uptime.ingest.replace import replace_rows, staging_collection
from uptime.ingest.schedules import schedules_after_import
from uptime.platform.retention import ingest_horizon
from uptime.ingest.validate import (  # noqa: F401 - parse_* re-exported for callers and tests
    PollValidator,
    RowError,
    hours_document,
    is_fixed_offset,
    parse_clock,
    parse_day,
    parse_status,
    parse_store_id,
    parse_timestamp,
)
from uptime.ingest.writer import _Writer
from uptime.platform import metrics
from uptime.platform.constants import HOURS_COLLECTION, STATUS_COLLECTION, TIMEZONES_COLLECTION
from uptime.platform.probes import zone_known

Kind = Literal["status", "hours", "timezones"]
KINDS: tuple[Kind, ...] = ("timezones", "hours", "status")

COLLECTIONS: dict[str, str] = {
    "status": STATUS_COLLECTION,
    "hours": HOURS_COLLECTION,
    "timezones": TIMEZONES_COLLECTION,
}

BATCH_SIZE = 5000
_VALID_ID_CACHE_MAX = 1_000_000

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
        fixed_offset_zones: timezones only: stores given a UTC offset (``+05:30``) as their
            zone in this file; such a zone has no daylight saving time (issue 9).
        delimiter: the field delimiter used (``,``, ``;`` or tab; issue 9, "delimiters").
        encoding: the file's encoding (``utf-8``, ``utf-16``...; issue 9 item 3).
        notes: remarks for the user (ignored columns, rejects file moved...).
        stores: hours/timezones only: the stores the file mentions (issue 8, item 4).
        changed_stores: hours/timezones only: those of them whose rows the import inserted
            or deleted; only their schedules (and those of mentioned stores without one) are
            recomputed after the import (``uptime.ingest.schedules.schedules_after_import``).
    """

    kind: str
    path: Path
    collection: str
    loaded: int = 0
    already_present: int = 0
    rejected: int = 0
    replaced: int = 0
    fixed_offset_zones: int = 0
    delimiter: str = ","
    encoding: str = "utf-8"
    seconds: float = 0.0
    rows_per_second: float = 0.0
    rejects_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    stores: set[str] = field(default_factory=set, repr=False)
    changed_stores: set[str] = field(default_factory=set, repr=False)

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
        if self.fixed_offset_zones:
            text += (
                f"\n  note: {self.fixed_offset_zones:,} store(s) have a UTC offset as time zone "
                "(a fixed offset, no daylight saving time)"
            )
        for note in self.notes:
            text += f"\n  note: {note}"
        return text


# --------------------------------------------------------------------------- timezones


class ZoneChecker:
    """Decides whether a zone name is usable: MongoDB, which computes the report, is the only
    authority (issue 9 item 1: the answer must not depend on the host's tz files). Whatever
    the server accepts is valid -- IANA names, links such as ``US/Eastern``, and UTC offsets
    such as ``+03``, ``-05:00``, ``+0530`` (issue 9, "UTC offsets as zones"). Results are
    cached per name."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._known: dict[str, str | None] = {}  # zone -> None (ok) or the reason

    async def check(self, zone: str) -> str | None:
        """Return ``None`` when ``zone`` is usable, else the reason it is not."""
        if zone in self._known:
            return self._known[zone]
        if not zone:
            reason: str | None = "empty timezone_str"
        elif await zone_known(self._db, zone):
            reason = None
        else:
            reason = (
                f"timezone_str {zone!r} is not a time zone the MongoDB server knows (an IANA "
                "name such as America/Chicago, or a UTC offset such as +05:30)"
            )
        self._known[zone] = reason
        return reason


async def _finish(
    writer: _Writer, batch: list[dict], summary: ImportSummary, rej: _Rejects
) -> None:
    """Insert the last partial ``batch``, wait for every insert, and fill in ``summary``
    (``rejected``: the rows written to the rejects file ``rej``)."""
    if batch:
        await writer.submit(batch)
    await writer.wait()
    summary.loaded = writer.loaded
    summary.already_present = writer.already_present
    summary.rejected = rej.count


async def _has_rows(collection: Any) -> bool:
    return await collection.find_one({}, {"_id": 1}) is not None


# --------------------------------------------------------------------------- progress


class _Progress:
    def __init__(self, enabled: bool, label: str, total: int) -> None:
        self._progress = None
        if enabled:

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
    check_nul = src.check_nul
    collection = db[COLLECTIONS["status"]]
    writer = _Writer(collection, await _has_rows(collection))
    # the one validation path (also POST /polls); polls before the retention horizon are
    # rejected with their reason (issue 18)
    make_poll = PollValidator(_VALID_ID_CACHE_MAX, horizon=await ingest_horizon(db))
    batch: list[dict] = []
    reader = src.reader
    # The hot loop of the import: _rows is inlined here (no generator per row), to keep the
    # per-row cost of a multi-million-row file down; its row rule (row_problem) is only
    # called for the rare row that needs it (wrong field count, blank, or a file with NULs).
    while True:
        try:
            for row in reader:
                if len(row) != ncols or check_nul:
                    if not row:
                        continue
                    reason = row_problem(row, ncols, check_nul)
                    if reason is not None:
                        rej.write(reader.line_num, reason, row)
                        continue
                try:
                    batch.append(make_poll(row[i_sid], row[i_st], row[i_ts]))
                except RowError as exc:
                    rej.write(reader.line_num, str(exc), row)
                    continue
                if len(batch) >= BATCH_SIZE:
                    await writer.submit(batch)
                    batch = []
                    prog.update(src.raw.tell())
            break
        except csv.Error as exc:
            rej.write(reader.line_num, f"CSV syntax error: {exc}", [])
    await _finish(writer, batch, summary, rej)


async def _replace_from(
    db: Any, kind: Kind, docs: AsyncIterator[dict], src: _Source, rej: _Rejects,
    summary: ImportSummary, prog: _Progress,
) -> None:
    """Write ``docs`` (the file's accepted rows) to a staging collection in batches, then
    replace the rows of the stores they mention with them (``replace_rows``: one transaction
    per store group) — the hours and timezones imports, which replace rather than add."""
    collection = db[COLLECTIONS[kind]]
    staging = staging_collection(db, collection.name)  # replaced atomically at the end
    writer = _Writer(staging, False)
    batch: list[dict] = []
    async for doc in docs:
        batch.append(doc)
        if len(batch) >= BATCH_SIZE:
            await writer.submit(batch)
            batch = []
            prog.update(src.raw.tell())
    await _finish(writer, batch, summary, rej)
    await replace_rows(db, collection, staging, summary)


async def _import_hours(
    db: Any, src: _Source, rej: _Rejects, summary: ImportSummary, prog: _Progress
) -> None:
    c = src.columns
    i_sid, i_day = c["store_id"], c["dayofweek"]
    i_start, i_end = c["start_time_local"], c["end_time_local"]
    stores: set[str] = set()

    async def docs() -> AsyncIterator[dict]:
        for line, row in _rows(src, rej):
            try:
                doc = hours_document(row[i_sid], row[i_day], row[i_start], row[i_end])
            except RowError as exc:
                rej.write(line, str(exc), row)
                continue
            stores.add(doc["store_id"])
            yield doc

    await _replace_from(db, "hours", docs(), src, rej, summary, prog)
    summary.stores = stores


async def _import_timezones(
    db: Any, src: _Source, rej: _Rejects, summary: ImportSummary, prog: _Progress
) -> None:
    c = src.columns
    i_sid, i_tz = c["store_id"], c["timezone_str"]
    zones = ZoneChecker(db)
    seen: dict[str, tuple[str, int]] = {}  # store -> (zone, line)

    async def docs() -> AsyncIterator[dict]:
        for line, row in _rows(src, rej):
            try:
                sid = parse_store_id(row[i_sid])
                zone = row[i_tz].strip()
                reason = await zones.check(zone)
                if reason is not None:
                    raise RowError(reason)
                previous = seen.get(sid)
                if previous is not None and previous[0] != zone:
                    raise RowError(f"store {sid} already has timezone_str {previous[0]!r} "
                                   f"on line {previous[1]}")
            except RowError as exc:
                rej.write(line, str(exc), row)
                continue
            if previous is None:
                seen[sid] = (zone, line)
                summary.fixed_offset_zones += is_fixed_offset(zone)
            yield {"_id": f"{sid}|{zone}", "store_id": sid, "timezone_str": zone}

    await _replace_from(db, "timezones", docs(), src, rej, summary, prog)
    summary.stores = set(seen)


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
        kind=kind, path=path, collection=COLLECTIONS[kind], notes=list(src.notes),
        delimiter=src.delimiter, encoding=src.encoding,
    )
    prog = _Progress(progress, f"{kind} {path.name}", src.size)
    try:
        await _IMPORTERS[kind](db, src, rej, summary, prog)
        if summary.stores:  # only the stores whose rows changed (+ those with no schedule)
            await schedules_after_import(db, summary.changed_stores, summary.stores)
        prog.update(src.size)
    finally:
        prog.close()
        src.close()
        rej.close()
    summary.rejects_path = rej.path
    summary.notes.extend(rej.notes)
    summary.seconds = time.perf_counter() - started
    summary.rows_per_second = summary.rows / summary.seconds if summary.seconds > 0 else 0.0
    metrics.record_ingest(summary.collection, "import", stored=summary.loaded,
                          already_present=summary.already_present, rejected=summary.rejected)
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
