// Apply or revert one migration file from mongosh, recording it in migrations_changelog
// exactly as `uptime-monitor migrate` does (file_name, applied_at, checksum = sha256 of the bytes),
// so `uptime-monitor migrate status` sees it. Takes the same lock (migrations_lock, _id "migrations").
//
//   mongosh "mongodb://HOST/uptime" --quiet \
//     --eval 'const MIGRATION = "migrations/20261129140000-initial-indexes.json"' \
//     --file migrations/apply.mongosh.js
//
// Optional: const DIRECTION = "down" (default "up"). Without this script, a DBA can also run
// the commands by hand:  EJSON.parse(fs.readFileSync(F, "utf8")).up.forEach(c => printjson(db.runCommand(c)))
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");

if (typeof MIGRATION === "undefined") {
  throw new Error('set the file first: --eval \'const MIGRATION = "migrations/<file>.json"\'');
}
const direction = typeof DIRECTION === "undefined" ? "up" : DIRECTION;
if (direction !== "up" && direction !== "down") throw new Error('DIRECTION must be "up" or "down"');

const bytes = fs.readFileSync(MIGRATION);
const fileName = path.basename(MIGRATION);
const checksum = crypto.createHash("sha256").update(bytes).digest("hex");
const migration = EJSON.parse(bytes.toString("utf8"), { relaxed: false });
const changelog = db.getCollection("migrations_changelog");
const lock = db.getCollection("migrations_lock");
const owner = `mongosh:${fileName}:${new Date().toISOString()}`;

// Taken like `uptime-monitor migrate` takes it: one atomic upsert that sets us as owner only if the
// lock is free or expired, with times from the server's clock ($$NOW).
const free = { $or: [{ $eq: [{ $type: "$owner" }, "missing"] }, { $lt: ["$expires_at", "$$NOW"] }] };
const take = (value, current) => ({ $cond: [free, value, current] });
let held = null;
try {
  held = lock.findOneAndUpdate(
    { _id: "migrations" },
    [{ $set: {
      owner: take({ $literal: owner }, "$owner"),
      acquired_at: take("$$NOW", "$acquired_at"),
      expires_at: take({ $add: ["$$NOW", 300000] }, "$expires_at"),
    } }],
    { upsert: true, returnDocument: "after" });
} catch (e) {
  if (e.code !== 11000) throw e;  // raced with another first-ever lock: it won
}
if (!held || held.owner !== owner) {
  throw new Error(`migrations are locked: ${EJSON.stringify(lock.findOne({ _id: "migrations" }))}`);
}
// On a replica set an index build commits on a majority (the default, all voting members,
// waits forever while one secondary is down), as `uptime-monitor migrate` does.
const quorum = db.hello().setName ? { commitQuorum: "majority" } : {};
try {
  const applied = changelog.findOne({ file_name: fileName });
  if (direction === "up" && applied) {
    print(`already applied: ${fileName} (at ${applied.applied_at.toISOString()})`);
  } else if (direction === "down" && !applied) {
    print(`not applied: ${fileName}`);
  } else {
    migration[direction].forEach((command, i) => {
      const name = Object.keys(command)[0];
      const result = db.runCommand(
        name === "createIndexes" && !("commitQuorum" in command) ? { ...command, ...quorum } : command);
      // dropIndexes of a missing index/collection counts as done, like `uptime-monitor migrate`.
      if (!result.ok && !(name === "dropIndexes" && (result.code === 26 || result.code === 27))) {
        throw new Error(`${fileName}: ${direction}[${i}] (${name}) failed: ${EJSON.stringify(result)}`);
      }
    });
    if (direction === "up") {
      changelog.createIndex({ file_name: 1 }, { name: "file_name_unique", unique: true });
      changelog.insertOne({ file_name: fileName, applied_at: new Date(), checksum });
      print(`applied ${fileName}`);
    } else {
      changelog.deleteOne({ file_name: fileName });
      print(`reverted ${fileName}`);
    }
  }
} finally {
  lock.deleteOne({ _id: "migrations", owner });
}
