"""Names and rules shared by several packages, each defined here once.

Collections (MongoDB collection names), the valid poll statuses, the control-character rule
for store ids (issue 9 item 8: C0 controls and DEL; the pipelines' stage 1 and
``pipelines/checks/`` state the same class), the fallback time zone (rule 4) and the report
pipeline's name and default version.
"""

from __future__ import annotations

import re

#: polls: ``{store_id, timestamp_utc, status}`` (input)
STATUS_COLLECTION = "store_status"
#: business hours rows (input)
HOURS_COLLECTION = "store_hours"
#: store time zones (input)
TIMEZONES_COLLECTION = "store_timezones"
#: the status timeline (derived, ``uptime.timeline``)
RUNS_COLLECTION = "status_runs"
#: business-hour intervals per store (derived, ``uptime.ingest.schedules``)
SCHEDULES_COLLECTION = "store_schedules"
#: what ``store_schedules`` was last proven current against (``uptime.ingest.schedules``)
SCHEDULES_STATE_COLLECTION = "store_schedules_state"
#: business-hour intervals per store for one UTC day's report windows (derived, a cache:
#: ``uptime.report.windows``); its builds and the schedules' version in ``WINDOW_BUILDS``
WINDOWS_COLLECTION = "schedule_windows"
WINDOW_BUILDS_COLLECTION = "schedule_window_builds"
#: ``_id`` of the document in ``WINDOW_BUILDS_COLLECTION`` counting changes of
#: ``store_schedules`` (``n``, bumped by ``uptime.ingest.schedules`` after every write)
SCHEDULES_VERSION_ID = "@schedules"

#: a poll's status is one of these (rule 1); any other value is ignored and counted
VALID_STATUSES = ("active", "inactive")
#: the zone of a store without a known one (rule 4)
FALLBACK_TIMEZONE = "America/Chicago"
#: store ids containing one of these (C0 controls and DEL: NUL, tab, LF, CR, ...) are refused
#: on input and ignored (counted) by the report
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f]")

#: a runs follower whose heartbeat (``runs_follower.heartbeat``) is older than this many
#: seconds is taken as not running, by every reader (timeline freshness, ``wait_current``,
#: the report's choice of pipeline, ``runs status``, ``/healthz``). A live follower writes it
#: every ``idle_persist_s`` (0.2 s) while idle AND while applying a batch (every second
#: between a standalone server's rebuilds), so 10 s is many missed beats; the one silent
#: stretch, a full rebuild, is marked by ``pending == -1`` and read as "rebuilding", not by
#: age. (Was 10 s here, 30 s in the report and ``/healthz``: a follower
#: stopped 10-30 s ago was "stopped" to freshness yet "alive" to the report's choice.)
HEARTBEAT_STALE_S = 10.0

#: the report pipeline's name: ``pipelines/store_uptime.<version>.json``
PIPELINE_NAME = "store_uptime"
#: the version the service and the CLI run unless asked otherwise (issue 8, item 4)
DEFAULT_VERSION = "v2"

#: the longest the runs follower waits before a batch while the alert path is busy (s):
#: ``uptime.platform.priority`` (issue 17 item 6, alerts before derived state)
FOLLOWER_YIELD_MAX_S = 1.0

#: how long (ms) one read of a "did the inputs change?" change stream waits at the end of the
#: oplog (the schedules check, ``uptime.ingest.schedules``; the data-quality proof,
#: ``uptime.report.quality``): they need only the writes up to now and read on until the
#: stream has passed it, so a short wait (issue 19: 20 ms was most of an idle check)
PROOF_AWAIT_MS = 2
