"""Period reports (issue 18, items 1-3): each store's business-hours uptime over a calendar
period in its own local time, or over a UTC range, computed by ``pipelines/period_uptime.v1.json``
(sidecar ``period_uptime.v1.md``).

Periods (``parse_period``):

* ``YYYY-MM`` (month), ``YYYY-Qn`` (quarter), ``YYYY`` (year), ``YYYY-Www`` (ISO week,
  Monday to Sunday): **local** periods. A store's period starts at local midnight of its
  first day and ends at local midnight after its last day, in the store's zone, resolved by
  MongoDB's ``$dateFromParts`` (README rules 4-5: a skipped local time counts as if the clock
  had not jumped, an unknown or missing zone is America/Chicago).
* ``from``/``to`` (``period_from_range``): two UTC instants, half open ``[from, to)``, the
  same for every store.

Rules (README 1-6, the report's): polls after ``as_of`` are ignored, the last status holds up
to ``as_of``, and the part of a period after ``as_of`` counts as neither uptime nor downtime.

Rows (``iter_period_rows``): one per store with a valid poll at or before ``as_of``, sorted by
``store_id``: ``store_id`` (str), ``period_start``/``period_end`` (aware UTC datetimes, the
store's period bounds), ``uptime_hours``/``downtime_hours`` (hours, rounded to 2 decimals),
``uptime_percent`` (percent of the business time covered, 2 decimals; ``None`` when there was
no business time), ``timezone_fallback`` (bool).

Where the runs come from (``timeline_mode``): the status timeline ``status_runs`` when it is
current within the report's budget (``uptime.report.inputs_v2.timeline_ready``); otherwise (the follower lags,
is rebuilding, does not run, or the server is standalone) the same runs are derived on the fly
from ``store_status`` by the stages of ``status_runs.v1.json`` (``uptime.timeline.runs.
full_rebuild_pipeline``, spliced in front of the period stages at load time, so the run rule
keeps one home). A period report never waits for, nor fails on, the timeline.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bson import ObjectId

from uptime.ingest.schedules import ensure_schedules
from uptime.platform import pipelines
from uptime.platform.retention import stored_horizon
from uptime.report import csvout
from uptime.report.inputs_v2 import count_report_stores_v2, timeline_ready
from uptime.report.pipeline import EARLIEST_POLL, count_report_stores, known_timezones, to_utc
from uptime.timeline.runs import POLL_INDEX, full_rebuild_pipeline, load_runs_pipeline

PIPELINE_NAME = "period_uptime.v1"
PIPELINE_TAG = "period_uptime@v1"
#: the CSV's columns (issue 18 item 2), in order
PERIOD_COLUMNS: tuple[str, ...] = (
    "store_id",
    "period_start",
    "period_end",
    "uptime_hours",
    "downtime_hours",
    "uptime_percent",
)
#: period kinds: local calendar periods, and the UTC range
KINDS = ("month", "quarter", "year", "week", "range")
#: how far any store's local period can lie from the naive UTC one (zone offsets are within
#: ±14 h; a margin of 2 days keeps the index reads a superset for any offset MongoDB takes)
ZONE_MARGIN = timedelta(days=2)
#: runs source modes
TIMELINE, ON_THE_FLY = "timeline", "on_the_fly"

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q(\d)$")
_YEAR = re.compile(r"^(\d{4})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

AsyncDb = Any


class PeriodError(ValueError):
    """A period the report cannot take; the message names the value and what is wrong."""


@dataclass(frozen=True)
class Period:
    """A report period.

    ``kind``: one of ``KINDS``; ``label``: ``"2024-03"``, ``"2024-Q1"``, ``"2024"``,
    ``"2024-W10"`` or ``"<from>/<to>"`` (ISO UTC). Local kinds have ``first_day`` and
    ``end_day`` (local calendar dates: the first day and the day after the last one); the
    range has ``start``/``end`` (aware UTC, half open).
    """

    kind: str
    label: str
    first_day: date | None = None
    end_day: date | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def local(self) -> bool:
        """True for the calendar periods resolved in each store's zone."""
        return self.first_day is not None

    def read_bounds(self) -> tuple[datetime, datetime]:
        """UTC bounds that contain every store's period (the pipeline's index reads): the
        range itself, or the naive local bounds widened by ``ZONE_MARGIN``."""
        if not self.local:
            assert self.start is not None and self.end is not None
            return self.start, self.end
        lo = datetime.combine(self.first_day, datetime.min.time(), UTC)
        hi = datetime.combine(self.end_day, datetime.min.time(), UTC)
        lo = lo - ZONE_MARGIN if lo - EARLIEST_POLL > ZONE_MARGIN else EARLIEST_POLL
        hi = hi + ZONE_MARGIN if _LATEST - hi > ZONE_MARGIN else _LATEST
        return lo, hi

    def document(self) -> dict[str, Any]:
        """What a stored report records about its period: ``{kind, label, from, to}``
        (``from``/``to`` aware UTC for a range, else ``None``)."""
        return {"kind": self.kind, "label": self.label, "from": self.start, "to": self.end}


