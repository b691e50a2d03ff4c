"""Run the incident pipeline ``pipelines/incidents.v1.json`` (issue 17, items 1-2).

Definition (issue 17 item 1; the report's rules 1-5 in the README): a store's status timeline
is the report's as of ``as_of`` (nearest poll, midpoint split, one poll per instant with
inactive winning, polls after ``as_of`` ignored, the last status holding up to ``as_of``),
except that it **starts at the store's first poll**. An *incident* is a maximal inactive
stretch of it whose overlap with the store's business hours (rules 3-5: local hours, DST as
``$dateFromParts``, America/Chicago fallback) is ``> 0`` and ``>= min_minutes``.

A row (dict) of :func:`find_incidents`:

* ``store_id`` (str);
* ``started_at`` (aware UTC datetime, ms): the first instant of the stretch inside business
  hours; ``ended_at`` (aware UTC datetime or ``None`` while the stretch reaches ``as_of``):
  the recovery instant (midpoint to the first active poll). Both floored to the millisecond
  (a midpoint can fall on a half millisecond, as ``status_runs``' ``start``/``end``);
* ``business_downtime_minutes`` (float, 2 decimals) and ``business_downtime_ms`` (exact, may
  end in .5): overlap of the stretch with business hours up to ``min(ended_at, as_of)``;
* ``open`` (bool), ``stretch_start`` (UTC, the stretch's own start, possibly outside
  business hours), ``duration_minutes`` (whole stretch up to ``min(ended_at, as_of)``,
  2 decimals), ``inactive_polls`` (distinct inactive poll instants, ``None`` when the stored
  run also holds polls after ``as_of``), ``timezone`` (zone used), ``timezone_fallback``.

Sorted by ``store_id`` (binary order) then ``started_at`` (``order="store"``, the default and
the CSV's order); ``order="longest"``: most business downtime first; ``order="recent"``: latest
``ended_at`` first (an open incident counts as ending at ``as_of``); ties by store_id then
started_at. :func:`find_incident_page` also returns how many incidents match the filters
before paging (``total``, ``open_total``).

Where the runs come from (the rule "derived state never makes the main job wait or fail"):
``status_runs`` when the timeline is current (``uptime.report.inputs_v2.timeline_ready``,
the decision reports take too: at most 2 s, far below what the polls path costs), else — a lagging or rebuilding
follower, none running, a standalone server — every store's runs are derived on the fly from
``store_status`` inside the same pipeline (``source="polls"``: the run-derivation stages of
``pipelines/status_runs.v1.json``, spliced in at load time by :func:`load_pipeline`, so that
rule keeps one home). ``poll_stores`` (a list of store ids) lets a caller that knows which
stores are pending in the timeline derive only those from polls while the rest is read from
``status_runs`` (``source="runs"``). ``source="stores"`` reads nothing but the ``poll_stores`` (each derived
from its own polls through one indexed ``$lookup``): the live detector
(``uptime.incidents.detector``) evaluates the few stores it watches this way.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from uptime.ingest.schedules import ensure_schedules
from uptime.platform.retention import stored_horizon
from uptime.platform import pipelines
from uptime.report.csvout import protect
from uptime.report.inputs_v2 import timeline_ready
from uptime.report.pipeline import known_timezones, resolve_as_of, to_utc
from uptime.timeline.runs import load_runs_pipeline

PIPELINE_NAME = "incidents.v1"
PIPELINE_TAG = "incidents@v1"
#: the stage marker in incidents.v1.json replaced by status_runs.v1.json's derivation stages
SPLICE_MARKER = "$runsFromPolls"
#: the CSV header of ``uptime-monitor incidents`` (issue 17 item 2, exact)
CSV_COLUMNS = ("store_id", "started_at", "ended_at", "business_downtime_minutes")

Source = Literal["runs", "polls", "stores"]
#: result orders (the pipeline's ``order`` variable)
Order = Literal["store", "longest", "recent"]
ORDERS: tuple[str, ...] = ("store", "longest", "recent")
AsyncDb = Any  # pymongo.asynchronous.database.AsyncDatabase


def derivation_stages() -> list[dict]:
    """The run-derivation stages of ``pipelines/status_runs.v1.json``, for polls that are
    already selected: its first ``$match`` without the ``$expr`` (the valid-poll rule:
    string id without control characters, Date in range, status active/inactive; the mode
    and store range of that file do not apply here), then every later stage except the
    recompute-only ``$unionWith`` stages and the final ``$merge``, with ``batch`` dropped
    from the contract ``$project``. Output: runs in the ``status_runs`` contract shape."""
    main = copy.deepcopy(load_runs_pipeline())
    first = {k: v for k, v in main[0]["$match"].items() if k != "$expr"}
    out = [{"$match": first}]
    for stage in main[1:]:
        name = next(iter(stage))
        if name in ("$unionWith", "$merge"):
            continue
        if name == "$project" and "batch" in stage[name]:
            stage[name].pop("batch")
        out.append(stage)
    return out


def _splice(stages: list[Any], derive: list[dict]) -> list[Any]:
    out: list[Any] = []
    for stage in stages:
        if isinstance(stage, dict) and SPLICE_MARKER in stage:
            out.extend(copy.deepcopy(derive))
            continue
        if isinstance(stage, dict) and "$unionWith" in stage and "pipeline" in stage["$unionWith"]:
            stage = {"$unionWith": {**stage["$unionWith"],
                                    "pipeline": _splice(stage["$unionWith"]["pipeline"], derive)}}
        out.append(stage)
    return out


@functools.lru_cache(maxsize=1)
def _load() -> list[dict]:
    return _splice(pipelines.load(PIPELINE_NAME), derivation_stages())


def load_pipeline() -> list[dict]:
    """``pipelines/incidents.v1.json`` with every ``{"$runsFromPolls": ...}`` marker replaced
    by :func:`derivation_stages` (a fresh copy each call).

    Raises:
        FileNotFoundError: a pipeline file is not installed.
        ValueError: a file is not a JSON array of single-key stage documents.
    """
    return copy.deepcopy(_load())


def incidents_let(
    *,
    as_of: datetime,
    min_minutes: float,
    timezones: Sequence[str],
    source: Source = "runs",
    poll_stores: Sequence[str] | None = None,
    store_range: tuple[str | None, str | None] = (None, None),
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    open: bool | None = None,  # noqa: A002 - the API's filter name
    skip: int = 0,
    limit: int | None = None,
    order: Order = "store",
) -> dict[str, Any]:
    """The pipeline's ``let`` document (every variable; see the sidecar's Parameters).

    Raises:
        ValueError: ``order`` is not one of :data:`ORDERS`.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    return {
        "as_of": to_utc(as_of),
        "min_minutes": float(min_minutes),
        "timezones": list(timezones),
        "source": source,
        "poll_stores": list(poll_stores or []),
        "store_from": store_range[0],
        "store_to": store_range[1],
        "from": None if started_from is None else to_utc(started_from),
        "to": None if started_to is None else to_utc(started_to),
        "open": open,
        "skip": int(skip),
        "limit": None if limit is None else int(limit),
        "order": order,
    }


