"""What a process may do, and what a record gets: end events mapped to outcomes (a rejection
end event never approves), the initiator's lane, the submitter kept off their own steps,
forms that may not set routing variables, declared services, and the process principal."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from formwork.runtime.errors import Conflict, PermissionDenied, ValidationFailed
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.schema import apply_definitions
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.actions import complete
from formwork.runtime.workflow.context import StepFailed
from formwork.runtime.workflow.deploy import deploy
from formwork.runtime.workflow.lifecycle import state_of
from formwork.runtime.workflow.models import ProcessInstance
from tests.workflow.test_process import act, new_request, ready, record

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
"""


def review_with_rejection(key: str = "review", extra: str = "") -> str:
    """A review whose gateway routes a rejection to its own end event (a plain BPMN idiom)."""
    return (
        HEAD
        + f"""<bpmn:process id="{key}" isExecutable="true">
  <bpmn:laneSet id="ls"><bpmn:lane id="l_pm" name="project_manager">
    <bpmn:flowNodeRef>review_task</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
  <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
  <bpmn:userTask id="review_task" name="审核">
    <bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="assignee" value="project_manager" />{extra}
    </spiffworkflow:properties></bpmn:extensionElements>
    <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
  <bpmn:exclusiveGateway id="decide" default="f_ok"><bpmn:incoming>f2</bpmn:incoming>
    <bpmn:outgoing>f_ok</bpmn:outgoing><bpmn:outgoing>f_no</bpmn:outgoing></bpmn:exclusiveGateway>
  <bpmn:endEvent id="end_ok" name="通过"><bpmn:incoming>f_ok</bpmn:incoming></bpmn:endEvent>
  <bpmn:endEvent id="end_no" name="不通过"><bpmn:incoming>f_no</bpmn:incoming></bpmn:endEvent>
  <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review_task" />
  <bpmn:sequenceFlow id="f2" sourceRef="review_task" targetRef="decide" />
  <bpmn:sequenceFlow id="f_ok" sourceRef="decide" targetRef="end_ok" />
  <bpmn:sequenceFlow id="f_no" sourceRef="decide" targetRef="end_no">
    <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression"
      >decision == 'reject'</bpmn:conditionExpression>
  </bpmn:sequenceFlow>
</bpmn:process></bpmn:definitions>"""
    )


BINDING = {"entity": "ccb.change_request", "state_field": "approval_state"}


def deploy_review(session: Any, outcomes: Any, **binding: Any) -> None:
    deploy(
        session, review_with_rejection(), principal=system_principal(),
        binding={**BINDING, "outcomes": outcomes, **binding},
    )  # fmt: skip
    session.commit()


def start(session: Any, ccb: dict[str, Any], wf_for: Any, key: str = "review") -> tuple[int, int]:
    record_id = new_request(session, ccb)
    instance = wf_for("submitter").start(
        key, None, entity="ccb.change_request", record_id=record_id, title="x"
    )
    session.commit()
    return record_id, instance.id


def test_a_rejection_end_event_rejects_the_record(session, ccb, wf_for):
    deploy_review(session, {"end_ok": "approved", "end_no": "rejected"})
    record_id, instance_id = start(session, ccb, wf_for)
    act(wf_for, "pm", ready(session, instance_id)["review_task"], "reject", comment="不合理")
    session.expire_all()
    instance = session.get(ProcessInstance, instance_id)
    # The BPMN's own rejection branch ran to its end event, which maps to rejected.
    assert (instance.status, instance.outcome, instance.end_event) == (
        "completed", "rejected", "end_no"
    )  # fmt: skip
    assert record(session, record_id)["approval_state"] == "rejected"
    assert state_of(session, "ccb.change_request", record_id) == "rejected"
    # A rejected request is editable and may be submitted again.
    records = RecordService(session, load_registry(session), system_principal())
    version = record(session, record_id)["version"]
    records.update("ccb.change_request", record_id, {"note": "补充资料"}, version)
    session.commit()
    assert wf_for("submitter").submit("ccb.change_request", record_id).status == "running"


def test_approve_reaches_the_approval_end_event(session, ccb, wf_for):
    deploy_review(session, {"end_ok": "approved", "end_no": "rejected"})
    record_id, instance_id = start(session, ccb, wf_for)
    act(wf_for, "pm", ready(session, instance_id)["review_task"])
    assert record(session, record_id)["approval_state"] == "approved"
    assert session.get(ProcessInstance, instance_id).end_event == "end_ok"


