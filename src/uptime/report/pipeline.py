"""Run the versioned uptime report pipeline (``pipelines/store_uptime.vN.json``) from Python.

Just over 400 lines: the report's entry points (version, as_of, stores, zones, the choice,
the run) stay in one module until the report package is split (issue 16, reports.py first).

The computation lives entirely in the pipeline file (rules: issue 3, "The uptime report
pipeline"; stage-by-stage notes: ``pipelines/store_uptime.v1.md``). This module only:

* loads a pipeline version (Extended JSON, parsed with ``bson.json_util``);
* resolves the report instant ``as_of`` (default: the latest poll);
* screens the stores' timezone names in MongoDB itself, so that an unknown zone never
  fails the report (the accepted names go in through the ``timezones`` let variable);
* counts the report's stores (the service's progress); an optional store-id range selects
  rows (it does not narrow the poll scan, so the service runs the whole report at once);
* runs ``aggregate`` with ``let`` = ``{as_of, timezones, store_from, store_to}``,
  ``comment="store_uptime@<version>"`` and ``allowDiskUse=True``, and yields the rows.
  v1 aggregates on ``store_status`` (the polls); v2 (the default, issue 8 item 4) on
  ``status_runs`` (the status timeline) with ``store_schedules``, only when those are current
  (``uptime.report.inputs_v2.choose_version``; else v1, at once). v3 (issue 19) is v2 with
  the business hours read from a per-day cache (``uptime.report.windows``) instead of expanded
  per report: a default report runs it when that cache is ready for its day, else v2 (and the
  cache is built in the background). All give byte-identical CSVs.

Units of a report row: ``*_last_hour`` in minutes, ``*_last_day`` and ``*_last_week`` in
hours, all rounded to 2 decimals; windows are ``[as_of - 1 h, as_of)``,
``[as_of - 24 h, as_of)`` and ``[as_of - 7 d, as_of)`` in UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any


from uptime.platform.constants import (  # noqa: F401 - re-exported: the report's names
    CONTROL_CHARS,
    DEFAULT_VERSION,
    FALLBACK_TIMEZONE,
    PIPELINE_NAME,
    RUNS_COLLECTION,
    STATUS_COLLECTION,
    TIMEZONES_COLLECTION,
    VALID_STATUSES,
)
from uptime.platform import pipelines
from uptime.platform.probes import zone_known
from uptime.platform.retention import REPORT_WINDOW, stored_horizon
from uptime.platform import limits
from uptime.platform.resources import pipelines_dir
from uptime import timeline
from uptime.report.inputs_v2 import choose_version as choose
from uptime.report.inputs_v2 import prepare_inputs
from uptime.report import windows

#: Most stores in one range of a v3 report run in ranges (``store_ranges``): its ``$group`` by
#: store holds ~1 KB a store (scale 10, measured: 147 MB for 140,920 stores, over MongoDB's
#: 100 MB per stage, so it spilled to disk 3 times); 50,000 stores stay near 52 MB. Not
#: smaller: every range pays one DISTINCT_SCAN of all the stores (0.045 s at scale 1) — the
#: scan cannot be bounded by a let variable in MongoDB 6.0 (an ``$expr`` before it turns it
#: into a fetch of every run).
RANGE_MAX_STORES = 50_000
#: Longest wait (s) for the ranges still running to end after their cancellation
#: (``_run_ranges``; a reader that stopped, a failure in another range).
RANGE_CANCEL_WAIT_S = 2.0
#: Installed versions -> the collection each one aggregates on.
SOURCES: dict[str, str] = {"v1": STATUS_COLLECTION, "v2": RUNS_COLLECTION, "v3": RUNS_COLLECTION}
REPORT_COLUMNS: tuple[str, ...] = (
    "store_id",
    "uptime_last_hour",
    "uptime_last_day",
    "uptime_last_week",
    "downtime_last_hour",
    "downtime_last_day",
    "downtime_last_week",
)

#: Allowance for clock skew between the pollers and the MongoDB server: a poll later than the
#: server's time plus this is a *future poll* (issue 9 item 2), never the default as_of.
CLOCK_SKEW = timedelta(minutes=5)
#: Polls before this instant are out of range (ignored, counted): year 1 is the first Python
#: can represent. Dates from year 10000 on are out of range too; they are always after T.
EARLIEST_POLL = datetime(1, 1, 1, tzinfo=timezone.utc)
_CONTROL_RE = CONTROL_CHARS

_VERSION_RE = re.compile(r"^v[0-9]+$")
_LOOKUP_CHUNK = 20_000  # store ids per $documents batch (keeps commands far below 16 MB)

AsyncDb = Any  # pymongo.asynchronous.database.AsyncDatabase (kept loose for annotations)


def pipeline_tag(version: str = DEFAULT_VERSION) -> str:
    """Return ``"store_uptime@<version>"``: the aggregate ``comment`` and the report's provenance."""
    return f"{PIPELINE_NAME}@{version}"


