"""``store_schedules`` follows ``store_hours``/``store_timezones`` whoever writes them (task H8;
README: derived state makes the main job faster, it never makes it wrong): every reader calls
``ensure_schedules``/``schedules_current`` first, which refreshes exactly the stores changed
since its last proof (replica set: change stream) or rebuilds when it cannot tell (standalone:
fingerprint changed; replica set: no pre-image, lost token); an import rewrites only the
schedules of stores whose rows changed."""

from __future__ import annotations

from support.pipeline import hours, load, zone
from uptime.ingest.importer import import_file
from uptime.ingest.schedules import ensure_schedules, schedules_current

MON_9_17 = {"d": 0, "sh": 9, "sm": 0, "ss": 0, "eh": 17, "em": 0, "es": 0, "ed": 0}


async def _docs(db) -> dict[str, dict]:
    return {d["_id"]: d async for d in db.store_schedules.find()}


async def test_direct_writes_reach_the_schedules_on_both_servers(any_db, server_kind):
    """Rows inserted, updated and deleted straight in MongoDB are in the schedules after the
    next ``ensure_schedules``, on a standalone server (fingerprint -> rebuild) and on a replica
    set (change stream -> refresh of the touched stores only, no rebuild); with nothing
    written the next call rebuilds nothing."""
    db = any_db
    await load(db, hours_rows=[hours("a", 0, "09:00:00", "17:00:00"),
                               hours("b", 1, "09:00:00", "17:00:00")],
               zones=[zone("a", "America/New_York"), zone("c", "Asia/Tokyo")])
    assert await ensure_schedules(db) is True  # first use: built in full
    assert (await schedules_current(db)).rebuilt is False  # nothing written since
    assert set(await _docs(db)) == {"a", "b", "c"}

    await db.store_hours.insert_one(hours("c", 0, "09:00:00", "17:00:00"))
    await db.store_hours.delete_one({"store_id": "b"})
    await db.store_timezones.update_one({"store_id": "a"}, {"$set": {"timezone_str": "UTC"}})
    done = await schedules_current(db)
    docs = await _docs(db)
    assert docs["c"]["hours"] == [MON_9_17] and docs["c"]["zones"] == ["Asia/Tokyo"]
    assert docs.get("b", {"hours": []})["hours"] == []  # no rows: 24x7 (empty schedule or none)
    assert docs["a"]["zones"] == ["UTC"] and docs["a"]["hours"] == [MON_9_17]
    if server_kind == "replset":
        assert (done.rebuilt, done.refreshed) == (False, 3), done
    else:
        assert done.rebuilt is True, done
    assert (await schedules_current(db)).rebuilt is False


async def test_an_event_that_names_no_store_rebuilds(db):
    """A delete whose store cannot be told (pre-images switched off on store_hours by
    someone) is a doubt: the schedules are rebuilt in full, and right."""
    await load(db, hours_rows=[hours("a", 0, "09:00:00", "17:00:00"),
                               hours("a", 1, "09:00:00", "17:00:00")])
    await ensure_schedules(db)
    await db.command({"collMod": "store_hours", "changeStreamPreAndPostImages": {"enabled": False}})
    await db.store_hours.delete_one({"store_id": "a", "dayOfWeek": 1})
    done = await schedules_current(db)
    assert done.rebuilt is True and "pre-image" in done.how, done
    assert (await _docs(db))["a"]["hours"] == [MON_9_17]


async def test_a_lost_token_rebuilds(db):
    """A stored token the server cannot resume from (here a corrupt one; in life one fallen
    off the oplog: the same OperationFailure) rebuilds."""
    await load(db, hours_rows=[hours("a", 0, "09:00:00", "17:00:00")])
    await ensure_schedules(db)
    await db.store_schedules_state.update_one(
        {"_id": "sync"}, {"$set": {"token": {"_data": "00"}}})
    await db.store_hours.insert_one(hours("z", 0, "09:00:00", "17:00:00"))
    done = await schedules_current(db)
    assert done.rebuilt is True, done
    assert (await _docs(db))["z"]["hours"] == [MON_9_17]


async def test_reimport_rewrites_only_changed_stores(db, tmp_path):
    """Item 3: re-importing an unchanged hours file rewrites no schedule (built_at kept);
    a file changing one store's rows rewrites that store's schedule only."""
    await load(db)
    rows = "".join(f"s{i},0,09:00:00,17:00:00\n" for i in range(20))
    header = "store_id,dayOfWeek,start_time_local,end_time_local\n"
    (tmp_path / "h.csv").write_text(header + rows)
    await import_file(db, "hours", tmp_path / "h.csv")
    first = await _docs(db)
    assert len(first) == 20 and first["s3"]["hours"] == [MON_9_17]
    summary = await import_file(db, "hours", tmp_path / "h.csv")
    assert summary.changed_stores == set()
    assert {k: d["built_at"] for k, d in (await _docs(db)).items()} == {
        k: d["built_at"] for k, d in first.items()}
    (tmp_path / "h2.csv").write_text(header + rows.replace("s3,0,", "s3,1,"))
    summary = await import_file(db, "hours", tmp_path / "h2.csv")
    assert summary.changed_stores == {"s3"}
    after = await _docs(db)
    assert after["s3"]["hours"] == [{**MON_9_17, "d": 1}]
    assert [k for k in after if after[k]["built_at"] != first[k]["built_at"]] == ["s3"]


async def test_concurrent_first_rebuilds_on_a_fresh_database(db):
    """Rule: two full rebuilds at once on a database without store_schedules (the live
    detector's start and a request's check, both on a fresh database) both succeed — a
    $merge creating the collection beside another one could fail with MongoDB's "Cannot find
    index to verify that join fields will be unique" (seen in CI) — and give one schedule per
    store."""
    import asyncio

    from uptime.ingest.schedules import rebuild_schedules

    for round_ in range(5):
        await db.drop_collection("store_schedules")
        await db["store_hours"].delete_many({})
        await db["store_hours"].insert_many(
            [hours(f"s{round_}-{i}", 0, "09:00:00", "17:00:00") for i in range(20)])
        done = await asyncio.gather(rebuild_schedules(db), rebuild_schedules(db),
                                    rebuild_schedules(db))
        assert done == [20, 20, 20]
        assert await db["store_schedules"].count_documents({}) == 20
