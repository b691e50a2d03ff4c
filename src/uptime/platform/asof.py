"""Parse a report instant ``as_of`` given as text: the one parser for the API and the CLI.

Spec: issue 9, items 4 ("an unencoded ``+`` in as_of") and 9 ("digits as as_of").

Accepted (ISO 8601 only; anything else raises :class:`AsOfError` naming the expected form):

* ``YYYY-MM-DD`` — midnight UTC of that date;
* ``YYYY-MM-DDThh:mm[:ss[.fraction]]`` (``T`` or one space between date and time), optionally
  followed by ``Z`` or an offset ``±hh:mm`` / ``±hhmm`` / ``±hh``; no offset = UTC.

Numbers (``12``, ``"1700000000"``, ``-1``) are refused: pydantic and many tools would read
them as Unix seconds and report on 1970. The result is an aware UTC ``datetime`` truncated to
milliseconds (BSON Date precision).

One repair, only where text came from a URL query (``repair_plus=True``): a ``+`` sent
unencoded in a query string arrives as a space, so a date-time followed by one space and an
offset ``hh:mm`` or ``hhmm`` (``2024-03-12T20:30:00 05:30``) is read as ``+05:30``. Nothing
else can produce that text (a ``-`` offset is never decoded to a space), so the instant is
unambiguous.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

#: Shown in every refusal.
EXPECTED_FORM = (
    "an ISO 8601 date-time such as 2024-03-12T15:00:00Z or 2024-03-12T20:30:00+05:30 "
    "(no offset = UTC; in a URL write + as %2B)"
)

_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}"  # date
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?"  # time
    r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"  # zone, only after a time
)
_SPACE_OFFSET = re.compile(
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?)"  # a date-time
    r" (\d{2}:?\d{2})"  # one space, then hh:mm or hhmm: an offset whose + became a space
)


class AsOfError(ValueError):
    """``as_of`` text is not an accepted ISO 8601 date-time; the message says what is expected."""


def parse_as_of(text: str, *, repair_plus: bool = False) -> datetime:
    """Return ``text`` as an aware UTC ``datetime`` (ms precision).

    Args:
        text: the value as received (surrounding blanks are ignored).
        repair_plus: read ``<date-time> hh:mm`` as ``<date-time>+hh:mm`` (URL queries only).

    Raises:
        AsOfError: not one of the accepted forms, not a real date/time (``2024-02-30``), or
            outside the years 1..9999 once converted to UTC.
    """
    if not isinstance(text, str):
        raise AsOfError(f"as_of must be a string: {EXPECTED_FORM}")
    value = text.strip()
    if repair_plus:
        spaced = _SPACE_OFFSET.fullmatch(value)
        if spaced:
            value = f"{spaced.group(1)}+{spaced.group(2)}"
    if not _ISO.fullmatch(value):
        hint = ""
        if _SPACE_OFFSET.fullmatch(value):
            hint = " (a space before the offset: was a + sent unencoded? write it as %2B)"
        raise AsOfError(f"{_cut(text)} is not {EXPECTED_FORM}{hint}")
    try:
        parsed = datetime.fromisoformat(value.replace(",", ".").replace("z", "Z"))
    except ValueError as exc:
        raise AsOfError(f"{_cut(text)} is not a valid date-time ({exc})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:
        raise AsOfError(f"{_cut(text)} is out of range (years 1..9999 in UTC)") from None
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


#: The earliest ``as_of`` of the hour/day/week report: its week ``[as_of − 7 d, as_of)`` must
#: lie in year 1 or later (the report's rules 3–6 read the whole week).
EARLIEST_REPORT_AS_OF = datetime(1, 1, 8, tzinfo=UTC)


def report_as_of_problem(as_of: datetime | None) -> str | None:
    """Why ``as_of`` (aware UTC, or ``None`` = the latest poll) cannot be the hour/day/week
    report's ``as_of``, or ``None`` when it can. Period reports have no such bound."""
    if as_of is not None and as_of < EARLIEST_REPORT_AS_OF:
        return (f"as_of {as_of.isoformat()} is too early: the report's week [as_of - 7 days, "
                f"as_of) must start in year 1 or later, so as_of must be at or after "
                f"{EARLIEST_REPORT_AS_OF.isoformat()}")
    return None


def _cut(text: str, limit: int = 60) -> str:
    """``repr`` of a rejected input, cut so a huge value is not echoed in full."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[:limit] + "…'"
