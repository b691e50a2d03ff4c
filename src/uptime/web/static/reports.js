// The reports list: trigger, live progress, download, failure reason (issue 11, item 2).
"use strict";
(() => {
  const { api, el, fmt2, utc, showError } = UI;
  const tbody = document.querySelector("#reports tbody");
  const live = document.getElementById("live");
  const liveBar = document.getElementById("live-bar");
  const liveText = document.getElementById("live-text");
  let watching = null;   // the report triggered from this page
  let timer = null;

  function bar(progress, label) {
    const pct = Math.round(progress * 100);
    const node = el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-valuenow": String(pct), "aria-label": label }, el("span"));
    node.firstChild.style.width = pct + "%";
    return node;
  }

  function setLive(report) {
    live.hidden = false;
    const pct = Math.round(report.progress * 100);
    liveBar.setAttribute("aria-valuenow", String(pct));
    liveBar.firstElementChild.style.width = pct + "%";
    liveText.textContent = report.status === "Running" ? `Report ${report.report_id}: ${pct} %`
      : report.status === "Complete" ? `Report ${report.report_id} complete (100 %).`
      : `Report ${report.report_id} failed: ${report.error}`;
    live.dataset.status = report.status;
  }

  function row(r) {
    const id = r.status === "Complete"
      ? el("a", { href: `/ui/reports/${encodeURIComponent(r.report_id)}` }, el("code", { text: r.report_id }))
      : el("code", { text: r.report_id });
    let last;
    if (r.status === "Complete") {
      const href = `/get_report?report_id=${encodeURIComponent(r.report_id)}`;
      last = el("a", { href, download: `report-${r.report_id}.csv`, class: "download" }, "Download CSV");
      last.addEventListener("click", (event) => {
        if (!UI.hasToken()) return;
        event.preventDefault();
        UI.download(href, `report-${r.report_id}.csv`).catch((e) => showError(e.message));
      });
    } else if (r.status === "Failed") {
      last = el("span", { class: "reason", text: r.error || "failed" });
    } else {
      last = el("span", { class: "muted", text: "generating…" });
    }
    return el("tr", { "data-report-id": r.report_id, "data-status": r.status },
      el("td", {}, id), el("td", {}, el("span", { class: "status " + r.status.toLowerCase(), text: r.status })),
      el("td", {}, bar(r.progress, `Progress of report ${r.report_id}`)),
      el("td", { text: utc(r.as_of) }),
      // the pipeline that produced it (v2 on a current status timeline, else v1), and why
      // a period report (issue 18) shows its period instead of the pipeline
      el("td", { class: "pipeline", text: r.kind === "period" && r.period
        ? "period " + r.period.label : (r.pipeline || "").replace("store_uptime@", ""),
        title: r.pipeline_reason || "" }),
      el("td", { text: r.rows ?? "–" }),
      el("td", { text: utc(r.created_at) }), el("td", {}, last));
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const list = await api("/reports?limit=50", {}, refresh);
      tbody.replaceChildren(...(list.length ? list.map(row)
        : [el("tr", {}, el("td", { colspan: "8", text: "No reports yet: generate one above." }))]));
      const mine = watching && list.find((r) => r.report_id === watching);
      if (mine) setLive(mine);
      if (list.some((r) => r.status === "Running")) timer = setTimeout(refresh, 400);
      UI.ready();
    } catch (e) { showError(e.message); }
  }

  document.getElementById("trigger-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const asOf = document.getElementById("as-of").value.trim();
    const query = asOf ? "?as_of=" + encodeURIComponent(asOf) : "";
    try {
      const { report_id } = await api("/trigger_report" + query, { method: "POST" });
      watching = report_id;
      setLive({ report_id, status: "Running", progress: 0 });
      refresh();
    } catch (e) { showError(e.message); }
  });
  refresh();
})();
