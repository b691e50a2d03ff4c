"""Seeded synthetic stores for the pipeline's tests and its speed measurement.

``random_store`` makes one store's documents (polls, hours rows, timezone rows) in the
storage schema of the foundation issue (section 4), with the awkward cases the rules
cover: duplicate and conflicting polls at one instant, invalid statuses, polls exactly at
as_of, polling gaps, multi-hour outages, overnight / equal / 23:59:59 hours rows,
missing days, no hours at all, missing or unknown timezones.
(Datasets for timing come from ``uptime-monitor generate``; see ``uptime-monitor bench``.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from uptime.tools.generate import ZONES

#: The v1 data's six commonest zones with their store counts (one home: the generator's
#: table), then two zones far from America (offsets of the other sign).
ZONES_V1 = [*ZONES[:6], ("Asia/Beirut", 5), ("Australia/Sydney", 5)]
BAD_ZONES = ["US/Chicagoo", "", "Mars/Olympus"]


@dataclass
class StoreDocs:
    """One store's documents, ready for insert_many."""

    store_id: str
    polls: list[dict] = field(default_factory=list)
    hours: list[dict] = field(default_factory=list)
    timezones: list[dict] = field(default_factory=list)


def _hms(seconds: int) -> str:
    seconds %= 86400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def random_hours(rng: random.Random, store_id: str, *, realistic: bool) -> list[dict]:
    """Hours rows: 0-3 intervals per weekday; overnight, equal, 23:59:59 ends included."""
    rows: list[dict] = []
    days = list(range(7)) if rng.random() < 0.8 else rng.sample(range(7), rng.randint(1, 6))
    for day in days:
        for _ in range(rng.choice([1, 1, 1, 2, 3] if realistic else [1, 2, 3])):
            kind = rng.random()
            if kind < 0.15:
                start, end = rng.randrange(0, 86400, 1800), "23:59:59"
                rows.append(_row(store_id, day, _hms(start), end))
                continue
            start = rng.randrange(0, 86400, 900 if realistic else 1)
            if kind < 0.25:
                end = start  # open 24 hours
            elif kind < 0.4:
                end = rng.randrange(0, start + 1, 900) if start else 0  # overnight
            else:
                end = min(start + rng.randrange(3600, 14 * 3600, 900), 86399)
            rows.append(_row(store_id, day, _hms(start), _hms(end)))
    return rows


def _row(store_id: str, day: int, start: str, end: str) -> dict:
    return {
        "store_id": store_id,
        "dayOfWeek": day,
        "start_time_local": start,
        "end_time_local": end,
    }


def random_store(
    rng: random.Random,
    store_id: str,
    as_of: datetime,
    *,
    days: float = 9.0,
    poll_minutes: float = 60.0,
    jitter_minutes: float = 10.0,
    zones: list[str] | None = None,
    realistic: bool = True,
) -> StoreDocs:
    """Make one store's polls (ending at or before ``as_of``), hours rows and timezone rows.

    ``realistic=True`` models the v1 data (hourly polls, few outages, mostly clean rows);
    ``realistic=False`` piles up edge cases (duplicates, conflicts, invalid statuses, gaps,
    polls exactly at as_of, stores without polls in the week) for differential tests.
    """
    docs = StoreDocs(store_id)
    step = timedelta(minutes=poll_minutes)
    start = as_of - timedelta(days=days)
    if not realistic and rng.random() < 0.1:  # all polls before the week window
        start = as_of - timedelta(days=days + 10)
        end_at = as_of - timedelta(days=8)
    else:
        end_at = as_of
    t = start + timedelta(minutes=rng.uniform(0, poll_minutes))
    inactive = rng.random() < 0.03
    outage_p = 0.01 if realistic else 0.12
    while t <= end_at:
        if rng.random() < (0.002 if realistic else 0.03):  # polling gap
            t += step * rng.randint(3, 20)
            continue
        if inactive:
            inactive = rng.random() < (0.7 if realistic else 0.6)
        else:
            inactive = rng.random() < outage_p
        ts = t.replace(microsecond=(t.microsecond // 1000) * 1000)
        status = "inactive" if inactive else "active"
        docs.polls.append({"store_id": store_id, "timestamp_utc": ts, "status": status})
        if not realistic:
            r = rng.random()
            if r < 0.05:  # exact duplicate
                docs.polls.append({"store_id": store_id, "timestamp_utc": ts, "status": status})
            elif r < 0.10:  # conflicting poll at the same instant
                other = "active" if inactive else "inactive"
                docs.polls.append({"store_id": store_id, "timestamp_utc": ts, "status": other})
            elif r < 0.12:  # three polls at one instant, the extra two of random status
                for _ in range(2):
                    other = rng.choice(["active", "inactive"])
                    docs.polls.append({"store_id": store_id, "timestamp_utc": ts, "status": other})
            elif r < 0.15:  # invalid status: ignored
                bad = rng.choice(["unknown", "ACTIVE", "", None])
                docs.polls.append({"store_id": store_id, "timestamp_utc": ts, "status": bad})
        jitter = rng.uniform(-jitter_minutes, jitter_minutes)
        t += step + timedelta(minutes=jitter)
    if not realistic and end_at == as_of and rng.random() < 0.15:  # a poll exactly at as_of
        docs.polls.append(
            {"store_id": store_id, "timestamp_utc": as_of, "status": rng.choice(["active", "inactive"])}
        )
    if not realistic and rng.random() < 0.05:  # polls only after as_of: store absent
        docs.polls = [
            {**p, "timestamp_utc": as_of + timedelta(minutes=5 + i)} for i, p in enumerate(docs.polls)
        ]

    if rng.random() < (0.79 if realistic else 0.7):
        docs.hours = random_hours(rng, store_id, realistic=realistic)
    r = rng.random()
    if r < (0.96 if realistic else 0.8):
        if zones:
            zone = rng.choice(zones)
        else:
            names, weights = zip(*ZONES_V1)
            zone = rng.choices(names, weights)[0]
        docs.timezones.append({"store_id": store_id, "timezone_str": zone})
    elif r < (0.965 if realistic else 0.9):
        docs.timezones.append({"store_id": store_id, "timezone_str": rng.choice(BAD_ZONES)})
    return docs
