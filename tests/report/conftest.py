"""Fixtures of the report tests."""

from __future__ import annotations

import pytest

from support import pipeline as pipeline_support


@pytest.fixture(params=["v1", "v2", "v3"])
def report_version(request, monkeypatch) -> str:
    """The report-version parameter: a test using it runs once per report version (issue 8,
    item 5: v2 gives v1's rows; issue 19: v3, v2 on the cached business hours, too); ``support.pipeline.report`` and friends run that version."""
    monkeypatch.setattr(pipeline_support, "VERSION", request.param)
    return request.param
