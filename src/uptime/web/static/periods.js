// The period page (issue 18, item 6): pick a period, get its report (a finished one for the
// same period and as_of is reused), watch its progress, then the chain's uptime %, the stores
// below the target (worst first), the CSV, and a store's uptime % by month as a chart.
// State lives in the URL: ?period= (or from=&to=), as_of, target, store.
"use strict";
(() => {
  const { api, el, fmt2, utc, showError } = UI;
  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(location.search);
  const kind = $("p-kind");
  const root = $("periods");
  let reportId = null, timer = null, target = null, asOf = null;

  function showKind() {
    for (const span of document.querySelectorAll("#period-form .kind")) {
      span.hidden = !span.dataset.kind.split(" ").includes(kind.value);
    }
  }
  kind.addEventListener("change", showKind);

  // The form shows what the URL asks for.
  function fill() {
    const p = query.get("period") || "";
    if (query.get("from") || query.get("to")) {
      kind.value = "range"; $("p-from").value = query.get("from") || ""; $("p-to").value = query.get("to") || "";
    } else if (/^\d{4}-Q\d$/.test(p)) {
      kind.value = "quarter"; $("p-year").value = p.slice(0, 4); $("p-quarter").value = p.slice(5);
    } else if (/^\d{4}$/.test(p)) {
      kind.value = "year"; $("p-year").value = p;
    } else if (/^\d{4}-W\d{2}$/.test(p)) {
      kind.value = "week"; $("p-week").value = p;
    } else if (p) {
      kind.value = "month"; $("p-month").value = p;
    }
    $("p-as-of").value = query.get("as_of") || "";
    $("p-target").value = query.get("target") || "";
    $("m-store").value = query.get("store") || "";
    showKind();
  }

  $("period-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    const year = $("p-year").value.trim();
    const period = { month: $("p-month").value, quarter: year && `${year}-${$("p-quarter").value}`,
      year, week: $("p-week").value }[kind.value];
    if (kind.value === "range") {
      next.set("from", $("p-from").value.trim()); next.set("to", $("p-to").value.trim());
    } else if (period) {
      next.set("period", period);
    } else {
      showError(`Pick a ${kind.options[kind.selectedIndex].text} first.`);
      return;
    }
    for (const [name, id] of [["as_of", "p-as-of"], ["target", "p-target"]]) {
      const value = $(id).value.trim();
      if (value) next.set(name, value);
    }
    location.search = next.toString();
  });

  function setLive(view) {
    $("p-live").hidden = false;
    const pct = Math.round((view.progress || 0) * 100);
    $("p-live-bar").setAttribute("aria-valuenow", String(pct));
    $("p-live-bar").firstElementChild.style.width = pct + "%";
    $("p-live-text").textContent = view.status === "Running" ? `Report ${view.report_id}: ${pct} %`
      : view.status === "Complete" ? `Report ${view.report_id} complete (100 %).`
      : `Report ${view.report_id} failed: ${view.error}`;
    $("p-live").dataset.status = view.status;
  }

  // The store's page for its period (its time line shows at most 92 days: the last 92 of it).
  function storeHref(row) {
    const day = 864e5, end = Math.min(Date.parse(row.period_end), Date.parse(asOf));
    const start = Math.max(Date.parse(row.period_start), end - 92 * day);
    return `/ui/stores/${encodeURIComponent(row.store_id)}?from=${encodeURIComponent(new Date(start).toISOString())}` +
      `&to=${encodeURIComponent(new Date(end).toISOString())}`;
  }

  function render(view) {
    const s = view.summary;
    asOf = view.as_of; target = s.target_percent;
    $("p-label").textContent = view.period ? view.period.label : "";
    const items = [
      ["chain", "Chain uptime", s.chain_uptime_percent === null ? "–" : fmt2(s.chain_uptime_percent) + " %"],
      ["below", `Stores below ${s.target_percent} %`, String(s.below_target)],
      ["stores", "Stores", String(s.stores)],
      ["business", "Business hours covered", fmt2(s.business_hours)],
      ["downtime", "Downtime (h, all stores)", fmt2(s.downtime_hours)],
      ["as_of", "as_of (UTC)", utc(view.as_of)],
      ["closed", "No business hours", String(s.no_business_hours)],
    ];
    $("p-numbers").replaceChildren(...items.map(([key, label, value]) =>
      el("div", { class: "num" }, el("dt", { text: label }), el("dd", { "data-key": key, text: value }))));
    const link = $("csv-link");
    const filename = `period-${view.period ? view.period.label.replace(/[^\w-]+/g, "_") : ""}-${view.report_id}.csv`;
    link.href = view.csv_url;
    link.setAttribute("download", filename);
    link.onclick = (event) => {
      if (!UI.hasToken()) return;  // a plain link when the service needs no token
      event.preventDefault();
      UI.download(view.csv_url, filename).catch((e) => showError(e.message));
    };
    $("p-note").textContent = `report ${view.report_id}, runs from ${view.runs_source === "timeline"
      ? "the status timeline" : "the polls"}`;
    const rows = s.below_target_stores;
    $("below-list").querySelector("tbody").replaceChildren(...(rows.length ? rows.map((r) =>
      el("tr", { "data-store-id": r.store_id, "data-percent": String(r.uptime_percent) },
        el("td", {}, el("a", { href: storeHref(r) }, el("code", { text: r.store_id }))),
        el("td", { text: fmt2(r.uptime_percent) }), el("td", { text: fmt2(r.downtime_hours) }),
        el("td", { text: fmt2(r.uptime_hours) }), el("td", { text: utc(r.period_start) }),
        el("td", {}, chartButton(r.store_id))))
      : [el("tr", {}, el("td", { colspan: "6", text: `No store is below ${s.target_percent} %.` }))]));
    $("below-section").querySelector(".count").textContent = rows.length < s.below_target
      ? `The worst ${rows.length} of ${s.below_target} stores below ${s.target_percent} % (all of them are in the CSV).`
      : `${s.below_target} stores below ${s.target_percent} %.`;
    $("p-result").hidden = false;
  }

  function chartButton(storeId) {
    const button = el("button", { type: "button", class: "small", text: "Chart" });
    button.setAttribute("aria-label", `Uptime by month of store ${storeId}`);
    button.addEventListener("click", () => pick(storeId));
    return button;
  }

  function pick(storeId) {
    const next = new URLSearchParams(location.search);
    next.set("store", storeId);
    history.replaceState(null, "", "?" + next);
    return monthly(storeId);
  }

  async function monthly(storeId) {
    const section = $("monthly-section");
    const params = new URLSearchParams({ months: "12" });
    const when = asOf || query.get("as_of");
    if (when) params.set("as_of", when);
    $("m-store").value = storeId;
    try {
      const m = await api(`/stores/${encodeURIComponent(storeId)}/monthly?${params}`);
      Charts.monthly($("monthly"), m.months, target);
      $("m-caption").textContent = `Store ${storeId}: uptime % of business hours per local month, ` +
        `each up to as_of ${utc(m.as_of)}` + (target === null ? "." : `; the dashed line is the target, ${target} %.`);
      section.dataset.store = storeId;
      section.dataset.loaded = "1";
    } catch (e) {
      $("monthly").replaceChildren();
      $("m-caption").textContent = `Store ${storeId}: ${e.message}`;
      section.dataset.loaded = "error";
    }
  }

  $("monthly-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("m-store").value.trim();
    if (id) pick(id);
  });

  const viewQuery = () => {
    const p = new URLSearchParams({ limit: "500" });
    if (query.get("target")) p.set("target", query.get("target"));
    return p;
  };

  async function watch() {
    clearTimeout(timer);
    try {
      const view = await api(`/periods/reports/${encodeURIComponent(reportId)}?${viewQuery()}`, {}, watch);
      setLive(view);
      root.dataset.status = view.status;
      if (view.status === "Running") { timer = setTimeout(watch, 400); return; }
      if (view.status === "Failed") { showError(`The period report failed: ${view.error}`); return; }
      render(view);
      const store = query.get("store") || (view.summary.below_target_stores[0] || {}).store_id;
      if (store) await monthly(store);
      root.dataset.reportId = reportId;
      UI.ready();
    } catch (e) { showError(e.message); }
  }

  async function start() {
    const params = new URLSearchParams();
    for (const name of ["period", "from", "to", "as_of"]) {
      if (query.has(name)) params.set(name, query.get(name));
    }
    if (!["period", "from", "to"].some((name) => params.has(name))) {
      if (query.get("target")) target = Number(query.get("target"));
      if (query.get("store")) await monthly(query.get("store"));
      UI.ready();
      return;
    }
    try {
      const t = await api(`/periods/reports?${params}`, { method: "POST" }, start);
      reportId = t.report_id;
      root.dataset.reused = String(t.reused);
      setLive({ report_id: reportId, status: "Running", progress: 0 });
      watch();
    } catch (e) { showError(e.message); }
  }

  fill();
  start();
})();
