"""``uptime-monitor bench``: the report against its floor and its alternative (issue 5, "Benchmark").

For every scale (1.0 = the v1 shape: 14,092 stores, 9 days of hourly polls, ~2.9M rows) the
benchmark, on one server (``MONGODB_URI``, else the embedded mongod) and in a fresh database
``uptime_bench_<random>`` dropped at the end:

1. **generate** the dataset (``uptime.tools.generate``; cached under the cache dir, keyed by scale,
   seed and the generator's source, so repeated runs do not regenerate);
2. **import** it with ``uptime.ingest.importer.import_files`` — status rows/s end to end from CSV;
3. **migrate**: ``uptime.platform.migrations.ensure_current(db, apply=True)`` (the indexes);
4. ``runs`` times, in this order:

   - **T_report**: the full report through the report service (``ReportService.trigger`` →
     pipeline → CSV into GridFS → Complete), in a fresh child Python process whose own
     peak RSS (``ru_maxrss``) is the "peak RSS of the process generating the report";
   - **T_floor**: one ``$setWindowFields`` (partitionBy store_id, sortBy timestamp_utc, one
     ``$shift``) over the same polls (report v1's ``$match``: every valid poll; the bench's
     ``as_of`` is the latest one), then ``$count`` — what any ordered per-store read costs
     (``pipelines/bench_floor.v1.json``);
   - **T_alt**: ``uptime.tools.alt_report`` in a fresh child process — fetch polls, hours and
     timezones with PyMongo and compute the same report with polars;

5. checks that the alternative's CSV equals the stored report's CSV byte for byte.

The pipeline itself runs inside mongod, so mongod's RSS is sampled too (every 0.1 s during
each phase, with psutil when mongod runs on this machine — the embedded child or a local
server — else from ``serverStatus().mem.resident``); its peak is reported separately.
Times are wall-clock seconds; min and median over the runs are reported. Results are printed
as a table and written to ``<results-dir>/<UTC timestamp>.json``.

Targets (printed pass/fail, on medians): T_report <= 3 × T_floor; T_report < T_alt;
T_report(2) / T_report(1) <= 2.3; peak RSS of the report process <= 300 MB; import >= 50,000
status rows/s; and the alternative's CSV equal to the report's.

Defaults: the reference scale 1 timed 3 times, scales 0.25 and 2 once each (3 runs at all
three scales would take ~18 minutes on 2 cores; this plan takes ~8-11 minutes, the first
time ~20 s more to generate the data).

Modules (one phase each): ``dataset`` (generate and cache), ``measure`` (child processes for
T_report/T_alt, the floor, mongod RSS), ``scale`` (one scale: import, migrate, timed runs),
``targets`` (pass/fail and the table), ``run`` (the plan and the JSON file); the other phases:
``ingest`` (POST /polls throughput), ``runs`` (the status timeline), ``incidents``, ``v2``
(report v2 vs v1, DuckDB, history growth), ``chatty`` (request time limits). The command is
``uptime.cli.bench``.
"""

from uptime.tools.bench.dataset import DATASET_META, default_cache_dir, ensure_dataset
from uptime.tools.bench.measure import floor_pipeline, phase_main, run_floor
from uptime.tools.bench.run import plan_runs, run_bench
from uptime.tools.bench.scale import ScaleResult, bench_scale
from uptime.tools.bench.targets import (
    TARGET_FLOOR_RATIO,
    TARGET_GROWTH,
    TARGET_IMPORT_RPS,
    TARGET_RSS_BYTES,
    evaluate_targets,
    render,
)

__all__ = ["DATASET_META", "TARGET_FLOOR_RATIO", "TARGET_GROWTH", "TARGET_IMPORT_RPS",
           "TARGET_RSS_BYTES", "ScaleResult", "bench_scale", "default_cache_dir",
           "ensure_dataset", "evaluate_targets", "floor_pipeline", "phase_main", "plan_runs",
           "render", "run_bench", "run_floor"]