async def timeline_current(db: AsyncDb) -> bool:
    """True when ``status_runs`` holds every acknowledged poll write, within the report's
    budget (``uptime.report.inputs_v2.timeline_ready``: 0.2-2 s; a follower resumed from its
    token when none runs). False on a standalone server, while a follower rebuilds, or after
    the budget while it lags."""
    current, _ = await timeline_ready(db)
    return current


async def choose_source(db: AsyncDb) -> tuple[Source, list[str]]:
    """Where the runs come from: ``("runs", [])`` when the timeline is current, else
    ``("polls", [])`` (every store derived from ``store_status``).

    Plug-in point for a "which stores are pending" API: return ``("runs", pending)`` when
    only a few stores are pending (each costs one indexed ``$lookup`` of its polls), and
    ``("polls", [])`` when it cannot tell or too many are pending.

    After a compaction (issue 18: a stored retention horizon) the polls before the horizon are
    gone, so the runs are the source even when the timeline is not current (exact before the
    horizon; after it as of the timeline's last applied write)."""
    if await timeline_current(db) or await stored_horizon(db) is not None:
        return ("runs", [])
    return ("polls", [])


def store_range_of(store_id: str | None) -> tuple[str | None, str | None]:
    """``store_id`` -> the half-open id range holding exactly that store (``(None, None)``:
    every store)."""
    return (None, None) if store_id is None else (store_id, store_id + "\u0000")


async def find_incidents(
    db: AsyncDb,
    as_of: datetime | None,
    min_minutes: float,
    **filters: Any,
) -> list[dict[str, Any]]:
    """The incidents as of ``as_of`` (UTC; ``None`` = the report's default, the latest poll
    not after the server's time + 5 min; no polls -> ``[]``), shape in the module doc: the
    rows of :func:`find_incident_page` (same keyword filters, errors and order) without the
    totals."""
    rows, _ = await find_incident_page(db, as_of, min_minutes, **filters)
    return rows


