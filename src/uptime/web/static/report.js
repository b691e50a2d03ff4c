// A report: headline numbers, histogram, worst stores (sortable, searchable) (issue 11).
"use strict";
(() => {
  const { api, el, fmt2, utc, showError } = UI;
  const root = document.getElementById("report");
  const reportId = root.dataset.reportId;
  const tbody = document.querySelector("#worst tbody");
  let rows = [], sortKey = "downtime_last_week", sortDir = -1;

  const storeHref = (id) => `/ui/stores/${encodeURIComponent(id)}?report=${encodeURIComponent(reportId)}`;

  function headline(s) {
    const items = [
      ["Stores", s.stores], ["as_of (UTC)", utc(s.as_of)], ["Pipeline", s.pipeline],
      ["Chain uptime last week", s.uptime_pct_last_week === null ? "–" : fmt2(s.uptime_pct_last_week) + " %"],
      ["Stores with downtime last week", s.stores_with_downtime],
      ["Downtime last week (h, all stores)", fmt2(s.downtime_last_week)],
      ["Time-zone fallbacks", s.timezone_fallbacks], ["Closed all week", s.no_business_hours],
    ];
    document.getElementById("headline").replaceChildren(...items.flatMap(([k, v]) =>
      [el("div", { class: "num" }, el("dt", { text: k }), el("dd", { text: String(v) }))]));
  }

  function render() {
    const q = document.getElementById("search").value.trim().toLowerCase();
    const shown = rows.filter((r) => r.store_id.toLowerCase().startsWith(q)).sort((a, b) => {
      const va = a[sortKey], vb = b[sortKey];
      if (va === vb) return a.store_id < b.store_id ? -1 : 1;
      if (va === null) return 1;
      if (vb === null) return -1;
      return (va < vb ? -1 : 1) * sortDir;
    });
    tbody.replaceChildren(...shown.map((r) => el("tr", { "data-store-id": r.store_id },
      el("td", {}, el("a", { href: storeHref(r.store_id) }, el("code", { text: r.store_id }))),
      el("td", { text: fmt2(r.uptime_pct_last_week) }), el("td", { text: fmt2(r.downtime_last_week) }),
      el("td", { text: fmt2(r.uptime_last_week) }), el("td", { text: fmt2(r.downtime_last_day) }),
      el("td", { text: fmt2(r.downtime_last_hour) }))));
    if (!shown.length) tbody.append(el("tr", {}, el("td", { colspan: "6",
      text: q ? "No store in this list matches; press Open store to open it anyway." : "No stores." })));
    for (const th of document.querySelectorAll("#worst th")) {
      th.setAttribute("aria-sort", th.dataset.key === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
    }
  }

  for (const th of document.querySelectorAll("#worst th")) {
    th.querySelector("button").addEventListener("click", () => {
      if (sortKey === th.dataset.key) sortDir = -sortDir;
      else { sortKey = th.dataset.key; sortDir = th.dataset.type === "text" ? 1 : -1; }
      render();
    });
  }
  // Typing filters the table at once; after a pause the report's rows whose store id starts
  // with the text are fetched from the API (any store, not only the worst 100).
  let worstRows = [], searchTimer = null;
  document.getElementById("search").addEventListener("input", () => {
    render();
    clearTimeout(searchTimer);
    const q = document.getElementById("search").value.trim();
    searchTimer = setTimeout(async () => {
      try {
        rows = q ? await api(`/reports/${encodeURIComponent(reportId)}/rows?prefix=${encodeURIComponent(q)}&limit=100`) : worstRows;
        render();
        document.getElementById("worst").dataset.searched = q;  // tests wait for this
      } catch (e) { showError(e.message); }
    }, 250);
  });
  document.getElementById("store-search").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = document.getElementById("search").value.trim();
    if (id) location.href = storeHref(id);
  });

  // Incidents as of the report's as_of (GET /incidents, counts only): open ones and those
  // overlapping its week [as_of − 7 d, as_of); links to the incidents page with those filters.
  async function incidentCounts(asOf) {
    const root = document.getElementById("report-incidents");
    const weekStart = new Date(Date.parse(asOf) - 7 * 864e5).toISOString();
    const q = new URLSearchParams({ as_of: asOf, from: weekStart, to: asOf, limit: "1" });
    try {
      const body = await api(`/incidents?${q}`);
      const page = (extra) => `/ui/incidents?as_of=${encodeURIComponent(asOf)}${extra}`;
      const link = (text, href) => el("a", { href }, text);
      document.getElementById("incident-counts").replaceChildren(
        el("div", { class: "num" }, el("dt", { text: "Open incidents" }),
          el("dd", { "data-key": "open" }, link(String(body.open_total), page("&state=open")))),
        el("div", { class: "num" }, el("dt", { text: "Incidents in the last week" }),
          el("dd", { "data-key": "week" }, link(String(body.total),
            page(`&from=${encodeURIComponent(weekStart)}&to=${encodeURIComponent(asOf)}`)))));
      document.getElementById("incident-note").textContent =
        `Inactive stretches with at least ${body.min_minutes} min of business downtime; the week's ` +
        `count holds every incident overlapping [as_of − 7 days, as_of), open ones included.`;
      root.dataset.loaded = "1";  // tests wait for this
    } catch (e) {
      document.getElementById("incident-counts").replaceChildren(el("div", { class: "num" },
        el("dt", { text: "Incidents" }), el("dd", { class: "small", text: "could not be read: " + e.message })));
      root.dataset.loaded = "error";
    }
  }

  async function load() {
    try {
      const s = await api(`/reports/${encodeURIComponent(reportId)}/summary?worst=100`, {}, load);
      headline(s);
      Charts.histogram(document.getElementById("histogram"), s.histogram, s.stores);
      rows = worstRows = s.worst;
      render();
      UI.ready();
      incidentCounts(s.as_of);
    } catch (e) { showError(e.message); }
  }
  load();
})();
