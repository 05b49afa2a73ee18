"""The generic platform services for BPMN service tasks: references given as lookups in
create_record / update_record, increment_record and find_record — through a running process
(same transaction as the step) and directly, with their errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.auth.users import create_user
from formwork.runtime.clock import session_clock
from formwork.runtime.errors import NotFound
from formwork.runtime.events import EventBus
from formwork.runtime.models import AuditEntry
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.schema import apply_definitions
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.context import StepContext, StepFailed
from formwork.runtime.workflow.deploy import deploy
from formwork.runtime.workflow.models import ProcessInstance
from formwork.runtime.workflow.service import WorkflowRuntime, WorkflowService
from formwork.runtime.workflow.services import (
    create_record,
    find_record,
    increment_record,
    update_record,
)


def _field(kind: str, **opts: Any) -> dict[str, Any]:
    return {"x-formwork": {"type": kind, "label": {"zh-CN": kind, "en": kind}, **opts}}


def _entity(name: str, props: dict[str, Any], **opts: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "x-formwork": {"name": name, "label": {"zh-CN": name, "en": name}, **opts},
        "properties": props,
    }


DEFINITIONS = {
    "account.json": _entity(
        "account", {"code": _field("string", unique=True), "name": _field("string")}
    ),
    "budget.json": _entity(
        "budget",
        {
            "account": _field("reference", entity="account"),
            "spent": _field("money"),
            "days": _field("integer"),
            "note": _field("string"),
        },
    ),
    "entry.json": _entity(
        "entry",
        {
            "account": _field("reference", entity="account"),
            "amount": _field("money"),
            "lines": _field("children", entity="entry_line"),
        },
    ),
    "entry_line.json": _entity(
        "entry_line",
        {"account": _field("reference", entity="account"), "amount": _field("money")},
        child_of="entry",
    ),
    "order.json": _entity(
        "order",
        {
            "code": _field("string"),
            "amount": _field("money"),
            "account": _field("reference", entity="account"),
            "owner": _field("user"),
        },
        title_field="code",
    ),
}

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="post_order" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="find"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="find_record" resultVariable="owner_of_budget">
        <spiffworkflow:parameters>
          <spiffworkflow:parameter id="entity" type="any" value="'svc.order'" />
          <spiffworkflow:parameter id="filters" type="any"
            value="{'account.code': 'A1', 'code': 'O-1'}" />
          <spiffworkflow:parameter id="field" type="any" value="'owner'" />
        </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:userTask id="review"><bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="assignee" value="owner_of_budget" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:serviceTask id="post"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="create_record" resultVariable="posted">
        <spiffworkflow:parameters>
          <spiffworkflow:parameter id="entity" type="any" value="'svc.entry'" />
          <spiffworkflow:parameter id="values" type="any"
            value="{'account': {'lookup': {'code': 'A2'}}, 'amount': amount,
              'lines': [{'account': {'lookup': {'code': 'A1'}}, 'amount': amount}]}" />
        </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:serviceTask id="add"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="increment_record" resultVariable="added">
        <spiffworkflow:parameters>
          <spiffworkflow:parameter id="entity" type="any" value="'svc.budget'" />
          <spiffworkflow:parameter id="lookup" type="any" value="{'account': account}" />
          <spiffworkflow:parameter id="field" type="any" value="'spent'" />
          <spiffworkflow:parameter id="by" type="any" value="amount" />
        </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:serviceTask id="mark"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="update_record" resultVariable="marked">
        <spiffworkflow:parameters>
          <spiffworkflow:parameter id="values" type="any"
            value="{'account': {'lookup': {'code': 'A2'}}}" />
        </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f5</bpmn:incoming><bpmn:outgoing>f6</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f6</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="find" />
    <bpmn:sequenceFlow id="f2" sourceRef="find" targetRef="review" />
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="post" />
    <bpmn:sequenceFlow id="f4" sourceRef="post" targetRef="add" />
    <bpmn:sequenceFlow id="f5" sourceRef="add" targetRef="mark" />
    <bpmn:sequenceFlow id="f6" sourceRef="mark" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def svc(app: Any, session: Any) -> dict[str, Any]:
    """Install the entities, two accounts, a budget per account and an order; deploy."""
    apply_definitions(session, "svc", DEFINITIONS)
    owner = create_user(session, "owner", "Secret-pass-1", ["clerk"])
    records = RecordService(session, load_registry(session), system_principal())
    a1 = records.create("svc.account", {"code": "A1", "name": "one"})["id"]
    a2 = records.create("svc.account", {"code": "A2", "name": "two"})["id"]
    b1 = records.create("svc.budget", {"account": a1, "spent": "100.00", "days": 3})["id"]
    records.create("svc.budget", {"account": a2, "spent": "0.00"})
    order = records.create(
        "svc.order", {"code": "O-1", "amount": "250.50", "account": a1, "owner": owner.id}
    )["id"]
    binding = {"entity": "svc.order"}
    deploy(session, BPMN, principal=system_principal(), binding=binding)
    session.commit()
    return {"a1": a1, "a2": a2, "b1": b1, "order": order, "owner": owner}


def _get(session: Any, entity: str, record_id: int) -> dict[str, Any]:
    return RecordService(session, load_registry(session), system_principal()).get(entity, record_id)


def test_services_run_in_the_step(session: Any, svc: dict[str, Any]) -> None:
    from formwork.runtime.security import load_principal
    from formwork.runtime.workflow.actions import complete
    from formwork.runtime.workflow.tasks import instance_rows

    runtime = WorkflowRuntime()
    admin = WorkflowService(session, system_principal(), runtime, load_registry(session))
    instance = admin.submit("svc.order", svc["order"])
    session.commit()
    (task,) = instance_rows(session, [instance.id])
    assert task.assignee_id == svc["owner"].id  # find_record resolved the assignee
    owner = load_principal(session, svc["owner"])
    complete(WorkflowService(session, owner, runtime, load_registry(session)), task.id, "approve")
    session.commit()
    entries = session.execute(sa.select(load_registry(session).meta("svc.entry").table)).all()
    assert len(entries) == 1 and entries[0].account == svc["a2"]
    entry = _get(session, "svc.entry", entries[0].id)
    assert entry["lines"][0]["account"] == svc["a1"] and entry["amount"] == "250.50"
    budget = _get(session, "svc.budget", svc["b1"])
    assert (budget["spent"], budget["version"]) == ("350.50", 2)
    assert _get(session, "svc.order", svc["order"])["account"] == svc["a2"]
    audited = session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.entity == "svc.budget", AuditEntry.action == "update"
        )
    ).all()
    assert len(audited) == 1


def _ctx(session: Any, entity: str | None = None, record_id: int | None = None) -> StepContext:
    instance = ProcessInstance(
        entity=entity, record_id=record_id, process_key="x", status="running"
    )
    now = session_clock(session).now()
    registry = load_registry(session)
    return StepContext(
        session, system_principal(), registry, EventBus(), instance, now, None,
        reach=registry.reach_of("svc"),
    )  # fmt: skip


def test_increment_by_id_and_errors(session: Any, svc: dict[str, Any]) -> None:
    ctx = _ctx(session)
    got = increment_record(ctx, {"entity": "svc.budget", "id": svc["b1"], "field": "days", "by": 4})
    assert got["value"] == 7
    got = increment_record(
        ctx, {"entity": "svc.budget", "id": svc["b1"], "field": "days", "by": Decimal("-2")}
    )
    assert got["value"] == 5
    with pytest.raises(ValueError, match="not a numeric field"):
        increment_record(ctx, {"entity": "svc.budget", "id": svc["b1"], "field": "note", "by": 1})
    with pytest.raises(ValueError, match="must be a number"):
        increment_record(ctx, {"entity": "svc.budget", "id": svc["b1"], "field": "days", "by": "x"})
    with pytest.raises(ValueError, match="needs 'id' or 'lookup'"):
        increment_record(ctx, {"entity": "svc.budget", "field": "days", "by": 1})
    with pytest.raises(NotFound):
        increment_record(ctx, {"entity": "svc.budget", "id": 999, "field": "days", "by": 1})
    with pytest.raises(ValueError, match="no record of svc.budget"):
        increment_record(
            ctx, {"entity": "svc.budget", "lookup": {"note": "none"}, "field": "days", "by": 1}
        )


def test_lookup_must_match_exactly_one(session: Any, svc: dict[str, Any]) -> None:
    ctx = _ctx(session)
    values = {"account": {"lookup": {"name": "nobody"}}, "amount": "1"}
    with pytest.raises(ValueError, match="svc.entry.account: no record of svc.account"):
        create_record(ctx, {"entity": "svc.entry", "values": values})
    RecordService(session, load_registry(session), system_principal()).create(
        "svc.account", {"code": "A3", "name": "one"}
    )
    values = {"account": {"lookup": {"name": "one"}}, "amount": "1"}
    with pytest.raises(ValueError, match="more than one record"):
        create_record(ctx, {"entity": "svc.entry", "values": values})
    with pytest.raises(ValueError, match="unknown_filter_field"):
        create_record(
            ctx, {"entity": "svc.entry", "values": {"account": {"lookup": {"colour": "red"}}}}
        )
    bound = _ctx(session, "svc.order", svc["order"])
    update_record(bound, {"values": {"account": {"lookup": {"code": "A3"}}}})
    assert _get(session, "svc.order", svc["order"])["account"] != svc["a1"]


def test_find_record(session: Any, svc: dict[str, Any]) -> None:
    ctx = _ctx(session)
    assert find_record(ctx, {"entity": "svc.account", "filters": {"code": "A2"}}) == svc["a2"]
    found = find_record(
        ctx, {"entity": "svc.budget", "filters": {"account": svc["a1"]}, "field": "spent"}
    )
    assert found == Decimal("100.00")
    assert find_record(ctx, {"entity": "svc.account", "filters": {"code": "ZZ"}}) is None
    with pytest.raises(NotFound):
        find_record(ctx, {"entity": "svc.account", "filters": {"code": "ZZ"}, "required": True})
    with pytest.raises(ValueError, match="has no field"):
        find_record(ctx, {"entity": "svc.account", "filters": {"code": "A1"}, "field": "nope"})
    with pytest.raises(ValueError, match="needs 'filters'"):
        find_record(ctx, {"entity": "svc.account", "filters": {}})
    with pytest.raises(ValueError, match="needs 'entity'"):
        find_record(ctx, {"filters": {"code": "A1"}})


def test_a_failing_service_fails_the_whole_step(session: Any, svc: dict[str, Any]) -> None:
    from formwork.runtime.workflow.actions import complete
    from formwork.runtime.workflow.tasks import instance_rows

    RecordService(session, load_registry(session), system_principal()).create(
        "svc.budget", {"account": svc["a1"], "spent": "1.00"}
    )  # a second budget of A1: the increment's lookup is no longer unique
    session.commit()
    runtime = WorkflowRuntime()
    admin = WorkflowService(session, system_principal(), runtime, load_registry(session))
    instance = admin.submit("svc.order", svc["order"])
    session.commit()
    (task,) = instance_rows(session, [instance.id])
    with pytest.raises(StepFailed, match="more than one record of svc.budget"):
        complete(admin, task.id, "approve")
    session.rollback()
    entries = session.execute(sa.select(load_registry(session).meta("svc.entry").table)).all()
    assert entries == []  # the entry created earlier in the step was rolled back too
