// A store: its interval as a time line, its report row and the interval's numbers (issue 11).
"use strict";
(() => {
  const { api, el, fmt2, utc, dur, showError } = UI;
  const root = document.getElementById("store");
  const storeId = root.dataset.storeId, reportId = root.dataset.reportId;
  const enc = encodeURIComponent;

  function showRow(row) {
    const cells = [
      ["uptime_last_hour", "min"], ["uptime_last_day", "h"], ["uptime_last_week", "h"],
      ["downtime_last_hour", "min"], ["downtime_last_day", "h"], ["downtime_last_week", "h"],
    ];
    document.querySelector("#row tbody").replaceChildren(
      ...cells.map(([k, unit]) => el("tr", {}, el("th", { scope: "row", text: `${k} (${unit})` }),
        el("td", { "data-key": k, text: fmt2(row[k]) }))),
      el("tr", {}, el("th", { scope: "row", text: "time-zone fallback" }),
        el("td", { "data-key": "timezone_fallback", text: row.timezone_fallback ? "yes" : "no" })));
  }

  function showInterval(t) {
    const items = [["Business hours (h)", fmt2(t.business_seconds / 3600)], ["Uptime (h)", fmt2(t.uptime_hours)],
      ["Downtime (h)", fmt2(t.downtime_hours)], ["Uptime %", t.uptime_pct === null ? "–" : fmt2(t.uptime_pct)],
      ["Time zone", t.timezone + (t.timezone_source === "store" ? "" : ` (${t.timezone_source})`)]];
    document.getElementById("interval").replaceChildren(...items.map(([k, v]) =>
      el("div", { class: "num" }, el("dt", { text: k }), el("dd", { text: v, "data-key": k, class: k === "Time zone" ? "small" : "" }))));
  }

  function showRuns(t) {
    document.querySelector("#runs tbody").replaceChildren(...t.runs.map((r) => el("tr", { "data-status": r.status },
      el("td", {}, el("span", { class: "status " + r.status, text: r.status })),
      el("td", { text: Charts.local(r.start_ms, t.timezone) }), el("td", { text: Charts.local(r.end_ms, t.timezone) }),
      el("td", { text: utc(r.start) }), el("td", { text: utc(r.end) }), el("td", { text: r.polls }))));
  }

  // The store's incidents as of the interval's end that overlap it (GET /incidents; as in the
  // time line, polls after `to` are ignored): marks on the time line and a table.
  async function showIncidents(t) {
    const note = document.getElementById("inc-note");
    const section = document.getElementById("store-incidents");
    const q = new URLSearchParams({ store_id: storeId, as_of: t.to, from: t.from, to: t.to, limit: "1000" });
    try {
      const body = await api(`/incidents?${q}`, {}, load);
      const list = body.incidents;
      Charts.incidents(document.getElementById("timeline"), t, list);
      document.querySelector("#inc-list tbody").replaceChildren(...list.map((i) => el("tr",
        { "data-started": i.started_at, "data-ended": i.ended_at || "", "data-minutes": String(i.business_downtime_minutes) },
        el("td", { text: Charts.local(Date.parse(i.started_at), t.timezone) }),
        el("td", { text: i.ended_at ? Charts.local(Date.parse(i.ended_at), t.timezone) : "open" }),
        el("td", { text: utc(i.started_at) }), el("td", { text: i.ended_at ? utc(i.ended_at) : "open" }),
        el("td", { text: dur(i.business_downtime_minutes) }), el("td", { text: dur(i.duration_minutes) }))));
      note.replaceChildren(`${list.length}${body.next_skip === null ? "" : "+"} incident${list.length === 1 ? "" : "s"} ` +
        `(at least ${body.min_minutes} min of business downtime, as of ${utc(body.as_of)} UTC). `,
        el("a", { href: `/ui/incidents?store=${encodeURIComponent(storeId)}` }, "All incidents of this store"));
      section.dataset.count = String(list.length);
    } catch (e) {
      note.textContent = "Incidents could not be read: " + e.message;  // the rest of the page stands
      section.dataset.count = "";
    }
  }

  // The interval form keeps only the fields that are set (an empty report/from/to = default).
  document.getElementById("interval-form").addEventListener("submit", (event) => {
    for (const input of event.target.querySelectorAll("input")) input.disabled = !input.value.trim();
  });

  async function load() {
    try {
      let from = root.dataset.from, to = root.dataset.to;
      if (reportId) {
        const row = await api(`/reports/${enc(reportId)}/rows/${enc(storeId)}`, {}, load);
        showRow(row);
        to = to || row.as_of;
        from = from || new Date(Date.parse(row.as_of) - 7 * 864e5).toISOString();
        document.getElementById("store-context").replaceChildren("Row of report ",
          el("a", { href: `/ui/reports/${enc(reportId)}` }, el("code", { text: reportId })),
          root.dataset.from || root.dataset.to ? "; the interval below is yours." : "; the time line is the week before its as_of.");
      } else {
        document.getElementById("row").replaceChildren(el("tbody", {}, el("tr", {},
          el("td", { text: "Open this page from a report to see its row." }))));
      }
      const query = new URLSearchParams();
      if (from) query.set("from", from);
      if (to) query.set("to", to);
      const t = await api(`/stores/${enc(storeId)}/timeline?${query}`, {}, load);
      document.getElementById("from").value ||= t.from;
      document.getElementById("to").value ||= t.to;
      document.getElementById("tl-caption").textContent =
        `${utc(t.from)} – ${utc(t.to)} UTC; ${t.polls_total} polls` + (t.polls_truncated ? ` (first ${t.polls.length} drawn)` : "") +
        (t.runs_truncated ? `; ${t.runs_total} runs (first ${t.runs.length} drawn)` : "");
      Charts.timeline(document.getElementById("timeline"), t);
      showInterval(t);
      showRuns(t);
      await showIncidents(t);
      UI.ready();
    } catch (e) { showError(e.message); }
  }
  load();
})();