def _check_year(year: int, text: str) -> None:
    if not 1 <= year <= 9998:
        raise PeriodError(f"period {text!r}: the year must be 0001..9998")


def parse_period(text: str) -> Period:
    """Parse ``YYYY-MM``, ``YYYY-Qn``, ``YYYY`` or ``YYYY-Www`` (ISO week) into a local
    :class:`Period` (first day, day after the last day).

    Raises:
        PeriodError: any other shape, month not 01..12, quarter not 1..4, an ISO week the
            year does not have (``2021-W53``), a year outside 0001..9998.
    """
    text = (text or "").strip()
    if m := _MONTH.match(text):
        year, month = int(m[1]), int(m[2])
        _check_year(year, text)
        if not 1 <= month <= 12:
            raise PeriodError(f"period {text!r}: the month must be 01..12")
        end = date(year + (month == 12), month % 12 + 1, 1)
        return Period("month", text, date(year, month, 1), end)
    if m := _QUARTER.match(text):
        year, q = int(m[1]), int(m[2])
        _check_year(year, text)
        if not 1 <= q <= 4:
            raise PeriodError(f"period {text!r}: the quarter must be Q1..Q4")
        first = date(year, 3 * q - 2, 1)
        end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
        return Period("quarter", text, first, end)
    if m := _YEAR.match(text):
        year = int(m[1])
        _check_year(year, text)
        return Period("year", text, date(year, 1, 1), date(year + 1, 1, 1))
    if m := _WEEK.match(text):
        year, week = int(m[1]), int(m[2])
        _check_year(year, text)
        try:
            first = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise PeriodError(
                f"period {text!r}: ISO year {year} has no week {week:02d}"
            ) from None
        return Period("week", text, first, first + timedelta(days=7))
    raise PeriodError(
        f"period {text!r}: expected YYYY-MM (month), YYYY-Qn (quarter), YYYY (year) or "
        "YYYY-Www (ISO week)"
    )


def period_from_range(start: datetime, end: datetime) -> Period:
    """The UTC range ``[start, end)`` (naive = UTC; truncated to ms) as a :class:`Period`.

    Raises:
        PeriodError: ``start >= end``.
    """
    start, end = to_utc(start), to_utc(end)
    if start >= end:
        raise PeriodError(
            f"from ({iso_ms(start)}) must be before to ({iso_ms(end)})"
        )
    return Period("range", f"{iso_ms(start)}/{iso_ms(end)}", start=start, end=end)


def period_of_document(doc: Mapping[str, Any]) -> Period:
    """Inverse of :meth:`Period.document` (a stored report's ``period``).

    Raises:
        PeriodError: the document does not describe a period.
    """
    if doc.get("kind") == "range":
        return period_from_range(doc["from"], doc["to"])
    return parse_period(str(doc.get("label", "")))


