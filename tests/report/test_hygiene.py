"""Issue 9 (output side and API hygiene): bad stored data never crashes a report and is counted;
``uptime-monitor check``; as_of forms; spreadsheet-safe CSV; queue bound; body limit; OpenAPI.

Every value below is the issue's own; each test failed before the change.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from bson import DatetimeMS
from pymongo import MongoClient
from typer.testing import CliRunner

from support.app import poll_until_done, running_app
from uptime.cli import app as cli_app
from uptime.report import csvout, generation, pipeline, quality, storage
from uptime.report.service import ReportService

T0 = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)
YEAR_10000 = DatetimeMS(253402300800000)  # 10000-01-01T00:00:00Z: no Python datetime holds it
BEFORE_YEAR_1 = DatetimeMS(-62135596800000 - 86_400_000)  # 0000-12-31T00:00:00Z

#: One document of each bad kind, by (collection, reason).
BAD = {
    ("store_status", "store_id_not_string"): {"store_id": 12345, "timestamp_utc": T0, "status": "active"},
    ("store_status", "store_id_control_chars"): {"store_id": "a\rb", "timestamp_utc": T0, "status": "active"},
    ("store_status", "timestamp_not_date"): {"store_id": "g", "timestamp_utc": "2024-03-12 14:00:00", "status": "active"},
    ("store_status", "timestamp_out_of_range"): {"store_id": "B", "status": "active", "timestamp_utc": YEAR_10000},
    ("store_status", "status_unknown"): {"store_id": "g", "timestamp_utc": T0 - timedelta(hours=1), "status": "Active"},
    ("store_status", "future_poll"): None,  # built per test: the server's time + 1 day
    ("store_hours", "store_id_not_string"): {"store_id": 7, "dayOfWeek": 0, "start_time_local": "09:00:00", "end_time_local": "17:00:00"},
    ("store_hours", "day_of_week_invalid"): {"store_id": "g", "dayOfWeek": "Monday", "start_time_local": "09:00:00", "end_time_local": "17:00:00"},
    ("store_hours", "time_invalid"): {"store_id": "g", "dayOfWeek": 1, "start_time_local": 900, "end_time_local": "17:00:00"},
    ("store_timezones", "store_id_not_string"): {"store_id": 3, "timezone_str": "America/New_York"},
    ("store_timezones", "timezone_unknown"): {"store_id": "z", "timezone_str": "US/Chicagoo"},
}


def good_docs() -> dict[str, list[dict]]:
    """Store g: active at T0-2h and T0, inactive at T0-1h; Monday 09-17 in New York."""
    return {
        "store_status": [
            {"store_id": "g", "timestamp_utc": T0 - timedelta(hours=2), "status": "active"},
            {"store_id": "g", "timestamp_utc": T0 - timedelta(hours=1), "status": "inactive"},
            {"store_id": "g", "timestamp_utc": T0, "status": "active"},
        ],
        "store_hours": [{"store_id": "g", "dayOfWeek": 1, "start_time_local": "09:00:00",
                         "end_time_local": "17:00:00"}],
        "store_timezones": [{"store_id": "g", "timezone_str": "America/New_York"}],
    }


async def seed(db, *, good: bool = True, bad: bool = True) -> None:
    """The good store (``good``) and one document of each bad kind (``bad``)."""
    if good:
        for name, docs in good_docs().items():
            await db[name].insert_many(docs)
    if bad:
        future = await pipeline.server_now(db) + timedelta(days=1)
        for (name, _reason), doc in BAD.items():
            if doc is None:
                doc = {"store_id": "g", "timestamp_utc": future, "status": "active"}
            await db[name].insert_one(dict(doc))


def ignored_map(counts) -> dict[tuple[str, str], int]:
    return {(c["collection"], c["reason"]): c["count"] for c in counts}


# ------------------------------------------------------------------ items 2, 5, 8: the report


async def test_bad_documents_are_ignored_counted_and_never_crash(db, settings):
    """Items 2, 5, 8: with a Date in year 10000 (store B), a future poll, a control-character
    id and the other bad kinds beside ordinary polls, the default report completes for
    as_of = the latest ordinary poll (T0), its CSV equals the report without the bad documents,
    and it records each bad document once, by collection and reason."""
    await seed(db, bad=False)
    service = ReportService(db, settings)
    await service.start(recover=False, background=False)
    try:
        clean = await service.wait(await service.trigger(None))
        clean_csv = await _csv(db, clean)
        await seed(db, good=False, bad=True)
        doc = await service.wait(await service.trigger(None))
    finally:
        await service.stop()
    assert doc["status"] == storage.COMPLETE, doc.get("error")
    assert doc["as_of"] == T0
    assert await _csv(db, doc) == clean_csv
    assert clean_csv.splitlines()[1].startswith("g,")
    assert ignored_map(doc["ignored"]) == {key: 1 for key in BAD}


async def generate(db, settings, as_of):
    """One report through the report service (as the CLI does); its final document."""
    service = ReportService(db, settings)
    await service.start(recover=False, background=False)
    try:
        return await service.wait(await service.trigger(as_of))
    finally:
        await service.stop()


async def _csv(db, doc) -> str:
    out = io.BytesIO()
    await storage.write_csv(db, doc["file_id"], out)
    return out.getvalue().decode()


async def test_poll_before_year_1_is_ignored_by_the_pipeline(db):
    """Item 5/8: a stored Date before year 1 is out of range: store "old" whose only poll it is
    has no row (v1's first $match bounds timestamp_utc), and the poll is counted."""
    await db.store_status.insert_many([
        {"store_id": "old", "timestamp_utc": BEFORE_YEAR_1, "status": "inactive"},
        {"store_id": "g", "timestamp_utc": T0, "status": "active"},
        {"store_id": "=1+2", "timestamp_utc": T0, "status": "active"},
    ])
    rows = [r async for r in pipeline.iter_report_rows(db, as_of=T0)]
    assert [r["store_id"] for r in rows] == ["=1+2", "g"]
    assert await pipeline.report_store_ids(db, T0) == ["=1+2", "g"]
    counts = ignored_map(await quality.ignored_counts(db, as_of=T0))
    assert counts[("store_status", "timestamp_out_of_range")] == 1
    assert sum(counts.values()) == 1


async def test_default_as_of_skips_future_polls(db):
    """Item 2: the default as_of is the latest poll not after the server's time + 5 min: a poll
    1 minute ahead (clock skew) is the as_of; one 10 minutes ahead and one in year 10000 are
    not, and resolving never decodes them."""
    now = await pipeline.server_now(db)
    await db.store_status.insert_many([
        {"store_id": "g", "timestamp_utc": T0, "status": "active"},
        {"store_id": "B", "timestamp_utc": YEAR_10000, "status": "active"},
    ])
    assert await pipeline.resolve_as_of(db, None) == T0
    await db.store_status.insert_one(
        {"store_id": "g", "timestamp_utc": now + timedelta(minutes=10), "status": "active"})
    assert await pipeline.resolve_as_of(db, None) == T0
    skewed = now + timedelta(minutes=1)
    await db.store_status.insert_one({"store_id": "h", "timestamp_utc": skewed, "status": "active"})
    assert await pipeline.resolve_as_of(db, None) == skewed


async def test_dates_in_id_and_zone_fields_are_never_decoded(db):
    """Item 2: a year-10000 Date written as a store_id or as a timezone_str does not fail the
    report (the distinct look-ups select strings on the server) and is counted."""
    await db.store_status.insert_many([
        {"store_id": YEAR_10000, "timestamp_utc": T0, "status": "active"},
        {"store_id": "g", "timestamp_utc": T0, "status": "active"},
    ])
    await db.store_timezones.insert_one({"store_id": "g", "timezone_str": YEAR_10000})
    rows = [r async for r in pipeline.iter_report_rows(db, as_of=T0)]
    assert [(r["store_id"], r["timezone_fallback"]) for r in rows] == [("g", True)]
    assert await pipeline.report_store_ids(db, T0) == ["g"]
    counts = ignored_map(await quality.ignored_counts(db, as_of=T0))
    assert counts[("store_status", "store_id_not_string")] == 1
    assert counts[("store_timezones", "timezone_unknown")] == 1
    assert sum(counts.values()) == 2


async def test_mongosh_runner_default_as_of_skips_future_polls(db, mongo_uri, mongosh):
    """Item 2: pipelines/run.mongosh.js's default asOf follows the same rule (the latest poll
    not after the server's time + 5 min): with a poll one day ahead and one in year 10000 it
    prints the rows of the report at T0."""
    import json
    import subprocess
    from pathlib import Path

    await seed(db)
    expected = [r async for r in pipeline.iter_report_rows(db, as_of=T0)]
    script = Path(__file__).resolve().parents[2] / "pipelines" / "run.mongosh.js"
    eval_text = f'db = db.getSiblingDB("{db.name}"); undefined'
    out = await asyncio.to_thread(
        subprocess.run, [mongosh, mongo_uri, "--quiet", "--eval", eval_text, str(script)],
        capture_output=True, text=True, timeout=120, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [r["store_id"] for r in rows] == [r["store_id"] for r in expected] == ["g"]
    assert float(rows[0]["uptime_last_hour"]) == expected[0]["uptime_last_hour"]
    assert await pipeline.resolve_as_of(db, None) == T0


# ------------------------------------------------------------------ item 6: uptime-monitor check


async def test_checks_find_each_bad_document_exactly_once(db):
    """Item 6: on a database seeded with one document of each bad kind, every check finds
    exactly its one document (collection, _id, field value); the good rows are never listed."""
    await seed(db)
    results = await quality.run_checks(db, cap=5)
    found = {(r.check.collection, r.check.reason): r for r in results}
    assert set(found) == set(BAD)
    for key, result in found.items():
        assert result.total == 1, key
        assert len(result.rows) == 1
    assert found[("store_status", "timestamp_out_of_range")].rows[0]["value"] == YEAR_10000
    assert found[("store_hours", "time_invalid")].rows[0]["value"]["start_time_local"] == 900


def test_check_command_lists_and_exits_1(mongo_uri, db_name, monkeypatch, fresh_settings):
    """Item 6: `uptime-monitor check` prints collection, reason, _id and value of each offending
    document (the year-10000 Date without a traceback) and exits 1; a clean database exits 0."""
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("MONGODB_DATABASE", db_name)
    client = MongoClient(mongo_uri)
    try:
        database = client[db_name]
        for name, docs in good_docs().items():
            database[name].insert_many(docs)
        clean = CliRunner().invoke(cli_app, ["check"])
        assert clean.exit_code == 0, clean.output
        database.store_status.insert_one(dict(BAD[("store_status", "timestamp_out_of_range")]))
        database.store_status.insert_one(dict(BAD[("store_status", "store_id_control_chars")]))
        found = CliRunner().invoke(cli_app, ["check"])
    finally:
        client.drop_database(db_name)
        client.close()
    assert found.exit_code == 1, found.output
    assert "store_status timestamp_out_of_range: 1 document(s)" in found.output
    assert "DatetimeMS(253402300800000)" in found.output
    assert "store_id='a\\rb'" in found.output
    assert "Traceback" not in found.output


async def test_public_files_pass_every_check(db, public_data):
    """Item 6: the public v1 and v2 files, imported with the importer, break no rule."""
    from uptime.ingest.importer import import_file, import_files

    for version, status in (("loop_v1_2023", "store_status_head_sample.csv"),
                            ("loop_v2_2024", "store_status_sample.csv")):
        folder = public_data / version
        await import_files(db, hours=folder / "menu_hours.csv", timezones=folder / "timezones.csv")
        await import_file(db, "status", folder / status)
        results = await quality.run_checks(db)
        assert {r.check.name: r.total for r in results if r.total} == {}, version
        for name in ("store_status", "store_hours", "store_timezones"):
            await db.drop_collection(name)


# ------------------------------------------------------------------ items 7, 8: CSV cells


@pytest.mark.parametrize(
    ("store_id", "cell"),
    [("=1+2", "'=1+2"), ("+1+2", "'+1+2"), ("-1+2", "'-1+2"), ("@SUM(1+2)", "'@SUM(1+2)"),
     ("\tx", "'\tx"), ("'x", "''x"), ("8139926242460185114", "8139926242460185114")],
)
def test_formula_cells_are_prefixed_and_recoverable(store_id, cell):
    """Item 7: a store id a spreadsheet would evaluate gets a leading ', and unprotect gives
    the exact id back (an id starting with ' gets a second one)."""
    assert csvout.protect(store_id) == cell
    assert csvout.unprotect(cell) == store_id


@pytest.mark.parametrize("store_id", ["a\rb", "a\nb", "a,b", 'a"b', "a\u2028b", "a\x0bb"])
def test_line_ends_are_quoted(store_id):
    """Item 8: a cell holding anything a reader may take for a line end (CR for old Mac
    files, LF, VT, U+2028, ...) or a comma/quote is quoted, so the row stays one row."""
    text = csvout.line([store_id, "1.00"])
    assert text.startswith('"')
    assert list(csv.reader(io.StringIO(text, newline=""))) == [[store_id, "1.00"]]


@pytest.mark.parametrize("store_id", ["=1+2", "a,b", 'a"b', "'x", "8139926242460185114", "a\u2028b",
                                      "-5", "+5", "@x", "\tz", ".5", "_x", "a\x85b", "ünï"])
@pytest.mark.parametrize("numbers", [(60.0, 24.0, 168.0, 0.0, 0.0, 0.0),
                                     (1.5, 0.01, 99.99, -0.0, 12.345, 1e-05),
                                     (60, 24.0, 168.0, None, 0.0, True)])
def test_csv_line_shortcut_is_the_generic_line(store_id, numbers):
    """Issue 19: ``storage.csv_line`` (the report's per-row shortcut for a plain store id and
    six floats) gives exactly ``csvout.line(csv_line_values(row))`` — formula ids protected,
    special ids quoted, 2 decimals (``-0.00`` kept as the generic path writes it) — and other
    rows (an int, None, a bool) take the generic path."""
    row = dict(zip(pipeline.REPORT_COLUMNS, (store_id, *numbers)), timezone_fallback=False)
    assert storage.csv_line(row) == csvout.line(storage.csv_line_values(row))


async def test_formula_id_in_the_report_csv(db, settings):
    """Item 7: one poll of store "=1+2" gives the CSV cell '=1+2 (never a formula)."""
    await db.store_status.insert_one({"store_id": "=1+2", "timestamp_utc": T0, "status": "active"})
    doc = await generate(db, settings, T0)
    text = await _csv(db, doc)
    assert text.splitlines()[1] == "'=1+2,60.00,24.00,168.00,0.00,0.00,0.00"


# ------------------------------------------------------------------ items 4, 9: as_of


@pytest.mark.parametrize("value", ["12", "1700000000", "-1"])
async def test_digits_are_not_an_as_of(settings, value):
    """Item 9: digits in the query or the body (string or number) are a 422 in the list shape
    showing the expected form, never a report for 1970 or 2023."""
    async with running_app(settings) as http:
        answers = [
            await http.post("/trigger_report", params={"as_of": value}),
            await http.post("/trigger_report", json={"as_of": value}),
            await http.post("/trigger_report", json={"as_of": int(value)}),
        ]
        listed = (await http.get("/reports")).json()
    for resp in answers:
        assert resp.status_code == 422, resp.text
        detail = resp.json()["detail"]
        assert isinstance(detail, list) and detail[0]["loc"][-1] == "as_of"
        assert "2024-03-12T15:00:00Z" in detail[0]["msg"]
    assert listed == []


def test_cli_refuses_digits_as_as_of(monkeypatch, fresh_settings):
    """Item 9: `uptime-monitor report --as-of 12` is a usage error (exit 2) naming the expected form."""
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    result = CliRunner().invoke(cli_app, ["report", "--as-of", "12"])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output and "Traceback" not in result.output


def test_cli_refuses_an_as_of_whose_week_starts_before_year_1(monkeypatch, fresh_settings):
    """`uptime-monitor report --as-of 0001-01-02` is a usage error (exit 2): the report's week
    [as_of - 7 d, as_of) would start before year 1 (it used to fail the report with an
    OverflowError); 0001-01-08 is the earliest as_of."""
    monkeypatch.setenv("MONGODB_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    result = CliRunner().invoke(cli_app, ["report", "--as-of", "0001-01-02"])
    assert result.exit_code == 2, result.output
    assert "too early" in result.output and "0001-01-08" in result.output
    assert "Traceback" not in result.output


async def test_unencoded_plus_is_repaired_in_the_query(db, settings):
    """Item 4: ?as_of=2024-03-12T20:30:00+05:30 sent unencoded arrives as
    "2024-03-12T20:30:00 05:30"; the one unambiguous repair reads it as +05:30 (15:00Z). In a
    JSON body the same text is a 422 that tells to encode + as %2B."""
    async with running_app(settings) as http:
        resp = await http.post("/trigger_report?as_of=2024-03-12T20:30:00+05:30")
        body = await http.post("/trigger_report", json={"as_of": "2024-03-12T20:30:00 05:30"})
    assert resp.status_code == 202, resp.text
    doc = await storage.get_report(db, resp.json()["report_id"])
    assert doc["as_of_requested"] == datetime(2024, 3, 12, 15, 0, tzinfo=UTC)
    assert body.status_code == 422 and "%2B" in body.text


async def test_as_of_twice_is_a_list_shaped_422(settings):
    """Item 11: the two 422s that used to carry a string detail (different as_of in query
    and body; out of range) now use the list shape."""
    async with running_app(settings) as http:
        twice = await http.post("/trigger_report", params={"as_of": "2024-03-12T15:00:00Z"},
                                json={"as_of": "2024-03-12T16:00:00Z"})
        far = await http.post("/trigger_report", params={"as_of": "0001-01-01T00:00:00+05:00"})
    for resp in (twice, far):
        assert resp.status_code == 422
        assert isinstance(resp.json()["detail"], list)


# ------------------------------------------------------------------ items 5, 10: API


async def test_get_report_and_reports_return_ignored(db, settings):
    """Item 5: /get_report's Failed JSON (no valid poll: the only poll is in year 10000) and
    /reports carry `ignored`, by collection and reason."""
    await db.store_status.insert_one(dict(BAD[("store_status", "timestamp_out_of_range")]))
    async with running_app(settings) as http:
        rid = (await http.post("/trigger_report")).json()["report_id"]
        done = (await poll_until_done(http, rid)).json()
        listed = (await http.get("/reports")).json()
    assert done["status"] == "Failed" and "no polls" in done["error"]
    got = ignored_map(done["ignored"])
    assert got[("store_status", "timestamp_out_of_range")] == 1
    assert sum(got.values()) == 1
    assert ignored_map(listed[0]["ignored"]) == got


async def test_queue_bound_and_identical_trigger(db, settings, monkeypatch):
    """Item 10: a trigger for the as_of of a report still Running returns that report's id;
    past UPTIME_MAX_QUEUED_REPORTS (2) Running reports a new trigger is 429 with Retry-After."""
    release = asyncio.Event()

    async def blocked_run(self, as_of):
        await release.wait()

    monkeypatch.setattr(generation.Generation, "run", blocked_run)
    settings = settings.model_copy(update={"max_queued_reports": 2})
    async with running_app(settings) as http:
        a1 = await http.post("/trigger_report", params={"as_of": "2024-03-12T15:00:00Z"})
        a2 = await http.post("/trigger_report", json={"as_of": "2024-03-12T10:00:00-05:00"})
        b = await http.post("/trigger_report")
        c = await http.post("/trigger_report", params={"as_of": "2024-03-13T00:00:00Z"})
        release.set()
    assert a1.status_code == a2.status_code == b.status_code == 202
    assert a1.json() == a2.json() != b.json()
    assert c.status_code == 429 and c.headers["retry-after"] == "30"
    assert "UPTIME_MAX_QUEUED_REPORTS" in c.json()["detail"]


async def test_request_body_limit_on_every_endpoint(settings):
    """Item 10: a body over UPTIME_MAX_BODY_BYTES is 413 {"detail": ...} on every endpoint,
    declared (Content-Length) or streamed (chunked)."""
    settings = settings.model_copy(update={"max_body_bytes": 256})
    big = b'{"as_of": "' + b"x" * 1000 + b'"}'

    async def chunks():
        for _ in range(10):
            yield b"x" * 100

    async with running_app(settings) as http:
        answers = [
            await http.post("/trigger_report", content=big,
                            headers={"content-type": "application/json"}),
            await http.post("/trigger_report", content=chunks(),
                            headers={"content-type": "application/json"}),
            await http.request("GET", "/reports", content=big),
            await http.request("GET", "/healthz", content=big),
        ]
        small = await http.post("/trigger_report", json={"as_of": "2024-03-12T15:00:00Z"})
    for resp in answers:
        assert resp.status_code == 413, resp.text
        assert resp.json() == {"detail": "request body larger than 256 bytes"}
    assert small.status_code == 202


# ------------------------------------------------------------------ item 11: OpenAPI


async def test_openapi_says_what_the_service_does(settings):
    """Item 11: 413/429/503 documented where they happen (401 only with a token); the bearer
    scheme appears only when a token is configured; /openapi.json needs no token."""
    async with running_app(settings) as http:
        open_schema = (await http.get("/openapi.json")).json()
    with_token = settings.model_copy(update={"api_token": "s3cret"})
    async with running_app(with_token) as http:
        resp = await http.get("/openapi.json")
        docs = await http.get("/docs")
        token_schema = resp.json()
    assert resp.status_code == 200 and docs.status_code == 200
    assert "securitySchemes" not in open_schema.get("components", {})
    assert "securitySchemes" in token_schema["components"]
    trigger = open_schema["paths"]["/trigger_report"]["post"]["responses"]
    assert {"202", "413", "422", "429", "503"} <= set(trigger) and "401" not in trigger
    assert "Retry-After" in trigger["429"]["headers"]
    assert "401" in token_schema["paths"]["/reports"]["get"]["responses"]
    assert {"404", "503"} <= set(open_schema["paths"]["/get_report"]["get"]["responses"])


def test_help_texts_fit_80_columns():
    """Also: `uptime-monitor --help` and each command's help fit 80 columns (no line longer), and a
    paragraph is wrapped by the terminal, not at the docstring's line breaks."""
    commands = [[], ["import"], ["migrate"], ["migrate", "up"], ["migrate", "down"],
                ["migrate", "status"], ["report"], ["reports"], ["check"], ["serve"],
                ["generate"], ["bench"]]
    for command in commands:
        result = CliRunner().invoke(cli_app, [*command, "--help"], env={"COLUMNS": "80"},
                                    terminal_width=80)
        assert result.exit_code == 0, (command, result.output)
        too_long = [line for line in result.output.splitlines() if len(line) > 80]
        assert too_long == [], (command, too_long)
        if command == []:  # a docstring's own line breaks no longer split a sentence
            assert "it starts the embedded mongod and stops it on exit." in result.output


async def test_cli_report_prints_ignored(cli_env, db):
    """Item 5: `uptime-monitor report` prints what it ignored (here the year-10000 poll) and exits 0
    without a traceback."""
    await seed(db, bad=False)
    await db.store_status.insert_one(dict(BAD[("store_status", "timestamp_out_of_range")]))
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["report", "--output", "-"])
    assert result.exit_code == 0, result.output
    assert "ignored input: store_status.timestamp_out_of_range 1" in result.output
    assert "Traceback" not in result.output
    listed = await asyncio.to_thread(CliRunner().invoke, cli_app, ["reports"])
    header, row = listed.output.splitlines()[1], listed.output.splitlines()[3]
    assert "ignored" in header and row.rstrip("│ ").endswith("1")


async def test_validator_migration_warns_and_never_refuses(db):
    """Item 6 (optional part): migration 20261130040000-input-validators puts a $jsonSchema
    validator with validationAction "warn" on the three input collections: a document of
    each bad kind is still stored (other systems write there), a canonical one passes the
    validator, and the revert removes it."""
    from uptime.platform.migrations import migrate_down, migrate_up

    await migrate_up(db)
    infos = {c["name"]: c["options"] async for c in await db.list_collections()}
    for name in ("store_status", "store_hours", "store_timezones"):
        assert infos[name]["validationAction"] == "warn" and infos[name]["validator"], name
    await seed(db)  # every bad kind inserts fine
    assert await db.store_status.count_documents({}) == 3 + 6
    validator = infos["store_status"]["validator"]
    # The good store's three polls satisfy it, and so does the future poll (well-formed: only
    # the report's time rule ignores it); none of the other bad kinds does.
    assert await db.store_status.count_documents(validator) == 4
    assert await db.store_hours.count_documents(infos["store_hours"]["validator"]) == 1
    await migrate_down(db, all=True)  # later migrations are reverted first
    infos = {c["name"]: c["options"] async for c in await db.list_collections()}
    assert not infos["store_status"].get("validator")


async def test_alternative_report_ignores_the_same_documents(db, mongo_uri, settings):
    """Items 5, 7, 8: the polars alternative (uptime-monitor bench's byte check) applies the same
    rules: on the seeded bad documents plus store "=1+2" and a poll before year 1 its CSV
    equals the service's, byte for byte."""
    from uptime.tools.alt_report import alt_report, to_csv

    await seed(db)
    await db.store_status.insert_many([
        {"store_id": "=1+2", "timestamp_utc": T0, "status": "inactive"},
        {"store_id": "old", "timestamp_utc": BEFORE_YEAR_1, "status": "active"},
    ])
    doc = await generate(db, settings, T0)
    rows, _timings = await asyncio.to_thread(alt_report, mongo_uri, db.name, T0)
    assert to_csv(rows) == await _csv(db, doc)
    assert [line.split(",")[0] for line in to_csv(rows).splitlines()[1:]] == ["'=1+2", "g"]


async def test_dashboard_store_api_under_bad_data_and_digits(db, settings):
    """Items 2, 9, 11 on the dashboard's store API: with a year-10000 poll of store g, the
    default interval ends at g's latest ordinary poll (T0), never a 500; `from=1700000000` is a
    422 in the list shape, not 2023."""
    await seed(db, bad=False)
    await db.store_status.insert_one({"store_id": "g", "status": "active",
                                      "timestamp_utc": YEAR_10000})
    async with running_app(settings) as http:
        default = await http.get("/stores/g/uptime")
        timeline = await http.get("/stores/g/timeline")
        digits = await http.get("/stores/g/uptime", params={"from": "1700000000"})
    assert default.status_code == 200, default.text
    assert timeline.status_code == 200, timeline.text
    assert timeline.json()["polls"][-1]["t"].startswith("2024-03-12T14:00:00")  # [from, to)
    assert default.json()["to"].startswith("2024-03-12T15:00:00")
    assert digits.status_code == 422
    assert digits.json()["detail"][0]["loc"] == ["query", "from"]
