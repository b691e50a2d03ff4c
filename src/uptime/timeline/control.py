"""Who runs the runs follower, and is the timeline current: the public API the report and web
layers use instead of the follower's private registry.

* :func:`start_follower` / :func:`make_follower`: a :class:`RunsFollower` configured from
  :class:`uptime.platform.settings.Settings` (``follow_runs``, ``runs_rebuild_interval``).
* :func:`active_follower`: the follower this process runs on a database, or ``None``.
* :func:`wait_current` (from ``follower``): has it applied every write made before the call.
"""

from __future__ import annotations

from typing import Any

from uptime.platform.settings import Settings, get_settings
from uptime.timeline import follower as _follower
from uptime.timeline.follower import RunsFollower, wait_current

__all__ = ["active_follower", "make_follower", "start_follower", "wait_current"]


def active_follower(db: Any) -> RunsFollower | None:
    """The follower this process runs on ``db`` (same client, same database), or ``None``
    (none started here: ``UPTIME_FOLLOW_RUNS`` false, or a one-off CLI process)."""
    return _follower._ACTIVE.get((id(db.client), db.name))


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
