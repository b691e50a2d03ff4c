// Shared helpers: fetch the JSON API (with the bearer token when the service wants one),
// show errors, format numbers and dates. No dependencies.
"use strict";
const UI = (() => {
  const TOKEN_KEY = "uptime-token";
  const tokenForm = document.getElementById("token-form");
  const errorBox = document.getElementById("error");

  function headers() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { Authorization: "Bearer " + token } : {};
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  let retry = null;
  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
    tokenForm.hidden = true;
    showError("");
    if (retry) retry();
  });

  // GET/POST the API; resolves to the parsed JSON; rejects with a message (also shown).
  async function api(path, options = {}, onRetry = null) {
    const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
    if (response.status === 401) {
      tokenForm.hidden = false;
      retry = onRetry;
      document.getElementById("token").focus();
      throw new Error("This service needs an API token: type it above.");
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body && body.detail;
      // 422: a list of {loc, msg, ...}; every other error: a string (README, HTTP API).
      const text = typeof detail === "string" ? detail
        : Array.isArray(detail) ? detail.map((e) => e.msg).join("; ") : JSON.stringify(detail);
      throw new Error(`${response.status}: ${text || response.statusText}`);
    }
    return body;
  }

  // Download a CSV with the token (a plain link cannot send the header).
  async function download(url, filename) {
    const response = await fetch(url, { headers: headers() });
    if (!response.ok) throw new Error(`download failed: ${response.status}`);
    const blob = await response.blob();
    const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: filename });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  const fmt2 = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(2));
  const utc = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, "") : "–");
  // minutes -> "2 d 3 h 05 min" / "1 h 30 min" / "12.5 min" (incidents' durations)
  function dur(minutes) {
    if (minutes === null || minutes === undefined) return "–";
    if (minutes < 60) return `${Number(minutes.toFixed(2))} min`;
    const total = Math.round(minutes), d = Math.floor(total / 1440), h = Math.floor((total % 1440) / 60);
    const m = String(total % 60).padStart(2, "0");
    return d ? `${d} d ${h} h ${m} min` : `${h} h ${m} min`;
  }
  // The store page around an incident (its time line ignores polls after `to`, so `to` must
  // reach the poll that ended it: the recovery instant E is the midpoint between the last
  // inactive poll L >= the stretch's start S and the active poll P, so P = 2E - L <= 2E - S):
  // from S - 1 day to min(2E - S + 1 day, asOf), or to asOf while open; the time line's
  // longest interval is 92 days (a longer one shows its last 92 days).
  function incidentStoreHref(i, asOf) {
    const day = 864e5, s = Date.parse(i.stretch_start), e = i.ended_at ? Date.parse(i.ended_at) : null;
    const end = e === null ? Date.parse(asOf) : Math.min(2 * e - s + day, Date.parse(asOf));
    const start = Math.max(s - day, end - 92 * day);
    return `/ui/stores/${encodeURIComponent(i.store_id)}?from=${encodeURIComponent(new Date(start).toISOString())}` +
      `&to=${encodeURIComponent(new Date(end).toISOString())}`;
  }
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }
  // The page has drawn its data: tests wait for body[data-ready]; page_bench reads readyAt.
  function ready() {
    if (!window.readyAt) window.readyAt = performance.now();
    document.body.dataset.ready = "1";
  }
  return { api, download, showError, fmt2, utc, dur, incidentStoreHref, el, ready, hasToken: () => !!sessionStorage.getItem(TOKEN_KEY) };
})();