def default_version() -> str:
    """``DEFAULT_VERSION`` (v2) when the status timeline that v2 reads can be built and kept
    current (``uptime.timeline`` with ``rebuild_runs`` is installed), else ``"v1"``."""
    return DEFAULT_VERSION if hasattr(timeline, "rebuild_runs") else "v1"


def check_version(version: str | None) -> str:
    """Return ``version`` (``None`` -> ``default_version()``) if it is an installed report version.

    Raises:
        ValueError: not one of ``SOURCES`` (the message lists the known versions).
    """
    if version is None:
        return default_version()
    if version not in SOURCES:
        known = ", ".join(sorted(SOURCES))
        raise ValueError(f"unknown report pipeline version {version!r}; known: {known}")
    return version


def version_of_tag(tag: str | None) -> str:
    """``"store_uptime@v1"`` -> ``"v1"``; anything else (older reports) -> ``"v1"``."""
    if isinstance(tag, str) and tag.startswith(f"{PIPELINE_NAME}@") and tag.split("@", 1)[1] in SOURCES:
        return tag.split("@", 1)[1]
    return "v1"


def pipeline_path(version: str = DEFAULT_VERSION):
    """Return the path of ``pipelines/store_uptime.<version>.json``.

    Raises:
        ValueError: ``version`` is not of the form ``v<digits>``.
        FileNotFoundError: no such pipeline version is installed.
    """
    if not _VERSION_RE.match(version):
        raise ValueError(f"pipeline version must look like 'v1', got {version!r}")
    path = pipelines_dir() / f"{PIPELINE_NAME}.{version}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no pipeline {pipeline_tag(version)}: {path} does not exist")
    return path


def load_pipeline(version: str = DEFAULT_VERSION) -> list[dict]:
    """Load a pipeline version as a list of stage documents (Extended JSON via ``bson.json_util``).

    Raises:
        ValueError: bad version string, or the file is not a JSON array of stage documents.
        FileNotFoundError: no such version.
    """
    pipeline_path(version)  # the version's form and presence, with the report's messages
    return pipelines.load(f"{PIPELINE_NAME}.{version}")


def to_utc(moment: datetime) -> datetime:
    """Return ``moment`` as tz-aware UTC truncated to milliseconds (BSON Date precision).

    A naive datetime is taken to be UTC already.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def server_now(db: AsyncDb) -> datetime:
    """The MongoDB server's current time (``hello.localTime``), aware UTC."""
    return to_utc((await db.command("hello"))["localTime"])


async def future_after(db: AsyncDb) -> datetime:
    """Polls later than this are future polls: the server's time plus ``CLOCK_SKEW``."""
    return await server_now(db) + CLOCK_SKEW


