"""Hand-built stores for the dashboard tests (issue 11), with their expected numbers.

As of ``T`` = 2024-03-12 15:00Z; the report's week is [2024-03-05 15:00Z, T).

``DST_STORE`` (America/New_York, open 09:00-17:00 local every day) — its week crosses the
spring-forward jump of Sunday 2024-03-10 (EST −5 h → EDT −4 h):

* business hours in the week (UTC): Tue 05 [15:00, 22:00) 7 h; Wed 06 – Sat 09 [14:00, 22:00)
  8 h each; Sun 10 and Mon 11 [13:00, 21:00) 8 h each; Tue 12 [13:00, 15:00) 2 h → 57 h.
* polls: 03-04 12:00 active, 03-08 12:00 and 16:00 inactive, 03-10 20:00 and 03-12 14:00
  active → runs: active until 03-06 12:00 (midpoint of 04 12:00 / 08 12:00), inactive
  [03-06 12:00, 03-09 18:00) (midpoint of 08 16:00 / 10 20:00), active from 03-09 18:00 to T.
* downtime in business hours: Wed, Thu, Fri 8 h each + Sat [14:00, 18:00) 4 h = 28 h;
  uptime 57 − 28 = 29 h (50.88 %). Day [03-11 15:00, T): Mon [15, 21) 6 h + Tue 2 h = 8 h up.
  Hour [14:00, 15:00): 60 min up.

``HISTOGRAM_STORES`` (24×7, no hours rows; week = 168 h; downtime x h from a poll inactive at
the week start W and an active one at W + 2x h, so the status changes at W + x):
x = 0 (three stores) → 100 %; x = 8 (two) → 95.24 %; x = 76 → 54.76 %; inactive all week → 0 %.
With the DST store (50.88 %): buckets 0–10: 1, 50–60: 2, 90–100: 2, 100: 3, others 0.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)
W = T - timedelta(days=7)
DST_STORE = "dst-ny"
H = timedelta(hours=1)


def _z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


DST_POLLS = [("2024-03-04T12:00", "active"), ("2024-03-08T12:00", "inactive"),
             ("2024-03-08T16:00", "inactive"), ("2024-03-10T20:00", "active"),
             ("2024-03-12T14:00", "active")]
DST_BUSINESS_UTC = [
    ("2024-03-05T15:00", "2024-03-05T22:00"), ("2024-03-06T14:00", "2024-03-06T22:00"),
    ("2024-03-07T14:00", "2024-03-07T22:00"), ("2024-03-08T14:00", "2024-03-08T22:00"),
    ("2024-03-09T14:00", "2024-03-09T22:00"), ("2024-03-10T13:00", "2024-03-10T21:00"),
    ("2024-03-11T13:00", "2024-03-11T21:00"), ("2024-03-12T13:00", "2024-03-12T15:00"),
]
#: (status, start, end) of the runs clipped to the week, UTC
DST_RUNS = [("active", "2024-03-05T15:00", "2024-03-06T12:00"),
            ("inactive", "2024-03-06T12:00", "2024-03-09T18:00"),
            ("active", "2024-03-09T18:00", "2024-03-12T15:00")]
DST_ROW = {"uptime_last_hour": 60.0, "uptime_last_day": 8.0, "uptime_last_week": 29.0,
           "downtime_last_hour": 0.0, "downtime_last_day": 0.0, "downtime_last_week": 28.0}

#: store_id -> downtime hours in the week (None = inactive all week)
HISTOGRAM_DOWN = {"full-1": 0, "full-2": 0, "full-3": 0, "most-1": 8, "most-2": 8,
                  "half-1": 76, "zero-1": None}
#: bucket lower bound -> stores (from = to = 100 for the no-downtime bucket)
EXPECTED_HISTOGRAM = {0: 1, 10: 0, 20: 0, 30: 0, 40: 0, 50: 2, 60: 0, 70: 0, 80: 0, 90: 2,
                      100: 3}


def _polls_24x7(store: str, down_h: int | None) -> list[dict]:
    if down_h is None:
        marks = [(W - H, "inactive"), (T - H, "inactive")]
    elif down_h == 0:
        marks = [(W - H, "active"), (T - H, "active")]
    else:
        marks = [(W, "inactive"), (W + 2 * down_h * H, "active"), (T - H, "active")]
    return [{"store_id": store, "timestamp_utc": t, "status": s} for t, s in marks]


async def insert_dashboard_stores(db) -> None:
    """Insert the DST store and the histogram stores."""
    polls = [{"store_id": DST_STORE, "timestamp_utc": _z(t), "status": s} for t, s in DST_POLLS]
    for store, down in HISTOGRAM_DOWN.items():
        polls.extend(_polls_24x7(store, down))
    await db.store_status.insert_many(polls)
    await db.store_hours.insert_many(
        [{"store_id": DST_STORE, "dayOfWeek": d, "start_time_local": "09:00:00",
          "end_time_local": "17:00:00"} for d in range(7)]
    )
    await db.store_timezones.insert_one({"store_id": DST_STORE, "timezone_str": "America/New_York"})
