"""The CCB process end to end in the kernel: record binding, lanes, parallel review, DMN,
service tasks, state saved and restored at every step."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.errors import Conflict, PermissionDenied
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.actions import complete
from formwork.runtime.workflow.models import HistoryEntry, ProcessInstance, TaskRow


def new_request(session: Any, ccb: dict[str, Any], amount: str = "50000.00", **extra: Any) -> int:
    records = RecordService(session, load_registry(session), system_principal())
    body = {"title": "Add a drainage ditch", "amount": amount, "project_manager": ccb["pm"]["id"]}
    record = records.create("ccb.change_request", {**body, **extra})
    session.commit()
    return int(record["id"])


def record(session: Any, record_id: int) -> dict[str, Any]:
    return RecordService(session, load_registry(session), system_principal()).get(
        "ccb.change_request", record_id
    )


def ready(session: Any, instance_id: int) -> dict[str, TaskRow]:
    rows = session.scalars(
        sa.select(TaskRow).where(TaskRow.instance_id == instance_id, TaskRow.status == "ready")
    ).all()
    return {row.step: row for row in rows}


def act(wf_for: Any, who: str, row: TaskRow, action: str = "approve", **kw: Any) -> ProcessInstance:
    service = wf_for(who)
    instance = complete(service, row.id, action, kw.pop("comment", "ok"), kw.pop("data", None))
    service.session.commit()
    return instance


def test_small_change_runs_through_lanes_and_parallel_review(session, ccb, wf_for):
    record_id = new_request(session, ccb)
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    assert record(session, record_id)["approval_state"] == "in-approval"
    tasks = ready(session, instance.id)
    assert list(tasks) == ["site_review"]
    site = tasks["site_review"]
    assert (site.role, site.assignee_id, site.title) == (
        "site_engineer",
        None,
        "Add a drainage ditch",
    )
    assert site.due_at is not None  # the `due` property: two days
    with pytest.raises(PermissionDenied):
        complete(wf_for("cost"), site.id, "approve")
    act(wf_for, "site", site)
    tasks = ready(session, instance.id)
    assert sorted(tasks) == ["cost_review", "pm_review"]
    assert tasks["pm_review"].assignee_id == ccb["pm"]["id"]  # assigned by expression
    with pytest.raises(PermissionDenied):
        complete(wf_for("pm2"), tasks["pm_review"].id, "approve")  # same role, not the assignee
    act(wf_for, "cost", tasks["cost_review"], data={"cost_impact": 1200})
    act(wf_for, "pm", tasks["pm_review"])
    session.expire_all()
    done = session.get(ProcessInstance, instance.id)
    assert done.status == "completed"
    assert ready(session, instance.id) == {}
    after = record(session, record_id)
    assert after["approval_state"] == "approved"
    assert after["note"] == "approved 50000.00"  # the update_record service task
    actions = session.scalars(
        sa.select(HistoryEntry.action)
        .where(HistoryEntry.instance_id == instance.id)
        .order_by(HistoryEntry.id)
    ).all()
    assert actions == ["start", "approve", "approve", "approve", "approved"]


def test_large_change_is_routed_to_finance_by_the_dmn_table(session, ccb, wf_for):
    record_id = new_request(session, ccb, amount="250000.00")
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    act(wf_for, "site", ready(session, instance.id)["site_review"])
    for step, who in (("cost_review", "cost"), ("pm_review", "pm")):
        act(wf_for, who, ready(session, instance.id)[step])
    tasks = ready(session, instance.id)
    assert list(tasks) == ["finance_review"]
    assert tasks["finance_review"].role == "finance"
    inst = session.get(ProcessInstance, instance.id)
    assert inst.timer_due_at is not None  # the boundary timer's due time is projected
    act(wf_for, "fin", tasks["finance_review"])
    assert record(session, record_id)["approval_state"] == "approved"


def test_submitting_twice_conflicts(session, ccb, wf_for):
    record_id = new_request(session, ccb)
    wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    with pytest.raises(Conflict):
        wf_for("submitter").submit("ccb.change_request", record_id)


def test_completed_task_conflicts_and_changes_nothing(session, ccb, wf_for):
    record_id = new_request(session, ccb)
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    site = ready(session, instance.id)["site_review"]
    act(wf_for, "site", site)
    state = session.get(ProcessInstance, instance.id).state
    with pytest.raises(Conflict):
        complete(wf_for("site"), site.id, "approve")
    session.rollback()
    assert session.get(ProcessInstance, instance.id).state == state


def test_state_survives_save_and_restore_at_every_step(session, ccb, wf_for, runtime):
    record_id = new_request(session, ccb, amount="150000.00", escalate_after="PT1H")
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    seen = []
    while True:
        session.expire_all()
        row = session.get(ProcessInstance, instance.id)
        if row.status != "running":
            break
        workflow = wf_for("boss").read(row)  # a fresh load: spec from cache, safe engine attached
        assert runtime.serializer.dump(workflow) == row.state
        assert workflow.script_engine.__class__.__name__ == "SafeScriptEngine"
        assert '"spec"' not in row.state  # state only
        data = workflow.last_task.data if workflow.last_task else {}
        assert data.get("amount") == Decimal("150000.00")
        tasks = ready(session, instance.id)
        seen.extend(sorted(tasks))
        step = sorted(tasks)[0]
        act(wf_for, "boss", tasks[step])
    assert seen[0] == "site_review" and "finance_review" in seen
    assert record(session, record_id)["approval_state"] == "approved"


def test_entity_level_workflow_option_binds_a_process_and_maps_lanes(session, ccb, wf_for):
    from formwork.auth.users import grant
    from formwork.runtime.schema import apply_definitions
    from formwork.runtime.security import system_principal as admin
    from formwork.runtime.workflow.deploy import deploy
    from tests.workflow.conftest import source

    options = [
        {"value": v, "label": {"zh-CN": v, "en": v}} for v in ("draft", "in-approval", "approved")
    ]

    def field(kind: str, **extra: Any) -> dict[str, Any]:
        return {**extra, "x-formwork": {"type": kind, "label": {"zh-CN": kind, "en": kind}}}

    workflow = {"process": "loop", "state_field": "state", "lanes": {"clerk": "site_engineer"}}
    sheet = {
        "type": "object",
        "x-formwork": {
            "name": "check_sheet",
            "label": {"zh-CN": "检查单", "en": "Check sheet"},
            "title_field": "title",
            "workflow": workflow,
        },
        "properties": {
            "title": field("string"),
            "count": field("integer", default=0),
            "limit": field("integer", default=1),
            "state": field("select", default="draft"),
        },
    }
    sheet["properties"]["state"]["x-formwork"]["options"] = options
    apply_definitions(session, "ccb", {"check_sheet.json": sheet}, remove_missing=False)
    deploy(session, source("loop.bpmn"), principal=admin())
    grant(session, "clerk", "ccb.check_sheet", ["read", "update", "submit"])
    session.commit()
    records = RecordService(session, load_registry(session), admin())
    record_id = records.create("ccb.check_sheet", {"title": "Scaffold check"})["id"]
    session.commit()
    instance = wf_for("submitter").submit("ccb.check_sheet", record_id)
    session.commit()
    task = ready(session, instance.id)["work"]
    assert (task.lane, task.role, task.title) == ("clerk", "site_engineer", "Scaffold check")
    act(wf_for, "site", task)
    assert records.get("ccb.check_sheet", record_id)["state"] == "approved"
