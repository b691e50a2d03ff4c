"""A realistic, deterministic generator of the three input CSV files (issue 5, "Generator").

Why this module is over 400 lines: one job, a deterministic synthetic dataset in the shape of
the v1 files (stores, hours, zones, polls, anomalies), written as CSV.

``generate_dataset`` (and ``uptime-monitor generate``) writes, into one folder:

- ``store_status.csv`` — header ``store_id,status,timestamp_utc``; timestamps like
  ``2023-01-22 12:09:39.388884 UTC`` (UTC; fraction with trailing zeros dropped, as in the
  original BigQuery export); status ``active`` or ``inactive``; rows roughly in time order
  (a poller's log, not sorted).
- ``menu_hours.csv`` — header ``store_id,dayOfWeek,start_time_local,end_time_local``
  (0 = Monday; local wall-clock ``HH:MM:SS``).
- ``timezones.csv`` — header ``store_id,timezone_str`` (IANA zone names).

The defaults model the public v1 dataset (``../shared/data/public/loop_v1_2023``), whose
shapes were measured as follows:

- 14,092 stores with polls; 11,116 of them (78.9 %) have hours rows and 13,559 (96 %) a
  timezone (99.8 % of the stores with hours have a timezone, 83 % of those without hours).
- Store ids: integers below 2^63 written in decimal (uniform 63-bit ids give v1's mix of
  89 % 19-digit, 10 % 18-digit and a few shorter ids).
- Zone mix: America/New_York 60 %, Los_Angeles 24 %, Chicago 11 %, Phoenix 3 % and a tail
  (Denver, Detroit, Indianapolis, Edmonton, Beirut, Boise, Honolulu).
- Hours: 81 % of the stores list all 7 days, 13 % six (Sunday and Monday are the days most
  often missing), a few fewer; 1–3 intervals per store-day; 13 % of the stores are open
  24 hours (``00:00:00``–``23:59:59`` or ``23:59:00``), 15 % past midnight (the overnight
  part split at midnight into a ``00:00:00``–``02:00:00`` row on the next weekday), a few
  percent split lunch/dinner; 56 % keep the same hours every day, the others differ on some
  days (typically longer Friday/Saturday evenings).
- Polls: about hourly per store with ±10 min jitter, over ``days`` days ending at ``as_of``
  (default: v1's "now", 2023-01-25 18:13:22.47922 UTC) — about 2.9M rows for the defaults.
  About 3 % of the polls are inactive, grouped into multi-hour outages (a few percent of
  stores are flaky); polls go missing (2 % single misses, occasional multi-hour gaps per
  store, one poller outage of a few hours for every store); ~0.5 % of the stores stop
  polling early and ~1 % start late. The last poll is exactly at ``as_of``, so the
  report's default as_of (the latest poll) equals it.

Determinism: every random choice comes from one ``random.Random(seed)`` consumed in a fixed
order, so the same arguments give byte-identical files. Memory: O(stores); status rows
are streamed to disk with the ``csv`` module, never held in memory.

With ``hours_from``/``timezones_from`` the real store ids, hours and zones of those files
(either public version; ``day`` or ``dayOfWeek`` header) are reused, and polls are
generated for them (plus synthetic stores without hours/timezone up to ``stores``).
"""

from __future__ import annotations

import csv
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: v1's "now": the latest ``timestamp_utc`` of the v1 status file.
V1_AS_OF = datetime(2023, 1, 25, 18, 13, 22, 479220, tzinfo=UTC)
V1_STORES = 14_092

STATUS_FILE = "store_status.csv"
HOURS_FILE = "menu_hours.csv"
TIMEZONES_FILE = "timezones.csv"

STATUS_HEADER = ("store_id", "status", "timestamp_utc")
HOURS_HEADER = ("store_id", "dayOfWeek", "start_time_local", "end_time_local")
TIMEZONES_HEADER = ("store_id", "timezone_str")

# --- measured v1 shapes (see module docstring) -------------------------------------------
P_HOURS = 11_116 / 14_092
P_TZ_GIVEN_HOURS = 11_091 / 11_116
P_TZ_GIVEN_NO_HOURS = 2_468 / 2_976

