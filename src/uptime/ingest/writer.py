"""The batched writer of the CSV import: unordered bulk inserts with ``IN_FLIGHT`` batches in
flight while the next is parsed, duplicates counted as already present. Part of
``uptime.ingest.importer``."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from uptime.ingest.rejects import ImportFileError
from uptime.ingest.store import StoreError, insert_unique

#: Insert batches sent but not yet acknowledged (MongoDB works on them while we parse).
IN_FLIGHT = 1

class _Writer:
    """Unordered bulk inserts, ``IN_FLIGHT`` batches in flight while the next one is parsed.

    A duplicate ``_id`` is counted as *already present*. MongoDB handles a batch with
    duplicate-key errors slowly (it retries the batch row by row), so while duplicates are
    common (a re-import, or a collection that already holds rows) the ``_id``s of a batch are
    looked up first (a covered ``_id`` index read) and only the missing rows are inserted.
    """

    def __init__(self, collection: Any, precheck: bool) -> None:
        self.collection = collection
        self.loaded = 0
        self.already_present = 0
        self.precheck = precheck
        self._tasks: deque[asyncio.Task] = deque()

    async def _insert(self, docs: list[dict]) -> None:
        try:
            inserted, present = await insert_unique(
                self.collection, docs, precheck=self.precheck
            )
        except StoreError as exc:
            raise ImportFileError(f"MongoDB refused rows of {self.collection.name}: {exc}") from exc
        self.loaded += inserted
        self.already_present += present
        # Look up the next batch first while more than 1 % of this one was already there.
        self.precheck = present * 100 > len(docs)

    async def submit(self, docs: list[dict]) -> None:
        await self._drain(keep=IN_FLIGHT - 1)
        self._tasks.append(asyncio.create_task(self._insert(docs)))
        await asyncio.sleep(0)  # let it encode and send before we parse on

    async def wait(self) -> None:
        await self._drain(keep=0)

    async def _drain(self, keep: int) -> None:
        """Await the oldest batches until at most ``keep`` are in flight. If one fails, the
        others are cancelled (no inserts go on after the import reported its error)."""
        try:
            while len(self._tasks) > keep:
                await self._tasks.popleft()
        except BaseException:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
            raise


