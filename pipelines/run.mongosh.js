// Run a versioned report pipeline from mongosh, with the same parameters as the service.
//
// Usage (all variables optional):
//   mongosh "$MONGODB_URI/uptime" --quiet \
//     --eval 'var asOf="2024-03-12T15:00:00Z", pipelineVersion="v1", out="report_rows", storeFrom=null, storeTo=null' \
//     pipelines/run.mongosh.js
//
//   asOf      ISO-8601 instant (UTC if no offset); default: the latest store_status.timestamp_utc
//             not after the server's time + 5 minutes
//   pipelineVersion  pipeline version, file pipelines/store_uptime.<version>.json; default "v1".
//             v1 aggregates on store_status (the polls); v2 on status_runs (the status timeline)
//             and reads store_schedules (both kept current by the service; see the v2 sidecar)
//   out       collection to write the rows to ($out, replaces it); default: print one JSON row per line
//   storeFrom / storeTo   store_id range [storeFrom, storeTo); null = unbounded
//   pipelineDir  folder holding the pipeline files; default: the folder of this script
//
// Environment variables UPTIME_AS_OF, UPTIME_PIPELINE_VERSION, UPTIME_OUT are used when the
// corresponding variable is not set. Timezones are screened here exactly as the service does:
// every distinct store_timezones.timezone_str is tried in a $dateToParts on the server, and
// only the accepted names go into $$timezones (others fall back to America/Chicago).
/* global db, EJSON, __dirname, asOf, pipelineVersion, out, storeFrom, storeTo, pipelineDir */

(function () {
  const fs = require('fs');
  const path = require('path');
  const env = (typeof process !== 'undefined' && process.env) || {};
  const get = (name, envName, dflt) => {
    let v;
    try { v = eval(name); } catch (e) { v = undefined; } // eslint-disable-line no-eval
    if (typeof v === 'function') v = undefined; // a mongosh built-in of that name, not a setting
    if (v === undefined && envName && env[envName] !== undefined && env[envName] !== '') v = env[envName];
    return v === undefined ? dflt : v;
  };

  const ver = get('pipelineVersion', 'UPTIME_PIPELINE_VERSION', 'v1');
  if (!/^v[0-9]+$/.test(ver)) throw new Error(`version must look like "v1", got ${ver}`);
  let dir = get('pipelineDir', null, null);
  if (dir === null) dir = typeof __dirname !== 'undefined' ? __dirname : 'pipelines';
  const file = path.join(dir, `store_uptime.${ver}.json`);
  const stages = EJSON.parse(fs.readFileSync(file, 'utf8'), { relaxed: false });
  const tag = `store_uptime@${ver}`;
  const source = { v1: 'store_status', v2: 'status_runs' }[ver] || 'store_status';

  let when = get('asOf', 'UPTIME_AS_OF', null);
  if (when === null) {
    // The latest poll not after the server's time + 5 min (clock skew; later polls are future
    // polls) nor before year 1, as uptime.report.pipeline.resolve_as_of: a covered scan of the
    // poll index (no index leads with timestamp_utc).
    const bound = new Date(db.hello().localTime.getTime() + 5 * 60 * 1000);
    const latest = db.store_status.aggregate([
      { $match: { store_id: { $type: 'string' },
        timestamp_utc: { $type: 'date', $gte: new Date(-62135596800000), $lte: bound } } },
      { $group: { _id: null, t: { $max: '$timestamp_utc' } } },
    ], { comment: `${tag}:as_of` }).toArray();
    if (latest.length === 0) { print('no polls in store_status: nothing to report'); return; }
    when = latest[0].t;
  } else {
    const s = String(when);
    when = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`);
    if (isNaN(when.getTime())) throw new Error(`asOf is not an ISO-8601 instant: ${s}`);
  }

  // issue 18: v1 reads the raw polls; those before the retention horizon may be compacted
  const retention = db.polls_retention.findOne({ _id: 'store_status' });
  if (ver === 'v1' && retention && retention.horizon instanceof Date
      && when.getTime() - 7 * 86400000 < retention.horizon.getTime()) {
    throw new Error(`pipeline v1 reads the raw polls, and those before the retention horizon ` +
      `${retention.horizon.toISOString()} were removed (UPTIME_POLL_RETENTION_DAYS); the week ` +
      `before asOf ${when.toISOString()} starts at ` +
      `${new Date(when.getTime() - 7 * 86400000).toISOString()}: use version v2 (the status ` +
      `timeline keeps that history) or an asOf at least 7 days after the horizon`);
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

  const letVars = {
    as_of: when,
    timezones: timezones,
    store_from: get('storeFrom', null, null),
    store_to: get('storeTo', null, null)
  };
  const target = get('out', 'UPTIME_OUT', null);
  const pipeline = target ? stages.concat([{ $out: target }]) : stages;
  const cursor = db.getCollection(source).aggregate(pipeline, { let: letVars, comment: tag, allowDiskUse: true });
  if (target) {
    cursor.toArray();
    print(`wrote ${db.getCollection(target).countDocuments()} rows to ${target} (${tag}, as_of ${when.toISOString()})`);
    return;
  }
  while (cursor.hasNext()) print(EJSON.stringify(cursor.next(), { relaxed: true }));
})();
