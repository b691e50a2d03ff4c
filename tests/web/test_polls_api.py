"""``POST /polls`` (issue 8 item 1): JSON array and NDJSON, the importer's validation and
``_id``, idempotent retries, per-item rejects, limits (413), media type (415), malformed JSON
(400 naming the position), the bearer token; against a real mongod through the app's lifespan.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from support.app import running_app
from uptime.ingest.importer import import_file
from uptime.platform.pollkey import poll_key

NDJSON = {"content-type": "application/x-ndjson"}


app_client = running_app  # the in-process app (tests/support/app.py), settings overrides as kwargs


def poll(sid, ts="2024-05-06T12:00:00Z", status="active") -> dict:
    return {"store_id": sid, "timestamp_utc": ts, "status": status}


async def test_json_array_stores_valid_items_and_lists_rejects(db, settings) -> None:
    """Rule: valid items are stored even when others are rejected; each reject names its
    index and reason; normalisation as the importer (status lower-cased, offset -> UTC)."""
    items = [
        poll("s1"),
        poll("s2", "2024-05-06 14:00:00+02:00", " Inactive "),
        poll("s3", "yesterday"),
        {"store_id": 123, "timestamp_utc": "2024-05-06T12:00:00Z", "status": "active"},
        poll("a\rb"),
        poll("s4", status="up"),
        {"store_id": "s5", "status": "active"},
        "s6,active,2024-05-06",
        poll("8.139926242460185E+018"),
    ]
    async with app_client(settings) as http:
        resp = await http.post("/polls", json=items)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["received"], body["stored"], body["already_present"], body["rejected"]) == (
        9, 2, 0, 7
    )
    reasons = {r["index"]: r["reason"] for r in body["rejects"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8]
    assert "unparseable timestamp 'yesterday'" in reasons[2]
    assert "store_id is a JSON number, expected a string" in reasons[3]
    assert "carriage return" in reasons[4]
    assert "status 'up'" in reasons[5]
    assert "missing field(s): timestamp_utc" in reasons[6]
    assert "item is a JSON string, expected an object" in reasons[7]
    assert "scientific" in reasons[8]
    docs = await db.store_status.find().sort("store_id").to_list()
    assert docs == [
        {"_id": poll_key("s1", datetime(2024, 5, 6, 12, tzinfo=UTC), "active"), "store_id": "s1",
         "timestamp_utc": datetime(2024, 5, 6, 12, tzinfo=UTC), "status": "active"},
        {"_id": poll_key("s2", datetime(2024, 5, 6, 12, tzinfo=UTC), "inactive"), "store_id": "s2",
         "timestamp_utc": datetime(2024, 5, 6, 12, tzinfo=UTC), "status": "inactive"},
    ]


async def test_retry_adds_nothing_and_matches_import_ids(db, settings, tmp_path: Path) -> None:
    """Rule: one code path with `uptime-monitor import`: polls imported from CSV are 'already present'
    when pushed; a retried request adds nothing; a repeat inside one request counts once."""
    csv_file = tmp_path / "s.csv"
    csv_file.write_text(
        "store_id,status,timestamp_utc\n"
        "8419537941919820732,active,2023-01-22 12:09:39.388884 UTC\n"
    )
    await import_file(db, "status", csv_file)
    items = [
        poll("8419537941919820732", "2023-01-22T12:09:39.388Z"),  # the imported poll
        poll("s1"),
        poll("s1"),  # repeated in the request
    ]
    async with app_client(settings) as http:
        first = (await http.post("/polls", json=items)).json()
        again = (await http.post("/polls", json=items)).json()
    assert (first["stored"], first["already_present"], first["rejected"]) == (1, 2, 0)
    assert (again["stored"], again["already_present"], again["rejected"]) == (0, 3, 0)
    assert await db.store_status.count_documents({}) == 2


async def test_ndjson_lines_blank_lines_and_line_numbers(db, settings) -> None:
    """Rule: NDJSON takes one object per line (blank lines skipped, CRLF fine); a reject names
    its item index and its line."""
    body = (
        orjson.dumps(poll("s1")) + b"\r\n\n"
        + orjson.dumps(poll("s2", status="bogus")) + b"\n"
        + orjson.dumps(poll("s3", status="inactive"))
    )
    async with app_client(settings) as http:
        resp = await http.post("/polls", content=body, headers=NDJSON)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert (got["received"], got["stored"], got["rejected"]) == (3, 2, 1)
    assert got["rejects"] == [
        {"index": 1, "line": 3, "reason": "status 'bogus' is not active/inactive"}
    ]
    assert sorted(await db.store_status.distinct("store_id")) == ["s1", "s3"]


async def test_malformed_bodies_and_media_types(db, settings) -> None:
    """Rule: malformed JSON is a 400 naming line/column (NDJSON: the line); a body that is not
    an array is a 422; another Content-Type is a 415; nothing is stored for any of them."""
    async with app_client(settings) as http:
        bad_json = await http.post(
            "/polls",
            content=b'[\n {"store_id": "s1",}\n]',
            headers={"content-type": "application/json"},
        )
        bad_line = await http.post(
            "/polls", content=orjson.dumps(poll("s1")) + b"\n{oops\n", headers=NDJSON
        )
        not_array = await http.post("/polls", json=poll("s1"))
        text = await http.post("/polls", content=b"s1,active", headers={"content-type": "text/csv"})
        none = await http.post("/polls", content=orjson.dumps([poll("s1")]))
        latin1 = await http.post(
            "/polls", content=b"[]", headers={"content-type": "application/json; charset=latin-1"}
        )
        empty = await http.post("/polls", content=b"", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "line 2, column 19" in bad_json.json()["detail"]
    assert bad_line.status_code == 400 and bad_line.json()["detail"].startswith("line 2:")
    assert not_array.status_code == 422 and "JSON array" in str(not_array.json()["detail"])
    assert text.status_code == 415 and "application/x-ndjson" in text.json()["detail"]
    assert none.status_code == 415
    assert latin1.status_code == 415 and "UTF-8" in latin1.json()["detail"]
    assert empty.status_code == 400
    assert await db.store_status.count_documents({}) == 0


async def test_limits_answer_413(db, settings) -> None:
    """Rule: more items than UPTIME_POLLS_MAX_ITEMS or a body over UPTIME_POLLS_MAX_BYTES is a
    413 and nothing is stored; exactly the maximum is accepted."""
    async with app_client(settings, polls_max_items=3, polls_max_bytes=2048) as http:
        ok = await http.post("/polls", json=[poll(f"s{i}") for i in range(3)])
        many = await http.post("/polls", json=[poll(f"t{i}") for i in range(4)])
        many_nd = await http.post(
            "/polls",
            content=b"\n".join(orjson.dumps(poll(f"t{i}")) for i in range(4)),
            headers=NDJSON,
        )
        big = await http.post("/polls", json=[poll("u" * 3000)])

        async def chunks():  # no Content-Length: the limit applies while reading
            for _ in range(3):
                yield b" " * 1000

        streamed = await http.post(
            "/polls", content=chunks(), headers={"content-type": "application/json"}
        )
    assert ok.status_code == 200 and ok.json()["stored"] == 3
    assert many.status_code == 413 and "4 items; at most 3" in many.json()["detail"]
    assert many_nd.status_code == 413 and "more than 3 items" in many_nd.json()["detail"]
    assert big.status_code == 413 and "at most 2,048" in big.json()["detail"]
    assert streamed.status_code == 413
    assert await db.store_status.count_documents({}) == 3


async def test_bearer_token_applies(db, settings) -> None:
    """Rule: with UPTIME_API_TOKEN set, POST /polls needs the bearer token (401 otherwise)."""
    async with app_client(settings, api_token="sesame") as http:
        denied = await http.post("/polls", json=[poll("s1")])
        allowed = await http.post(
            "/polls", json=[poll("s1")], headers={"authorization": "Bearer sesame"}
        )
    assert denied.status_code == 401
    assert allowed.status_code == 200 and allowed.json()["stored"] == 1
    assert await db.store_status.count_documents({}) == 1


async def test_openapi_documents_both_media_types(settings) -> None:
    """Rule: the OpenAPI document lists /polls with the JSON and NDJSON bodies and its errors."""
    async with app_client(settings) as http:
        spec = (await http.get("/openapi.json")).json()
    op = spec["paths"]["/polls"]["post"]
    assert set(op["requestBody"]["content"]) == {"application/json", "application/x-ndjson"}
    assert {"200", "400", "413", "415", "422"} <= set(op["responses"])


async def test_control_characters_in_pushed_ids_rejected(db, settings) -> None:
    """Issue 9 item 8: ids holding CR, LF, NUL or tab are rejected by POST /polls too, with the
    character named; the formula-like id =1+2 is stored exactly (as by the importer)."""
    items = [poll("a\rb"), poll("a\nb"), poll("\x00\x00s1"), poll("\ts1"), poll("=1+2")]
    async with app_client(settings) as http:
        body = (await http.post("/polls", json=items)).json()
    reasons = [r["reason"] for r in body["rejects"]]
    assert [r["index"] for r in body["rejects"]] == [0, 1, 2, 3]
    for reason, name in zip(reasons, ["carriage return", "line feed", "NUL byte", "tab"]):
        assert name in reason and "control characters" in reason
    assert await db.store_status.distinct("store_id") == ["=1+2"]
