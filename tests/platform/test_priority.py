"""Alerts before derived state (``uptime.platform.priority``, issue 17 item 6): the runs
follower waits while the alert path marks urgent work, never longer than its bound."""

from __future__ import annotations

import asyncio

from uptime.platform import priority


async def test_no_urgent_work_means_no_wait():
    """Rule: without urgent work, yielding returns at once (0.0 s waited)."""
    assert not priority.is_urgent()
    assert await priority.yield_to_urgent(5.0) == 0.0


async def test_yield_waits_until_the_urgent_work_ends():
    """Rule: a yielding task resumes only after the urgent work (nested marks included) has
    ended."""
    order: list[str] = []
    started = asyncio.Event()

    async def alert_path() -> None:
        with priority.urgent():
            with priority.urgent():  # nestable: both must end
                started.set()
                await asyncio.sleep(0.05)
                order.append("inner done")
            await asyncio.sleep(0.05)
            order.append("urgent done")

    task = asyncio.create_task(alert_path())
    await started.wait()
    assert priority.is_urgent()
    await priority.yield_to_urgent(30.0)
    order.append("follower")
    await task
    assert order == ["inner done", "urgent done", "follower"]
    assert not priority.is_urgent()


async def test_yield_is_bounded_and_a_failed_block_releases():
    """Rule: derived state lags, it never stops: with urgent work that does not end, yielding
    returns after its bound; a block that raises still ends its mark."""
    with priority.urgent():
        waited = await priority.yield_to_urgent(0.05)
        assert waited >= 0.05 and priority.is_urgent()
    try:
        with priority.urgent():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not priority.is_urgent()
