"""Helpers for tests on the public Loop files (``../shared/data/public``, the ``public_data``
fixture)."""

from __future__ import annotations

from pathlib import Path


def sample_rows(src: Path, status: str, out: Path) -> tuple[Path, Path]:
    """Write to ``out`` the rows of ``src``'s ``menu_hours.csv`` and ``timezones.csv`` whose
    store is in the poll sample ``src/status`` (header kept); return the two paths (hours,
    timezones). A report reads only these stores' rows, so it is the same report as with the
    full files, for a fraction of the import time."""
    stores = {line.split(",", 1)[0].lstrip("\ufeff")
              for line in (src / status).read_text(encoding="utf-8-sig").splitlines()[1:]}
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("menu_hours.csv", "timezones.csv"):
        lines = (src / name).read_text(encoding="utf-8-sig").splitlines()
        (out / name).write_text("\n".join(
            [lines[0]] + [ln for ln in lines[1:] if ln.split(",", 1)[0] in stores]) + "\n")
        paths.append(out / name)
    return paths[0], paths[1]
