"""``uptime-monitor runs rebuild | status | follow`` — the status timeline from the command line
(issue 8, item 3). Registered in ``uptime.cli``; settings ``follow_runs`` and
``runs_rebuild_interval`` of :class:`uptime.platform.settings.Settings`."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import typer
from bson import Timestamp
from rich.console import Console

from uptime.cli.common import _run_db
from uptime.platform.db import open_database
from uptime.platform.settings import get_settings
from uptime.platform.constants import HEARTBEAT_STALE_S, RUNS_COLLECTION
from uptime.timeline.follower import STATE_COLLECTION, STATE_ID, operation_time
from uptime.timeline.control import make_follower
from uptime.timeline.runs import rebuild_runs

out = Console()
runs_app = typer.Typer(
    help="The status timeline (collection status_runs): rebuild it, show the follower's "
    "state, or run the follower.",
    no_args_is_help=True,
)


def _open():
    return open_database(get_settings())


async def _rebuild() -> dict[str, Any]:
    async with _open() as db:
        return await rebuild_runs(db)


@runs_app.command("rebuild")
def rebuild_command() -> None:
    """Rebuild the whole status_runs collection from store_status (one pipeline run)."""
    result = _run_db(_rebuild())
    out.print(f"status_runs rebuilt: {result['runs']:,} runs, {result['deleted']:,} stale runs "
              f"removed, {result['seconds']:.1f} s")


def _ts(value: Any) -> str:
    if isinstance(value, Timestamp):
        return f"{value.as_datetime().strftime('%Y-%m-%dT%H:%M:%SZ')} (inc {value.inc})"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    return "-" if value is None else str(value)


async def status_report(db: Any) -> dict[str, Any]:
    """The follower's state for ``uptime-monitor runs status``: ``running`` (heartbeat fresh),
    ``mode``, ``reason``, ``lag_s`` (server cluster time - applied_until, seconds),
    ``pending_events`` (store_status oplog entries after applied_until; None if unknown),
    ``runs`` and the raw state document."""
    doc = await db[STATE_COLLECTION].find_one({"_id": STATE_ID}) or {}
    now = await operation_time(db)
    until = doc.get("applied_until")
    lag = None
    pending = None
    if isinstance(now, Timestamp) and isinstance(until, Timestamp):
        lag = max(0, now.time - until.time)
        try:
            pending = await db.client["local"]["oplog.rs"].count_documents(
                {"ts": {"$gt": until}, "ns": f"{db.name}.store_status"})
        except Exception:  # noqa: BLE001 - no access to the oplog: unknown
            pending = None
    beat = doc.get("heartbeat")
    running = isinstance(beat, datetime) and (
        datetime.now(UTC) - beat.astimezone(UTC)).total_seconds() <= HEARTBEAT_STALE_S
    return {"running": running, "mode": doc.get("mode"), "reason": doc.get("reason"),
            "lag_s": lag, "pending_events": pending,
            "runs": await db[RUNS_COLLECTION].estimated_document_count(), "state": doc}


async def _status() -> dict[str, Any]:
    async with _open() as db:
        return await status_report(db)


@runs_app.command("status")
def status_command() -> None:
    """Print the follower's mode, lag, last event applied and pending work."""
    s = _run_db(_status())
    d = s["state"]
    if not d:
        out.print("no follower has run on this database yet (status_runs: "
                  f"{s['runs']:,} runs); start one with `uptime-monitor serve` or `uptime-monitor runs follow`")
        return
    beat = d.get("heartbeat")
    out.print(f"follower:      {'running' if s['running'] else 'NOT running'} "
              f"(owner {d.get('owner', '-')}, last heartbeat {_ts(beat)})", highlight=False)
    out.print(f"mode:          {s['mode']} — {s['reason']}", highlight=False)
    rb_at = (d.get("last_rebuild") or {}).get("at")
    age = (datetime.now(UTC) - rb_at.astimezone(UTC)).total_seconds() if isinstance(
        rb_at, datetime) else None
    if s["mode"] == "fallback" or d.get("pending") == -1:
        out.print("timeline:      DEGRADED — not kept live (last rebuild "
                  + ("not finished yet" if age is None else f"{age:.0f} s ago")
                  + "); reports run pipeline v1 (exact, slower) until it is", highlight=False)
    elif s["running"]:
        out.print("timeline:      live — reports run pipeline v2 while it is current",
                  highlight=False)
    else:
        out.print("timeline:      not followed — reports run pipeline v1 (exact, slower); start "
                  "`uptime-monitor serve` or `uptime-monitor runs follow` for v2", highlight=False)
    out.print(f"lag:           {'-' if s['lag_s'] is None else str(s['lag_s']) + ' s'} "
              f"(applied up to {_ts(d.get('applied_until'))})", highlight=False)
    ev = d.get("last_event") or {}
    out.print(f"last event:    {ev.get('op', '-')} store {ev.get('store_id', '-')} at "
              f"{_ts(ev.get('wall'))}", highlight=False)
    pending = s["pending_events"]
    out.print(f"pending:       {'unknown' if pending is None else f'{pending:,}'} store_status "
              f"writes not yet applied; in progress: {d.get('pending', 0)} events", highlight=False)
    lb = d.get("last_batch") or {}
    out.print(f"totals:        {d.get('events', 0):,} events in {d.get('batches', 0):,} batches; "
              f"last batch {lb.get('events', 0)} events / {lb.get('stores', 0)} stores in "
              f"{lb.get('seconds', 0):.3f} s; {d.get('rebuilds', 0)} full rebuilds", highlight=False)
    rb = d.get("last_rebuild")
    if rb:
        out.print(f"last rebuild:  {_ts(rb.get('at'))}, {rb.get('seconds', 0):.1f} s — "
                  f"{rb.get('reason')}", highlight=False)
    out.print(f"status_runs:   {s['runs']:,} runs", highlight=False)


async def _follow() -> None:
    async with _open() as db:
        follower = make_follower(db)
        try:
            await follower.run_forever()
        finally:
            await follower.stop()


@runs_app.command("follow")
def follow_command() -> None:
    """Run the follower in the foreground (Ctrl-C to stop): keeps status_runs current from a
    change stream on store_status (full rebuilds on a standalone server)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out.print("following store_status (Ctrl-C to stop)")
    try:
        _run_db(_follow())
    except KeyboardInterrupt:
        out.print("stopped")
