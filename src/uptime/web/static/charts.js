// Hand-drawn SVG charts (no library): the uptime histogram, a store's time line, and a
// store's uptime % by month.
// Every mark carries data-* attributes with its numbers (the browser tests read them) and a
// <title> (a tooltip, read by screen readers).
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const titled = (node, text) => { node.append(svg("title", {}, text)); return node; };

  // buckets: [{from, to, stores}] (from == to == 100: no downtime).
  function histogram(container, buckets, totalStores) {
    const W = 640, H = 260, left = 44, bottom = 40, top = 18;
    const n = buckets.length, slot = (W - left - 8) / n, max = Math.max(1, ...buckets.map((b) => b.stores));
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "histogram",
      "aria-label": `Histogram of last-week uptime: ${buckets.map((b) => `${label(b)} %: ${b.stores}`).join(", ")}` });
    const plotH = H - top - bottom;
    for (const frac of [0, 0.5, 1]) {
      const y = top + plotH * (1 - frac);
      root.append(svg("line", { x1: left, x2: W - 8, y1: y, y2: y, class: "grid" }),
        svg("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, String(Math.round(max * frac))));
    }
    buckets.forEach((b, i) => {
      const h = plotH * b.stores / max, x = left + i * slot + 3, y = top + plotH - h;
      const g = svg("g", { class: "hbar", "data-from": b.from, "data-to": b.to, "data-stores": b.stores });
      g.append(titled(svg("rect", { x, y, width: slot - 6, height: h, class: b.from === 100 ? "full" : "part" }),
        `${label(b)} %: ${b.stores} stores`));
      g.append(svg("text", { x: x + (slot - 6) / 2, y: y - 4, "text-anchor": "middle", class: "count" }, String(b.stores)));
      g.append(svg("text", { x: x + (slot - 6) / 2, y: H - bottom + 16, "text-anchor": "middle", class: "axis" }, label(b)));
      root.append(g);
    });
    root.append(svg("text", { x: left + (W - left) / 2, y: H - 6, "text-anchor": "middle", class: "axis" },
      `uptime last week, % of business hours (${totalStores} stores)`));
    container.replaceChildren(root);
  }
  const label = (b) => (b.from === b.to ? `${b.to}` : `${b.from}–${b.to}`);

  // One store's interval: business hours shaded, runs coloured by status, poll ticks, a local
  // time axis (ticks at local midnight in `tz`).
  function timeline(container, t) {
    const W = 1000, H = 170, left = 8, right = 8;
    const t0 = Date.parse(t.from), t1 = Date.parse(t.to);
    const x = (ms) => left + (W - left - right) * (ms - t0) / (t1 - t0);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "timeline",
      "aria-label": `Time line of store ${t.store_id} from ${t.from} to ${t.to}, local time ${t.timezone}: ` +
        `${t.runs.length} status runs, ${t.business_hours.length} business-hours intervals` });
    const laneTop = 14, laneH = 80;
    root.append(svg("rect", { x: left, y: laneTop, width: W - left - right, height: laneH, class: "closed" }));
    for (const o of t.business_hours) {
      const a = Date.parse(o.start), b = Date.parse(o.end);
      root.append(titled(svg("rect", { x: x(a), y: laneTop, width: Math.max(0.5, x(b) - x(a)), height: laneH,
        class: "bh", "data-start": o.start, "data-end": o.end }), `open ${o.start_local} – ${o.end_local}`));
    }
    for (const r of t.runs) {
      root.append(titled(svg("rect", { x: x(r.start_ms), y: laneTop + 28, width: Math.max(0.5, x(r.end_ms) - x(r.start_ms)),
        height: 24, class: "run " + r.status, "data-status": r.status, "data-start-ms": r.start_ms, "data-end-ms": r.end_ms }),
        `${r.status} ${local(r.start_ms, t.timezone)} – ${local(r.end_ms, t.timezone)} (${r.polls} polls)`));
    }
    const ticks = svg("g", { class: "ticks" });
    for (const p of t.polls) {
      const px = x(Date.parse(p.t));
      ticks.append(svg("line", { x1: px, x2: px, y1: laneTop + laneH + 2, y2: laneTop + laneH + 12,
        class: "tick " + p.status, "data-t": p.t }));
    }
    root.append(ticks);
    const axisY = laneTop + laneH + 16;
    root.append(svg("line", { x1: left, x2: W - right, y1: axisY, y2: axisY, class: "axisline" }));
    const days = midnights(t0, t1, t.timezone);
    const every = Math.max(1, Math.ceil(days.length / 14));
    days.forEach((d, i) => {
      const px = x(d.ms);
      root.append(svg("line", { x1: px, x2: px, y1: laneTop, y2: axisY + 6, class: "midnight", "data-local": d.label }));
      if (i % every === 0) {
        root.append(svg("text", { x: px + 3, y: axisY + 18, class: "axis" }, d.label));
      }
    });
    root.append(svg("text", { x: W / 2, y: H - 4, "text-anchor": "middle", class: "axis tz" },
      `local time: ${t.timezone}` + (t.timezone_source === "store" ? "" : ` (${t.timezone_source})`)));
    container.replaceChildren(root);
  }

  // A store's incidents on its time line (drawn by `timeline` from the same `t`): a band above
  // the runs from started_at to ended_at (or as_of = the interval's end while open), clipped to
  // the interval, and a mark at its start.
  function incidents(container, t, list) {
    const root = container.querySelector("svg.timeline");
    if (!root) return;
    const W = 1000, left = 8, right = 8, laneTop = 14;
    const t0 = Date.parse(t.from), t1 = Date.parse(t.to);
    const x = (ms) => left + (W - left - right) * (Math.min(t1, Math.max(t0, ms)) - t0) / (t1 - t0);
    const g = svg("g", { class: "incidents" });
    for (const i of list) {
      const a = Date.parse(i.started_at), b = i.ended_at ? Date.parse(i.ended_at) : t1;
      const mark = svg("g", { class: "incident" + (i.open ? " open" : ""), "data-started": i.started_at,
        "data-ended": i.ended_at || "", "data-minutes": String(i.business_downtime_minutes) });
      mark.append(titled(svg("rect", { x: x(a), y: laneTop + 58, width: Math.max(2, x(b) - x(a)), height: 12, class: "band" }),
        `incident from ${local(a, t.timezone)} to ${i.ended_at ? local(b, t.timezone) : "now (open)"}: ` +
        `${i.business_downtime_minutes} min of business downtime`));
      if (a >= t0) mark.append(svg("path", { d: `M ${x(a) - 5} ${laneTop + 4} l 10 0 l -5 8 z`, class: "start" }));
      g.append(mark);
    }
    root.append(g);
  }

  // A store's uptime % per month (period page): one bar per month on an axis from just
  // below the lowest value (or the target) to 100 %, below-target bars red, the month in
  // progress lighter, the target as a dashed line; a month without business time has no bar.
  function monthly(container, months, target) {
    const W = 720, H = 250, left = 44, right = 8, top = 18, bottom = 40;
    const values = months.map((m) => m.uptime_percent).filter((v) => v !== null);
    const lo = Math.max(0, Math.floor(Math.min(100, ...values, target ?? 100)) - 1);
    const plotH = H - top - bottom, slot = (W - left - right) / Math.max(1, months.length);
    const y = (v) => top + plotH * (100 - v) / (100 - lo);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "monthly",
      "aria-label": "Uptime % by month: " + months.map((m) =>
        `${m.month}: ${m.uptime_percent === null ? "no business hours" : m.uptime_percent + " %"}`).join(", ") });
    for (const v of [lo, (lo + 100) / 2, 100]) {
      root.append(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid" }),
        svg("text", { x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, String(Number(v.toFixed(1)))));
    }
    months.forEach((m, i) => {
      const x = left + i * slot + 3, w = slot - 6, p = m.uptime_percent;
      const g = svg("g", { class: "mbar", "data-month": m.month, "data-percent": p === null ? "" : String(p),
        "data-partial": String(m.partial) });
      if (p === null) {
        g.append(titled(svg("text", { x: x + w / 2, y: y(lo) - 4, "text-anchor": "middle", class: "axis" }, "–"),
          `${m.month}: no business hours up to as_of`));
      } else {
        const below = target !== null && target !== undefined && p < target;
        g.append(titled(svg("rect", { x, y: y(p), width: w, height: Math.max(1, y(lo) - y(p)),
          class: (below ? "below" : "ok") + (m.partial ? " partial" : "") }),
          `${m.month}: ${p} % (${m.uptime_hours} h up, ${m.downtime_hours} h down of ${m.business_hours} h)` +
          (m.partial ? ", up to as_of" : "")));
        g.append(svg("text", { x: x + w / 2, y: y(p) - 4, "text-anchor": "middle", class: "count" }, p.toFixed(2)));
      }
      g.append(svg("text", { x: x + w / 2, y: H - bottom + 16, "text-anchor": "middle", class: "axis" },
        `${m.month.slice(5)}/${m.month.slice(2, 4)}`));
      root.append(g);
    });
    if (target !== null && target !== undefined && target >= lo) {
      root.append(titled(svg("line", { x1: left, x2: W - right, y1: y(target), y2: y(target), class: "target",
        "data-target": String(target) }), `target ${target} %`));
    }
    root.append(svg("text", { x: left + (W - left) / 2, y: H - 6, "text-anchor": "middle", class: "axis" },
      "uptime, % of business hours, per local month"));
    container.replaceChildren(root);
  }

  const fmtCache = {};
  function parts(ms, tz) {
    const f = fmtCache[tz] ||= new Intl.DateTimeFormat("en-GB", { timeZone: tz, hourCycle: "h23",
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
    return Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  }
  // Local midnights in (t0, t1): scanned every 15 min (every zone's offset is a multiple).
  function midnights(t0, t1, tz) {
    const out = [], step = 15 * 60000;
    let ms = Math.ceil(t0 / step) * step, prevDay = parts(ms, tz).day;
    for (ms += step; ms < t1; ms += step) {
      const p = parts(ms, tz);
      if (p.day !== prevDay) { out.push({ ms, label: `${p.weekday} ${p.day} ${p.month}` }); prevDay = p.day; }
    }
    return out;
  }
  function local(ms, tz) {
    const p = parts(ms, tz);
    return `${p.weekday} ${p.day} ${p.month} ${p.hour}:${p.minute}`;
  }
  return { histogram, timeline, incidents, monthly, local };
})();
