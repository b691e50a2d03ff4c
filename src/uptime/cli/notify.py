"""``uptime-monitor channels …`` — notification channels from the command line (issue 17,
item 4). Registered in ``uptime.cli`` as the ``channels`` group.

Exit codes: 0 done; 1 ``channels test`` reached the channel but it did not accept the event;
2 bad input (the message names the field), an unknown channel, or no database.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypeVar

import typer
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.table import Table

from uptime.notify import channels as ch
from uptime.notify import maintenance as mw
from uptime.notify import delivery, outbox
from uptime.platform.asof import parse_as_of
from uptime.platform.db import open_database
from uptime.platform.embedded import EmbeddedServerError
from uptime.platform.migrations import MigrationError
from uptime.platform.settings import get_settings

T = TypeVar("T")
out = Console()
err = Console(stderr=True)

channels_app = typer.Typer(
    help="Notification channels (Apprise URLs, or http(s) webhooks signed the Standard "
    "Webhooks way): add, list, test, mute, remove; and the deliveries.",
    no_args_is_help=True,
)


def _run(work: Any) -> T:
    """Open the database, run ``work(db, settings)``; bad input and database trouble end the
    command with exit 2 and one line instead of a traceback."""

    settings = get_settings()

    async def main() -> T:
        async with open_database(settings) as db:
            return await work(db, settings)

    try:
        return asyncio.run(main())
    except ch.ChannelError as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except (EmbeddedServerError, MigrationError) as exc:
        err.print(f"error: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except PyMongoError as exc:
        err.print(f"error: MongoDB: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@channels_app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="Unique name: letters, digits, _ . - (≤ 64)")],
    url: Annotated[str, typer.Argument(
        help="An Apprise URL (slack://…, ntfy://…, mailto://…) or an http(s):// URL for the "
        "generic signed webhook")],
    secret: Annotated[str | None, typer.Option(
        "--secret", help="Standard Webhooks secret whsec_<base64> (http(s) webhooks only)")
    ] = None,
) -> None:
    """Add a notification channel. The URL is checked: other schemes than http(s) or an
    Apprise service, and internal addresses (unless UPTIME_NOTIFY_ALLOW_PRIVATE=true), are
    refused."""
    view = _run(lambda db, s: ch.add_channel(db, name, url, secret,
                                             allow_private=s.notify_allow_private))
    out.print(f"added channel {view['name']} ({view['kind']}): {view['url']}"
              + (" [signed]" if view["has_secret"] else ""), highlight=False, soft_wrap=True)


@channels_app.command("list")
def list_command() -> None:
    """List the channels (URLs redacted, secrets never shown)."""
    views = _run(lambda db, s: ch.list_channels(db))
    table = Table("name", "kind", "url", "signed", "muted", "created_at")
    for v in views:
        table.add_row(v["name"], v["kind"], v["url"], "yes" if v["has_secret"] else "no",
                      "yes" if v["muted"] else "no",
                      v["created_at"].isoformat() if v["created_at"] else "")
    out.print(table)


@channels_app.command("test")
def test_command(name: Annotated[str, typer.Argument(help="The channel's name")]) -> None:
    """Send a test event to a channel now (also when muted) and print the outcome; exit 1
    if the channel did not accept it."""
    attempt = _run(lambda db, s: delivery.send_test(db, name, s))
    detail = (f"HTTP {attempt['status_code']}" if attempt.get("status_code") is not None
              else "")
    if attempt["outcome"] == "delivered":
        out.print(f"delivered test event {attempt['event_id']} to {name} {detail} "
                  f"in {attempt['duration_ms']} ms", highlight=False)
        return
    err.print(f"test event to {name} not delivered: {attempt.get('error') or detail}",
              highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@channels_app.command("remove")
def remove_command(name: Annotated[str, typer.Argument(help="The channel's name")]) -> None:
    """Remove a channel; its pending notifications are skipped."""
    _run(lambda db, s: ch.remove_channel(db, name))
    out.print(f"removed channel {name}", highlight=False)


@channels_app.command("mute")
def mute_command(name: Annotated[str, typer.Argument(help="The channel's name")]) -> None:
    """Mute a channel: its notifications are recorded as skipped (muted), not sent."""
    _run(lambda db, s: ch.set_muted(db, name, True))
    out.print(f"muted channel {name}", highlight=False)


@channels_app.command("unmute")
def unmute_command(name: Annotated[str, typer.Argument(help="The channel's name")]) -> None:
    """Unmute a channel."""
    _run(lambda db, s: ch.set_muted(db, name, False))
    out.print(f"unmuted channel {name}", highlight=False)


@channels_app.command("deliveries")
def deliveries_command(
    name: Annotated[str | None, typer.Argument(help="Only this channel")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="pending|sending|delivered|failed|skipped")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
) -> None:
    """The most recent notifications (outbox), newest first, with their last attempt."""
    rows = _run(lambda db, s: outbox.list_deliveries(db, channel=name, status=status,
                                                     limit=limit))
    table = Table("event_id", "type", "channel", "status", "reason", "attempts", "last")
    for r in rows:
        last = r["last_attempt"] or {}
        table.add_row(r["event_id"], r["type"] or "", r["channel"], r["status"],
                      r["reason"] or "", str(r["attempt_count"]),
                      last.get("error") or (f"HTTP {last['status_code']}"
                                            if last.get("status_code") else ""))
    out.print(table)



# -- maintenance windows -------------------------------------------------------------------
maintenance_app = typer.Typer(
    help="Maintenance windows: incidents inside them are recorded and flagged but not "
    "announced. One-off (a UTC range) or weekly (local time of each store).",
    no_args_is_help=True,
)


@maintenance_app.command("add")
def maintenance_add_command(
    name: Annotated[str, typer.Argument(help="Unique name: letters, digits, _ . - (≤ 64)")],
    start: Annotated[str | None, typer.Option(
        "--start", help="One-off: start, ISO 8601 (no offset = UTC)")] = None,
    end: Annotated[str | None, typer.Option(
        "--end", help="One-off: end (exclusive), ISO 8601 (no offset = UTC)")] = None,
    days: Annotated[str | None, typer.Option(
        "--days", help="Weekly: weekdays, comma-separated, 0 = Monday … 6 = Sunday")] = None,
    from_: Annotated[str | None, typer.Option(
        "--from", help="Weekly: local start HH:MM")] = None,
    to: Annotated[str | None, typer.Option(
        "--to", help="Weekly: local end HH:MM (≤ --from: ends the next day; 24:00 = midnight)")
    ] = None,
    store: Annotated[list[str] | None, typer.Option(
        "--store", help="Only this store (repeat for several); default: every store")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Free text")] = None,
) -> None:
    """Add a maintenance window: one-off with --start and --end, or weekly with --days,
    --from and --to (each store's local time)."""

    once = start is not None or end is not None
    weekly = days is not None or from_ is not None or to is not None
    if once == weekly or (once and (start is None or end is None)) or (
            weekly and (days is None or from_ is None or to is None)):
        err.print("error: give either --start and --end (one-off) or --days, --from and --to "
                  "(weekly)", highlight=False)
        raise typer.Exit(2)
    if once:
        try:
            begin, finish = parse_as_of(start), parse_as_of(end)
        except ValueError as exc:
            err.print(f"error: --start/--end: {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        view = _run(lambda db, s: mw.add_once(db, name, begin, finish, stores=store or None,
                                              note=note))
    else:
        try:
            day_list = [int(d) for d in days.split(",") if d.strip()]
        except ValueError:
            err.print("error: --days must be comma-separated numbers 0..6", highlight=False)
            raise typer.Exit(2) from None
        view = _run(lambda db, s: mw.add_weekly(db, name, day_list, from_, to,
                                                stores=store or None, note=note))
    out.print(f"added maintenance window {view['name']} ({view['kind']})", highlight=False)


@maintenance_app.command("list")
def maintenance_list_command() -> None:
    """List the maintenance windows."""

    views = _run(lambda db, s: mw.list_windows(db))
    table = Table("name", "kind", "when", "stores", "note")
    for v in views:
        when = (f"{v['start'].isoformat()} → {v['end'].isoformat()}" if v["kind"] == "once"
                else f"days {','.join(map(str, v['days']))} {v['start_local']}-{v['end_local']}"
                " local")
        table.add_row(v["name"], v["kind"], when,
                      "all" if v["stores"] is None else ",".join(v["stores"])[:60],
                      v["note"] or "")
    out.print(table)


@maintenance_app.command("remove")
def maintenance_remove_command(
    name: Annotated[str, typer.Argument(help="The window's name")],
) -> None:
    """Remove a maintenance window."""

    _run(lambda db, s: mw.remove_window(db, name))
    out.print(f"removed maintenance window {name}", highlight=False)