ZONES: tuple[tuple[str, int], ...] = (
    ("America/New_York", 8191),
    ("America/Los_Angeles", 3224),
    ("America/Chicago", 1517),
    ("America/Phoenix", 418),
    ("America/Denver", 127),
    ("America/Detroit", 62),
    ("America/Indiana/Indianapolis", 15),
    ("America/Edmonton", 2),
    ("Asia/Beirut", 1),
    ("America/Boise", 1),
    ("Pacific/Honolulu", 1),
)
# number of days listed by a store with hours -> stores
DAYS_LISTED = ((7, 9050), (6, 1446), (5, 391), (4, 44), (3, 31), (2, 4), (1, 150))
# weekday (0 = Monday) -> how often it is the one missing
MISSING_DAY_WEIGHT = (811, 466, 294, 238, 230, 364, 1001)
# store kinds: regular day hours, 24 h, past midnight, to midnight, lunch/dinner split
KINDS = (("day", 62), ("full", 13), ("overnight", 15), ("late", 7), ("split", 3))
DAY_STARTS = (
    ("11:00:00", 20666), ("10:00:00", 8013), ("06:00:00", 7955), ("07:00:00", 5083),
    ("08:00:00", 3963), ("10:30:00", 2782), ("12:00:00", 2545), ("11:30:00", 2437),
    ("09:00:00", 2244), ("06:30:00", 787), ("07:30:00", 699), ("09:30:00", 446),
    ("05:00:00", 444), ("08:30:00", 314), ("16:00:00", 300), ("17:00:00", 300),
)
DAY_ENDS = (
    ("22:00:00", 6627), ("21:00:00", 6218), ("23:00:00", 5017), ("20:00:00", 3723),
    ("21:30:00", 3555), ("20:30:00", 2677), ("19:00:00", 2239), ("22:30:00", 1931),
    ("23:30:00", 1675), ("20:45:00", 1382), ("19:30:00", 1199), ("21:45:00", 1091),
    ("15:00:00", 1021), ("14:00:00", 897), ("18:00:00", 868), ("16:00:00", 806),
    ("23:45:00", 701), ("17:00:00", 601), ("22:45:00", 528), ("21:15:00", 475),
)
OVERNIGHT_ENDS = (
    ("01:00:00", 2611), ("02:00:00", 2293), ("03:00:00", 952), ("01:30:00", 480),
    ("04:00:00", 459), ("01:45:00", 388), ("02:30:00", 385), ("00:29:00", 313),
    ("03:30:00", 313), ("05:00:00", 287), ("04:45:00", 249), ("04:59:59", 91),
    ("00:10:00", 83),
)
MIDNIGHT_ENDS = ("23:59:59", "23:59:00")

# --- poll model --------------------------------------------------------------------------
POLL_INTERVAL_S = 3600
JITTER_S = 600
P_MISS = 0.02  # a single poll missing
P_GAP_START = 0.002  # a multi-hour polling gap starts (per store and poll)
GAP_POLLS = (2, 12)
P_FLAKY_STORE = 0.05
P_OUTAGE_START = 0.008  # per poll, ordinary store
P_OUTAGE_START_FLAKY = 0.04
OUTAGE_MEAN_EXTRA_POLLS = 2.0  # outage length = 1 + geometric(mean 2) polls
P_STOPS_EARLY = 0.005
P_STARTS_LATE = 0.01
POLLER_OUTAGE_HOURS = (3, 8)


@dataclass(frozen=True)
class GeneratedFiles:
    """The files ``generate_dataset`` wrote and what is in them.

    Attributes:
        status, hours, timezones: paths of ``store_status.csv``, ``menu_hours.csv`` and
            ``timezones.csv``.
        stores: number of stores with at least one poll.
        status_rows, hours_rows, timezone_rows: data rows written (header excluded).
        inactive_rows: status rows with status ``inactive``.
        as_of: the latest poll's instant (UTC) — the report's default as_of.
        seconds: wall time taken.
    """

    status: Path
    hours: Path
    timezones: Path
    stores: int
    status_rows: int
    hours_rows: int
    timezone_rows: int
    inactive_rows: int
    as_of: datetime
    seconds: float


