// Run the period report pipeline (pipelines/period_uptime.v1.json) from mongosh, with the same
// parameters as the service (uptime.report.period). Sidecar: period_uptime.v1.md.
//
// Usage:
//   mongosh "$MONGODB_URI/uptime" --quiet \
//     --eval 'var period="2024-03", asOf="2024-04-02T00:00:00Z"' pipelines/period.mongosh.js
//   mongosh "$MONGODB_URI/uptime" --quiet \
//     --eval 'var from="2024-03-01T00:00:00Z", to="2024-03-08T00:00:00Z"' pipelines/period.mongosh.js
//
//   period    YYYY-MM, YYYY-Qn, YYYY or YYYY-Www (ISO week): each store's local calendar period
//   from, to  instead of period: a UTC range [from, to), the same for every store
//   asOf      ISO-8601 instant (UTC if no offset); default: the latest store_status.timestamp_utc
//             not after the server's time + 5 minutes
//   source    "timeline" (default: aggregate on status_runs, kept current by the service) or
//             "polls" (derive the runs from store_status with status_runs.v1.json's stages,
//             spliced in front: for a timeline that lags or does not exist)
//   out       collection to write the rows to ($out, replaces it); default: one JSON row per line
//   storeFrom / storeTo   store_id range [storeFrom, storeTo); null = unbounded
//   pipelineDir  folder holding the pipeline files; default: the folder of this script
// The settings, asOf, zones and output are read as common.mongosh.js (beside this file) does.
/* global db, ObjectId, uptimeRunner, __dirname */

(function () {
  load(require('path').join(typeof __dirname !== 'undefined' ? __dirname : 'pipelines', 'common.mongosh.js'));
  const { setting: get, instant, pipeline, asOf, timezones, write } = uptimeRunner;
  const tag = 'period_uptime@v1';
  const DAY = 86400000;
  const MARGIN = 2 * DAY; // as uptime.report.period.ZONE_MARGIN
  const parts = (ms) => { const d = new Date(ms); return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() }; };

  // -- the period (the rules of uptime.report.period.parse_period) --------------------------
  const label = get('period', null);
  let localStart = null; let localEnd = null; let lo; let hi;
  if (label !== null) {
    if (get('from', null) !== null || get('to', null) !== null) throw new Error('give either period or from/to, not both');
    const s = String(label); let m; let first; let end;
    if ((m = /^(\d{4})-(\d{2})$/.exec(s))) {
      const y = +m[1]; const mo = +m[2];
      if (mo < 1 || mo > 12) throw new Error(`period "${s}": the month must be 01..12`);
      first = Date.UTC(y, mo - 1, 1); end = Date.UTC(y, mo, 1);
    } else if ((m = /^(\d{4})-Q(\d)$/.exec(s))) {
      const y = +m[1]; const q = +m[2];
      if (q < 1 || q > 4) throw new Error(`period "${s}": the quarter must be Q1..Q4`);
      first = Date.UTC(y, 3 * q - 3, 1); end = Date.UTC(y, 3 * q, 1);
    } else if ((m = /^(\d{4})$/.exec(s))) {
      first = Date.UTC(+m[1], 0, 1); end = Date.UTC(+m[1] + 1, 0, 1);
    } else if ((m = /^(\d{4})-W(\d{2})$/.exec(s))) {
      const y = +m[1]; const w = +m[2];
      const jan4 = Date.UTC(y, 0, 4);
      first = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY + (w - 1) * 7 * DAY;
      if (w < 1 || new Date(first + 3 * DAY).getUTCFullYear() !== y) throw new Error(`period "${s}": ISO year ${y} has no week ${m[2]}`);
      end = first + 7 * DAY;
    } else {
      throw new Error(`period "${s}": expected YYYY-MM, YYYY-Qn, YYYY or YYYY-Www`);
    }
    localStart = parts(first); localEnd = parts(end);
    lo = new Date(first - MARGIN); hi = new Date(end + MARGIN);
  } else {
    if (get('from', null) === null || get('to', null) === null) throw new Error('give period, or from and to');
    lo = instant('from', get('from', null)); hi = instant('to', get('to', null));
    if (lo >= hi) throw new Error(`from (${lo.toISOString()}) must be before to (${hi.toISOString()})`);
  }

  // -- as_of and the zones, as run.mongosh.js (common.mongosh.js) ----------------------------
  const when = asOf(tag);
  if (when === null) { print('no polls in store_status: nothing to report'); return; }

  // -- the pipeline -------------------------------------------------------------------------
  let stages = pipeline('period_uptime.v1.json');
  let coll = 'status_runs';
  const letVars = {
    as_of: when, timezones: timezones(tag), store_from: get('storeFrom', null), store_to: get('storeTo', null),
    local_start: localStart, local_end: localEnd, from: lo, to: hi,
  };
  const src = get('source', 'timeline');
  if (src === 'polls') {
    // the runs of status_runs.v1.json (full mode, without its $merge), then the three reads
    // of the period file as one $match on them (as uptime.report.period.on_the_fly_pipeline)
    const runs = pipeline('status_runs.v1.json').filter((st) => !('$merge' in st));
    const r1 = stages[0].$match.$expr;
    const r2 = stages[1].$unionWith.pipeline[0].$match.$expr;
    const r3 = stages[2].$unionWith.pipeline[0].$match.$expr;
    stages = runs.concat([{ $match: { $expr: { $or: [r1, r2, r3] } } }, { $set: { after: r3 } }], stages.slice(3));
    Object.assign(letVars, { windows: null, since: null, batch: new ObjectId() });
    coll = 'store_status';
  } else if (src !== 'timeline') {
    throw new Error(`source must be "timeline" or "polls", got ${src}`);
  }
  const target = get('out', null);
  write(db.getCollection(coll).aggregate(target ? stages.concat([{ $out: target }]) : stages,
    { let: letVars, comment: src === 'polls' ? `${tag}:on_the_fly` : tag, allowDiskUse: true }),
  target, tag, when);
})();
