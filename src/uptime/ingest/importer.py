"""CSV import of polls, business hours and timezones into the three input collections.

``uptime import [--status FILE] [--hours FILE] [--timezones FILE] [--rejects PATH]`` and the
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

* Polls are deduplicated by a deterministic ``_id`` ``"<store_id>|<UTC ISO ms>|<a|i>"``
  (for example ``"8419537941919820732|2023-01-22T12:09:39.388|a"``): an exact duplicate (same
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

import asyncio
import codecs
import csv
import io
import os
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal


from uptime.ingest.store import StoreError, insert_unique
from uptime.ingest.validate import (  # noqa: F401 - parse_* re-exported for callers and tests
    PollValidator,
    RowError,
    find_nul,
    hours_document,
    is_fixed_offset,
    parse_clock,
    parse_day,
    parse_status,
    parse_store_id,
    parse_timestamp,
)
from uptime.ingest.replace import replace_rows, staging_collection
from uptime.platform import metrics
from uptime.ingest.schedules import refresh_schedules
from uptime.platform.probes import zone_known

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
_VALID_ID_CACHE_MAX = 1_000_000

_REJECTS_HEADER_START = "line,reason"


class ImportFileError(Exception):
    """A whole file cannot be imported (missing file, missing column, not CSV, unwritable
    rejects file...). The message names the file and what is wrong; the CLI exits 2."""


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
        stores: hours/timezones only: the stores the file mentions (their schedules in
            ``store_schedules`` are recomputed after the import; issue 8, item 4).
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
        # CRLF line ends (RFC 4180): the writer then quotes any field holding a CR or an LF.
        self._writer = csv.writer(self._file, lineterminator="\r\n")
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
    encoding: str = "utf-8"
    delimiter: str = ","
    check_nul: bool = False  # the file holds a NUL byte somewhere: check every row

    def close(self) -> None:
        self.text.close()


#: Byte-order marks, longest first (a UTF-32 LE mark starts like a UTF-16 LE one).
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
#: Delimiters detected from the header, in order of preference (issue 9, "delimiters").
DELIMITERS = (",", ";", "\t")
_SEP_LINE = re.compile(r"sep=(.)\r?\n?", re.IGNORECASE | re.DOTALL)
_SCAN_CHUNK = 1 << 20


def _show_delimiter(d: str) -> str:
    return "tab" if d == "\t" else repr(d)


def _scan(path: Path, raw: Any, encoding: str) -> bool:
    """Read the whole file once; return True if it holds a NUL character (the per-row NUL
    check is then switched on; issue 9 item 3). A UTF-16/32 file is decoded completely here,
    so an undecodable one is refused before any row is written.

    Raises:
        ImportFileError: a UTF-16/32 file that does not decode.
    """
    found = False
    try:
        if encoding == "utf-8-sig":
            while chunk := raw.read(_SCAN_CHUNK):
                if b"\x00" in chunk:
                    found = True
                    break
        else:
            decoder = codecs.getincrementaldecoder(encoding)("strict")
            while chunk := raw.read(_SCAN_CHUNK):
                found = "\x00" in decoder.decode(chunk) or found
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{path}: the file starts with a {encoding.upper()} byte-order mark but is not valid "
            f"{encoding.upper()} ({exc.reason}); save it as UTF-8"
        ) from None
    finally:
        raw.seek(0)
    return found


def _pick_delimiter(line: str, required: tuple[str, ...]) -> tuple[str, list[str]]:
    """Return the first of :data:`DELIMITERS` that splits the header ``line`` into all the
    ``required`` columns, else the one finding the most of them (``,`` on a tie), with the
    header's fields."""
    best: tuple[int, str, list[str]] | None = None
    for d in DELIMITERS:
        fields = next(csv.reader([line], delimiter=d), [])
        found = sum(_column_name(f) in required for f in fields)
        if found == len(required):
            return d, fields
        if best is None or found > best[0]:
            best = (found, d, fields)
    assert best is not None
    return best[1], best[2]


def _column_name(header_field: str) -> str:
    name = header_field.strip().lower()
    return _ALIASES.get(name, name)


