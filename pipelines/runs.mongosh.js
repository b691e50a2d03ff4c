// Build the status timeline (status_runs) from mongosh, as `uptime-monitor runs rebuild` and the
// follower's recompute do (issue 8; sidecar: pipelines/status_runs.v1.md).
//
// Full rebuild (optionally of a store-id range [storeFrom, storeTo)):
//   mongosh "$MONGODB_URI/uptime" --quiet pipelines/runs.mongosh.js
//   mongosh "$MONGODB_URI/uptime" --quiet --eval 'var storeFrom="a", storeTo="b"' pipelines/runs.mongosh.js
// Recompute some stores around changed poll instants (what the follower does):
//   mongosh "$MONGODB_URI/uptime" --quiet \
//     --eval 'var stores=["123","456"], changedFrom="2023-01-25T00:00:00Z", changedTo="2023-01-25T18:00:00Z"' \
//     pipelines/runs.mongosh.js
//
//   pipelineDir  folder holding the pipeline files; default: the folder of this script
// The settings and instants are read as common.mongosh.js (beside this file) does.
// Prints one line: what was done, runs in the collection, stale runs removed, seconds.
/* global db, ObjectId, uptimeRunner, __dirname */

(function () {
  load(require('path').join(typeof __dirname !== 'undefined' ? __dirname : 'pipelines', 'common.mongosh.js'));
  const { setting: get, instant, pipeline } = uptimeRunner;
  const main = pipeline('status_runs.v1.json');
  const windowsPipeline = pipeline('status_runs_windows.v1.json');
  const tag = 'status_runs@v1';
  const batch = new ObjectId();
  const notBatch = { $or: [{ batch: { $lt: batch } }, { batch: { $not: { $type: 'objectId' } } }] };
  const started = Date.now();
  const storeList = get('stores', null);
  let deleted = 0;
  let what;

  if (storeList === null) {
    const from = get('storeFrom', null);
    const to = get('storeTo', null);
    db.store_status.aggregate(main, {
      let: { windows: null, store_from: from, store_to: to, since: null, batch: batch },
      comment: `${tag}:rebuild`, allowDiskUse: true
    }).toArray();
    const range = {};
    if (from !== null) range.$gte = from;
    if (to !== null) range.$lt = to;
    const filter = Object.keys(range).length ? { $and: [notBatch, { store_id: range }] } : notBatch;
    deleted = db.status_runs.deleteMany(filter).deletedCount;
    what = from === null && to === null ? 'rebuilt status_runs' : `rebuilt stores [${from}, ${to})`;
  } else {
    const a = instant('changedFrom', get('changedFrom', ''));
    const b = instant('changedTo', get('changedTo', ''));
    if (a > b) throw new Error('changedFrom is after changedTo');
    const changes = storeList.map((s) => ({ s: String(s), a: a, b: b }));
    const windows = db.status_runs.aggregate(windowsPipeline,
      { let: { changes: changes }, comment: `${tag}:windows` }).toArray();
    if (windows.length) {
      // one pipeline run reads every window's polls store by store (since = "far future")
      db.store_status.aggregate(main, {
        let: { windows: windows, store_from: '', store_to: '', since: new Date(253402300799999), batch: batch },
        comment: `${tag}:recompute`, allowDiskUse: true
      }).toArray();
      for (const w of windows) {
        deleted += db.status_runs.deleteMany(Object.assign(
          { store_id: w.s, first_poll: { $gte: w.lo, $lte: w.hi } }, notBatch)).deletedCount;
      }
    }
    what = `recomputed ${windows.length} stores around [${a.toISOString()}, ${b.toISOString()}]`;
  }
  print(`${what}: ${db.status_runs.countDocuments({})} runs, ${deleted} stale runs removed, ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s (${tag})`);
})();
