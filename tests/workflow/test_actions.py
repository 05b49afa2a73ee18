"""Approval actions: reject, return (退回), delegate (转办), add signer (加签), withdraw (撤回),
countersign (会签), any-one-of (或签), comments — each recorded in the history."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.errors import Conflict, PermissionDenied, ValidationFailed
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.actions import complete
from formwork.runtime.workflow.deploy import deploy
from formwork.runtime.workflow.models import HistoryEntry, ProcessInstance
from tests.workflow.conftest import source
from tests.workflow.test_process import act, new_request, ready, record


def submitted(session: Any, ccb: dict[str, Any], wf_for: Any, **kw: Any) -> tuple[int, int]:
    record_id = new_request(session, ccb, **kw)
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    return record_id, instance.id


def history(session: Any, instance_id: int) -> list[tuple[str, str]]:
    rows = session.scalars(
        sa.select(HistoryEntry)
        .where(HistoryEntry.instance_id == instance_id)
        .order_by(HistoryEntry.id)
    ).all()
    return [(r.action, r.comment) for r in rows]


def test_reject_ends_the_request_and_marks_the_record(session, ccb, wf_for):
    record_id, instance_id = submitted(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"], "reject", comment="图纸不全")
    session.expire_all()
    assert session.get(ProcessInstance, instance_id).status == "rejected"
    assert ready(session, instance_id) == {}
    assert record(session, record_id)["approval_state"] == "rejected"
    assert ("reject", "图纸不全") in history(session, instance_id)


def test_return_goes_back_to_an_earlier_step(session, ccb, wf_for):
    _, instance_id = submitted(session, ccb, wf_for)
    site = ready(session, instance_id)["site_review"]
    act(wf_for, "site", site)
    cost = ready(session, instance_id)["cost_review"]
    act(wf_for, "cost", cost, "return", comment="请补充现场照片", data={"to": "site_review"})
    tasks = ready(session, instance_id)
    assert list(tasks) == ["site_review"]  # the parallel branch was withdrawn too
    assert tasks["site_review"].id == site.id  # the same step comes back to the inbox
    act(wf_for, "site", tasks["site_review"])
    assert sorted(ready(session, instance_id)) == ["cost_review", "pm_review"]
    with pytest.raises(ValidationFailed, match="no completed step"):
        complete(
            wf_for("cost"),
            ready(session, instance_id)["cost_review"].id,
            "return",
            "再补一次",
            {"to": "nope"},
        )
    assert [a for a, _ in history(session, instance_id)].count("return") == 1


def test_delegate_moves_the_task_to_another_user(session, ccb, wf_for):
    _, instance_id = submitted(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"])
    pm_task = ready(session, instance_id)["pm_review"]
    act(wf_for, "pm", pm_task, "delegate", comment="出差，转王经理", data={"to": ccb["pm2"]["id"]})
    pm_task = ready(session, instance_id)["pm_review"]
    assert pm_task.assignee_id == ccb["pm2"]["id"]
    with pytest.raises(PermissionDenied):
        complete(wf_for("pm"), pm_task.id, "approve")
    session.rollback()
    act(wf_for, "pm2", pm_task)
    with pytest.raises(ValidationFailed):
        complete(
            wf_for("cost"),
            ready(session, instance_id)["cost_review"].id,
            "delegate",
            "",
            {"to": 99999},
        )


def test_add_signer_asks_someone_else_first_then_returns(session, ccb, wf_for):
    _, instance_id = submitted(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"])
    pm = ready(session, instance_id)["pm_review"]
    with pytest.raises(ValidationFailed, match="cannot hold"):  # not of the step's role
        complete(wf_for("pm"), pm.id, "add_signer", "请造价先看", {"to": ccb["cost"]["id"]})
    session.rollback()
    act(wf_for, "pm", pm, "add_signer", comment="请王经理先看", data={"to": ccb["pm2"]["id"]})
    pm = ready(session, instance_id)["pm_review"]
    assert pm.assignee_id == ccb["pm2"]["id"]
    act(wf_for, "pm2", pm, comment="同意")
    pm = ready(session, instance_id)["pm_review"]
    assert pm.assignee_id == ccb["pm"]["id"]  # back to the one who added the signer
    act(wf_for, "pm", pm)
    actions = [a for a, _ in history(session, instance_id)]
    assert actions == ["start", "approve", "add_signer", "approve", "approve"]


def test_withdraw_only_before_anyone_acted_and_only_by_the_submitter(session, ccb, wf_for):
    record_id, instance_id = submitted(session, ccb, wf_for)
    site = ready(session, instance_id)["site_review"]
    with pytest.raises(PermissionDenied):
        complete(wf_for("site"), site.id, "withdraw")
    session.rollback()
    act(wf_for, "submitter", site, "withdraw", comment="金额有误")
    session.expire_all()
    assert session.get(ProcessInstance, instance_id).status == "withdrawn"
    assert record(session, record_id)["approval_state"] == "withdrawn"

    record_id, instance_id = submitted(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"])
    with pytest.raises(Conflict, match="already acted"):
        complete(wf_for("submitter"), ready(session, instance_id)["cost_review"].id, "withdraw")
    session.rollback()
    assert session.get(ProcessInstance, instance_id).status == "running"


def test_comment_and_bad_requests(session, ccb, wf_for):
    _, instance_id = submitted(session, ccb, wf_for)
    site = ready(session, instance_id)["site_review"]
    act(wf_for, "site", site, "comment", comment="明天去现场")
    assert ready(session, instance_id)["site_review"].id == site.id
    for action, comment, data in (
        ("explode", "", None), ("approve", 5, None), ("approve", "", [1]),
        ("approve", "", {"typename": "BpmnWorkflow"}), ("comment", "", None),
    ):  # fmt: skip
        with pytest.raises(ValidationFailed):
            complete(wf_for("site"), site.id, action, comment, data)
        session.rollback()
    act(wf_for, "site", site)
    with pytest.raises(ValidationFailed, match="cost_impact"):
        complete(
            wf_for("cost"),
            ready(session, instance_id)["cost_review"].id,
            "approve",
            "",
            {"cost_impact": -1},
        )


def test_countersign_needs_everyone_and_or_sign_needs_one(session, ccb, wf_for):
    deploy(session, source("countersign.bpmn"), principal=system_principal())
    session.commit()
    people = [ccb[n]["id"] for n in ("site", "cost", "pm")]
    instance = wf_for("boss").start("countersign", {"signers": people, "candidates": people[:2]})
    session.commit()

    def tasks(step: str) -> list[Any]:
        rows = ready(session, instance.id)
        return [r for r in _all_ready(session, instance.id) if r.step == step] if rows else []

    signing = tasks("sign_all")
    assert sorted(r.assignee_id for r in signing) == sorted(people)
    by_user = {r.assignee_id: r for r in signing}
    act(wf_for, "site", by_user[ccb["site"]["id"]])
    act(wf_for, "cost", by_user[ccb["cost"]["id"]])
    assert len(tasks("sign_all")) == 1 and tasks("sign_any") == []  # 会签: waits for the last
    act(wf_for, "pm", by_user[ccb["pm"]["id"]])
    any_of = tasks("sign_any")
    assert sorted(r.assignee_id for r in any_of) == sorted(people[:2])
    act(wf_for, "cost", next(r for r in any_of if r.assignee_id == ccb["cost"]["id"]))
    session.expire_all()
    assert session.get(ProcessInstance, instance.id).status == "completed"  # 或签: one is enough
    assert _all_ready(session, instance.id) == []


def _all_ready(session: Any, instance_id: int) -> list[Any]:
    from formwork.runtime.workflow.models import TaskRow

    return list(
        session.scalars(
            sa.select(TaskRow).where(TaskRow.instance_id == instance_id, TaskRow.status == "ready")
        ).all()
    )
