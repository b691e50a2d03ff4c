"""Prometheus metrics of the service, defined in one place (issue 10, item 7).

Served by ``GET /metrics`` (``uptime.web.routes.ops``) in the Prometheus text format through the
``prometheus-client`` library's default registry (which also carries the process metrics:
CPU seconds, RSS, open fds). Any module records into these objects; the helpers below are the
hooks the ingest (``POST /polls``, ``uptime-monitor import``) and the runs follower call:

* :func:`record_ingest` — rows stored / already present / rejected, by source;
* :func:`follower_progress` — the follower's lag and events applied (or :func:`watch_follower`,
  which reads the lag from a ``RunsFollower`` at scrape time);
* :func:`report_finished` — a report's outcome, duration, rows and time-zone fallbacks
  (called by the report service).

Names (all prefixed ``uptime_``; durations in seconds, lag in seconds):

==========================================  =========  ======================================
``report_duration_seconds{pipeline,outcome}``  histogram  trigger/claim → Complete or Failed
``reports_total{pipeline,outcome}``            counter    outcome: complete|failed|lease_lost|retried
``report_rows_total{pipeline}``                counter    CSV rows written by complete reports
``report_last_rows{pipeline}``                 gauge      rows of the latest complete report
``report_timezone_fallbacks_total``            counter    stores that fell back to America/Chicago
``report_pipeline_info{pipeline}``             gauge      1 for the default pipeline version
``ingest_rows_total{collection,source,result}`` counter   result: stored|already_present|rejected
``follower_lag_seconds``                       gauge      seconds since the follower last confirmed being current
``follower_events_total``                      counter    change events applied by the follower
``database_up``                                gauge      1 if the last /healthz ping answered
``background_task_failures_total{task}``       counter    background tasks that ended in an error
``notifications_sent_total{kind}``             counter    deliveries acknowledged (kind: webhook|apprise)
``notifications_failed_total{kind,reason}``    counter    notifications given up (reason: permanent|expired)
``notifications_retried_total{kind}``          counter    failed attempts scheduled for a retry
``notification_delivery_seconds{kind}``        histogram  enqueue → delivered (uptime.notify)
==========================================  =========  ======================================
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

REPORT_DURATION = Histogram(
    "uptime_report_duration_seconds",
    "Report generation time, from start of generation to Complete/Failed (seconds).",
    ["pipeline", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300),
)
REPORTS = Counter(
    "uptime_reports_total",
    "Report generations by outcome (complete, failed, lease_lost, retried).",
    ["pipeline", "outcome"],
)
REPORT_ROWS = Counter("uptime_report_rows_total", "Rows written by complete reports.", ["pipeline"])
REPORT_LAST_ROWS = Gauge(
    "uptime_report_last_rows", "Rows of the latest complete report.", ["pipeline"]
)
TIMEZONE_FALLBACKS = Counter(
    "uptime_report_timezone_fallbacks_total",
    "Stores whose time zone MongoDB did not know (America/Chicago used), summed over reports.",
)
PIPELINE_INFO = Gauge(
    "uptime_report_pipeline_info", "1 for the pipeline version reports use by default.",
    ["pipeline"],
)
INGEST_ROWS = Counter(
    "uptime_ingest_rows_total",
    "Rows received by POST /polls or uptime-monitor import, by result (stored, already_present, "
    "rejected).",
    ["collection", "source", "result"],
)
FOLLOWER_LAG = Gauge(
    "uptime_follower_lag_seconds",
    "Runs follower lag: seconds since it last confirmed having applied every store_status write.",
)
FOLLOWER_EVENTS = Counter(
    "uptime_follower_events_total", "store_status change events applied by the runs follower."
)
TIMELINE_DEGRADED = Gauge(
    "uptime_timeline_degraded",
    "1 while the status timeline is not kept live (mode fallback: standalone server, or a full "
    "rebuild in progress), so reports run pipeline v1 (exact, slower); 0 when following a "
    "change stream.",
)
TIMELINE_LAST_REBUILD_AGE = Gauge(
    "uptime_timeline_last_rebuild_age_seconds",
    "Seconds since the last full rebuild of status_runs finished (NaN: none yet).",
)
DATABASE_UP = Gauge("uptime_database_up", "1 if MongoDB answered the last /healthz ping, else 0.")
TASK_FAILURES = Counter(
    "uptime_background_task_failures_total",
    "Background tasks that ended with an exception (each logged as one line).",
    ["task"],
)

NOTIFY_SENT = Counter(
    "uptime_notifications_sent_total", "Notifications delivered (2xx or Apprise success).",
    ["kind"],
)
NOTIFY_FAILED = Counter(
    "uptime_notifications_failed_total",
    "Notifications given up: permanent (a 4xx other than 408/429, a refused address) or "
    "expired (still failing after UPTIME_NOTIFY_MAX_AGE_S).",
    ["kind", "reason"],
)
NOTIFY_RETRIED = Counter(
    "uptime_notifications_retried_total", "Failed delivery attempts scheduled for a retry.",
    ["kind"],
)
NOTIFY_LATENCY = Histogram(
    "uptime_notification_delivery_seconds",
    "Notification latency from enqueue (outbox write) to delivery acknowledged (seconds).",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400),
)

OPEN_INCIDENTS = Gauge(
    "uptime_incidents_open", "Open incidents in the incidents collection (live detector).",
)
DETECTOR_TICK = Histogram(
    "uptime_incident_detector_tick_seconds",
    "Duration of one live incident detector evaluation (seconds).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
DETECTOR_SCHEDULES = Histogram(
    "uptime_incident_detector_schedules_seconds",
    "Duration of one check by the live incident detector that store_schedules is current "
    "(uptime.ingest.schedules.schedules_current, with any refresh it does; seconds).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


def record_ingest(
    collection: str, source: str, *, stored: int = 0, already_present: int = 0, rejected: int = 0
) -> None:
    """Count ingested rows. ``source``: ``"api"`` (POST /polls) or ``"import"`` (CSV file)."""
    for result, n in (
        ("stored", stored), ("already_present", already_present), ("rejected", rejected)
    ):
        if n:
            INGEST_ROWS.labels(collection, source, result).inc(n)


def follower_progress(*, lag_s: float | None = None, events: int = 0) -> None:
    """Record the runs follower's lag (seconds) and the change events it just applied."""
    if lag_s is not None:
        FOLLOWER_LAG.set(max(0.0, lag_s))
    if events:
        FOLLOWER_EVENTS.inc(events)


