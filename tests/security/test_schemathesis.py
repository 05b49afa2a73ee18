"""schemathesis against /api/v1/openapi.json over WSGI (no network), as an administrator and
as a low-privilege user (read and create on one entity, nothing else): refusals must be as
documented as answers.

Every documented operation gets generated requests; each response must not be a server
error, must have a documented status and content type, and its body must match the schema.
Derandomized, so a failure reproduces; a few examples per operation keep it quick.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from formwork.auth.scopes import SCOPES
from formwork.auth.users import create_token, create_user, grant
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.schema import apply_definitions
from formwork.runtime.security import system_principal
from tests.conftest import PASSWORD, make_test_app, sample_documents

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def admin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, dict[str, str]]]:
    """Return an app with the sample entities, a few records and tokens of an admin and of
    a clerk (read and create on sample.project only)."""
    folder = tmp_path_factory.mktemp("schemathesis")
    app = make_test_app(folder)
    session = app.extensions["formwork"].sessions()
    apply_definitions(session, "sample", sample_documents())
    admin = create_user(session, "admin", PASSWORD, ["admin"])
    clerk = create_user(session, "clerk", PASSWORD, ["clerk"])
    grant(session, "clerk", "sample.project", ["read", "create"])
    tokens = {
        "admin": create_token(session, admin, "schemathesis", scopes=SCOPES),
        "clerk": create_token(session, clerk, "schemathesis", scopes=SCOPES),
    }
    records = RecordService(session, load_registry(session), system_principal())
    project = records.create("sample.project", {"code": "P1", "name": "Bridge"})
    records.create("sample.day_sheet", {"project": project["id"], "work_date": "2026-11-20"})
    session.commit()
    session.close()
    yield app, tokens
    app.extensions["formwork"].engine.dispose()


SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _run(operation: Any, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy())
    @SETTINGS
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


@pytest.mark.parametrize("who", ["admin", "clerk"])
def test_every_operation_conforms_to_the_document(
    admin_app: tuple[Flask, dict[str, str]], who: str
) -> None:
    app, tokens = admin_app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {tokens[who]}"}
    failures: dict[str, str] = {}
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        ran += 1
        try:
            _run(operation, headers)
        except (Exception, BaseExceptionGroup) as exc:  # report every operation, not the first
            failures[operation.label] = str(exc)[:3000]
    assert ran >= 30
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
