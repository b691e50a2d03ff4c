"""``GET /incidents`` and ``uptime-monitor incidents`` (issue 17, item 2) against a real mongod:
the same rows as the pipeline, filters, pages, the token, 4xx for bad input, the setting
``UPTIME_INCIDENT_MIN_MINUTES``, and the CSV's exact format."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from support.pipeline import hours, load, poll, zone
from support.app import running_app
from uptime.cli import app
from uptime.incidents.query import CSV_COLUMNS
from uptime.platform.settings import get_settings

AS_OF = "2024-05-06T12:00:00Z"


async def _stores(db) -> None:
    """a: ended incident 08:30-09:30Z (60 min) and an open one from 10:30Z (90 min as of
    12:00Z), 24x7. b: a 30-minute incident 08:30-09:00Z (hours from 08:30 UTC is not it:
    hours Mon 09:00-17:00 UTC, stretch [08:30, 09:30) -> 30 min from 09:00Z). c: '=1+2', a
    formula-looking id, one open incident from 11:30Z (30 min)."""
    await load(db, [
        poll("a", "2024-05-06T08:00:00Z"), poll("a", "2024-05-06T09:00:00Z", "inactive"),
        poll("a", "2024-05-06T10:00:00Z"), poll("a", "2024-05-06T11:00:00Z", "inactive"),
        poll("b", "2024-05-06T08:00:00Z"), poll("b", "2024-05-06T09:00:00Z", "inactive"),
        poll("b", "2024-05-06T10:00:00Z"),
        poll("=1+2", "2024-05-06T11:00:00Z"), poll("=1+2", "2024-05-06T12:00:00Z", "inactive"),
        poll("a", "2024-05-06T13:00:00Z"),  # after as_of: ignored
    ], [hours("b", 0, "09:00:00", "17:00:00")], [zone("b", "UTC")])


EXPECTED = [  # store_id order is binary: "=" < "a" < "b"
    ("=1+2", "2024-05-06T11:30:00Z", None, 30.0),
    ("a", "2024-05-06T08:30:00Z", "2024-05-06T09:30:00Z", 60.0),
    ("a", "2024-05-06T10:30:00Z", None, 90.0),
    ("b", "2024-05-06T09:00:00Z", "2024-05-06T09:30:00Z", 30.0),
]


def _brief(body: dict) -> list[tuple]:
    z = lambda t: None if t is None else t.replace(".000", "").replace("+00:00", "Z")  # noqa: E731
    return [(i["store_id"], z(i["started_at"]), z(i["ended_at"]), i["business_downtime_minutes"])
            for i in body["incidents"]]


async def test_get_incidents_filters_and_pages(db, settings):
    """GET /incidents: hand-computed rows (sorted by store_id, started_at), the filters
    store_id / open / from-to, pages with next_skip, min_minutes given and from the setting,
    and the same answer whether the runs came from status_runs or from the polls."""
    await _stores(db)
    async with running_app(settings.model_copy(update={"incident_min_minutes": 0})) as http:
        body = (await http.get("/incidents", params={"as_of": AS_OF})).json()
        assert _brief(body) == EXPECTED and body["next_skip"] is None
        assert body["as_of"].startswith("2024-05-06T12:00:00") and body["min_minutes"] == 0
        first_source = body["source"]
        await asyncio.sleep(1.5)  # give the lifespan's follower time to become current
        again = (await http.get("/incidents", params={"as_of": AS_OF})).json()
        assert _brief(again) == EXPECTED  # whichever source answered (follower now current or not)
        assert {first_source, again["source"]} <= {"status_runs", "store_status"}
        q = lambda **p: http.get("/incidents", params={"as_of": AS_OF, **p})  # noqa: E731
        assert _brief((await q(store_id="a")).json()) == EXPECTED[1:3]
        assert _brief((await q(open="true")).json()) == [EXPECTED[0], EXPECTED[2]]
        assert _brief((await q(open="false")).json()) == [EXPECTED[1], EXPECTED[3]]
        assert _brief((await q(min_minutes="60")).json()) == EXPECTED[1:3]
        assert _brief((await q(**{"from": "2024-05-06T09:30:00Z", "to": "2024-05-06T11:00:00Z"})).json()) == [EXPECTED[2]]
        page1 = (await q(limit="3")).json()
        assert _brief(page1) == EXPECTED[:3] and page1["next_skip"] == 3
        page2 = (await q(limit="3", skip="3")).json()
        assert _brief(page2) == EXPECTED[3:] and page2["next_skip"] is None
    async with running_app(settings.model_copy(update={"incident_min_minutes": 45})) as http:
        body = (await http.get("/incidents", params={"as_of": AS_OF})).json()
        assert body["min_minutes"] == 45 and _brief(body) == EXPECTED[1:3]


async def test_without_a_follower_the_answer_comes_from_the_polls(db, settings):
    """No runs follower (setting follow_runs false) and an empty status_runs: GET /incidents
    does not wait or fail; it derives the runs from store_status (source store_status)."""
    await _stores(db)
    async with running_app(settings, incident_min_minutes=0, follow_runs=False) as http:
        body = (await asyncio.wait_for(http.get("/incidents", params={"as_of": AS_OF}), 30)).json()
    assert body["source"] == "store_status" and _brief(body) == EXPECTED
    assert await db["status_runs"].count_documents({}) == 0


@pytest.mark.parametrize(("params", "where"), [
    ({"as_of": "12"}, "as_of"),
    ({"as_of": "yesterday"}, "as_of"),
    ({"min_minutes": "-1"}, "min_minutes"),
    ({"min_minutes": "nan"}, "min_minutes"),
    ({"limit": "0"}, "limit"),
    ({"skip": "-1"}, "skip"),
    ({"open": "maybe"}, "open"),
    ({"from": "2024-05-06T10:00:00Z", "to": "2024-05-06T10:00:00Z"}, "from"),
    ({"to": "1700000000"}, "to"),
    ({"store_id": ""}, "store_id"),
])
async def test_bad_input_is_a_422_naming_it(db, settings, params, where):
    """Bad input is a 422 in the list shape whose loc names the parameter (never a 500)."""
    await _stores(db)
    async with running_app(settings) as http:
        resp = await http.get("/incidents", params=params)
    assert resp.status_code == 422, resp.text
    assert any(where in d["loc"] for d in resp.json()["detail"])


async def test_token_required_when_set(db, settings):
    """Behind the bearer token like the other data endpoints: 401 without it, 200 with it."""
    await _stores(db)
    async with running_app(settings.model_copy(update={"api_token": "s3cret"})) as http:
        assert (await http.get("/incidents")).status_code == 401
        ok = await http.get("/incidents", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "s3cret" not in ok.text


async def test_no_polls_is_an_empty_answer(db, settings):
    """No polls at all: as_of null, no incidents (not an error)."""
    await load(db)
    async with running_app(settings) as http:
        body = (await http.get("/incidents")).json()
    assert body["as_of"] is None and body["incidents"] == []


# ------------------------------------------------------------------ CLI
# the CLI's environment: the shared ``cli_env`` fixture (tests/conftest.py)


async def test_cli_writes_the_exact_csv(db, cli_env, tmp_path, monkeypatch):
    """`incidents --as-of T --min-minutes N --output FILE|-`: exactly the header
    store_id,started_at,ended_at,business_downtime_minutes; ISO 8601 UTC with ms and Z;
    ended_at empty while open; 2 decimals; sorted by store_id then started_at; a
    formula-looking id prefixed with ' as in the report; default min from the setting."""
    await _stores(db)
    out = tmp_path / "inc.csv"
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "incidents", "--as-of", AS_OF, "--min-minutes", "0", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == (
        "store_id,started_at,ended_at,business_downtime_minutes\n"
        "'=1+2,2024-05-06T11:30:00.000Z,,30.00\n"
        "a,2024-05-06T08:30:00.000Z,2024-05-06T09:30:00.000Z,60.00\n"
        "a,2024-05-06T10:30:00.000Z,,90.00\n"
        "b,2024-05-06T09:00:00.000Z,2024-05-06T09:30:00.000Z,30.00\n")
    assert ",".join(CSV_COLUMNS) == "store_id,started_at,ended_at,business_downtime_minutes"
    monkeypatch.setenv("UPTIME_INCIDENT_MIN_MINUTES", "45")
    get_settings.cache_clear()
    result = await asyncio.to_thread(CliRunner().invoke, app, ["incidents", "--as-of", AS_OF, "--output", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "a,2024-05-06T08:30:00.000Z,2024-05-06T09:30:00.000Z,60.00",
        "a,2024-05-06T10:30:00.000Z,,90.00"]


def test_cli_bad_as_of_is_exit_2(cli_env):
    """--as-of takes ISO 8601 only (digits are refused): exit 2 naming --as-of."""
    result = CliRunner().invoke(app, ["incidents", "--as-of", "1700000000"])
    assert result.exit_code == 2 and "--as-of" in " ".join(result.output.split())