def _cumulative(weights: tuple[tuple[object, int], ...]) -> tuple[list[object], list[int]]:
    values = [v for v, _ in weights]
    cum, total = [], 0
    for _, w in weights:
        total += w
        cum.append(total)
    return values, cum


class _Picker:
    """Weighted choice from a fixed table using one ``random.Random`` (fast, deterministic)."""

    def __init__(self, rng: random.Random, weights: tuple[tuple[object, int], ...]):
        self._rng = rng
        self._values, self._cum = _cumulative(weights)

    def __call__(self) -> object:
        return self._rng.choices(self._values, cum_weights=self._cum, k=1)[0]


def _seconds(hms: str) -> int:
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + int(s)


def _hours_rows_for_store(rng: random.Random, pick: dict[str, _Picker]) -> list[tuple[int, str, str]]:
    """Synthetic hours rows ``(dayOfWeek, start, end)`` of one store, v1-shaped."""
    n_days = pick["days"]()
    days = list(range(7))
    while len(days) > n_days:
        weights = [MISSING_DAY_WEIGHT[d] for d in days]
        days.remove(rng.choices(days, weights=weights, k=1)[0])
    midnight = MIDNIGHT_ENDS[rng.random() < 0.5]

    def opening(kind: str) -> list[tuple[str, str]]:
        """Intervals of one day; an end before the start runs past midnight."""
        if kind == "full":
            return [("00:00:00", midnight)]
        if kind == "split":
            lunch_end = ("14:00:00", "14:30:00", "15:00:00")[int(rng.random() * 3)]
            dinner = ("16:30:00", "17:00:00", "17:30:00")[int(rng.random() * 3)]
            end = ("21:00:00", "21:30:00", "22:00:00")[int(rng.random() * 3)]
            start = ("10:30:00", "11:00:00", "11:30:00")[int(rng.random() * 3)]
            return [(start, lunch_end), (dinner, end)]
        start = pick["start"]()
        if kind == "late":
            return [(start, midnight)]
        if kind == "overnight":
            return [(start, pick["overnight_end"]())]
        end = pick["end"]()
        if _seconds(end) <= _seconds(start):
            end = midnight
        return [(start, end)]

    base_kind = pick["kind"]()
    base = opening(base_kind)
    same_every_day = rng.random() < 0.56
    per_day: dict[int, list[tuple[str, str]]] = {}
    for d in days:
        if same_every_day or base_kind == "full":
            per_day[d] = base
        elif d in (4, 5) and rng.random() < 0.6:  # longer Friday/Saturday evenings
            per_day[d] = opening("overnight" if base_kind in ("overnight", "late") else "late")
        elif rng.random() < 0.25:
            per_day[d] = opening(base_kind)
        else:
            per_day[d] = base
    rows: list[tuple[int, str, str]] = []
    for d in days:
        for start, end in per_day[d]:
            if _seconds(end) < _seconds(start):  # overnight: split at midnight, like v1
                rows.append((d, start, midnight))
                rows.append(((d + 1) % 7, "00:00:00", end))
            else:
                rows.append((d, start, end))
    rows.sort()
    return rows