def _open_source(kind: str, path: Path) -> _Source:
    """Open ``path``, detect its encoding and delimiter, read and check its header.

    Encoding: UTF-8 (optional BOM); UTF-16 or UTF-32 with a byte-order mark are decoded.
    Delimiter: a first line ``sep=X`` (Excel) sets it; else it is detected from the header
    among ``,`` ``;`` and tab (the one that yields the required columns).

    Raises:
        ImportFileError: unreadable, empty, undecodable, NUL bytes in the header, or a
            required column missing/ambiguous (the message names the delimiter).
    """
    if kind not in REQUIRED_COLUMNS:
        raise ImportFileError(f"unknown kind {kind!r}; expected status, hours or timezones")
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open: {exc.strerror or exc}") from None
    if not raw.seekable():  # a pipe: the encoding, NUL and delimiter checks read ahead
        raw.close()
        raise ImportFileError(f"{path}: not a regular file; save the data to a file first")
    head = raw.read(4)
    raw.seek(0)
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), "utf-8-sig")
    errors = "surrogateescape" if encoding == "utf-8-sig" else "strict"
    try:
        check_nul = _scan(path, raw, encoding)
    except BaseException:
        raw.close()
        raise
    text = io.TextIOWrapper(raw, encoding=encoding, errors=errors, newline="")
    required = REQUIRED_COLUMNS[kind]

    def fail(message: str) -> ImportFileError:
        text.close()
        return ImportFileError(f"{path}: {message}")

    first = text.readline()
    header_line, sep, header_no = first, None, 1
    sep_match = _SEP_LINE.fullmatch(first)
    if sep_match is not None and sep_match[1] not in "\r\n\"":
        sep, header_no = sep_match[1], 2
        header_line = text.readline()
    if not header_line.strip("\r\n"):
        raise fail("empty file; expected a header line")
    if "\x00" in header_line:
        if encoding == "utf-8-sig":
            raise fail(
                f"line {header_no}: the header contains NUL bytes: the file looks like UTF-16 "
                "or UTF-32 saved without a byte-order mark; save it as UTF-8"
            )
        raise fail(f"line {header_no}: the header contains a NUL byte (U+0000)")
    if sep is not None:
        delimiter = sep
    else:
        delimiter, _ = _pick_delimiter(header_line.rstrip("\r\n"), required)
    text.seek(0)
    reader = csv.reader(text, delimiter=delimiter)
    try:
        if sep is not None:
            next(reader)
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise fail(f"line {header_no}: not a CSV header: {exc}") from None
    names = [_column_name(h) for h in header]
    columns: dict[str, int] = {}
    notes: list[str] = []
    for i, name in enumerate(names):
        if name in columns:
            raise fail(f"line {header_no}: column {header[i].strip()!r} appears twice")
        columns[name] = i
    missing = [c for c in required if c not in columns]
    if missing:
        shown = ["day (or dayOfWeek)" if c == "dayofweek" else c for c in missing]
        how = (
            f"delimiter {_show_delimiter(delimiter)} from the sep= line"
            if sep is not None
            else f"no delimiter among {', '.join(map(_show_delimiter, DELIMITERS))} yields "
            f"them; read with {_show_delimiter(delimiter)}"
        )
        raise fail(
            f"line {header_no}: missing required column(s) {', '.join(shown)} for a {kind} "
            f"file ({how}); header is {header_line.rstrip(chr(13) + chr(10))!r}; expected "
            f"{','.join(required)} in any order"
        )
    extra = [header[i] for i, n in enumerate(names) if n not in required]
    if extra:
        notes.append(f"ignored column(s): {', '.join(extra)}")
    if delimiter != ",":
        origin = "the sep= line" if sep is not None else "detected from the header"
        notes.append(f"delimiter {_show_delimiter(delimiter)} ({origin})")
    if encoding != "utf-8-sig":
        notes.append(f"decoded as {encoding.upper()} (byte-order mark)")
    size = os.fstat(raw.fileno()).st_size
    return _Source(
        raw, text, reader, header, columns, size, notes,
        encoding="utf-8" if encoding == "utf-8-sig" else encoding,
        delimiter=delimiter,
        check_nul=check_nul,
    )


