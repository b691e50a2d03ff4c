// What the mongosh runners of this folder share (run, incidents, period, runs .mongosh.js): how
// they read their settings, instants, pipeline files, the default asOf and the screened
// timezones — one copy of each rule, the same as the service's. Not a runner itself: each
// runner loads it first, from its own folder:
//
//   load(require('path').join(typeof __dirname !== 'undefined' ? __dirname : 'pipelines',
//                              'common.mongosh.js'));
//
// and then uses the global `uptimeRunner`:
//   setting(name, dflt, envName)  the variable `name` set by --eval (a mongosh built-in of that
//                 name does not count), else the environment variable envName when given and
//                 not empty, else dflt
//   instant(name, value)  an ISO-8601 instant (UTC when it has no offset) as a Date; throws
//                 "<name> is not an ISO-8601 instant"
//   pipeline(file)  the stages of <pipelineDir>/<file> (Extended JSON, canonical); pipelineDir
//                 defaults to this folder
//   asOf(tag, envName)  the asOf setting as a Date; unset: the latest store_status.timestamp_utc
//                 not after the server's time + 5 minutes nor before year 1 (as
//                 uptime.report.pipeline.resolve_as_of: a covered scan of the poll index);
//                 null when there is no such poll
//   timezones(tag)  the distinct store_timezones.timezone_str that the server accepts in a
//                 $dateToParts, sorted (others fall back to America/Chicago), as the service
//   write(cursor, target, tag, when)  target null: print one relaxed-EJSON row per line; else
//                 the cursor ends in $out target: run it and print how many rows it wrote
// `tag` is the comment the aggregations carry (e.g. "store_uptime@v1"), with ":as_of" /
// ":timezones" appended for these helpers' own reads.
/* global db, EJSON, __dirname */

globalThis.uptimeRunner = (function () {
  const fs = require('fs');
  const path = require('path');
  const env = (typeof process !== 'undefined' && process.env) || {};
  const here = typeof __dirname !== 'undefined' ? __dirname : 'pipelines';

  // The settings are global variables (var x = ... in --eval); an indirect eval reads the
  // global scope only, so the names of this file (asOf...) never hide a setting.
  const setting = (name, dflt, envName) => {
    let v;
    try { v = (0, eval)(name); } catch (e) { v = undefined; } // eslint-disable-line no-eval
    if (typeof v === 'function') v = undefined; // a mongosh built-in of that name, not a setting
    if (v === undefined && envName && env[envName] !== undefined && env[envName] !== '') v = env[envName];
    return v === undefined ? dflt : v;
  };

  const instant = (name, value) => {
    const s = String(value);
    const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`);
    if (isNaN(d.getTime())) throw new Error(`${name} is not an ISO-8601 instant: ${s}`);
    return d;
  };

  const pipeline = (file) => {
    const folder = setting('pipelineDir', null) === null ? here : setting('pipelineDir', null);
    return EJSON.parse(fs.readFileSync(path.join(folder, file), 'utf8'), { relaxed: false });
  };

  const asOf = (tag, envName) => {
    const given = setting('asOf', null, envName);
    if (given !== null) return instant('asOf', given);
    // later polls are future polls (clock skew: 5 min); no index leads with timestamp_utc
    const bound = new Date(db.hello().localTime.getTime() + 5 * 60 * 1000);
    const latest = db.store_status.aggregate([
      { $match: { store_id: { $type: 'string' },
        timestamp_utc: { $type: 'date', $gte: new Date(-62135596800000), $lte: bound } } },
      { $group: { _id: null, t: { $max: '$timestamp_utc' } } },
    ], { comment: `${tag}:as_of` }).toArray();
    return latest.length === 0 ? null : latest[0].t;
  };

  const timezones = (tag) => {
    const names = db.store_timezones.distinct('timezone_str').filter((z) => typeof z === 'string');
    const accepted = [];
    for (const z of names) {
      try {
        db.aggregate([{ $documents: [{}] },
          { $project: { p: { $dateToParts: { date: new Date(946684800000), timezone: '$$tz' } } } }],
        { let: { tz: z }, comment: `${tag}:timezones` }).toArray();
        accepted.push(z);
      } catch (e) {
        if (!(e.code === 40485 || e.code === 40517 || /time zone/.test(String(e.message)))) throw e;
      }
    }
    return accepted.sort();
  };

  const write = (cursor, target, tag, when) => {
    if (target) {
      cursor.toArray();
      print(`wrote ${db.getCollection(target).countDocuments()} rows to ${target} (${tag}, as_of ${when.toISOString()})`);
      return;
    }
    while (cursor.hasNext()) print(EJSON.stringify(cursor.next(), { relaxed: true }));
  };

  return { setting, instant, pipeline, asOf, timezones, write };
})();