async def find_incident_page(
    db: AsyncDb,
    as_of: datetime | None,
    min_minutes: float,
    *,
    store_id: str | None = None,
    open: bool | None = None,  # noqa: A002
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    limit: int | None = None,
    skip: int = 0,
    source: Source | None = None,
    poll_stores: Sequence[str] | None = None,
    timezones: Sequence[str] | None = None,
    prepare: bool = True,
    order: Order = "store",
) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    """A page of the incidents as of ``as_of`` (UTC; ``None`` = the report's default, the
    latest poll not after the server's time + 5 min) and the counts of the whole result:
    ``(rows, {"total": n, "open_total": m})`` — ``n`` incidents match the filters before
    ``skip``/``limit``, ``m`` of them open. The counts are ``{"total": 0, "open_total": 0}``
    when nothing matches (or there are no polls) and ``None`` when the page is empty only
    because ``skip`` is past the end (the pipeline carries them on each row). Row shape in
    the module doc; ``order`` (:data:`ORDERS`) sorts the whole result before paging.

    Filters: ``store_id`` (one store), ``open`` (True: only open, False: only ended),
    ``started_from``/``started_to``: incidents **overlapping** ``[started_from,
    started_to)`` (``started_at < started_to`` and, if ended, ``ended_at > started_from``;
    an open one reaches ``as_of``). ``skip``/``limit``: a page of the sorted result.
    ``min_minutes`` in minutes (>= 0). ``source``/``poll_stores``: where runs come from
    (default :func:`choose_source`). ``prepare``: make ``store_schedules`` ready first.

    Raises:
        ValueError: ``min_minutes`` < 0, ``skip`` < 0, ``limit`` < 0, an unknown ``order``.
        pymongo.errors.PyMongoError: the server failed the aggregation (a time limit set by
            the caller with ``pymongo.timeout`` included).
    """
    if min_minutes < 0:
        raise ValueError(f"min_minutes must be >= 0, got {min_minutes}")
    if skip < 0 or (limit is not None and limit < 0):
        raise ValueError("skip and limit must be >= 0")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    as_of = await resolve_as_of(db, as_of)
    if as_of is None:
        return [], {"total": 0, "open_total": 0}
    if limit == 0:
        return [], None
    if prepare:

        await ensure_schedules(db)
    if source is None:
        source, chosen = await choose_source(db)
        poll_stores = chosen if poll_stores is None else poll_stores
    if timezones is None:
        timezones = await known_timezones(db)
    let = incidents_let(
        as_of=as_of, min_minutes=min_minutes, timezones=timezones, source=source,
        poll_stores=poll_stores, store_range=store_range_of(store_id),
        started_from=started_from, started_to=started_to, open=open, skip=skip, limit=limit,
        order=order,
    )
    cursor = await db["status_runs"].aggregate(
        load_pipeline(), let=let, comment=f"{PIPELINE_TAG}:{source}", allowDiskUse=True
    )
    async with cursor:
        rows = [_row(doc) for doc in await cursor.to_list()]
    counts = None
    for row in rows:
        counts = {"total": row.pop("total"), "open_total": row.pop("open_total")}
    if not rows and skip == 0:
        counts = {"total": 0, "open_total": 0}
    return rows, counts


def _row(doc: dict[str, Any]) -> dict[str, Any]:
    # The application's clients decode Dates as aware UTC with whole milliseconds already
    # (``uptime.platform.db``): those are kept as they are (to_utc would rebuild the same value;
    # 3 fields x 19,520 rows cost ~0.05 s of CPU at scale 1, half the floor's). Anything else
    # (a naive client, another zone) goes through to_utc.
    for key in ("started_at", "ended_at", "stretch_start"):
        value = doc.get(key)
        if isinstance(value, datetime) and (value.tzinfo is not timezone.utc
                                            or value.microsecond % 1000):
            doc[key] = to_utc(value)
    return doc


def iso_ms(moment: datetime | None) -> str:
    """``2024-03-04T12:37:23.844Z`` (UTC, milliseconds); ``None`` -> ``""``."""
    if moment is None:
        return ""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def csv_cells(row: dict[str, Any]) -> list[str]:
    """A row as the CSV's four cells (``CSV_COLUMNS``): the store id protected against
    spreadsheet formulas as in the report (``uptime.report.csvout.protect``), times by
    :func:`iso_ms`, minutes with 2 decimals."""

    return [protect(row["store_id"]), iso_ms(row["started_at"]), iso_ms(row["ended_at"]),
            f"{row['business_downtime_minutes']:.2f}"]