def test_a_state_of_the_pack_s_own_locks_the_record(app, session, ccb, wf_for):
    outcomes = {"end_ok": "approved", "end_no": {"state": "escalated", "editable": False}}
    deploy_review(session, outcomes)
    record_id, instance_id = start(session, ccb, wf_for)
    act(wf_for, "pm", ready(session, instance_id)["review_task"], "reject", comment="升级处理")
    assert record(session, record_id)["approval_state"] == "escalated"
    records = app.extensions["formwork"].records(session, system_principal())  # kernel-built
    version = record(session, record_id)["version"]
    with pytest.raises(Conflict):
        records.update("ccb.change_request", record_id, {"note": "x"}, version)


def test_deploy_refuses_an_end_event_without_an_outcome(session, ccb):
    for outcomes, problem in (
        (None, "end event 'end_no' (不通过) has no outcome"),
        ({"end_ok": "approved"}, "end event 'end_no'"),
        ({"end_ok": "approved", "end_no": "rejected", "end_x": "approved"}, "'end_x'"),
    ):
        with pytest.raises(ValidationFailed, match=re.escape(problem)):
            deploy_review(session, outcomes)
        session.rollback()


def test_the_initiator_lane_belongs_to_the_submitter(session, ccb, wf_for):
    bpmn = (
        HEAD
        + """<bpmn:process id="confirm" isExecutable="true">
  <bpmn:laneSet id="ls"><bpmn:lane id="l_me" name="initiator">
    <bpmn:flowNodeRef>confirm_task</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
  <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
  <bpmn:userTask id="confirm_task" name="确认"><bpmn:incoming>f1</bpmn:incoming>
    <bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
  <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="confirm_task" />
  <bpmn:sequenceFlow id="f2" sourceRef="confirm_task" targetRef="end" />
</bpmn:process></bpmn:definitions>"""
    )
    deploy(session, bpmn, principal=system_principal(), binding=BINDING)
    session.commit()
    _, instance_id = start(session, ccb, wf_for, "confirm")
    task = ready(session, instance_id)["confirm_task"]
    assert task.assignee_id == ccb["submitter"]["id"]
    assert task.excluded_id is None  # the submitter's own step, by design
    with pytest.raises(PermissionDenied):
        complete(wf_for("site"), task.id, "approve")
    session.rollback()
    act(wf_for, "submitter", task)
    assert session.get(ProcessInstance, instance_id).outcome == "approved"


@pytest.mark.parametrize(
    ("rule", "who_acts", "assignee"),
    [("escalate", "pm2", None), ("skip", None, None), ("allow", "submitter", "submitter")],
)
def test_the_submitter_s_own_step(session, ccb, wf_for, rule, who_acts, assignee):
    deploy_review(session, {"end_ok": "approved", "end_no": "rejected"}, self_approval=rule)
    # The submitter is the record's project manager: the step would be theirs.
    ccb["submitter_pm"] = ccb["submitter"]
    record_id = new_request(session, ccb, project_manager=ccb["submitter"]["id"])
    instance = wf_for("submitter").start(
        "review", None, entity="ccb.change_request", record_id=record_id, title="x"
    )
    session.commit()
    tasks = ready(session, instance.id)
    if who_acts is None:  # skipped: the step passed and the history says so
        assert tasks == {} and record(session, record_id)["approval_state"] == "approved"
        return
    task = tasks["review_task"]
    assert task.assignee_id == (ccb[assignee]["id"] if assignee else None)
    if rule == "escalate":
        assert task.role == "project_manager" and task.excluded_id == ccb["submitter"]["id"]
        with pytest.raises(PermissionDenied, match="not assigned"):
            complete(wf_for("submitter"), task.id, "approve")
        session.rollback()
    act(wf_for, who_acts, task)
    assert record(session, record_id)["approval_state"] == "approved"


