// Run the incident pipeline (pipelines/incidents.v1.json; sidecar incidents.v1.md) from mongosh,
// with the same parameters and timezone screening as the service (issue 17).
//
// Usage (all variables optional):
//   mongosh "$MONGODB_URI/uptime" --quiet \
//     --eval 'var asOf="2024-03-12T15:00:00Z", minMinutes=15, source="runs"' \
//     pipelines/incidents.mongosh.js
//
//   asOf        ISO-8601 instant (UTC if no offset); default: the latest store_status.timestamp_utc
//               not after the server's time + 5 minutes (the report's default)
//   minMinutes  least business downtime of an incident, minutes; default 15
//               (UPTIME_INCIDENT_MIN_MINUTES's default)
//   source      "polls" (default: every store's runs derived from store_status, always exact) or
//               "runs" (read status_runs: fast, exact only when the timeline is current)
//   pollStores  with source "runs": array of store ids derived from their polls instead;
//               with source "stores": the only stores read (each derived from its polls)
//   storeFrom / storeTo   store_id range [storeFrom, storeTo); null = unbounded
//   from / to   incidents overlapping [from, to) (ISO-8601); open  true | false | null
//   skip / limit  a page of the sorted result
//   order       "store" (default: store_id, started_at), "longest" (most business downtime
//               first) or "recent" (latest ended_at first, open = asOf)
//   pipelineDir folder holding the pipeline files; default: the folder of this script
//
// Prints one JSON document per incident (sorted by `order`; each carries `total` and
// `open_total`, the counts of the whole result before skip/limit). The file's
// {"$runsFromPolls": ...} markers are replaced here by the run-derivation stages of
// status_runs.v1.json, exactly as uptime.incidents.query.load_pipeline does.
/* global db, EJSON, __dirname, asOf, minMinutes, source, pollStores, storeFrom, storeTo, from, to, open, skip, limit, order, pipelineDir */

(function () {
  const fs = require('fs');
  const path = require('path');
  const get = (name, dflt) => {
    let v;
    try { v = eval(name); } catch (e) { v = undefined; } // eslint-disable-line no-eval
    if (typeof v === 'function') v = undefined; // a mongosh built-in of that name, not a setting
    return v === undefined ? dflt : v;
  };
  const instant = (name, s) => {
    const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(String(s)) ? String(s) : `${s}Z`);
    if (isNaN(d.getTime())) throw new Error(`${name} is not an ISO-8601 instant: ${s}`);
    return d;
  };
  let dir = get('pipelineDir', null);
  if (dir === null) dir = typeof __dirname !== 'undefined' ? __dirname : 'pipelines';
  const load = (f) => EJSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'), { relaxed: false });
  const tag = 'incidents@v1';

  // status_runs.v1.json's run derivation: its first $match without the $expr, then every stage
  // but the recompute-only $unionWith and the final $merge, without `batch`.
  const runs = load('status_runs.v1.json');
  const first = Object.assign({}, runs[0].$match);
  delete first.$expr;
  const derive = [{ $match: first }];
  for (const stage of runs.slice(1)) {
    const name = Object.keys(stage)[0];
    if (name === '$unionWith' || name === '$merge') continue;
    if (name === '$project' && 'batch' in stage.$project) delete stage.$project.batch;
    derive.push(stage);
  }
  const splice = (stages) => {
    const out = [];
    for (const stage of stages) {
      if ('$runsFromPolls' in stage) { for (const d of derive) out.push(d); continue; }
      if ('$unionWith' in stage && stage.$unionWith.pipeline) {
        out.push({ $unionWith: Object.assign({}, stage.$unionWith, { pipeline: splice(stage.$unionWith.pipeline) }) });
        continue;
      }
      out.push(stage);
    }
    return out;
  };
  const pipeline = splice(load('incidents.v1.json'));

  let when = get('asOf', null);
  if (when === null) {
    const bound = new Date(db.hello().localTime.getTime() + 5 * 60 * 1000);
    const latest = db.store_status.aggregate([
      { $match: { store_id: { $type: 'string' },
        timestamp_utc: { $type: 'date', $gte: new Date(-62135596800000), $lte: bound } } },
      { $group: { _id: null, t: { $max: '$timestamp_utc' } } },
    ], { comment: `${tag}:as_of` }).toArray();
    if (latest.length === 0) { print('no polls in store_status: no incidents'); return; }
    when = latest[0].t;
  } else {
    when = instant('asOf', when);
  }

  const names = db.store_timezones.distinct('timezone_str').filter((z) => typeof z === 'string');
  const timezones = [];
  for (const z of names) {
    try {
      db.aggregate([{ $documents: [{}] },
        { $project: { p: { $dateToParts: { date: new Date(946684800000), timezone: '$$tz' } } } }],
      { let: { tz: z }, comment: `${tag}:timezones` }).toArray();
      timezones.push(z);
    } catch (e) {
      if (!(e.code === 40485 || e.code === 40517 || /time zone/.test(String(e.message)))) throw e;
    }
  }
  timezones.sort();

  const src = get('source', 'polls');
  if (src !== 'polls' && src !== 'runs' && src !== 'stores') throw new Error(`source must be "polls", "runs" or "stores", got ${src}`);
  const ord = String(get('order', 'store'));
  if (!['store', 'longest', 'recent'].includes(ord)) throw new Error(`order must be "store", "longest" or "recent", got ${ord}`);
  const f = get('from', null);
  const t = get('to', null);
  const lim = get('limit', null);
  const letVars = {
    as_of: when,
    min_minutes: Number(get('minMinutes', 15)),
    timezones: timezones,
    source: src,
    poll_stores: (get('pollStores', []) || []).map(String),
    store_from: get('storeFrom', null),
    store_to: get('storeTo', null),
    from: f === null ? null : instant('from', f),
    to: t === null ? null : instant('to', t),
    open: get('open', null),
    skip: Number(get('skip', 0)),
    limit: lim === null ? null : Number(lim),
    order: ord
  };
  const cursor = db.status_runs.aggregate(pipeline,
    { let: letVars, comment: `${tag}:${src}`, allowDiskUse: true });
  while (cursor.hasNext()) print(EJSON.stringify(cursor.next(), { relaxed: true }));
})();
