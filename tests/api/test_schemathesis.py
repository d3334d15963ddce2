"""The API keeps its published contract, checked by Schemathesis over every operation.

Requests generated from the served OpenAPI document, valid and deliberately invalid, sent with
a member token to the app in process (WSGI). For each answer:

- ``not_a_server_error``: never a 5xx;
- ``status_code_conformance`` and ``response_schema_conformance``: the status is one the schema
  declares for the operation, and the body matches the declared schema for it;
- ``negative_data_rejection``: a request the schema rejects is refused (4xx), never accepted;
- ``positive_data_acceptance``: a request the schema allows is not refused as malformed (400).
  A 422 is allowed: a well-formed value can still break a rule the schema cannot say (an
  unknown region, a slug with capitals, a capacity outside the region's limits). So is a 400
  for a list ``cursor`` the API never gave out (see ``is_a_cursor_we_never_gave_out``).

Operations that need a running sandbox on a node (exec, files, logs) answer 404 for the random
ids generated here; the schema declares that. Bounded for CI: 25 examples per operation in
the fuzzing phase (``BERTH_SCHEMATHESIS_EXAMPLES`` to dig deeper), no shrinking, no example
database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.models import Organization, Role
from dashboard.wsgi import application

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",
            "max-examples": int(os.environ.get("BERTH_SCHEMATHESIS_EXAMPLES", "25")),
            "no-shrink": True,
            "database": "none",
            "with-security-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"],
            },
        },
    }
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]


@pytest.fixture
def member_token(org: Organization, token_for: Callable[[Organization, str], str]) -> str:
    return token_for(org, Role.MEMBER)


# The served document, as a client would fetch it (not a copy of it).
schema = schemathesis.openapi.from_wsgi("/api/v2/openapi.json", application, config=CONFIG)


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
# One token and one set of regions per operation is the point: the examples of an operation
# share them (and whatever the earlier examples created), like a client's requests would.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_every_operation_keeps_the_contract(case: Case, member_token: str, regions: list[Any]) -> None:
    headers = {"Authorization": f"Bearer {member_token}"}
    response = case.call(headers=headers)
    checks = CHECKS
    if is_a_cursor_we_never_gave_out(case, response):
        checks = [check for check in CHECKS if check is not positive_data_acceptance]
    case.validate_response(response, checks=checks, headers=headers)


def is_a_cursor_we_never_gave_out(case: Case, response: Any) -> bool:
    """A list's ``cursor`` is opaque: any string fits the schema, but only one the API gave out
    works, and a made-up one is a 400 that says so. No schema can tell the two apart."""
    if response.status_code != 400 or not (case.query or {}).get("cursor"):
        return False
    return "cursor" in response.json()["error"]["message"]
