"""Issue 18 item 5: the 16-byte poll ``_id`` (uptime.platform.pollkey)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from uptime.ingest.validate import PollValidator
from uptime.platform.pollkey import instant_of, poll_key, time_key


def test_key_layout_hand_computed() -> None:
    """Rule: bytes 0-7 = epoch ms + 2**63 big-endian (2024-05-06T12:00Z = 1714996800000 ms),
    bytes 8-15 = BLAKE2b-64 of "<store>\\x00<a|i>"; 16 bytes."""
    key = poll_key("s1", datetime(2024, 5, 6, 12, tzinfo=UTC), "active")
    assert type(key) is bytes and len(key) == 16  # PyMongo: BinData subtype 0
    assert key[:8] == bytes.fromhex("8000018f4dc66a00")  # 0x18f4dc66a00 = 1714996800000
    assert key[8:] == hashlib.blake2b(b"s1\x00a", digest_size=8).digest()
    assert instant_of(key) == datetime(2024, 5, 6, 12, tzinfo=UTC)


def test_same_poll_same_key_and_time_order() -> None:
    """Rule: the key is a function of (store, ms instant, status) — a retried poll is a
    duplicate key; sub-ms digits do not matter (BSON keeps ms); another status or store is
    another key; keys sort by instant first (before 1970 and year 1 included)."""
    t = datetime(2023, 1, 22, 12, 9, 39, 388000, tzinfo=UTC)
    assert poll_key("a", t, "active") == poll_key("a", t + timedelta(microseconds=999), "active")
    assert poll_key("a", t, "active") != poll_key("a", t, "inactive")
    assert poll_key("a", t, "active") != poll_key("b", t, "active")
    old = [datetime(1, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, tzinfo=UTC), t]
    keys = [poll_key("z", m, "active") for m in old]
    assert keys == sorted(keys, key=bytes)
    assert [instant_of(k) for k in keys] == old
    assert time_key(t) <= poll_key("zzz", t, "inactive") < time_key(t + timedelta(milliseconds=1))
    assert instant_of("a|2023-01-22T12:09:39.388|a") is None


def test_validator_makes_the_key() -> None:
    """Rule: the importer and POST /polls (one validator) store the key of the parsed poll."""
    doc = PollValidator()("  s1 ", "Active", "2024-05-06 12:00:00 UTC")
    assert doc["_id"] == poll_key("s1", datetime(2024, 5, 6, 12, tzinfo=UTC), "active")
