"""Timers and escalation: the worker fires a due boundary timer after a reload; overdue tasks."""

from __future__ import annotations

import datetime as dt

import pytest

from formwork.runtime.security import load_principal
from formwork.runtime.workflow.models import ProcessInstance, TaskRow
from formwork.runtime.workflow.service import WorkflowRuntime
from formwork.runtime.workflow.tasks import inbox
from formwork.runtime.workflow.worker import fire_timers
from tests.workflow.test_process import act, new_request, ready

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates


def to_finance(session, ccb, wf_for, escalate_after):
    record_id = new_request(session, ccb, amount="300000.00", escalate_after=escalate_after)
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    act(wf_for, "site", ready(session, instance.id)["site_review"])
    act(wf_for, "cost", ready(session, instance.id)["cost_review"])
    act(wf_for, "pm", ready(session, instance.id)["pm_review"])
    return instance.id


def test_worker_escalates_after_the_boundary_timer(app, session, ccb, wf_for, clock):
    instance_id = to_finance(session, ccb, wf_for, "PT3H")
    finance = ready(session, instance_id)["finance_review"]
    due = session.get(ProcessInstance, instance_id).timer_due_at
    assert due is not None
    session.rollback()  # the worker opens its own transactions
    kernel = app.extensions["formwork"]
    clock.advance(dt.timedelta(hours=2, minutes=59))
    assert fire_timers(kernel).fired == 0  # nothing is due yet
    clock.advance(dt.timedelta(minutes=2))
    kernel.workflow = WorkflowRuntime()  # a fresh process: cold spec cache
    outcome = fire_timers(kernel)
    assert (outcome.fired, outcome.failed) == (1, 0)
    session.expire_all()
    tasks = ready(session, instance_id)
    assert list(tasks) == ["escalated_review"]
    assert tasks["escalated_review"].assignee_id == ccb["pm"]["id"]
    assert session.get(TaskRow, finance.id).status == "cancelled"
    assert session.get(ProcessInstance, instance_id).timer_due_at is None
    act(wf_for, "pm", tasks["escalated_review"])
    assert session.get(ProcessInstance, instance_id).status == "completed"


def test_a_long_timer_is_not_fired_early(app, session, ccb, wf_for, clock):
    instance_id = to_finance(session, ccb, wf_for, "PT48H")
    due = session.get(ProcessInstance, instance_id).timer_due_at
    assert due.replace(tzinfo=due.tzinfo or dt.UTC) == clock.now() + dt.timedelta(hours=48)
    session.rollback()
    clock.advance(dt.timedelta(hours=47, minutes=59))
    outcome = fire_timers(app.extensions["formwork"])
    assert outcome.fired == 0
    assert list(ready(session, instance_id)) == ["finance_review"]


def test_overdue_tasks_are_flagged_in_the_inbox(session, ccb, wf_for, clock):
    record_id = new_request(session, ccb)
    wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    site = load_principal(session, ccb["site"]["user"])
    now = clock.now()
    [task] = inbox(session, site, {}, now)
    assert task["overdue"] is False and task["step"] == "site_review"
    later = now + dt.timedelta(days=3)  # the step is due in two days
    [task] = inbox(session, site, {"overdue": "1"}, later)
    assert task["overdue"] is True
    assert inbox(session, site, {"overdue": "1"}, now) == []