def watch_follower(follower: object) -> None:
    """Make ``uptime_follower_lag_seconds`` read the runs follower at scrape time: seconds
    since it last confirmed being current (``state["applied_at"]``: after each batch, and
    about every second while idle), so a stalled follower's lag grows; likewise
    ``uptime_timeline_degraded`` (1 in mode ``fallback``) and
    ``uptime_timeline_last_rebuild_age_seconds``. ``/metrics`` and
    ``/healthz`` (``uptime.web.routes.ops``) call it with the follower this process runs."""

    def lag() -> float:
        applied = (getattr(follower, "state", None) or {}).get("applied_at")
        return (datetime.now(UTC) - applied).total_seconds() if applied else float("nan")

    def degraded() -> float:
        state = getattr(follower, "state", None) or {}
        return 1.0 if state.get("mode") == "fallback" or state.get("pending") == -1 else 0.0

    def rebuild_age() -> float:
        at = ((getattr(follower, "state", None) or {}).get("last_rebuild") or {}).get("at")
        return (datetime.now(UTC) - at).total_seconds() if at else float("nan")

    FOLLOWER_LAG.set_function(lag)
    TIMELINE_DEGRADED.set_function(degraded)
    TIMELINE_LAST_REBUILD_AGE.set_function(rebuild_age)


def report_finished(
    pipeline: str,
    outcome: str,
    duration_s: float | None = None,
    *,
    rows: int | None = None,
    fallbacks: int | None = None,
) -> None:
    """Record one report generation: ``outcome`` complete|failed|lease_lost|retried, its
    duration in seconds, and for a complete one its rows and time-zone fallbacks."""
    REPORTS.labels(pipeline, outcome).inc()
    if duration_s is not None:
        REPORT_DURATION.labels(pipeline, outcome).observe(duration_s)
    if rows is not None:
        REPORT_ROWS.labels(pipeline).inc(rows)
        REPORT_LAST_ROWS.labels(pipeline).set(rows)
    if fallbacks:
        TIMEZONE_FALLBACKS.inc(fallbacks)


def exposition() -> tuple[bytes, str]:
    """The current metrics in the Prometheus text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
