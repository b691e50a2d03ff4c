"""Hand-built stores for the period page (issue 18, item 6): ``tests/web/test_periods_api.py``
and ``tests/system/test_periods_browser.py``.

March 2024 as of ``T = 2024-03-20T00:00Z`` (zone ``UTC``, no hours rows = open 24×7, so each
store's period is [03-01 00:00Z, T) = 19 days = 456 business hours). Rule 2: the status
changes at the midpoint between two polls.

| store | polls | down | up | uptime % |
|---|---|---|---|---|
| ``a-good`` | active 02-28, T | 0 | 456 | 100.00 |
| ``b-bad`` | active 02-28, 03-10 09:00; inactive 10:00, 11:00; active 12:00, T | [09:30, 11:30) = 2 h | 454 | 99.56 |
| ``c-worse`` | active 02-28, 03-05 09:00; inactive 10:00, 19:00; active 20:00, T | [09:30, 19:30) = 10 h | 446 | 97.81 |
| ``=e/1`` (a formula start and a ``/``) | active 02-28, T | 0 | 456 | 100.00 |

Chain: 1,812 up of 1,824 business hours = 99.3421 % → 99.34. Below 99: ``c-worse``; below
99.9: ``c-worse``, ``b-bad`` (worst first).

``ny`` (America/New_York, 24×7; for the monthly chart): active 2024-01-15 12:00Z, 02-10 11:00Z; inactive 02-10 12:00Z,
02-11 12:00Z; active 02-11 14:00Z, 04-10 12:00Z. Inactive [02-10 11:30Z, 02-11 13:00Z) =
25.5 h, inside local February [02-01 05:00Z, 03-01 05:00Z) = 696 h → 670.5 h up, 96.34 %.
Local March [03-01 05:00Z, 04-01 04:00Z) = 743 h (DST), all up. As of ``NY_AS_OF`` =
04-10 12:00Z, local April so far [04-01 04:00Z, 04-10 12:00Z) = 224 h. In the March report as
of T its period is [03-01 05:00Z, T) = 451 h, all up (its last poll at or before T is active).
"""

from __future__ import annotations

from datetime import UTC, datetime

T = datetime(2024, 3, 20, tzinfo=UTC)
NY_AS_OF = datetime(2024, 4, 10, 12, tzinfo=UTC)
FORMULA_STORE = "=e/1"
MARCH_STORES = ["a-good", "b-bad", "c-worse", FORMULA_STORE]


def _z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


_POLLS = {
    "a-good": [("2024-02-28T00:00", "active"), ("2024-03-20T00:00", "active")],
    "b-bad": [("2024-02-28T00:00", "active"), ("2024-03-10T09:00", "active"),
              ("2024-03-10T10:00", "inactive"), ("2024-03-10T11:00", "inactive"),
              ("2024-03-10T12:00", "active"), ("2024-03-20T00:00", "active")],
    "c-worse": [("2024-02-28T00:00", "active"), ("2024-03-05T09:00", "active"),
                ("2024-03-05T10:00", "inactive"), ("2024-03-05T19:00", "inactive"),
                ("2024-03-05T20:00", "active"), ("2024-03-20T00:00", "active")],
    FORMULA_STORE: [("2024-02-28T00:00", "active"), ("2024-03-20T00:00", "active")],
}
_NY = [("2024-01-15T12:00", "active"), ("2024-02-10T11:00", "active"),
       ("2024-02-10T12:00", "inactive"), ("2024-02-11T12:00", "inactive"),
       ("2024-02-11T14:00", "active"), ("2024-04-10T12:00", "active")]


async def insert_march_stores(db) -> None:
    """The four March stores (zone UTC, 24×7)."""
    await db.store_status.insert_many([
        {"store_id": s, "timestamp_utc": _z(t), "status": st}
        for s, polls in _POLLS.items() for t, st in polls])
    await db.store_timezones.insert_many([{"store_id": s, "timezone_str": "UTC"}
                                          for s in _POLLS])


async def insert_ny_store(db) -> None:
    """The New York store (24×7)."""
    await db.store_status.insert_many([{"store_id": "ny", "timestamp_utc": _z(t), "status": st}
                                       for t, st in _NY])
    await db.store_timezones.insert_one({"store_id": "ny", "timezone_str": "America/New_York"})
