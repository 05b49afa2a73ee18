"""Workflow fixtures: the CCB change-request entity, approvers with roles, deployed processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from formwork.auth.scopes import SCOPES
from formwork.auth.users import create_token, create_user, grant
from formwork.runtime.registry import load_registry
from formwork.runtime.schema import apply_definitions
from formwork.runtime.security import load_principal, system_principal
from formwork.runtime.workflow.deploy import deploy
from formwork.runtime.workflow.service import WorkflowRuntime, WorkflowService
from tests.conftest import PASSWORD, Api

HERE = Path(__file__).parent
BPMN = HERE / "bpmn"
ROLES = {
    "submitter": ["clerk"],
    "site": ["site_engineer"],
    "cost": ["cost_engineer"],
    "pm": ["project_manager"],
    "pm2": ["project_manager"],
    "fin": ["finance"],
    "boss": ["admin"],
}


def source(name: str) -> str:
    return (BPMN / name).read_text("utf-8")


@pytest.fixture
def ccb(app: Flask, session: Any) -> dict[str, Any]:
    """Install the change-request entity, create approvers, deploy the CCB process."""
    doc = json.loads((HERE / "entities" / "change_request.json").read_text("utf-8"))
    apply_definitions(session, "ccb", {"change_request.json": doc})
    people: dict[str, Any] = {}
    for name, roles in ROLES.items():
        user = create_user(session, name, PASSWORD, roles)
        token = create_token(session, user, "t", scopes=SCOPES)
        people[name] = {"id": user.id, "token": token, "user": user}
    for role in ("clerk", "site_engineer", "cost_engineer", "project_manager", "finance"):
        grant(session, role, "ccb.change_request", ["read", "create", "update"])
    grant(session, "clerk", "ccb.change_request", ["submit"])  # the requester submits
    binding = {"entity": "ccb.change_request", "state_field": "approval_state"}
    deploy(
        session, source("ccb_change.bpmn"), [source("routing.dmn")],
        principal=system_principal(), binding=binding,
    )  # fmt: skip
    session.commit()
    return people


@pytest.fixture
def runtime() -> WorkflowRuntime:
    return WorkflowRuntime()


@pytest.fixture
def wf_for(session: Any, runtime: WorkflowRuntime, ccb: dict[str, Any]) -> Any:
    """Return a factory of workflow services acting as a named person."""

    def make(name: str, now: Any = None) -> WorkflowService:
        principal = load_principal(session, ccb[name]["user"])
        return WorkflowService(session, principal, runtime, load_registry(session), clock=now)

    return make


@pytest.fixture
def wf_api(app: Flask, ccb: dict[str, Any]) -> Any:
    """Return a factory of API clients for a named person."""
    return lambda name: Api(app.test_client(), ccb[name]["token"])


PEOPLE = {
    "requester": ["requester"],
    "reviewer": ["reviewer"],
    "finance": ["finance"],
    "purchaser": ["purchaser"],
    "dispatcher": ["dispatcher"],
    "outsider": ["outsider"],
    "chief": ["admin"],
}


@pytest.fixture
def people(app: Flask, session: Any) -> dict[str, Any]:
    """Create one user per role the engine tests' processes use (and an administrator)."""
    found: dict[str, Any] = {}
    for name, roles in PEOPLE.items():
        user = create_user(session, name, PASSWORD, roles)
        token = create_token(session, user, "t", scopes=SCOPES)
        found[name] = {"id": user.id, "token": token, "user": user}
    session.commit()
    return found


@pytest.fixture
def api_for(app: Flask, people: dict[str, Any]) -> Any:
    """Return a factory of API clients for one of `people`."""
    return lambda name: Api(app.test_client(), people[name]["token"])
