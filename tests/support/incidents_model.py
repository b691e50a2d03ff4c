"""An independent, slow, pure-Python model of the incident definition (issue 17, item 1),
for the differential tests. Built on ``reference_model`` (the report's rules 3-5 with
``zoneinfo``: ``business_intervals`` and its ``$dateFromParts``-like local -> UTC), and on
rules 1-2 applied literally here:

* valid polls of a store at or before ``as_of`` (string id without control characters, Date,
  status active/inactive); polls at one ms instant count once, inactive if any is;
* the timeline starts at the store's first poll; between consecutive distinct instants of
  different status the status changes at their midpoint (exact, ``Fraction``); the last
  status holds up to ``as_of``;
* an incident is a maximal inactive stretch ``[a, b)`` whose overlap with the union of the
  business intervals, within ``[a, min(b, as_of))``, is > 0 and >= ``min_minutes``.

Returns, per incident: ``store_id``, ``started_at_ms`` (Fraction: first instant in business
hours), ``ended_ms`` (Fraction or None while open), ``business_ms`` (Fraction).
"""

from __future__ import annotations

import re
from datetime import datetime
from fractions import Fraction
from math import ceil, floor

from support.reference_model import FALLBACK_TIMEZONE, _clock, business_intervals, epoch_ms

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _valid_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("dayOfWeek") in range(7)
            and isinstance(r.get("start_time_local"), str) and isinstance(r.get("end_time_local"), str)
            and _clock(r["start_time_local"]) is not None and _clock(r["end_time_local"]) is not None]


def _union_overlap(opens: list[tuple[int, int]], a: Fraction, b: Fraction) -> tuple[Fraction, Fraction | None]:
    """Length of (union of ``opens``) within [a, b), and its first instant (None if empty)."""
    clipped = sorted((max(Fraction(x), a), min(Fraction(y), b)) for x, y in opens)
    clipped = [(x, y) for x, y in clipped if x < y]
    total, first, cur = Fraction(0), None, None
    for x, y in clipped:
        if first is None:
            first = x
        if cur is None:
            cur = [x, y]
        elif x <= cur[1]:
            cur[1] = max(cur[1], y)
        else:
            total += cur[1] - cur[0]
            cur = [x, y]
    if cur is not None:
        total += cur[1] - cur[0]
    return total, first


def store_incidents(store_id: str, polls: list[tuple[int, bool]], rows: list[dict], zones: list,
                    accepted: set[str], as_of_ms: int, min_minutes: float) -> list[dict]:
    """Incidents of one store; ``polls`` = (epoch ms, inactive) of its valid polls <= as_of."""
    instants: dict[int, bool] = {}
    for t, inactive in polls:
        instants[t] = instants.get(t, False) or inactive
    times = sorted(instants)
    if not times:
        return []
    good = sorted(z for z in zones if isinstance(z, str) and z in accepted)
    zone = good[0] if good else FALLBACK_TIMEZONE
    rows = _valid_rows(rows)
    out = []
    i = 0
    while i < len(times):
        j = i
        while j + 1 < len(times) and instants[times[j + 1]] == instants[times[i]]:
            j += 1
        if instants[times[i]]:
            a = Fraction(times[0]) if i == 0 else Fraction(times[i - 1] + times[i], 2)
            end = None if j + 1 == len(times) else Fraction(times[j] + times[j + 1], 2)
            b = Fraction(as_of_ms) if end is None else end
            if rows:
                opens = business_intervals(rows, zone, floor(a), ceil(b))
            else:
                opens = [(floor(a), ceil(b))]
            total, first = _union_overlap(opens, a, b)
            if total > 0 and total >= Fraction(min_minutes) * 60_000:
                out.append({"store_id": store_id, "started_at_ms": first, "ended_ms": end,
                            "business_ms": total})
        i = j + 1
    return out


def incidents(status: list[dict], hours: list[dict], timezones: list[dict], as_of: datetime,
              accepted: set[str], min_minutes: float) -> list[dict]:
    """All incidents as of ``as_of``, sorted by store_id then start."""
    as_of_ms = epoch_ms(as_of)
    polls: dict[str, list[tuple[int, bool]]] = {}
    for doc in status:
        sid, ts, st = doc.get("store_id"), doc.get("timestamp_utc"), doc.get("status")
        if not isinstance(sid, str) or _CONTROL.search(sid) or not isinstance(ts, datetime):
            continue
        if st not in ("active", "inactive"):
            continue
        t = epoch_ms(ts)
        if t <= as_of_ms:
            polls.setdefault(sid, []).append((t, st == "inactive"))
    out = []
    for sid in sorted(polls):
        rows = [r for r in hours if r["store_id"] == sid]
        zones = [z.get("timezone_str") for z in timezones if z["store_id"] == sid]
        out += store_incidents(sid, polls[sid], rows, zones, accepted, as_of_ms, min_minutes)
    return out
