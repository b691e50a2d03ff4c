"""A child process running the live incident detector until killed (tests of issue 17 item 7):
``python tests/support/detector_child.py URI DATABASE AS_OF_ISO STORE...`` evaluates the given
stores as of AS_OF, tick after tick, printing ``tick`` after each."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from uptime.incidents.detector import Detector
from uptime.platform.db import make_client
from uptime.platform.settings import Settings


async def main(uri: str, name: str, as_of: str, stores: list[str]) -> None:
    client = make_client(uri)
    db = client[name]
    detector = Detector(db, Settings(mongodb_uri=uri, mongodb_database=name))
    detector.started = datetime.fromisoformat(as_of)
    detector._replset = True  # the test server is a (single-node) replica set
    print("ready", flush=True)
    while True:
        detector.note(stores)
        await detector.tick(datetime.fromisoformat(as_of))
        print("tick", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
