"""An obviously-correct, slow, pure-Python model of the uptime report rules (issue 3).

Used only by the differential tests: the pipeline must agree with it exactly (raw
milliseconds, before rounding). It follows the rules literally instead of cleverly:

1. Polls: status "active"/"inactive", a Date at or before as_of, a string store id.
   Same-instant polls collapse into one, inactive if any is inactive.
2. Status at x: the status of the nearest poll; between consecutive polls the status
   changes at their midpoint, an exact midpoint belongs to the later poll; the first poll's
   status holds before it, the last one's after it.
3. Business hours from the store's rows in local time (no rows = 24x7; rows but none for a
   weekday = closed; end < start or end == start closes on the next date at ``end``;
   an end of 23:59:59[.fff] closes at the next midnight). Rows union.
4. Local -> UTC like MongoDB's ``$dateFromParts``: of the candidate instants (``fold`` 0
   and 1) the LATER one is taken. Checked on MongoDB 6.0.5 for New York, Chicago, Beirut
   and Sydney transitions (1,152 local times around each 2023/2024 transition, no
   difference): a skipped time keeps the pre-jump offset (02:30 on 2024-03-10 in
   New York -> 07:30Z), an ambiguous time is the later instant (01:30 on 2024-11-03 in
   New York -> 06:30Z).
5. Timezone: the smallest accepted name among the store's rows; none -> America/Chicago.
6. Sums by sweeping: every boundary (window starts, business interval ends, status
   change points) splits the week into elementary pieces; each piece is classified by
   testing its midpoint.

All instants are integer epoch milliseconds; change points may be half milliseconds, so
the model works with ``Fraction``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
FALLBACK_TIMEZONE = "America/Chicago"


def epoch_ms(moment: datetime) -> int:
    """UTC datetime (ms precision) -> integer epoch milliseconds."""
    delta = moment.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def local_to_epoch_ms(day: date, clock: time, zone: str) -> int:
    """Local (date, clock) in ``zone`` -> epoch ms, resolving DST gaps/overlaps like MongoDB."""
    tz = ZoneInfo(zone)
    naive = datetime.combine(day, clock)
    return max(epoch_ms(naive.replace(tzinfo=tz, fold=f)) for f in (0, 1))


def _clock(text: str) -> time | None:
    try:
        h, m, s = int(text[0:2]), int(text[3:5]), int(text[6:8])
        return time(h, m, s)
    except (ValueError, TypeError, IndexError):
        return None


@dataclass
class StoreResult:
    """Raw sums in milliseconds for one store (before rounding)."""

    business: dict[str, Fraction]
    downtime: dict[str, Fraction]
    timezone: str
    timezone_fallback: bool

    @property
    def uptime(self) -> dict[str, Fraction]:
        return {w: self.business[w] - self.downtime[w] for w in self.business}

    def row(self, store_id: str) -> dict:
        """The report row (minutes for hour, hours for day/week, rounded to 2 decimals)."""
        unit = {"hour": 60_000, "day": HOUR_MS, "week": HOUR_MS}
        out: dict = {"store_id": store_id}
        for kind, values in (("uptime", self.uptime), ("downtime", self.downtime)):
            for w in ("hour", "day", "week"):
                out[f"{kind}_last_{w}"] = round(float(values[w] / unit[w]), 2)
        out["timezone_fallback"] = self.timezone_fallback
        return out


def business_intervals(
    rows: list[dict], zone: str, week_start_ms: int, as_of_ms: int
) -> list[tuple[int, int]]:
    """Rule 3/4: the store's open intervals (epoch ms, possibly overlapping) near the week."""
    if not rows:
        return [(week_start_ms, as_of_ms)]
    tz = ZoneInfo(zone)
    to_local = lambda ms: datetime.fromtimestamp(ms / 1000, tz)  # noqa: E731
    first = to_local(week_start_ms).date() - timedelta(days=1)
    last = to_local(as_of_ms).date()
    out = []
    day = first
    while day <= last:
        for row in rows:
            if row["dayOfWeek"] != day.weekday():
                continue
            start, end_text = _clock(row["start_time_local"]), row["end_time_local"]
            end = _clock(end_text)
            if start is None or end is None:
                continue
            a = local_to_epoch_ms(day, start, zone)
            if end_text.startswith("23:59:59"):
                b = local_to_epoch_ms(day + timedelta(days=1), time(0), zone)
            elif end <= start:
                b = local_to_epoch_ms(day + timedelta(days=1), end, zone)
            else:
                b = local_to_epoch_ms(day, end, zone)
            out.append((a, b))
        day += timedelta(days=1)
    return out


