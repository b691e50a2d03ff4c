"""The dashboard page at ``/`` (issue 11, item 2): Jinja2 templates, vanilla JS, no CDN.

Pages (HTML shells rendered server-side; their data comes from the JSON API with ``fetch``,
so the bearer token, when ``UPTIME_API_TOKEN`` is set, is sent by the page — typed once into
its token field and kept in the tab's ``sessionStorage``):

* ``/`` — reports: list, trigger (optional as_of), live progress, download, failure reason;
* ``/ui/reports/{report_id}`` — headline numbers, histogram of last-week uptime %, the worst
  stores table (sortable, searchable), links to store pages;
* ``/ui/stores/{store_id}?report=ID`` (or ``?from=&to=``) — the store's week as a time line
  (business hours shaded, runs coloured by status, poll ticks, local time on the axis, its
  incidents marked) and its report row beside it;
* ``/ui/incidents?store=&state=all|open|resolved&min=&from=&to=&as_of=&limit=`` (issue 17
  item 5) — open incidents longest first and resolved ones most recent first, each list
  paginated (``limit`` rows a page, default 50), from ``GET /incidents``;
* ``/ui/periods?period=|from=&to=&as_of=&target=&store=`` (issue 18 item 6) — pick a period,
  see the chain's uptime %, the stores below the target (worst first), the CSV, and a store's
  uptime % by month over the last 12 months (``uptime.web.routes.periods``).

Static files (``/static``: CSS, JS) ship inside the package. Charts are SVG drawn by
``static/charts.js`` (no charting library: see the README, "Dashboard").
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

_HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=_HERE / "templates")


def _page(name: str, request: Request, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


def mount(app: FastAPI) -> None:
    """Add the page routes and ``/static`` to ``app`` (not in the OpenAPI document)."""
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def reports_page(request: Request) -> HTMLResponse:
        return _page("reports.html", request, title="Reports", scripts=["reports.js"])

    @app.get("/ui/reports/{report_id}", response_class=HTMLResponse, include_in_schema=False)
    async def report_page(request: Request, report_id: str) -> HTMLResponse:
        return _page("report.html", request, title=f"Report {report_id[:32]}",
                     report_id=report_id[:32], scripts=["charts.js", "report.js"])

    @app.get("/ui/incidents", response_class=HTMLResponse, include_in_schema=False)
    async def incidents_page(request: Request) -> HTMLResponse:
        return _page("incidents.html", request, title="Incidents", scripts=["incidents.js"])

    @app.get("/ui/periods", response_class=HTMLResponse, include_in_schema=False)
    async def periods_page(request: Request) -> HTMLResponse:
        return _page("periods.html", request, title="Periods", scripts=["charts.js", "periods.js"])

    # :path: a store id may hold "/" (issue 15 item 4); shown whole (the API says if too long)
    @app.get("/ui/stores/{store_id:path}", response_class=HTMLResponse, include_in_schema=False)
    async def store_page(request: Request, store_id: str) -> HTMLResponse:
        return _page("store.html", request, title=f"Store {store_id[:200]}",
                     store_id=store_id, report_id=request.query_params.get("report", "")[:32],
                     start=request.query_params.get("from", "")[:40],
                     end=request.query_params.get("to", "")[:40], scripts=["charts.js", "store.js"])
