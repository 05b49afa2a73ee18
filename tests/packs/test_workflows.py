"""Packs deploy their workflows: an upgrade adds a process version while running instances
keep theirs, and a switched-off pack pauses its processes."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from formwork.runtime.errors import Conflict
from formwork.runtime.packs import PackInvalid, PackSource, check_pack, set_enabled
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.actions import complete
from formwork.runtime.workflow.models import ProcessDefinition, ProcessInstance, TaskRow
from formwork.runtime.workflow.service import WorkflowRuntime, WorkflowService
from tests.packs.conftest import folder_files, install


def services(session):
    registry = load_registry(session)
    records = RecordService(session, registry, system_principal())
    return records, WorkflowService(session, system_principal(), WorkflowRuntime(), registry)


def submit(session, title):
    records, workflow = services(session)
    record = records.create("approvals.request", {"title": title, "amount": "10.00"})
    instance = workflow.submit("approvals.request", record["id"])
    session.commit()
    return instance.id


def open_steps(session, instance_id):
    rows = session.scalars(sa.select(TaskRow).where(TaskRow.instance_id == instance_id))
    return [(row.id, row.step) for row in rows]


def test_upgrade_keeps_running_instances_on_their_version(app, session):
    report = install(session, "approvals_v1")
    assert "approvals: deployed simple_approval version 1" in report
    old = submit(session, "first")
    install(session, "approvals_v2")
    versions = session.scalars(
        sa.select(ProcessDefinition.version).where(ProcessDefinition.key == "simple_approval")
    ).all()
    assert sorted(versions) == [1, 2]
    new = submit(session, "second")
    definition_of = {
        i.id: session.get(ProcessDefinition, i.definition_id).version
        for i in session.scalars(sa.select(ProcessInstance))
    }
    assert definition_of == {old: 1, new: 2}
    [(task_id, step)] = open_steps(session, old)
    assert step == "review"
    _records, workflow = services(session)
    complete(workflow, task_id, "approve", "ok")
    session.commit()
    assert session.get(ProcessInstance, old).status == "completed"
    assert install(session, "approvals_v2") == ["approvals 1.1.0 is already installed"]


def test_a_switched_off_pack_pauses_its_processes(app, session):
    install(session, "approvals_v1")
    running = submit(session, "first")
    set_enabled(session, "approvals", False)
    session.commit()
    [(task_id, _step)] = open_steps(session, running)
    records, workflow = services(session)
    with pytest.raises(Conflict, match="switched off"):
        complete(workflow, task_id, "approve", "")
    session.rollback()
    set_enabled(session, "approvals", True)
    session.commit()
    _records, workflow = services(session)
    complete(workflow, task_id, "approve", "")
    session.commit()
    assert session.get(ProcessInstance, running).status == "completed"


def test_check_refuses_unsafe_bpmn_naming_the_element():
    files = folder_files("approvals_v1")
    bpmn = files["workflows/simple_approval.bpmn"]
    bpmn = bpmn.replace(
        b'sourceRef="review" targetRef="end"', b'sourceRef="review" targetRef="evil"'
    )
    bpmn = bpmn.replace(
        b'<bpmn:endEvent id="end">',
        b'<bpmn:scriptTask id="evil" name="Evil"><bpmn:incoming>f2</bpmn:incoming>'
        b"<bpmn:outgoing>f9</bpmn:outgoing><bpmn:script>x = ().__class__</bpmn:script>"
        b'</bpmn:scriptTask><bpmn:sequenceFlow id="f9" sourceRef="evil" targetRef="end" />'
        b'<bpmn:endEvent id="end">',
    )
    files["workflows/simple_approval.bpmn"] = bpmn
    with pytest.raises(PackInvalid) as caught:
        check_pack(PackSource("evil", files))
    [problem] = caught.value.problems
    assert problem.code == "pack.E062" and problem.file == "workflows/simple_approval.bpmn"
    assert "evil" in str(problem).lower()
    assert json.loads(files["pack.json"])["name"] == "approvals"