def iso_ms(moment: datetime) -> str:
    """Aware/naive-UTC datetime -> ``2024-03-01T05:00:00.000Z`` (ISO 8601, ms, ``Z``)."""
    moment = to_utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parts(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def period_let(
    period: Period,
    as_of: datetime,
    timezones: Sequence[str],
    store_range: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    """The pipeline's ``let``: ``as_of`` (Date), ``timezones`` (accepted zone names),
    ``store_from``/``store_to`` (str or None, half open), ``local_start``/``local_end``
    (``{year, month, day}`` local dates, or None for a UTC range), ``from``/``to`` (Dates:
    the range, or the read bounds containing every zone's local period)."""
    lo, hi = period.read_bounds()
    return {
        "as_of": to_utc(as_of),
        "timezones": list(timezones),
        "store_from": store_range[0],
        "store_to": store_range[1],
        "local_start": _parts(period.first_day) if period.local else None,
        "local_end": _parts(period.end_day) if period.local else None,
        "from": lo,
        "to": hi,
    }


def load_period_pipeline() -> list[dict]:
    """``pipelines/period_uptime.v1.json`` as stage documents (reads ``status_runs``).

    Raises:
        FileNotFoundError: not installed. ValueError: not a JSON array of stages.
    """
    return pipelines.load(PIPELINE_NAME)


def on_the_fly_pipeline(narrow: bool = False) -> list[dict]:
    """The period pipeline run on ``store_status``: the run derivation of
    ``status_runs.v1.json`` (full mode, covered scan: ``full_rebuild_pipeline`` without its
    ``$merge``), then the period file's three reads (stages 1-3) as one ``$match`` on the
    derived runs (their ``$or``; read 3 sets ``after`` as in the file), then the file's
    stages 4 on. Same rows as on a current timeline; costs a scan of the poll index.

    ``narrow`` (a store range was given, e.g. one store for the period page's monthly chart):
    the run derivation is ``status_runs.v1.json`` itself without its ``$merge`` (its stage 1
    keeps the ``$expr`` store range: an index range on the poll index, so only those stores'
    polls are read; not covered, which matters only for a scan of every poll)."""
    if narrow:
        runs = [s for s in load_runs_pipeline() if "$merge" not in s]
    else:
        runs = [s for s in full_rebuild_pipeline() if "$merge" not in s]
    period = load_period_pipeline()
    read1 = period[0]["$match"]["$expr"]
    read2 = period[1]["$unionWith"]["pipeline"][0]["$match"]["$expr"]
    read3 = period[2]["$unionWith"]["pipeline"][0]["$match"]["$expr"]
    return [
        *runs,
        {"$match": {"$expr": {"$or": [read1, read2, read3]}}},
        {"$set": {"after": read3}},
        *period[3:],
    ]


async def timeline_mode(db: AsyncDb) -> tuple[str, str]:
    """``(TIMELINE, reason)`` when the status timeline is current within the report's budget
    (``uptime.report.inputs_v2.timeline_ready``, the one decision every reader of the timeline
    takes: at most 0.2-2 s, a follower resumed from its token when none runs), else
    ``(ON_THE_FLY, reason)`` (lagging or rebuilding follower, none running, standalone server).

    Later: with a "which stores are pending" API, ``ON_THE_FLY`` can narrow to those stores
    (see the sidecar, "When the timeline lags")."""
    current, reason = await timeline_ready(db)
    return (TIMELINE if current else ON_THE_FLY), reason


async def prepare(db: AsyncDb, period: Period | None = None) -> tuple[str, str]:
    """Make the schedules ready (``ensure_schedules``) and choose the runs source; return
    ``(mode, reason)`` (mode ``TIMELINE`` / ``ON_THE_FLY``).

    Retention (issue 18 item 4): when ``period``'s read bounds start before the stored
    retention horizon, runs derived from the polls cannot answer (the polls before it are
    gone; the compaction rebuilt the timeline first, so its runs are the record there): the
    timeline is read even when it is not current — exact before the horizon, as of its last
    applied write after it — and the reason says so, as ``pipeline.choose_version`` does for
    the normal report."""
    await ensure_schedules(db)
    mode, why = await timeline_mode(db)
    if mode == ON_THE_FLY and period is not None:
        horizon = await stored_horizon(db)
        if horizon is not None and period.read_bounds()[0] < horizon:
            return TIMELINE, (f"the period starts before the retention horizon "
                              f"{horizon.isoformat()}: its polls are gone, the timeline's runs "
                              f"are the record there; timeline not current: {why}")
    return mode, why


async def count_stores(db: AsyncDb, as_of: datetime, mode: str) -> int:
    """Rows the period report for ``as_of`` will have (stores with a valid poll at or before
    it), counted from the timeline (``TIMELINE``) or the polls (``ON_THE_FLY``)."""
    if mode == TIMELINE:
        return await count_report_stores_v2(db, as_of)
    return await count_report_stores(db, as_of)


async def iter_period_rows(
    db: AsyncDb,
    period: Period,
    *,
    as_of: datetime,
    mode: str | None = None,
    timezones: Sequence[str] | None = None,
    store_range: tuple[str | None, str | None] = (None, None),
    max_time_ms: int | None = None,
) -> AsyncIterator[dict]:
    """Yield the period report's rows for ``as_of`` (see the module doc for their shape).

    ``mode`` ``None`` = ``prepare(db)`` first. ``timezones`` skips the zone screening when
    the caller ran ``known_timezones``. ``store_range`` (half open; ``(s, s + "\\x00")`` = one
    store) limits the reads to those stores: on the timeline through the file's reads, from
    the polls through the narrow run derivation (``on_the_fly_pipeline(narrow=True)``).

    Raises:
        pymongo.errors.PyMongoError: the server failed the aggregation.
    """
    if mode is None:
        mode, _ = await prepare(db)
    if timezones is None:
        timezones = await known_timezones(db)
    let = period_let(period, as_of, timezones, store_range)
    extra: dict[str, Any] = {}
    if max_time_ms:
        extra["maxTimeMS"] = max_time_ms
    if mode == TIMELINE:
        cursor = await db["status_runs"].aggregate(
            load_period_pipeline(), let=let, comment=PIPELINE_TAG, allowDiskUse=True, **extra
        )
    else:
        let.update({"windows": None, "since": None, "batch": ObjectId()})
        # the poll index makes the run derivation a covered scan in store/time order; a
        # database without it (migrations not applied) still gets its answer, by a sort
        names = {ix["name"] async for ix in await db["store_status"].list_indexes()}
        if POLL_INDEX in names:
            extra["hint"] = POLL_INDEX
        narrow = store_range != (None, None)
        cursor = await db["store_status"].aggregate(
            on_the_fly_pipeline(narrow), let=let, comment=f"{PIPELINE_TAG}:{ON_THE_FLY}",
            allowDiskUse=True, **extra,
        )
    async with cursor:
        async for doc in cursor:
            yield {
                "store_id": doc["store_id"],
                "period_start": to_utc(doc["period_start"]),
                "period_end": to_utc(doc["period_end"]),
                "uptime_hours": doc["uptime_hours"],
                "downtime_hours": doc["downtime_hours"],
                "uptime_percent": doc.get("uptime_percent"),
                "timezone_fallback": bool(doc.get("timezone_fallback", False)),
            }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.2f}"
    return str(value)


def csv_line_values(row: Mapping[str, Any]) -> list[str]:
    """The cells of one period row in ``PERIOD_COLUMNS`` order: ``store_id`` protected from
    spreadsheet formulas (``csvout.protect``), instants ``iso_ms``, numbers 2 decimals,
    ``None`` empty."""
    return [csvout.protect(str(row["store_id"]))] + [_cell(row[c]) for c in PERIOD_COLUMNS[1:]]


async def write_period_csv(db: AsyncDb, period: Period, as_of: datetime, out: Any) -> int:
    """Write the period CSV (header + one line per store) to the text file ``out``; return
    the rows written. For tests and tools; the service writes through ``ReportService``."""
    out.write(csvout.line(PERIOD_COLUMNS))
    n = 0
    async for row in iter_period_rows(db, period, as_of=as_of):
        out.write(csvout.line(csv_line_values(row)))
        n += 1
    return n
