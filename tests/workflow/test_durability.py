"""Concurrency (two approvers, one wins), failed steps leave the instance as it was, versions
and migration of running instances."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.errors import Conflict
from formwork.runtime.registry import load_registry
from formwork.runtime.security import load_principal, system_principal
from formwork.runtime.workflow.actions import complete
from formwork.runtime.workflow.context import StepFailed
from formwork.runtime.workflow.deploy import deploy
from formwork.runtime.workflow.migrate import instances_at, migrate
from formwork.runtime.workflow.models import HistoryEntry, ProcessDefinition, ProcessInstance
from formwork.runtime.workflow.service import WorkflowService, record_failure
from formwork.runtime.workflow.views import retry
from tests.workflow.conftest import source
from tests.workflow.test_process import act, new_request, ready, record


def submit(session: Any, ccb: dict[str, Any], wf_for: Any, **kw: Any) -> int:
    record_id = new_request(session, ccb, **kw)
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    return instance.id


def test_two_threads_completing_one_task_exactly_one_wins(app, session, ccb, runtime):
    instance_id = submit(session, ccb, None or _wf(session, ccb, runtime))
    task_id = ready(session, instance_id)["site_review"].id
    session.rollback()  # hold no transaction (on SQLite it would hold the write lock)
    barrier = threading.Barrier(2)
    results: list[str] = []

    def run() -> None:
        own = app.extensions["formwork"].sessions()
        try:
            principal = load_principal(own, own.get(type(ccb["site"]["user"]), ccb["site"]["id"]))
            service = WorkflowService(own, principal, runtime, load_registry(own))
            own.rollback()  # start together, holding nothing
            barrier.wait()
            complete(service, task_id, "approve", "ok")
            own.commit()
            results.append("won")
        except Conflict:
            own.rollback()
            results.append("conflict")
        finally:
            own.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == ["conflict", "won"]
    session.expire_all()
    approvals = session.scalar(
        sa.select(sa.func.count()).where(
            HistoryEntry.instance_id == instance_id, HistoryEntry.action == "approve"
        )
    )
    assert approvals == 1
    assert sorted(ready(session, instance_id)) == ["cost_review", "pm_review"]


def _wf(session: Any, ccb: dict[str, Any], runtime: Any) -> Any:
    def make(name: str) -> WorkflowService:
        return WorkflowService(
            session, load_principal(session, ccb[name]["user"]), runtime, load_registry(session)
        )

    return make


def test_a_failing_step_leaves_the_instance_as_it_was_and_can_be_retried(
    session, ccb, wf_for, runtime
):
    instance_id = submit(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"])
    act(wf_for, "cost", ready(session, instance_id)["cost_review"])
    before = session.get(ProcessInstance, instance_id).state
    pm_task = ready(session, instance_id)["pm_review"]

    def broken(ctx: Any, params: dict[str, Any]) -> Any:
        raise RuntimeError("mail server down")

    good = runtime.services["update_record"]
    runtime.services["update_record"] = broken
    with pytest.raises(StepFailed, match="mail server down") as caught:
        complete(wf_for("pm"), pm_task.id, "approve", "ok")
    session.rollback()
    record_failure(
        session,
        caught.value.instance_id,
        str(caught.value),
        {"task_id": pm_task.id, "action": "approve", "comment": "ok"},
    )
    session.commit()
    session.expire_all()
    instance = session.get(ProcessInstance, instance_id)
    assert instance.state == before and instance.status == "running"
    assert "mail server down" in instance.error
    assert list(ready(session, instance_id)) == ["pm_review"]
    runtime.services["update_record"] = good
    retry(wf_for("boss"), instance_id)
    session.commit()
    session.expire_all()
    instance = session.get(ProcessInstance, instance_id)
    assert instance.status == "completed" and instance.error is None


def v2_source() -> str:
    text = source("ccb_change.bpmn").replace('"cost_review"', '"cost_check"')
    return text.replace(">cost_review<", ">cost_check<").replace("造价工程师审核", "造价复核")


def test_new_version_leaves_running_instances_and_migration_moves_chosen_ones(session, ccb, wf_for):
    at_site = submit(session, ccb, wf_for)
    at_cost = submit(session, ccb, wf_for)
    act(wf_for, "site", ready(session, at_cost)["site_review"])
    v2, created = deploy(
        session, v2_source(), [source("routing.dmn")], principal=system_principal(),
        binding={"entity": "ccb.change_request", "state_field": "approval_state"},
    )  # fmt: skip
    session.commit()
    assert created and v2.version == 2
    v1_id = session.get(ProcessInstance, at_site).definition_id
    assert session.get(ProcessDefinition, v1_id).version == 1  # untouched by the deploy
    fresh = submit(session, ccb, wf_for)
    assert session.get(ProcessInstance, fresh).definition_id == v2.id
    service = wf_for("boss")
    assert instances_at(service, "ccb_change", "site_review") == [at_site, fresh]
    result = migrate(service, [at_site, at_cost, fresh], v2)
    session.commit()
    assert result["migrated"] == [at_site]
    assert "cost_review" in result["refused"][str(at_cost)]
    assert "already runs version 2" in result["refused"][str(fresh)]
    session.expire_all()
    assert session.get(ProcessInstance, at_site).definition_id == v2.id
    assert session.get(ProcessInstance, at_cost).definition_id == v1_id
    act(wf_for, "site", ready(session, at_site)["site_review"])
    assert sorted(ready(session, at_site)) == ["cost_check", "pm_review"]  # runs the new version
    act(wf_for, "cost", ready(session, at_cost)["cost_review"])  # the refused one goes on on v1
    act(wf_for, "pm", ready(session, at_cost)["pm_review"])
    assert session.get(ProcessInstance, at_cost).status == "completed"
    history = session.scalars(
        sa.select(HistoryEntry.action).where(HistoryEntry.instance_id == at_site)
    ).all()
    assert "migrate" in history
    assert (
        record(session, session.get(ProcessInstance, at_site).record_id)["approval_state"]
        == "in-approval"
    )


def test_a_looping_instance_keeps_a_flat_state(session, ccb, wf_for):
    deploy(session, source("loop.bpmn"), principal=system_principal())
    session.commit()
    boss = wf_for("boss")
    instance = boss.start("loop", {"count": 0, "limit": 500})
    session.commit()
    sizes = {}
    for number in range(1, 121):
        act(wf_for, "boss", ready(session, instance.id)["work"])
        sizes[number] = len(session.get(ProcessInstance, instance.id).state)
    assert sizes[120] < sizes[20] * 1.2  # the finished past is cut off the tree
    workflow = boss.read(session.get(ProcessInstance, instance.id))
    assert len(workflow.tasks) < 200
    assert workflow.last_task.data["count"] == 120  # data survives the re-rooting
    act(wf_for, "boss", ready(session, instance.id)["work"], "return", data={"to": "work"})
    assert list(ready(session, instance.id)) == ["work"]