def _rows(source: _Source, rejects: _Rejects) -> Iterable[tuple[int, list[str]]]:
    """Yield ``(line, fields)`` of the data rows; blank lines skipped. A row with a CSV syntax
    error, a field count other than the header's or a NUL byte is written to ``rejects`` and
    yielded as ``(line, None)`` (the reader resumes on the next line)."""
    reader = source.reader
    ncols = len(source.header)
    check_nul = source.check_nul
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
        reason = find_nul(row) if check_nul else None
        if reason is None and len(row) != ncols:
            reason = f"{len(row)} fields, the header has {ncols}"
        if reason is not None:
            rejects.write(reader.line_num, reason, row)
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
        try:
            inserted, present = await insert_unique(
                self.collection, docs, precheck=self.precheck
            )
        except StoreError as exc:
            raise ImportFileError(f"MongoDB refused rows of {self.collection.name}: {exc}") from exc
        self.loaded += inserted
        self.already_present += present
        # Look up the next batch first while more than 1 % of this one was already there.
        self.precheck = present * 100 > len(docs)

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
    check_nul = src.check_nul
    collection = db[COLLECTIONS["status"]]
    writer = _Writer(collection, await _has_rows(collection))
    make_poll = PollValidator(_VALID_ID_CACHE_MAX)  # the one validation path (also POST /polls)
    batch: list[dict] = []
    rejected = 0
    reader = src.reader
    # The hot loop of the import: the row checks of _rows are inlined here (no generator per
    # row), to keep the per-row cost of a multi-million-row file down.
    while True:
        try:
            for row in reader:
                if len(row) != ncols or check_nul:
                    if not row:
                        continue
                    reason = find_nul(row) if check_nul else None
                    if reason is None and len(row) != ncols:
                        reason = f"{len(row)} fields, the header has {ncols}"
                    if reason is not None:
                        rej.write(reader.line_num, reason, row)
                        rejected += 1
                        continue
                try:
                    batch.append(make_poll(row[i_sid], row[i_st], row[i_ts]))
                except RowError as exc:
                    rej.write(reader.line_num, str(exc), row)
                    rejected += 1
                    continue
                if len(batch) >= BATCH_SIZE:
                    await writer.submit(batch)
                    batch = []
                    prog.update(src.raw.tell())
            break
        except csv.Error as exc:
            rej.write(reader.line_num, f"CSV syntax error: {exc}", [])
            rejected += 1
    await _finish(writer, batch, summary, rejected)


async def _import_hours(
    db: Any, src: _Source, rej: _Rejects, summary: ImportSummary, prog: _Progress
) -> None:
    c = src.columns
    i_sid, i_day = c["store_id"], c["dayofweek"]
    i_start, i_end = c["start_time_local"], c["end_time_local"]
    collection = db[COLLECTIONS["hours"]]
    staging = staging_collection(db, collection.name)  # replaced atomically at the end
    writer = _Writer(staging, False)
    stores: set[str] = set()
    batch: list[dict] = []
    rejected = 0
    for line, row in _rows(src, rej):
        if row is None:  # already written to the rejects file by _rows
            rejected += 1
            continue
        try:
            doc = hours_document(row[i_sid], row[i_day], row[i_start], row[i_end])
        except RowError as exc:
            rej.write(line, str(exc), row)
            rejected += 1
            continue
        stores.add(doc["store_id"])
        batch.append(doc)
        if len(batch) >= BATCH_SIZE:
            await writer.submit(batch)
            batch = []
            prog.update(src.raw.tell())
    await _finish(writer, batch, summary, rejected)
    await replace_rows(db, collection, staging, summary)  # one transaction per store group
    summary.stores = stores


async def _import_timezones(
    db: Any, src: _Source, rej: _Rejects, summary: ImportSummary, prog: _Progress
) -> None:
    c = src.columns
    i_sid, i_tz = c["store_id"], c["timezone_str"]
    collection = db[COLLECTIONS["timezones"]]
    staging = staging_collection(db, collection.name)  # replaced atomically at the end
    writer = _Writer(staging, False)
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
            summary.fixed_offset_zones += is_fixed_offset(zone)
        batch.append({"_id": f"{sid}|{zone}", "store_id": sid, "timezone_str": zone})
        if len(batch) >= BATCH_SIZE:
            await writer.submit(batch)
            batch = []
            prog.update(src.raw.tell())
    await _finish(writer, batch, summary, rejected)
    await replace_rows(db, collection, staging, summary)  # one transaction per store group
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
        if summary.stores:
            await refresh_schedules(db, summary.stores)
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