def store_result(
    polls: list[tuple[int, bool]],
    rows: list[dict],
    zones: list,
    accepted_zones: set[str],
    as_of_ms: int,
) -> StoreResult:
    """Rules 2-6 for one store. ``polls`` = (epoch ms, inactive) of its valid polls <= as_of."""
    instants: dict[int, bool] = {}
    for t, inactive in polls:
        instants[t] = instants.get(t, False) or inactive
    times = sorted(instants)

    def inactive_at(x: Fraction) -> bool:
        i = bisect_right(times, x)
        near = times[max(0, i - 1) : i + 1]  # the polls just before and after x
        best = min(near, key=lambda t: (abs(x - t), -t))  # exact midpoint -> later poll
        return instants[best]

    good = sorted(z for z in zones if isinstance(z, str) and z in accepted_zones)
    zone = good[0] if good else FALLBACK_TIMEZONE
    fallback = bool(zones) and not good
    week_start = as_of_ms - WEEK_MS
    opens = business_intervals(rows, zone, week_start, as_of_ms)
    starts = {"hour": as_of_ms - HOUR_MS, "day": as_of_ms - DAY_MS, "week": week_start}

    cuts: set[Fraction] = {Fraction(week_start), Fraction(as_of_ms)}
    cuts |= {Fraction(s) for s in starts.values()}
    for a, b in opens:
        cuts |= {Fraction(min(max(a, week_start), as_of_ms)), Fraction(min(max(b, week_start), as_of_ms))}
    for t1, t2 in zip(times, times[1:]):
        m = Fraction(t1 + t2, 2)
        if week_start < m < as_of_ms:
            cuts.add(m)
    points = sorted(cuts)
    business = {w: Fraction(0) for w in starts}
    downtime = {w: Fraction(0) for w in starts}
    for p, q in zip(points, points[1:]):
        mid = (p + q) / 2
        if not any(a <= mid < b for a, b in opens):
            continue
        down = inactive_at(mid)
        for w, s in starts.items():
            if mid >= s:
                business[w] += q - p
                if down:
                    downtime[w] += q - p
    return StoreResult(business, downtime, zone, fallback)


def report(
    status: list[dict],
    hours: list[dict],
    timezones: list[dict],
    as_of: datetime,
    accepted_zones: set[str],
) -> dict[str, StoreResult]:
    """The whole report: store_id -> StoreResult, for stores with a valid poll <= as_of."""
    as_of_ms = epoch_ms(as_of)
    polls: dict[str, list[tuple[int, bool]]] = {}
    for doc in status:
        sid, ts, st = doc.get("store_id"), doc.get("timestamp_utc"), doc.get("status")
        if not isinstance(sid, str) or not isinstance(ts, datetime) or st not in ("active", "inactive"):
            continue
        t = epoch_ms(ts)
        if t <= as_of_ms:
            polls.setdefault(sid, []).append((t, st == "inactive"))
    out = {}
    for sid in sorted(polls):
        rows = [r for r in hours if r["store_id"] == sid]
        zones = [z.get("timezone_str") for z in timezones if z["store_id"] == sid]
        out[sid] = store_result(polls[sid], rows, zones, accepted_zones, as_of_ms)
    return out
