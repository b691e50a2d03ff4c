"""Query parameters of a period report (issue 18, item 1) for ``POST /trigger_report``:
``period`` or ``from``/``to`` -> an ``uptime.report.period.Period``, or a 422 naming the
parameter and what is wrong (never a 500)."""

from __future__ import annotations

from uptime.report import period as period_report
from uptime.web.errors import MAX_ECHO, invalid_input, query_instant


def period_of_query(
    period: str | None, start: str | None, end: str | None
) -> period_report.Period | None:
    """``None`` when none of the three is given (the hour/day/week report).

    Raises:
        fastapi.exceptions.RequestValidationError: (a 422) ``period`` with ``from``/``to``; only one of
            ``from``/``to``; a malformed period (``2024-13``, ``2024-Q5``, ``2021-W53``);
            ``from``/``to`` not ISO 8601; ``from >= to``.
    """
    if period is not None and (start is not None or end is not None):
        raise invalid_input(("query", "period"),
                            "give either period or from/to, not both", period[:MAX_ECHO])
    if period is not None:
        try:
            return period_report.parse_period(period)
        except period_report.PeriodError as exc:
            raise invalid_input(("query", "period"), str(exc), period[:MAX_ECHO]) from None
    if start is None and end is None:
        return None
    if start is None or end is None:
        missing = "from" if start is None else "to"
        raise invalid_input(("query", missing), "from and to go together", None)
    try:
        return period_report.period_from_range(query_instant("from", start),
                                               query_instant("to", end))
    except period_report.PeriodError as exc:
        raise invalid_input(("query", "from"), str(exc), start[:MAX_ECHO]) from None