async def resolve_as_of(db: AsyncDb, as_of: datetime | None) -> datetime | None:
    """Return the report instant as tz-aware UTC (ms precision).

    ``as_of`` given -> that instant (naive = UTC). ``None`` -> the latest ``timestamp_utc`` in
    ``store_status`` (string store_id, a Date) that is not after the server's time plus
    ``CLOCK_SKEW`` nor before year 1 (issue 9 item 2: later polls are future polls; the
    bounds are in the query, so no Date Python cannot hold is ever decoded), or ``None`` when
    there is no such poll. Uses an index led by ``timestamp_utc`` if one exists, else one
    indexed lookup per store on ``store_id_1_timestamp_utc_1_status_1`` (its prefix).
    """
    if as_of is not None:
        return to_utc(as_of)
    bounded = {"$type": "date", "$gte": EARLIEST_POLL, "$lte": await future_after(db)}
    coll = db[STATUS_COLLECTION]
    has_ts_index = False
    async for index in await coll.list_indexes():
        keys = list(index["key"].keys())
        if keys and keys[0] == "timestamp_utc":
            has_ts_index = True
    latest: datetime | None = None
    if has_ts_index:
        doc = await coll.find_one(
            {"store_id": {"$type": "string"}, "timestamp_utc": bounded},
            {"timestamp_utc": 1},
            sort=[("timestamp_utc", -1)],
        )
        latest = doc["timestamp_utc"] if doc else None
    else:
        async for _store, t in _latest_poll_per_store(
            db, {"timestamp_utc": bounded}, comment=f"{pipeline_tag()}:as_of",
            reported_only=False,  # any string id, as the covered scan of run.mongosh.js
        ):
            latest = t if latest is None or t > latest else latest
    return to_utc(latest) if latest is not None else None


async def _all_store_ids(db: AsyncDb, *, reported_only: bool = True) -> list[str]:
    """Distinct string store ids in store_status, sorted (a DISTINCT_SCAN of the poll index);
    with ``reported_only`` without the ids holding control characters (those stores are
    ignored, issue 9 item 8)."""
    # No filter: a query (even {$type: "string"}) turns the DISTINCT_SCAN into a scan of
    # every poll key (~2 s at 800k polls, measured). Non-string ids are dropped below; a Date
    # outside Python's range decodes as DatetimeMS (the client's DATETIME_AUTO), never raises.
    ids = await db[STATUS_COLLECTION].distinct("store_id")
    return sorted(
        i for i in ids if isinstance(i, str) and not (reported_only and _CONTROL_RE.search(i))
    )


async def _latest_poll_per_store(
    db: AsyncDb, match: dict[str, Any], *, comment: str, reported_only: bool = True
) -> AsyncIterator[tuple[str, datetime]]:
    """Yield ``(store_id, timestamp_utc)`` of each store's latest poll matching ``match``,
    stores in id order, for stores that have one.

    One indexed lookup per store (``$documents`` of the distinct ids, ``$lookup`` with an
    equality on ``store_id``, newest first, limit 1): the store/time index answers each with a
    short backwards scan, where a ``$group`` over all polls would read every one.
    """
    ids = await _all_store_ids(db, reported_only=reported_only)
    for chunk in _chunks(ids, _LOOKUP_CHUNK):
        cursor = await db.aggregate(
            [
                {"$documents": [{"s": s} for s in chunk]},
                {
                    "$lookup": {
                        "from": STATUS_COLLECTION,
                        "localField": "s",
                        "foreignField": "store_id",
                        "as": "l",
                        "pipeline": [
                            {"$match": match},
                            {"$sort": {"timestamp_utc": -1}},
                            {"$limit": 1},
                            {"$project": {"_id": 0, "t": "$timestamp_utc"}},
                        ],
                    }
                },
                {"$unwind": "$l"},
                {"$project": {"_id": 0, "s": 1, "t": "$l.t"}},
            ],
            comment=comment,
        )
        async with cursor:
            async for doc in cursor:
                yield doc["s"], doc["t"]


