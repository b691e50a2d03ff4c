// The incidents page (issue 17, item 5): open incidents longest first and resolved ones most
// recent first, each list paginated; filters (store, open/resolved, min minutes, time range,
// as_of) live in the page's URL. Data: GET /incidents (order=longest / order=recent).
"use strict";
(() => {
  const { api, el, utc, dur, incidentStoreHref, showError } = UI;
  const params = new URLSearchParams(location.search);
  const pageSize = Math.min(1000, Math.max(1, parseInt(params.get("limit"), 10) || 50));
  const form = document.getElementById("inc-filters");
  const fields = { store: "f-store", min: "f-min", from: "f-from", to: "f-to", as_of: "f-as-of" };
  for (const [name, id] of Object.entries(fields)) document.getElementById(id).value = params.get(name) || "";
  const state = ["open", "resolved"].includes(params.get("state")) ? params.get("state") : "all";
  document.getElementById("f-state").value = state;
  if (params.get("limit")) form.append(el("input", { type: "hidden", name: "limit", value: String(pageSize) }));
  // the form keeps only what is set (empty = the API's default), as the store page's
  form.addEventListener("submit", () => {
    for (const input of form.querySelectorAll("input, select")) {
      input.disabled = !input.value.trim() || (input.name === "state" && input.value === "all");
    }
  });

  // GET /incidents for one list: the filters of the URL + open/order/page (URLSearchParams
  // encodes every value).
  function query(open, order, skip) {
    const q = new URLSearchParams();
    const map = { store: "store_id", min: "min_minutes", from: "from", to: "to", as_of: "as_of" };
    for (const [name, api_name] of Object.entries(map)) {
      const value = (params.get(name) || "").trim();
      if (value) q.set(api_name, value);
    }
    q.set("open", open); q.set("order", order); q.set("skip", String(skip)); q.set("limit", String(pageSize));
    return "/incidents?" + q;
  }

  const zone = (i) => i.timezone + (i.timezone_fallback ? " (fallback)" : "");
  function row(i, asOf) {
    const cells = [el("td", {}, el("a", { href: incidentStoreHref(i, asOf) }, el("code", { text: i.store_id }))),
      el("td", { text: utc(i.started_at) })];
    if (!i.open) cells.push(el("td", { text: utc(i.ended_at) }));
    cells.push(el("td", { class: "minutes", text: dur(i.business_downtime_minutes) }),
      el("td", { text: dur(i.duration_minutes) }), el("td", { text: i.inactive_polls ?? "–" }),
      el("td", { text: zone(i) }));
    return el("tr", { "data-store-id": i.store_id, "data-started": i.started_at, "data-ended": i.ended_at || "",
      "data-minutes": String(i.business_downtime_minutes) }, ...cells);
  }

  let shown = 0;
  function list(sectionId) {
    const root = document.getElementById(sectionId);
    const open = root.dataset.open, order = root.dataset.order;
    const tbody = root.querySelector("tbody"), count = root.querySelector(".count");
    const prev = root.querySelector(".prev"), next = root.querySelector(".next");
    const columns = root.querySelectorAll("thead th").length;
    let skip = 0, nextSkip = null, loads = 0;
    async function load() {
      try {
        const body = await api(query(open, order, skip), {}, reloadAll);
        const items = body.incidents;
        tbody.replaceChildren(...(items.length ? items.map((i) => row(i, body.as_of))
          : [el("tr", {}, el("td", { colspan: String(columns), text: open === "true" ? "No open incidents." : "No resolved incidents." }))]));
        count.textContent = body.total === null ? "No more incidents."
          : body.total === 0 ? "None."
          : `${skip + 1}–${skip + items.length} of ${body.total}`;
        document.getElementById("inc-context").textContent = body.as_of === null ? "No polls yet: no incidents."
          : `As of ${utc(body.as_of)} UTC; an incident is an inactive stretch with at least ` +
            `${body.min_minutes} min of business downtime.`;
        nextSkip = body.next_skip;
        prev.disabled = skip === 0;
        next.disabled = nextSkip === null;
        root.dataset.total = body.total === null ? "" : String(body.total);
        root.dataset.skip = String(skip);
        root.dataset.loads = String(++loads);  // tests wait for this
        if (loads === 1 && ++shown === visible.length) UI.ready();
      } catch (e) { showError(e.message); }
    }
    prev.addEventListener("click", () => { skip = Math.max(0, skip - pageSize); load(); });
    next.addEventListener("click", () => { if (nextSkip !== null) { skip = nextSkip; load(); } });
    return load;
  }

  document.getElementById("open-section").hidden = state === "resolved";
  document.getElementById("resolved-section").hidden = state === "open";
  const visible = ["open-section", "resolved-section"].filter((id) => !document.getElementById(id).hidden);
  const loaders = visible.map(list);
  function reloadAll() { for (const load of loaders) load(); }  // after a token was typed
  reloadAll();
})();
