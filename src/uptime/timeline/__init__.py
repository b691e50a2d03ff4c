"""The status timeline: per-store runs of one status (``status_runs``), kept current from a
change stream on ``store_status`` (issue 8, items 2-3). Public API (names fixed by the round-2
contract): :func:`rebuild_runs`, :func:`recompute_stores`, :func:`wait_current`,
:class:`RunsFollower`."""

from uptime.timeline.follower import RunsFollower, wait_current
from uptime.timeline.runs import rebuild_runs, recompute_stores

__all__ = ["RunsFollower", "rebuild_runs", "recompute_stores", "wait_current"]