def _chunks(items: Sequence[str], size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def known_timezones(db: AsyncDb) -> list[str]:
    """Return the distinct ``store_timezones.timezone_str`` values that MongoDB accepts, sorted.

    Each distinct value is tried in a tiny ``$dateToParts`` aggregation on the server itself
    (MongoDB raises on a zone it does not know, e.g. ``US/Chicagoo`` or ``""``); non-strings
    are dropped. The result is the pipeline's ``timezones`` let variable (an allowlist: any
    other value falls back to America/Chicago, rule 5).
    """
    names = await db[TIMEZONES_COLLECTION].distinct(
        "timezone_str", {"timezone_str": {"$type": "string"}}  # other types never decoded
    )
    ok = await asyncio.gather(*(zone_known(db, n) for n in names))
    return sorted(n for n, good in zip(names, ok) if good)


async def report_store_ids(db: AsyncDb, as_of: datetime) -> list[str]:
    """Return the sorted store ids that the report for ``as_of`` has rows for.

    Exactly the stores with at least one poll at or before ``as_of`` (and not before year 1)
    whose status is active or inactive, and whose id has no control character (rule 1).
    One indexed lookup per store (``_latest_poll_per_store``).
    """
    match = {
        "timestamp_utc": {"$type": "date", "$gte": EARLIEST_POLL, "$lte": to_utc(as_of)},
        "status": {"$in": list(VALID_STATUSES)},
    }
    out = [
        store
        async for store, _t in _latest_poll_per_store(
            db, match, comment=f"{pipeline_tag()}:stores"
        )
    ]
    return sorted(out)


async def count_report_stores(db: AsyncDb, as_of: datetime) -> int:
    """Return the number of rows the report for ``as_of`` will have (see ``report_store_ids``)."""
    return len(await report_store_ids(db, as_of))


def report_let(
    as_of: datetime,
    timezones: Sequence[str],
    store_range: tuple[str | None, str | None] = (None, None),
) -> dict[str, Any]:
    """Return the pipeline's ``let`` document: ``as_of`` (Date), ``timezones`` (accepted zone
    names), ``store_from`` (inclusive) and ``store_to`` (exclusive), ``None`` = unbounded."""
    store_from, store_to = store_range
    return {
        "as_of": to_utc(as_of),
        "timezones": list(timezones),
        "store_from": store_from,
        "store_to": store_to,
    }


async def choose_version(
    db: AsyncDb, requested: str | None = None, as_of: datetime | None = None
) -> tuple[str, str]:
    """The pipeline a report runs now and why: ``uptime.report.inputs_v2.choose_version`` (v2
    only on a current timeline, else v1 at once; "v1" -> v1; v2 when the week reaches before
    the retention horizon). A default (or "v3") request that would run v2, ``as_of`` given:
    v3 when ``as_of``'s day is cached (``windows.usable_build``), else v2 and the cache is
    built in the background (``windows.start_build``, never waited for). "v2" runs v2."""
    version, reason = await choose(db, "v2" if requested == "v3" else requested, as_of)
    if version != "v2" or requested == "v2" or as_of is None:
        return version, reason
    if await windows.usable_build(db, as_of) is not None:
        return "v3", f"{reason}; business hours cached for the day"
    windows.start_build(db, as_of, known_timezones)
    return "v2", f"{reason}; business hours of the day not cached yet (building)"


class BeforeHorizonError(ValueError):
    """Report v1 (raw polls) asked for a week that reaches before the retention horizon
    (issue 18): the polls it needs were compacted. ``str()`` says which instants and what to
    do instead."""


async def check_v1_horizon(db: AsyncDb, as_of: datetime) -> None:
    """Refuse a v1 report whose week ``[as_of - 7 d, as_of)`` reaches before the stored
    retention horizon (``uptime.platform.retention.stored_horizon``): v1 reads the raw polls,
    and those before it are gone (the status timeline holds them: v2 answers).

    Raises:
        BeforeHorizonError: the week starts before the horizon.
        pymongo.errors.PyMongoError: a database error.
    """
    horizon = await stored_horizon(db)
    start = to_utc(as_of) - REPORT_WINDOW
    if horizon is not None and start < horizon:
        raise BeforeHorizonError(
            f"pipeline v1 reads the raw polls, and those before the retention horizon "
            f"{horizon.isoformat(timespec='milliseconds')} were removed "
            f"(UPTIME_POLL_RETENTION_DAYS); the week before as_of "
            f"{to_utc(as_of).isoformat(timespec='milliseconds')} starts at "
            f"{start.isoformat(timespec='milliseconds')}: use pipeline v2 (the status "
            f"timeline keeps that history) or an as_of at least 7 days after the horizon")


async def prepare_inputs_for(db: AsyncDb, version: str) -> None:
    """Bring the version's derived inputs up to date before it runs: nothing for v1; for v2
    the status timeline and the schedules (``uptime.report.inputs_v2.prepare_inputs``)."""
    if SOURCES[check_version(version)] != STATUS_COLLECTION:
        await prepare_inputs(db)


async def iter_report_rows(
    db: AsyncDb,
    *,
    as_of: datetime,
    version: str | None = None,
    store_range: tuple[str | None, str | None] = (None, None),
    timezones: Sequence[str] | None = None,
    prepare: bool = True,
    parallel: int = 1,
    on_ranges: Callable[[int], None] | None = None,
) -> AsyncIterator[dict]:
    """Yield the report rows for ``as_of``, sorted by store_id.

    Each row has the ``REPORT_COLUMNS`` keys (``store_id`` str; ``*_last_hour`` minutes,
    ``*_last_day``/``*_last_week`` hours, floats rounded to 2 decimals) plus
    ``timezone_fallback`` (bool: the store has timezone rows but MongoDB knows none of
    them, so America/Chicago was used). ``store_range`` limits the stores to
    ``store_from <= store_id < store_to``. ``timezones`` skips the screening when the
    caller already ran ``known_timezones``.
    ``version`` ``None`` = ``default_version()``; "v3" runs v2 when the day's cached business
    hours no longer fit (``windows.usable_build``: schedules or zones changed since the
    choice). With ``prepare`` (the default) a v2 (or
    default) request runs v2 only when its inputs are current now, else v1 at once
    (``choose_version``: same rows, never a failure or a wait on the timeline, issue 14);
    ``prepare=False`` runs exactly ``version``: the caller has made v2's inputs current.
    v3 without a ``store_range`` runs in store ranges (``store_ranges``), ``parallel`` of them
    at once (issue 19; ``UPTIME_REPORT_PARALLEL``); same rows, same order. ``on_ranges`` is
    called once with the number of aggregations (store ranges) the rows come from.

    Raises:
        ValueError / FileNotFoundError: unknown pipeline version.
        pymongo.errors.PyMongoError: the server failed the aggregation.
    """
    if prepare and version != "v1":
        version, _reason = await choose_version(
            db, None if version is None else check_version(version), as_of)
    version = check_version(version)
    if version == "v1":
        await check_v1_horizon(db, as_of)  # issue 18: its polls may be compacted
    if timezones is None:
        timezones = await known_timezones(db)
    ranges = [store_range]
    build_id = None
    if version == "v3":
        build = await windows.usable_build(db, as_of, timezones, retired_ok=True)
        if build is None:  # schedules or zones changed since the choice: v2 is exact
            version = "v2"
        else:
            build_id = build["_id"]
            if store_range == (None, None):
                ranges = store_ranges(build.get("bounds") or [], parallel)
    stages = load_pipeline(version)
    if on_ranges is not None:
        on_ranges(len(ranges))
    lets = [report_let(as_of, timezones, one) for one in ranges]
    if build_id is not None:
        for let in lets:
            let["build"] = build_id
    docs = _run_ranges(db[SOURCES[version]], stages, lets, pipeline_tag(version), parallel)
    async with contextlib.aclosing(docs):
        async for doc in docs:
            row = {k: doc[k] for k in REPORT_COLUMNS}
            row["timezone_fallback"] = bool(doc.get("timezone_fallback", False))
            yield row


def store_ranges(
    bounds: Sequence[dict[str, Any]], parallel: int, max_stores: int = RANGE_MAX_STORES
) -> list[tuple[str | None, str | None]]:
    """Split every store id into consecutive ``(store_from, store_to)`` ranges (``None`` =
    unbounded; together they cover every string, so a store unknown to ``bounds`` still
    lands in one) for a report run range by range (issue 19: side by side on the server's
    cores, and each range's ``$group`` small enough to stay in memory).

    ``bounds``: a build's ``[{first, stores}, ...]`` (``uptime.report.windows.store_bounds``).
    Aims at ``ceil(stores / max_stores)`` ranges rounded up to a multiple of ``parallel``
    (every slot gets the same share), of about equal size, cut only at the bounds' ``first``
    ids (so at most ``len(bounds)``); one range ``(None, None)`` when ``bounds`` has fewer
    than two entries or one range is asked for.
    """
    total = sum(int(b["stores"]) for b in bounds)
    parallel = max(1, parallel)
    needed = -(-total // max_stores) if total else 1
    wanted = min(-(-needed // parallel) * parallel, len(bounds))
    if wanted <= 1:
        return [(None, None)]
    cuts: list[str] = []
    seen = 0
    for i in range(len(bounds) - 1):
        seen += int(bounds[i]["stores"])
        # cut after bucket i once the stores so far reach the next equal share
        if len(cuts) < wanted - 1 and seen * wanted >= (len(cuts) + 1) * total:
            cuts.append(bounds[i + 1]["first"])
    edges: list[str | None] = [None, *cuts, None]
    return list(zip(edges[:-1], edges[1:]))


async def _run_ranges(
    coll: Any, stages: list[dict], lets: list[dict[str, Any]], tag: str, parallel: int
) -> AsyncIterator[dict]:
    """Yield the rows of ``stages`` run once per ``let`` (store ranges in order), at most
    ``parallel`` at once and in order: a range's rows are held only until yielded, and the
    next range starts once one of the ``parallel`` slots is free again (bounded memory). Every
    aggregation gets what is left of the attempt's limit (``limits.agg_time``, issue 15);
    closing the generator cancels the ranges still running (their cursors killed) and waits
    for them at most :data:`RANGE_CANCEL_WAIT_S`; a reader cancelled while it waits for a
    range is cancelled at once, whatever that range's driver call does.
    """
    async def open_range(let: dict[str, Any]) -> Any:
        return await coll.aggregate(stages, let=let, comment=tag, allowDiskUse=True,
                                    **limits.agg_time())

    if len(lets) == 1:  # one aggregation, streamed
        # closed on the server too when the caller stops early
        async with await open_range(lets[0]) as cursor:
            async for doc in cursor:
                yield doc
        return
    slots = asyncio.Semaphore(max(1, parallel))

    async def one(let: dict[str, Any]) -> list[dict]:
        await slots.acquire()  # released once the consumer has taken the rows
        async with await open_range(let) as cursor:
            return await cursor.to_list()

    tasks = [asyncio.ensure_future(one(let)) for let in lets]
    try:
        for task in tasks:
            # shielded: a reader cancelled here gets its CancelledError at once even if the
            # range's driver call ignores the cancellation passed on to it (awaiting the task
            # itself hands the cancellation to that call and waits for it)
            docs = await asyncio.shield(task)
            slots.release()
            for doc in docs:
                yield doc
    finally:
        for task in tasks:
            task.cancel()
        # at most RANGE_CANCEL_WAIT_S: a driver call to a server that died (kill -9) can
        # outlive its cancellation; it ends on its own limit (maxTimeMS, socket timeouts),
        # and the caller must not hang on it (seen in a clean-clone CI run: the session
        # could not close)
        _done, stuck = await asyncio.wait(tasks, timeout=RANGE_CANCEL_WAIT_S)
        for task in stuck:  # retrieved whenever it ends: no "exception never retrieved"
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
