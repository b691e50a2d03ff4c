"""Where one report's time goes: a per-phase profile recorded on the report (issue 19, item 1).

Every generation attempt measures its phases with a :class:`PhaseClock` and stores them on the
report document as ``phases: {name: seconds}`` (wall-clock seconds, 4 decimals), visible in
``GET /get_report``'s status JSON, ``uptime-monitor report``'s output and
``uptime-monitor bench``. Phase names (:data:`PHASES`, in the order of a report)::

    queue        trigger -> generation starts (waiting for a free slot; from created_at)
    as_of        resolving as_of (the latest poll when none is given)
    choose       choosing the pipeline (timeline freshness, schedules ready)
    timezones    waiting for the zone names the server knows (the pipeline's let; listed from
                 the start of the attempt, beside as_of and choose)
    pipeline     waiting on the report cursor: MongoDB computing and sending the rows
    csv          formatting the CSV lines in Python
    gridfs       writing the CSV into the GridFS upload (chunks, then the files document)
    report_rows  inserting the rows into report_rows
    progress     progress writes on the report document
    finish       the Complete write
    total        trigger -> Complete (``finished_at - created_at``)

and two that run **concurrently** with the above (so they overlap the others; they cost the
report nothing unless they outlast it): ``quality`` (the ignored-input counts,
``uptime.report.quality``) and ``count_stores`` (the store count for progress). The CLI adds
its own: ``cli_start`` (process start -> the command runs: interpreter and imports),
``cli_connect`` (server and client, service start) and ``cli_copy`` (the CSV out of GridFS into
the output file).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Phases of a report in order (see the module doc); concurrent ones last.
PHASES = (
    "queue", "as_of", "choose", "timezones", "pipeline", "csv", "gridfs", "report_rows",
    "progress", "finish", "total", "quality", "count_stores",
)
#: Phases the CLI adds around the report.
CLI_PHASES = ("cli_start", "cli_connect", "cli_copy")
#: Decimals kept per phase (0.1 ms).
DECIMALS = 4


class PhaseClock:
    """Accumulates wall-clock seconds per named phase (a phase may be entered many times).

    ``with clock.phase("csv"): ...`` adds the block's duration to ``csv``; :meth:`add` adds a
    measured duration; :meth:`as_dict` returns ``{name: seconds}`` rounded to 4 decimals, in
    :data:`PHASES` order then first-use order.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` (>= 0) to phase ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + max(0.0, seconds)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block into phase ``name`` (also when it raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def as_dict(self) -> dict[str, float]:
        """``{name: seconds}`` (4 decimals), known phases first in :data:`PHASES` order."""
        order = [p for p in PHASES if p in self.seconds]
        order += [p for p in self.seconds if p not in PHASES]
        return {p: round(self.seconds[p], DECIMALS) for p in order}


def format_phases(phases: dict[str, float] | None) -> str:
    """One line for people: ``"as_of 0.012 s, pipeline 1.490 s, ..."`` (``"-"`` if none)."""
    if not phases:
        return "-"
    return ", ".join(f"{name} {seconds:.3f} s" for name, seconds in phases.items())
