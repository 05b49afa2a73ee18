"""Errors a process can handle, and errors that say where and why: service failures are BPMN
errors; what nothing catches fails the step with a 422 naming the step, element and cause;
timer expressions are checked at deploy; sequential multi-instance needs no output item."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.errors import NotFound, ValidationFailed
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.context import StepFailed
from formwork.runtime.workflow.deploy import parse_process
from formwork.runtime.workflow.errors import ServiceError
from formwork.runtime.workflow.services import Param, ServiceSpec
from tests.workflow.support import (
    act,
    deploy_file,
    instance,
    kernel_of,
    ready,
    service_for,
    source,
)


@pytest.fixture
def charge(app: Any) -> list[Any]:
    """Register `charge_card`: it fails as told by the list (an exception, or None: ok)."""
    plan: list[Any] = []

    def service(ctx: Any, params: dict[str, Any]) -> Any:
        record = RecordService(ctx.session, load_registry(ctx.session), system_principal())
        del record  # a failing service's writes are undone even when the error is caught
        failure = plan.pop(0) if plan else None
        if failure is not None:
            raise failure
        return {"charged": str(params["amount"])}

    kernel_of(app).workflow.register(ServiceSpec("charge_card", service, {"amount": Param(True)}))
    return plan


def test_a_service_failure_is_caught_by_its_error_boundary_event(app, session, people, charge):
    deploy_file(session, "errors.bpmn", services=kernel_of(app).workflow.services)
    charge.append(ServiceError("card-declined", "the bank declined the card"))
    started = service_for(app, session).start("errors", {"amount": Decimal("12.50")})
    session.commit()
    assert list(ready(session, started.id)) == ["fix_payment"]
    data = service_for(app, session).read(instance(session, started.id))
    task = next(t for t in data.get_tasks() if t.task_spec.name == "fix_payment")
    assert task.data["decline"] == {
        "code": "card-declined",
        "message": "the bank declined the card",
        "service": "charge_card",
        "step": "charge",
    }


def test_an_error_no_boundary_names_goes_to_the_error_event_subprocess(
    app, session, people, charge
):
    deploy_file(session, "errors.bpmn", services=kernel_of(app).workflow.services)
    charge.append(NotFound("no such card"))  # kind 'not-found': the boundary wants another
    boss = service_for(app, session)
    started = boss.start("errors", {"amount": Decimal("1")})
    session.commit()
    assert list(ready(session, started.id)) == ["handle"]  # the main flow was interrupted
    act(boss, ready(session, started.id)["handle"])
    done = instance(session, started.id)
    assert done.status == "completed"
    assert boss.read(done).data["failure"]["code"] == "not-found"


def test_an_uncaught_service_failure_is_a_422_naming_step_element_and_cause(
    app, session, people, api_for
):
    def vendor_lookup(ctx: Any, params: dict[str, Any]) -> Any:
        raise NotFound("no vendor 'V-9'")

    kernel_of(app).workflow.register(ServiceSpec("vendor_lookup", vendor_lookup))
    deploy_file(session, "uncaught.bpmn", services=kernel_of(app).workflow.services)
    chief = api_for("chief")
    started = chief.post("/api/v1/processes", {"process": "uncaught", "data": {}})
    task = started.json["tasks"][0]
    failed = chief.post(f"/api/v1/tasks/{task['id']}/complete", {"action": "approve"})
    assert failed.status_code == 422, failed.json  # it was a 404 naming no step
    body = failed.json
    assert body["type"].endswith("step-failed")
    assert (body["step"], body["element"], body["code"]) == (
        "Look up the vendor",
        "look_up",
        "not-found",
    )
    assert "no vendor 'V-9'" in body["cause"] and body["instance_id"] == started.json["id"]
    assert "step 'Look up the vendor' (element 'look_up')" in body["detail"]
    shown = chief.get(f"/api/v1/processes/{started.json['id']}").json
    assert "no vendor 'V-9'" in shown["error"] and shown["retry"] is True


def test_a_condition_error_keeps_its_reason(app, session, people):
    deploy_file(session, "loop.bpmn")
    boss = service_for(app, session)
    started = boss.start("loop", {"count": 0})  # no 'limit': the gateway cannot decide
    session.commit()
    with pytest.raises(StepFailed) as caught:
        act(boss, ready(session, started.id)["work"])
    message = str(caught.value)
    assert "element 'more'" in message and "count < limit" in message
    assert "'limit'" in message and caught.value.element == "more"


def test_a_dmn_error_names_the_rule_the_input_and_why(app, session, ccb, wf_for):
    records = RecordService(session, load_registry(session), system_principal())
    record = records.create("ccb.change_request", {"title": "x", "amount": "5.00"})
    session.commit()
    table = load_registry(session).meta("ccb.change_request").table
    session.execute(  # a value the table cannot compare, as an older record might hold
        sa.update(table).where(table.c.id == record["id"]).values(amount=None)
    )
    session.commit()
    with pytest.raises(StepFailed) as caught:
        wf_for("submitter").submit("ccb.change_request", record["id"])
    message = str(caught.value)
    assert "decision table 'route_table', rule 'small'" in message
    assert "input 'amount'" in message and "'<' not supported" in message
    assert "element 'route'" in message


def test_sequential_multi_instance_needs_no_output_item(app, session, people):
    deploy_file(session, "sequential.bpmn")
    boss = service_for(app, session)
    signers = [people[n]["id"] for n in ("reviewer", "finance", "purchaser")]
    started = boss.start("countersign_seq", {"signers": signers, "candidates": signers[:1]})
    session.commit()
    seen = []
    for _ in range(4):
        tasks = ready(session, started.id)
        if not tasks:
            break
        row = next(iter(tasks.values()))
        seen.append((row.step, row.assignee_id))
        act(boss, row)
    assert seen == [("sign_all", i) for i in signers] + [("sign_any", signers[0])]
    assert instance(session, started.id).status == "completed"


TIMER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="x">
  <bpmn:process id="timed" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t">
        <bpmn:{kind} xsi:type="bpmn:tFormalExpression">{expr}</bpmn:{kind}>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.mark.parametrize(
    ("kind", "expr", "refusal"),
    [
        ("timeDuration", "PT1S", "quote it: 'PT1S'"),
        ("timeDuration", "P2D", "quote it: 'P2D'"),
        ("timeDuration", "'PT1X'", "'PT1X' is not an ISO 8601 duration"),
        ("timeDuration", "5", "gives 5, not ISO 8601 text"),
        ("timeDate", "'2026-13-01T10:00'", "is not an ISO 8601 date and time"),
        ("timeCycle", "'R3/PT1H/x'", "is not an ISO 8601 cycle"),
    ],
)
def test_timer_expressions_are_checked_at_deploy(kind, expr, refusal):
    with pytest.raises(ValidationFailed) as caught:
        parse_process(TIMER.format(kind=kind, expr=expr))
    detail = caught.value.errors[0].params["detail"]
    assert "element 'wait'" in detail and refusal in detail


@pytest.mark.parametrize(
    ("kind", "expr"),
    [
        ("timeDuration", "'PT1S'"),
        ("timeDuration", "escalate_after"),  # process data: checked when the timer starts
        ("timeDuration", "concat('PT', str(hours), 'H')"),
        ("timeDate", "'2030-01-02T10:00:00+08:00'"),
        ("timeCycle", "'R3/PT1H'"),
    ],
)
def test_good_timer_expressions_deploy(kind, expr):
    assert parse_process(TIMER.format(kind=kind, expr=expr)).key == "timed"


def test_unquoted_durations_in_the_test_processes_are_refused_too():
    text = source("ccb_change.bpmn").replace(">escalate_after<", ">PT48H<")
    with pytest.raises(ValidationFailed, match="quote it: 'PT48H'"):
        parse_process(text, [source("routing.dmn")])
