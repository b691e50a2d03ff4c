"""Issue 9 item 11: a schemathesis run over the real app (ASGI, real mongod): every check,
bounded examples, no failure. Answers must match the OpenAPI document (statuses, bodies,
headers, content types), schema-valid input must be accepted and invalid input rejected,
and nothing may be a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis.generation.modes import GenerationMode

from uptime.platform.settings import Settings
from uptime.web import api

MAX_EXAMPLES = 25  # per operation and mode


@pytest.fixture(scope="module")
def api_schema(mongo_uri, tmp_path_factory):
    """The app's own /openapi.json, loaded through its ASGI interface (the lifespan runs on
    schemathesis's event loop; a short server-selection timeout keeps its shutdown quick)."""
    uri = mongo_uri + ("&" if "?" in mongo_uri else "?") + "serverSelectionTimeoutMS=3000"
    settings = Settings(mongodb_uri=uri, mongodb_database="test_schemathesis",
                        data_dir=tmp_path_factory.mktemp("st"))
    return schemathesis.openapi.from_asgi("/openapi.json", api.create_app(settings))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(api_schema, mode):
    """Rule: every response of every operation conforms to the document (all of
    schemathesis's checks), for generated valid (positive) and invalid (negative) input."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/trigger_report", "/get_report", "/reports",
                                               "/healthz"}
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.path == "/healthz":
            continue  # no input at all: nothing invalid can be generated

        @given(case=operation.as_strategy(generation_mode=mode))
        @hyp_settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate()

        run()
