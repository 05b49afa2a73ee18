"""A standard SpiffWorkflow-style process, not written for Formwork, deployed and run unchanged.

tests/workflow/packs/procure holds it as a modeler saves it (collaboration, lanes, diagram
layout): parallel reviews, a DMN table, a boundary timer, an embedded subprocess whose
service task fails into an error boundary event, a timer event subprocess, a call activity
into the pack's other process, a message catch with a correlation property, a form schema
file and instructions for the user. Every step saves and reloads the state.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from formwork.runtime.errors import ValidationFailed
from formwork.runtime.workflow.service import WorkflowRuntime
from formwork.runtime.workflow.worker import fire_timers
from tests.workflow.support import (
    act,
    budget_services,
    history,
    install_pack,
    instance,
    kernel_of,
    ready,
    service_for,
)

pytestmark = pytest.mark.dates


@pytest.fixture
def procure(app: Any, session: Any, people: dict[str, Any]) -> dict[str, Any]:
    # The platform registers the service first; the pack is checked against what it knows.
    report = install_pack(session, "procure", budget_services(app))
    assert "procure: deployed purchase version 1" in report
    return people


def test_the_standard_process_runs_end_to_end(app, session, procure, clock, api_for):
    people = procure
    kernel = kernel_of(app)
    boss = service_for(app, session)
    data = {"item": "steel", "amount": Decimal("25000"), "order_no": "PO-7"}
    started = boss.start("purchase", data)
    session.commit()
    iid = started.id
    # A form schema file of the pack, resolved at deploy; instructions filled in safely.
    request = ready(session, iid)["enter_request"]
    assert request.role == "requester"
    detail = api_for("requester").get(f"/api/v1/tasks/{request.id}").json
    assert detail["form"]["required"] == ["supplier"]
    assert detail["instructions"] == "Enter the quote for steel (25000 yuan)."
    requester = service_for(app, session, people["requester"]["user"])
    with pytest.raises(ValidationFailed):
        act(requester, request, data={"supplier": "A"})
    session.rollback()
    act(requester, request, data={"supplier": "ACME", "quoted": 24000})
    # DMN, then two parallel reviews in their lanes; a fresh process (cold caches) goes on.
    kernel.workflow = WorkflowRuntime({**kernel.workflow.services})
    tasks = ready(session, iid)
    assert {s: t.role for s, t in tasks.items()} == {
        "tech_review": "reviewer",
        "budget_review": "finance",
    }
    clock.advance(dt.timedelta(minutes=61))  # the timer event subprocess: a reminder
    assert fire_timers(kernel).fired == 1
    act(service_for(app, session, people["reviewer"]["user"]), ready(session, iid)["tech_review"])
    clock.advance(dt.timedelta(minutes=60))  # the boundary timer: 2 h on the budget review
    assert fire_timers(kernel).fired == 1
    assert list(ready(session, iid)) == ["budget_escalated"]
    finance = service_for(app, session, people["finance"]["user"])
    act(finance, ready(session, iid)["budget_escalated"])
    # The embedded subprocess: the service fails with 'no-budget', its boundary catches it;
    # then the call activity runs the pack's other process, in its own lane.
    check = ready(session, iid)["check_vendor"]
    assert check.role == "purchaser"
    shown = api_for("purchaser").get(f"/api/v1/tasks/{check.id}").json
    assert shown["instructions"] == "Check ACME for the order PO-7."
    act(service_for(app, session, people["purchaser"]["user"]), check)
    # The message catch waits, correlated by the order number.
    assert ready(session, iid) == {}
    sent = api_for("chief").post(
        "/api/v1/messages",
        {
            "name": "delivery_confirmed",
            "correlation": {"order_no": "PO-7"},
            "payload": {"received_by": "Li"},
        },
    )
    assert sent.status_code == 200, sent.json
    done = instance(session, iid)
    assert done.status == "completed"
    workflow = boss.read(done)
    final = workflow.data
    assert final["route"] == "large"
    assert final["budget_ok"] is False and final["budget_error"]["code"] == "no-budget"
    assert final["reminded"] is True
    assert final["delivery"] == {"order_no": "PO-7", "received_by": "Li"}
    assert final["supplier"] == "ACME"
    assert history(session, iid).count("timer") == 2 and "message" in history(session, iid)
