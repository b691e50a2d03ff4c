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
// status_runs.v1.json, exactly as uptime.incidents.query.load_pipeline does. The settings,
// asOf and zones are read as common.mongosh.js (beside this file) does.
/* global db, uptimeRunner, __dirname */

(function () {
  load(require('path').join(typeof __dirname !== 'undefined' ? __dirname : 'pipelines', 'common.mongosh.js'));
  const { setting, instant, pipeline, asOf, timezones, write } = uptimeRunner;
  const tag = 'incidents@v1';

  // status_runs.v1.json's run derivation: its first $match without the $expr, then every stage
  // but the recompute-only $unionWith and the final $merge, without `batch`.
  const runs = pipeline('status_runs.v1.json');
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
  const stages = splice(pipeline('incidents.v1.json'));

  const when = asOf(tag);
  if (when === null) { print('no polls in store_status: no incidents'); return; }

  const src = setting('source', 'polls');
  if (src !== 'polls' && src !== 'runs' && src !== 'stores') throw new Error(`source must be "polls", "runs" or "stores", got ${src}`);
  const ord = String(setting('order', 'store'));
  if (!['store', 'longest', 'recent'].includes(ord)) throw new Error(`order must be "store", "longest" or "recent", got ${ord}`);
  const f = setting('from', null);
  const t = setting('to', null);
  const lim = setting('limit', null);
  const letVars = {
    as_of: when,
    min_minutes: Number(setting('minMinutes', 15)),
    timezones: timezones(tag),
    source: src,
    poll_stores: (setting('pollStores', []) || []).map(String),
    store_from: setting('storeFrom', null),
    store_to: setting('storeTo', null),
    from: f === null ? null : instant('from', f),
    to: t === null ? null : instant('to', t),
    open: setting('open', null),
    skip: Number(setting('skip', 0)),
    limit: lim === null ? null : Number(lim),
    order: ord
  };
  write(db.status_runs.aggregate(stages, { let: letVars, comment: `${tag}:${src}`, allowDiskUse: true }),
    null, tag, when);
})();
