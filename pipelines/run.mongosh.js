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
// The settings, asOf, zones and output are read as common.mongosh.js (beside this file) does.
/* global db, uptimeRunner, __dirname */

(function () {
  load(require('path').join(typeof __dirname !== 'undefined' ? __dirname : 'pipelines', 'common.mongosh.js'));
  const { setting, pipeline, asOf, timezones, write } = uptimeRunner;

  const ver = setting('pipelineVersion', 'v1', 'UPTIME_PIPELINE_VERSION');
  if (!/^v[0-9]+$/.test(ver)) throw new Error(`version must look like "v1", got ${ver}`);
  const stages = pipeline(`store_uptime.${ver}.json`);
  const tag = `store_uptime@${ver}`;
  const source = { v1: 'store_status', v2: 'status_runs' }[ver] || 'store_status';

  const when = asOf(tag, 'UPTIME_AS_OF');
  if (when === null) { print('no polls in store_status: nothing to report'); return; }

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

  const letVars = {
    as_of: when,
    timezones: timezones(tag),
    store_from: setting('storeFrom', null),
    store_to: setting('storeTo', null)
  };
  const target = setting('out', null, 'UPTIME_OUT');
  const stagesOut = target ? stages.concat([{ $out: target }]) : stages;
  write(db.getCollection(source).aggregate(stagesOut, { let: letVars, comment: tag, allowDiskUse: true }),
    target, tag, when);
})();
