"""Reading one CSV file of the import: encodings and byte-order marks, the delimiter (detected
from the header or set by ``sep=X``), required columns by name, NUL bytes; yields the data rows
with their line numbers (``_open_source``, ``_rows``). Part of ``uptime.ingest.importer``."""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uptime.ingest.rejects import ImportFileError, _Rejects
from uptime.ingest.validate import find_nul

#: Required columns per kind (normalised: stripped, lower-case); ``day`` is an alias of
#: ``dayofweek``.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "status": ("store_id", "status", "timestamp_utc"),
    "hours": ("store_id", "dayofweek", "start_time_local", "end_time_local"),
    "timezones": ("store_id", "timezone_str"),
}
_ALIASES = {"day": "dayofweek"}


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


def row_problem(row: list[str], ncols: int, check_nul: bool) -> str | None:
    """Why a non-empty CSV data row is rejected before its fields are read, or ``None``: a NUL
    byte (only looked for when ``check_nul``: the file holds one somewhere), else a field
    count other than the header's ``ncols``. The one rule for both readers of a file: ``_rows``
    and the status import's inlined fast path (``uptime.ingest.importer``)."""
    reason = find_nul(row) if check_nul else None
    if reason is None and len(row) != ncols:
        reason = f"{len(row)} fields, the header has {ncols}"
    return reason


def _rows(source: _Source, rejects: _Rejects) -> Iterable[tuple[int, list[str]]]:
    """Yield ``(line, fields)`` of the data rows; blank lines skipped. A row with a CSV syntax
    error or a ``row_problem`` is written to ``rejects`` (which counts it) and not yielded
    (the reader resumes on the next line)."""
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
            continue
        if not row:
            continue
        reason = row_problem(row, ncols, check_nul)
        if reason is not None:
            rejects.write(reader.line_num, reason, row)
            continue
        yield reader.line_num, row
