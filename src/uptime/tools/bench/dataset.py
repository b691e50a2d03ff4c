"""The benchmark's datasets: generated once per scale and seed by ``uptime.tools.generate``
and cached (keyed by the generator's source), so repeated runs do not regenerate."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir

import uptime.tools.generate as gen
from uptime.tools.generate import V1_STORES, generate_dataset

DATASET_META = "dataset.json"


# --------------------------------------------------------------------------- dataset cache
def _generator_key() -> str:
    """Short hash of the generator's source: a changed generator invalidates the cache."""

    return hashlib.sha256(Path(gen.__file__).read_bytes()).hexdigest()[:10]


def default_cache_dir() -> Path:
    """``UPTIME_BENCH_CACHE`` or the per-user cache dir (e.g. ``~/.cache/uptime/bench``)."""
    configured = os.environ.get("UPTIME_BENCH_CACHE")
    if configured:
        return Path(configured)

    return Path(user_cache_dir("uptime", appauthor=False)) / "bench"


def ensure_dataset(cache_dir: Path, scale: float, seed: int) -> tuple[dict[str, Any], bool]:
    """Return (dataset description, generated now?) for ``scale``/``seed``, generating if needed.

    The description has ``dir``, ``status``/``hours``/``timezones`` paths, ``stores``,
    ``status_rows``, ``hours_rows``, ``timezone_rows``, ``as_of`` (ISO) and ``generate_s``.
    A dataset is complete only once its ``dataset.json`` exists (written last).
    """
    stores = max(1, round(V1_STORES * scale))
    folder = cache_dir / f"g{_generator_key()}-stores{stores}-seed{seed}"
    meta_path = folder / DATASET_META
    if meta_path.is_file():
        return json.loads(meta_path.read_text()), False
    files = generate_dataset(folder, stores=stores, seed=seed)
    meta = {
        "dir": str(folder),
        "status": str(files.status),
        "hours": str(files.hours),
        "timezones": str(files.timezones),
        "stores": files.stores,
        "status_rows": files.status_rows,
        "inactive_rows": files.inactive_rows,
        "hours_rows": files.hours_rows,
        "timezone_rows": files.timezone_rows,
        "as_of": files.as_of.isoformat(),
        "generate_s": round(files.seconds, 3),
        "seed": seed,
        "scale": scale,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta, True
