"""Field validation and normalisation shared by every input path (CSV import, ``POST /polls``).

One code path decides what a valid poll, hours row or zone is, so ``uptime-monitor import`` and the
API store the same documents for the same values (issue 8 item 1, issue 9). Every parser
takes the text as written and returns the canonical stored value, or raises :class:`RowError`
whose message is the reason shown to the user (rejects file, API response).

Canonical stored forms:

* ``store_id``: a string, surrounding blanks trimmed, kept exact otherwise (issue 2 item 4);
  no control character (issue 9 item 8).
* ``timestamp_utc``: a naive UTC ``datetime``; BSON stores it at millisecond precision.
* ``status``: ``"active"`` or ``"inactive"``.
* ``dayOfWeek``: int 0..6, 0 = Monday.
* clock times: ``"HH:MM:SS"`` (00:00:00..23:59:59); an end time of 24:00 is stored as
  ``"23:59:59"``, which the report reads as midnight ending that date (report rule 3).
* a poll document: ``{_id: poll_key(store_id, instant, status) (16 bytes, uptime.platform.pollkey),
  store_id, timestamp_utc, status}``; the deterministic ``_id`` makes a repeated poll
  (re-import, retried request) a duplicate key. A poll before the retention horizon (issue 18)
  is rejected with its reason.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from typing import Any

from uptime.platform.constants import CONTROL_CHARS
from uptime.platform.pollkey import poll_key
from uptime.platform.retention import too_old_reason


class RowError(ValueError):
    """One row or item is invalid; the message is the reason given to the user."""


# --------------------------------------------------------------------------- store ids

_FLOAT_ID = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)[eE][+-]?\d+|[+-]?(?:\d+\.\d*|\.\d+)")

#: Characters refused in a store id (issue 9 item 8): the C0 controls (NUL, tab, LF, CR...) and
#: DEL -- the same set the report ignores in ids written by other systems, so the import and
#: the report agree on what a valid id is. (U+0085 and U+2028/U+2029, line ends for some
#: readers, are accepted; the CSV writer quotes them.)
ID_FORBIDDEN = CONTROL_CHARS

_CONTROL_NAMES = {
    "\x00": "NUL byte", "\t": "tab", "\n": "line feed", "\r": "carriage return", "\x7f": "DELETE"
}


#: Longest store id, in characters, on every input path (issue 15 item 4): CSV import,
#: ``POST /polls`` and the API's ``{store_id}`` paths refuse longer ids with
#: :func:`too_long_reason`.
MAX_STORE_ID_LENGTH = 200


def too_long_reason(store_id: str) -> str | None:
    """The one reason a too long store id is refused everywhere, or None if it fits."""
    if len(store_id) <= MAX_STORE_ID_LENGTH:
        return None
    return (f"store_id is {len(store_id)} characters long; at most {MAX_STORE_ID_LENGTH} "
            f"are allowed (starts {store_id[:40]!r})")


def describe_char(ch: str) -> str:
    """``'\\r'`` -> ``'carriage return (U+000D)'``: a human name and the code point."""
    name = _CONTROL_NAMES.get(ch) or unicodedata.name(ch, "control character")
    return f"{name} (U+{ord(ch):04X})"


def parse_store_id(text: str) -> str:
    """Return the store id, stripped of surrounding blanks, kept exact as a string.

    Control characters are refused before trimming (a leading tab is not a blank here).
    Ids that look like spreadsheet formulas (``=1+2``, ``@SUM(1)``) are accepted and stored
    as written: an id is data; the CSV writer keeps a spreadsheet from evaluating it.

    Raises:
        RowError: empty; written in float or scientific notation (``8.139926242460185E+018``,
            ``123.0``: a spreadsheet lost the id's digits); containing a control character
            (:data:`ID_FORBIDDEN`, issue 9 item 8); longer than :data:`MAX_STORE_ID_LENGTH`
            characters (issue 15); not valid UTF-8.
    """
    bad = ID_FORBIDDEN.search(text)  # before trimming: a leading tab or a trailing CR counts
    if bad is not None:
        raise RowError(
            f"store_id {text!r} contains a {describe_char(bad.group())} at character "
            f"{bad.start() + 1}; control characters are not allowed in ids"
        )
    sid = text.strip()
    if not sid:
        raise RowError("empty store_id")
    if _FLOAT_ID.fullmatch(sid):
        raise RowError(
            f"store_id {sid!r} is in float/scientific notation (digits lost, e.g. by a "
            "spreadsheet); ids must be kept exact"
        )
    too_long = too_long_reason(sid)
    if too_long is not None:
        raise RowError(too_long)
    if not sid.isascii():
        try:
            sid.encode("utf-8")
        except UnicodeEncodeError:
            raise RowError("store_id is not valid UTF-8") from None
    return sid


# --------------------------------------------------------------------------- polls

_UTC = timezone.utc
_fromisoformat = datetime.fromisoformat
_TS_HINT = "expected e.g. 2023-01-22 12:09:39.388884 UTC or 2023-01-22T12:09:39.388Z"


def parse_timestamp(text: str) -> datetime:
    """Parse a poll timestamp to a naive UTC ``datetime`` (stored at millisecond precision).

    Accepted: ``YYYY-MM-DD HH:MM:SS[.f{1,6}] UTC`` (the Loop files), ISO 8601 extended format
    with ``T`` or a space, with ``Z`` or a ``+HH:MM`` offset (converted to UTC), or without
    any zone (read as UTC: the field is ``timestamp_utc``). Milliseconds are kept (a BSON
    Date holds milliseconds); finer digits are truncated by BSON encoding.

    Raises:
        RowError: anything else (date only, basic format, out-of-range fields, junk).
    """
    t = text.strip()
    utc_suffix = t.endswith(" UTC")
    core = t[:-4] if utc_suffix else t
    if len(core) < 19 or core[10] not in " T" or core[4] != "-":
        raise RowError(f"unparseable timestamp {text!r} ({_TS_HINT})")
    try:
        dt = _fromisoformat(core)
    except ValueError:
        raise RowError(f"unparseable timestamp {text!r} ({_TS_HINT})") from None
    if dt.tzinfo is not None:
        if utc_suffix:
            raise RowError(f"unparseable timestamp {text!r} (both an offset and 'UTC')")
        try:
            dt = dt.astimezone(_UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 or 9999 shifted out of range by the offset
            raise RowError(f"timestamp {text!r} is out of range in UTC") from None
    return dt


def parse_status(text: str) -> str:
    """Return ``active`` or ``inactive`` (input trimmed, lower-cased). Raises RowError."""
    s = text.strip().lower()
    if s == "active" or s == "inactive":
        return s
    raise RowError(f"status {text!r} is not active/inactive")


class PollValidator:
    """Turns one poll's three text fields into its stored document (the one code path of the
    CSV importer and ``POST /polls``).

    Keeps the store ids already validated (up to ``cache_max``), so a file or request with
    many polls per store checks each id once.
    """

    def __init__(self, cache_max: int = 1_000_000, horizon: datetime | None = None) -> None:
        self._ids: dict[str, str] = {}  # id as written -> id as stored
        self._cache_max = cache_max
        #: polls before this instant (UTC) are rejected: the retention horizon
        #: (``uptime.platform.retention.ingest_horizon``; None = no limit)
        self.horizon = None if horizon is None else (
            horizon.astimezone(timezone.utc).replace(tzinfo=None))  # naive UTC, as parsed

    def __call__(self, store_id: str, status: str, timestamp: str) -> dict[str, Any]:
        """Return ``{_id, store_id, timestamp_utc, status}``; ``_id`` is the 16-byte
        ``uptime.platform.pollkey.poll_key`` of (store, instant truncated to ms, status)
        (issue 18 item 5; before: the string ``"<store_id>|<UTC ISO ms>|<a|i>"``).

        Raises:
            RowError: the first invalid field, store_id then status then timestamp; or a
                timestamp before ``self.horizon`` (issue 18: the retention horizon).
        """
        sid = self._ids.get(store_id)
        if sid is None:
            sid = parse_store_id(store_id)
            if len(self._ids) < self._cache_max:
                self._ids[store_id] = sid
        if status != "active" and status != "inactive":
            status = parse_status(status)
        ts = parse_timestamp(timestamp)
        if self.horizon is not None and ts < self.horizon:
            raise RowError(too_old_reason(ts, self.horizon))
        return {
            "_id": poll_key(sid, ts, status),
            "store_id": sid,
            "timestamp_utc": ts,
            "status": status,
        }

    def from_json(self, item: Any) -> dict[str, Any]:
        """Validate one decoded JSON item ``{"store_id", "timestamp_utc", "status"}`` (other
        keys ignored). The three fields must be JSON strings: a number as ``store_id`` may
        have lost digits (JSON readers use doubles), a number as timestamp would be a guess
        at its unit.

        Raises:
            RowError: not an object, a field missing or not a string, or a field invalid.
        """
        if not isinstance(item, dict):
            raise RowError(f"item is a JSON {_json_type(item)}, expected an object")
        try:
            sid, st, ts = item["store_id"], item["status"], item["timestamp_utc"]
        except KeyError:
            missing = [k for k in ("store_id", "timestamp_utc", "status") if k not in item]
            raise RowError(f"missing field(s): {', '.join(missing)}") from None
        for name, value in (("store_id", sid), ("status", st), ("timestamp_utc", ts)):
            if type(value) is not str:
                raise RowError(f"{name} is a JSON {_json_type(value)}, expected a string")
        return self(sid, st, ts)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- business hours

_DAY_NAMES = {
    name: i
    for i, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for name in names
}


def parse_day(text: str) -> int:
    """Return the day of week 0..6 (0 = Monday).

    Accepted: a digit 0..6; an English day name or abbreviation in any case (``Monday``,
    ``mon``, ``TUE``, ``Tues``, ``Thu``, ``Thur``, ``Thurs``...). Issue 9, "spreadsheet-saved
    hours".

    Raises:
        RowError: anything else (``7``, ``-1``, ``1.0``, ``Mo``, ``lundi``).
    """
    d = text.strip()
    if len(d) == 1 and "0" <= d <= "6":
        return ord(d) - 48
    day = _DAY_NAMES.get(d.lower())
    if day is not None:
        return day
    raise RowError(
        f"dayOfWeek {text!r} is not 0..6 (0 = Monday) nor an English day name (Monday, mon...)"
    )


_CLOCK = re.compile(
    r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:\s*([AaPp])\.?[Mm]\.?)?"
)
END_OF_DAY = "23:59:59"


def parse_clock(text: str, column: str, *, end: bool = False) -> str:
    """Return a local clock time in the canonical stored form ``HH:MM:SS``.

    Accepted (issue 9, "spreadsheet-saved hours"): ``H:MM`` and ``HH:MM`` (seconds 00),
    ``H:MM:SS`` and ``HH:MM:SS`` with an optional fraction of a second, which is truncated
    (``23:59:59.999`` -> ``23:59:59``), each optionally followed by ``AM``/``PM`` (any case,
    dots and a space allowed: ``11:30:00 AM``, ``12:30 pm``, ``9:00 a.m.``; hours 1-12 then,
    12 AM = 00, 12 PM = 12). With ``end=True``, ``24:00`` / ``24:00:00`` (ISO 8601's and
    PostgreSQL's midnight ending the date) is stored as ``23:59:59``, which the report reads
    as that same midnight (report rule 3).

    Raises:
        RowError: anything else (``24:00`` as a start, ``24:30``, ``12:60``, ``13:00 PM``,
            ``noon``), naming ``column`` and the value.
    """
    t = text.strip()
    if not t.isascii():  # int() and the regex would take other scripts' digits
        raise RowError(f"{column} {text!r} is not a clock time (HH:MM:SS, HH:MM, or with AM/PM)")
    if (
        len(t) == 8
        and t[2] == ":"
        and t[5] == ":"
        and t[:2].isdigit()
        and t[3:5].isdigit()
        and t[6:].isdigit()
    ):  # the canonical form: the common case, without the regex
        h, m, s, frac, half = int(t[:2]), int(t[3:5]), int(t[6:]), None, None
    else:
        match = _CLOCK.fullmatch(t)
        if match is None:
            raise RowError(
                f"{column} {text!r} is not a clock time (HH:MM:SS, HH:MM, or with AM/PM)"
            )
        h, m = int(match[1]), int(match[2])
        s = int(match[3]) if match[3] is not None else 0
        frac, half = match[4], match[5]
    if half is not None:
        if not 1 <= h <= 12:
            raise RowError(f"{column} {text!r}: a 12-hour clock time needs an hour 1..12")
        h = h % 12 + (12 if half in "Pp" else 0)
    elif h == 24 and m == 0 and s == 0 and not (frac or "").strip("0"):
        if not end:
            raise RowError(f"{column} {text!r}: 24:00 is only valid as an end time")
        return END_OF_DAY
    if h > 23 or m > 59 or s > 59:
        raise RowError(f"{column} {text!r} is out of range (00:00:00..23:59:59, or 24:00 as end)")
    return f"{h:02d}:{m:02d}:{s:02d}"


def hours_document(store_id: str, day: str, start: str, end: str) -> dict[str, Any]:
    """Return the stored ``store_hours`` document for one row of text fields:
    ``{_id: "<store_id>|<day>|<start>|<end>", store_id, dayOfWeek, start_time_local,
    end_time_local}`` (canonical forms, see the module docstring). Raises RowError."""
    sid = parse_store_id(store_id)
    d = parse_day(day)
    s = parse_clock(start, "start_time_local")
    e = parse_clock(end, "end_time_local", end=True)
    return {
        "_id": f"{sid}|{d}|{s}|{e}",
        "store_id": sid,
        "dayOfWeek": d,
        "start_time_local": s,
        "end_time_local": e,
    }


# --------------------------------------------------------------------------- time zones

_FIXED_OFFSET = re.compile(r"[+-]\d{2}(?::?\d{2})?")


def is_fixed_offset(zone: str) -> bool:
    """True for a zone written as a UTC offset (``+03``, ``-05:00``, ``+0530``): MongoDB
    accepts these as time zones without daylight saving time (issue 9, "UTC offsets as
    zones")."""
    return _FIXED_OFFSET.fullmatch(zone) is not None


def find_nul(fields: list[str]) -> str | None:
    """Return the reason for a row holding a NUL byte (issue 9 item 3), else ``None``:
    ``"NUL byte (U+0000) in field 1"`` (fields counted from 1)."""
    for i, value in enumerate(fields):
        if "\x00" in value:
            return f"NUL byte (U+0000) in field {i + 1}; NUL bytes are not allowed in CSV files"
    return None