def _read_hours(path: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Hours rows of a public-format file grouped by store (``day`` or ``dayOfWeek``)."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        day_col = "dayOfWeek" if "dayOfWeek" in (reader.fieldnames or ()) else "day"
        for row in reader:
            out.setdefault(row["store_id"], []).append(
                (row[day_col], row["start_time_local"], row["end_time_local"])
            )
    return out


def _read_timezones(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return {row["store_id"]: row["timezone_str"] for row in csv.DictReader(f)}


def _timestamp_formatter(start_s: int, end_s: int):
    """Return ``fmt(epoch_us) -> 'YYYY-MM-DD HH:MM:SS[.ffffff] UTC'`` with cached prefixes.

    Avoids a ``datetime`` per row: the date and the clock time come from lookup tables.
    """
    day0 = start_s // 86400
    dates = []
    for i in range(end_s // 86400 - day0 + 2):
        dates.append((datetime(1970, 1, 1) + timedelta(days=day0 + i)).strftime("%Y-%m-%d "))
    clock = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]

    def fmt(us: int) -> str:
        s, frac = divmod(us, 1_000_000)
        d, sod = divmod(s, 86400)
        if frac:
            return f"{dates[d - day0]}{clock[sod]}.{frac:06d}".rstrip("0") + " UTC"
        return f"{dates[d - day0]}{clock[sod]} UTC"

    return fmt


def generate_dataset(
    out_dir: Path,
    *,
    stores: int = V1_STORES,
    days: int = 9,
    seed: int = 0,
    as_of: datetime | None = None,
    hours_from: Path | None = None,
    timezones_from: Path | None = None,
) -> GeneratedFiles:
    """Write ``store_status.csv``, ``menu_hours.csv`` and ``timezones.csv`` into ``out_dir``.

    Args:
        out_dir: folder to write into (created if missing; existing files are replaced).
        stores: stores with polls (>= 1). With ``hours_from``/``timezones_from`` the real
            stores come first (a seeded sample of them when there are more than ``stores``).
        days: length of the polling period in days (> 0), ending at ``as_of``.
        seed: seed of the single ``random.Random`` — same arguments, same bytes.
        as_of: the instant of the latest poll (aware, or naive = UTC); default v1's
            2023-01-25 18:13:22.479220 UTC. Rounded down to whole microseconds.
        hours_from, timezones_from: public-format files whose store ids, hours rows and
            zones are reused instead of synthetic ones.

    Returns:
        ``GeneratedFiles`` with the paths and row counts.

    Raises:
        ValueError: ``stores`` < 1 or ``days`` <= 0.
        FileNotFoundError / KeyError: an unreadable ``*_from`` file or missing column.
    """
    if stores < 1:
        raise ValueError(f"stores must be >= 1, got {stores}")
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    started = time.perf_counter()
    as_of = V1_AS_OF if as_of is None else as_of
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    as_of = as_of.astimezone(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pick = {
        "zone": _Picker(rng, ZONES),
        "days": _Picker(rng, DAYS_LISTED),
        "kind": _Picker(rng, KINDS),
        "start": _Picker(rng, DAY_STARTS),
        "end": _Picker(rng, DAY_ENDS),
        "overnight_end": _Picker(rng, OVERNIGHT_ENDS),
    }

    # ---- the stores, their hours and zones ------------------------------------------
    real_hours = _read_hours(hours_from) if hours_from else None
    real_zones = _read_timezones(timezones_from) if timezones_from else None
    ids: list[str] = []
    if real_hours is not None or real_zones is not None:
        seen: dict[str, None] = {}
        for source in (real_hours or {}, real_zones or {}):
            for sid in source:
                seen.setdefault(sid, None)
        ids = list(seen)
        if len(ids) > stores:
            ids = rng.sample(ids, stores)
    taken = set(ids)
    n_real = len(ids)
    while len(ids) < stores:
        sid = str(rng.getrandbits(63))
        if sid not in taken:
            taken.add(sid)
            ids.append(sid)

    hours_path = out_dir / HOURS_FILE
    tz_path = out_dir / TIMEZONES_FILE
    hours_rows = tz_rows = 0
    with (
        hours_path.open("w", newline="", encoding="utf-8") as hf,
        tz_path.open("w", newline="", encoding="utf-8") as tf,
    ):
        hw, tw = csv.writer(hf, lineterminator="\n"), csv.writer(tf, lineterminator="\n")
        hw.writerow(HOURS_HEADER)
        tw.writerow(TIMEZONES_HEADER)
        for i, sid in enumerate(ids):
            real = i < n_real
            if real_hours is not None:
                rows = real_hours.get(sid, []) if real else []
                has_hours = bool(rows)
            else:
                has_hours = rng.random() < P_HOURS
                rows = _hours_rows_for_store(rng, pick) if has_hours else []
            for d, start, end in rows:
                hw.writerow((sid, d, start, end))
            hours_rows += len(rows)
            if real_zones is not None:
                zone = real_zones.get(sid) if real else None
            else:
                p = P_TZ_GIVEN_HOURS if has_hours else P_TZ_GIVEN_NO_HOURS
                zone = pick["zone"]() if rng.random() < p else None
            if zone is not None:
                tw.writerow((sid, zone))
                tz_rows += 1

    # ---- polls: time-major (slot by slot, every store), like a poller's log ----------
    as_of_us = int(as_of.timestamp()) * 1_000_000 + as_of.microsecond
    period_us = int(days * 86400) * 1_000_000
    start_us = as_of_us - period_us
    slots = int(days * 86400) // POLL_INTERVAL_S + 1
    n = len(ids)
    phase = [int(rng.random() * POLL_INTERVAL_S * 1_000_000) for _ in range(n)]
    outage_p = [
        P_OUTAGE_START_FLAKY if rng.random() < P_FLAKY_STORE else P_OUTAGE_START for _ in range(n)
    ]
    first_slot = [0] * n
    last_slot = [slots] * n
    for i in range(n):
        r = rng.random()
        if r < P_STOPS_EARLY:
            last_slot[i] = int(rng.random() * slots * 0.8)
        elif r < P_STOPS_EARLY + P_STARTS_LATE:
            first_slot[i] = int(rng.random() * slots * 0.9)
    outage_left = [0] * n
    gap_left = [0] * n
    poller_len = rng.randint(*POLLER_OUTAGE_HOURS)
    poller_from = int(rng.random() * (slots - poller_len - 48)) if slots > poller_len + 48 else -1
    poller_to = poller_from + poller_len
    # the store whose poll is pinned at exactly as_of (the newest poll of the file)
    pinned = 0
    first_slot[pinned], last_slot[pinned] = 0, slots

    fmt = _timestamp_formatter(start_us // 1_000_000, as_of_us // 1_000_000)
    jitter_us = JITTER_S * 1_000_000
    slot_us = POLL_INTERVAL_S * 1_000_000
    rand = rng.random
    status_path = out_dir / STATUS_FILE
    status_rows = inactive_rows = 0
    polled = bytearray(n)
    with status_path.open("w", newline="", encoding="utf-8", buffering=1 << 20) as sf:
        sw = csv.writer(sf, lineterminator="\n")
        sw.writerow(STATUS_HEADER)
        write = sw.writerow
        for k in range(slots):
            base = start_us + k * slot_us
            poller_down = poller_from <= k < poller_to
            for i in range(n):
                if k < first_slot[i] or k >= last_slot[i]:
                    continue
                # status process runs whether or not the poll is observed
                if outage_left[i]:
                    outage_left[i] -= 1
                    status = "inactive"
                elif rand() < outage_p[i]:
                    extra = 0
                    while rand() < OUTAGE_MEAN_EXTRA_POLLS / (1 + OUTAGE_MEAN_EXTRA_POLLS):
                        extra += 1
                    outage_left[i] = extra
                    status = "inactive"
                else:
                    status = "active"
                if gap_left[i]:
                    gap_left[i] -= 1
                    continue
                if rand() < P_GAP_START:
                    gap_left[i] = GAP_POLLS[0] + int(rand() * (GAP_POLLS[1] - GAP_POLLS[0]))
                    continue
                if poller_down or rand() < P_MISS:
                    continue
                t = base + phase[i] + int((rand() * 2 - 1) * jitter_us)
                if t < start_us or t >= as_of_us:
                    continue
                write((ids[i], status, fmt(t)))
                polled[i] = 1
                status_rows += 1
                if status == "inactive":
                    inactive_rows += 1
        # every store has at least one poll (a store that never answered in the period
        # gets one late-logged active poll at a random instant of it)
        for i in range(n):
            if not polled[i]:
                write((ids[i], "active", fmt(start_us + int(rand() * period_us))))
                status_rows += 1
        write((ids[pinned], "active", fmt(as_of_us)))
        status_rows += 1

    return GeneratedFiles(
        status=status_path,
        hours=hours_path,
        timezones=tz_path,
        stores=n,
        status_rows=status_rows,
        hours_rows=hours_rows,
        timezone_rows=tz_rows,
        inactive_rows=inactive_rows,
        as_of=datetime.fromtimestamp(as_of_us // 1_000_000, UTC).replace(
            microsecond=as_of_us % 1_000_000
        ),
        seconds=time.perf_counter() - started,
    )
