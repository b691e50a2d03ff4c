"""Query parameters of a period report (issue 18, item 1) for ``POST /trigger_report``:
``period`` or ``from``/``to`` -> an ``uptime.report.period.Period``, or a 422 naming the
parameter and what is wrong (never a 500)."""

from __future__ import annotations

from uptime.platform import asof
from uptime.report import period as period_report
from uptime.web.errors import invalid_input

_ECHO = 200  # characters of a rejected value repeated back


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
                            "give either period or from/to, not both", period[:_ECHO])
    if period is not None:
        try:
            return period_report.parse_period(period)
        except period_report.PeriodError as exc:
            raise invalid_input(("query", "period"), str(exc), period[:_ECHO]) from None
    if start is None and end is None:
        return None
    if start is None or end is None:
        missing = "from" if start is None else "to"
        raise invalid_input(("query", missing), "from and to go together", None)
    bounds = []
    for name, value in (("from", start), ("to", end)):
        try:
            bounds.append(asof.parse_as_of(value, repair_plus=True))
        except asof.AsOfError as exc:
            raise invalid_input(("query", name), str(exc), value[:_ECHO]) from None
    try:
        return period_report.period_from_range(*bounds)
    except period_report.PeriodError as exc:
        raise invalid_input(("query", "from"), str(exc), start[:_ECHO]) from None

