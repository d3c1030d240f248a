"""Schema fuzzing with schemathesis against the app in process (ASGI): generated requests for
every operation, checked for server errors, rejection of invalid data, acceptance of valid data
and response-schema conformance. CI runs a reduced number of cases; the full run is
``EBM_PURIFY_FUZZ_EXAMPLES=200 pytest tests/service/test_fuzz.py`` (over 1000 cases)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.app import create_app
from service.settings import ServiceSettings
from tests.conftest import make_model_folder

EXAMPLES = int(os.environ.get("EBM_PURIFY_FUZZ_EXAMPLES", "25"))
_folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"ebm-purify-fuzz-{os.getpid()}"
make_model_folder(_folder)
app = create_app(ServiceSettings(model=str(_folder), max_steps=3, max_replicates=2, max_images=4, warmup=False))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def started():
    with TestClient(app):  # runs the lifespan: backend loaded, compute thread started
        yield


# A JSON-Schema-valid image payload (any base64 string, any numbers) is usually not a decodable
# image of the model's shape, which a schema cannot express: for the operations that take images,
# a 4xx answer to schema-valid data is correct, so only "schema-valid data accepted" is left out.
IMAGE_OPERATIONS = {"/purify", "/classify", "/v2/models/{model}/infer"}
CASES: list[str] = []


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests(case) -> None:
    CASES.append(f"{case.operation.method.upper()} {case.operation.path}")
    excluded = [positive_data_acceptance] if case.operation.path in IMAGE_OPERATIONS else []
    response = case.call_and_validate(excluded_checks=excluded)
    assert response.status_code < 500


def test_every_operation_was_fuzzed() -> None:
    """Runs after the generated tests (file order): report and check the number of cases."""
    operations = {c for c in CASES}
    print(f"schemathesis: {len(CASES)} generated cases over {len(operations)} operations")
    assert len(operations) == len(list(schema.get_all_operations())) and len(CASES) >= len(operations) * min(EXAMPLES, 5)