def test_a_form_may_not_set_routing_or_assignment_variables(session, ccb):
    form = json.dumps(
        {"type": "object", "properties": {"project_manager": {"type": "integer"}}}
    ).replace('"', "&quot;")
    bpmn = review_with_rejection(
        extra=f'\n      <spiffworkflow:property name="form" value="{form}" />'
    )
    with pytest.raises(ValidationFailed, match="may not set 'project_manager'"):
        outcomes = {"end_ok": "approved", "end_no": "rejected"}
        deploy(
            session, bpmn, principal=system_principal(), binding={**BINDING, "outcomes": outcomes}
        )


def service_process(operation: str, params: str) -> str:
    return (
        HEAD
        + f"""<bpmn:process id="svc" isExecutable="true">
  <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
  <bpmn:serviceTask id="work" name="记账"><bpmn:extensionElements>
    <spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="out">
      <spiffworkflow:parameters>{params}</spiffworkflow:parameters>
    </spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
    <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
  <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
  <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="end" />
</bpmn:process></bpmn:definitions>"""
    )


def entity_doc(name: str, **options: Any) -> dict[str, Any]:
    """Return a one-field (money `amount`) entity definition."""
    amount = {"x-formwork": {"type": "money", "label": {"zh-CN": "额", "en": "Amount"}}}
    label = {"zh-CN": name, "en": name}
    return {
        "type": "object",
        "x-formwork": {"name": name, "label": label, **options},
        "properties": {"amount": amount},
    }


def param(name: str, value: str) -> str:
    return f'<spiffworkflow:parameter id="{name}" type="any" value="{value}" />'


def test_deploy_refuses_unknown_services_and_parameters(session):
    for operation, params, problem in (
        ("run_python", param("code", "'x'"), "unknown service 'run_python'"),
        ("create_record", param("entity", "'ccb.change_request'"), "needs the parameter 'values'"),
        ("create_record", param("entity", "'ccb.change_request'") + param("values", "{}")
         + param("as_admin", "True"), "has no parameter 'as_admin'"),
        ("create_record", param("entity", "target") + param("values", "{}"),
         "must be a quoted name"),
        ("increment_record", param("entity", "'a.b'") + param("field", "'n'")
         + param("by", "1"), "needs one of id, lookup"),
    ):  # fmt: skip
        with pytest.raises(ValidationFailed, match=problem):
            deploy(session, service_process(operation, params), principal=system_principal())
        session.rollback()


def test_a_process_acts_only_within_its_pack_and_dependencies(session, ccb, wf_for):
    # Another "pack" with a ledger the CCB pack does not depend on.
    ledger = entity_doc("ledger")
    apply_definitions(session, "other", {"ledger.json": ledger})
    session.commit()
    params = param("entity", "'other.ledger'") + param("values", "{'amount': amount}")
    deploy(session, service_process("create_record", params), principal=system_principal(),
           binding=BINDING)  # fmt: skip
    session.commit()
    record_id = new_request(session, ccb)
    with pytest.raises((PermissionDenied, StepFailed), match="may not act on 'other.ledger'"):
        wf_for("submitter").start(
            "svc", None, entity="ccb.change_request", record_id=record_id, title="x"
        )
    session.rollback()
    table = load_registry(session).meta("other.ledger").table
    assert session.execute(table.select()).all() == []  # nothing written


def test_pack_check_refuses_a_service_outside_the_pack_s_reach(tmp_path):
    from formwork.runtime.packs import check_pack, read_pack
    from formwork.runtime.packs.problems import PackInvalid

    entity = entity_doc("req", workflow={"process": "svc"})
    (tmp_path / "entities").mkdir()
    (tmp_path / "workflows").mkdir()
    (tmp_path / "entities" / "req.json").write_text(json.dumps(entity), "utf-8")
    params = param("entity", "'cost_center.cost_entry'") + param("values", "{'amount': amount}")
    (tmp_path / "workflows" / "svc.bpmn").write_text(service_process("create_record", params))
    files = {"entities": ["entities/req.json"], "workflows": ["workflows/svc.bpmn"]}
    manifest = {"name": "mini", "version": "1.0.0", "title": {"zh-CN": "小", "en": "Mini"}}
    manifest["files"] = files
    (tmp_path / "pack.json").write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(PackInvalid) as caught:
        check_pack(read_pack(tmp_path))
    found = [p for p in caught.value.problems if p.code == "pack.E064"]
    assert found and "may not act on 'cost_center.cost_entry'" in found[0].message
