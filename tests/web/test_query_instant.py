"""``uptime.web.errors.query_instant``: the one reading of an instant query parameter
(``as_of``, ``from``, ``to``) shared by the store, incidents, trigger and period routes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.exceptions import RequestValidationError

from uptime.platform import asof
from uptime.web.errors import MAX_ECHO, query_instant


def test_absent_is_none_and_text_is_aware_utc() -> None:
    """Rule: absent -> None; ISO 8601 without offset is UTC; an offset is converted to UTC;
    a query's "+" decoded to a space is read as "+" (10:00 at +02:00 = 08:00 UTC)."""
    assert query_instant("from", None) is None
    assert query_instant("from", "2024-03-01T10:00:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert query_instant("to", "2024-03-01T10:00:00 02:00") == datetime(2024, 3, 1, 8, tzinfo=UTC)


def test_bad_text_is_a_422_at_the_parameter_with_a_cut_echo() -> None:
    """Rule (house rules: a clear 4xx naming what and where): a bad instant is a 422 in the
    list shape located at ("query", name), echoing at most MAX_ECHO (200) characters."""
    with pytest.raises(RequestValidationError) as raised:
        query_instant("as_of", "yesterday" * 100)
    [error] = raised.value.errors()
    assert error["loc"] == ("query", "as_of")
    assert error["msg"].endswith(asof.EXPECTED_FORM)
    assert error["input"] == ("yesterday" * 100)[:200] and MAX_ECHO == 200
