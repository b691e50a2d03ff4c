"""The status timeline: per-store runs of one status (``status_runs``), kept current from a
change stream on ``store_status`` (issue 8, items 2-3). Public API (names fixed by the round-2
contract): :func:`rebuild_runs`, :func:`recompute_stores`, :func:`wait_current`,
:class:`RunsFollower`; and for every reader of the runs (issue 14: derived state never makes
the main job fail or wait) :func:`timeline_freshness` -> :class:`Freshness` (is it current,
waiting at most a budget?) and :func:`running_follower` (this process's follower)."""

from uptime.timeline.follower import RunsFollower, running_follower
from uptime.timeline.freshness import Freshness, timeline_freshness, wait_current
from uptime.timeline.runs import rebuild_runs, recompute_stores

__all__ = ["Freshness", "RunsFollower", "rebuild_runs", "recompute_stores", "running_follower",
           "timeline_freshness", "wait_current"]
