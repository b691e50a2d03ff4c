"""Who runs the runs follower, and is the timeline current: the public API the report and web
layers use instead of the follower's private registry.

* :func:`start_follower` / :func:`make_follower`: a :class:`RunsFollower` configured from
  :class:`uptime.platform.settings.Settings` (``follow_runs``, ``runs_rebuild_interval``).
* :func:`running_follower`: the follower this process runs on a database, or ``None``.
* :func:`wait_current` (from ``freshness``): has it applied every write made before the call.
* :func:`timeline_freshness` -> :class:`Freshness` (from ``freshness``): is the timeline current
  now, waiting at most a budget, and if not why (lagging, rebuilding, stopped, standalone) —
  what every reader of the runs asks before trusting them (issue 14).
"""

from __future__ import annotations

from typing import Any

from uptime.platform.settings import Settings, get_settings
from uptime.timeline.follower import RunsFollower, running_follower
from uptime.timeline.freshness import Freshness, timeline_freshness, wait_current

__all__ = ["Freshness", "make_follower", "running_follower", "start_follower",
           "timeline_freshness", "wait_current"]


def make_follower(db: Any, settings: Settings | None = None) -> RunsFollower:
    """A :class:`RunsFollower` configured from ``settings`` (default: the environment)."""
    settings = settings or get_settings()
    return RunsFollower(db, standalone_interval_s=settings.runs_rebuild_interval)


async def start_follower(db: Any, settings: Settings | None = None) -> RunsFollower | None:
    """For the API lifespan: start a follower unless ``settings.follow_runs`` (env
    ``UPTIME_FOLLOW_RUNS``) is false; ``None`` then."""
    settings = settings or get_settings()
    if not settings.follow_runs:
        return None
    follower = make_follower(db, settings)
    await follower.start()
    return follower
