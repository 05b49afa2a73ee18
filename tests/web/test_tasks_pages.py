"""The workflow pages: the inbox, a task with its form and actions, the process view."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.workflow.models import HistoryEntry, ProcessInstance
from tests.web.conftest import Browser, sign_in
from tests.workflow import conftest as workflow_fixtures
from tests.workflow.test_process import act, new_request, ready

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates

# The workflow fixtures: the change-request entity, its approvers and process.
ccb, runtime, wf_for = workflow_fixtures.ccb, workflow_fixtures.runtime, workflow_fixtures.wf_for

PROCESS_DATA = re.compile(r'<script type="application/json" id="process-data">(.*?)</script>', re.S)


def submitted(session: Any, ccb: dict[str, Any], wf_for: Any, now: Any = None) -> int:
    """Submit a change request and return its process instance id."""
    record_id = new_request(session, ccb)
    instance = wf_for("submitter", now=now).submit("ccb.change_request", record_id)
    session.commit()
    return int(instance.id)


def history_count(session: Any, instance_id: int) -> int:
    query = sa.select(sa.func.count()).where(HistoryEntry.instance_id == instance_id)
    return int(session.scalar(query))


def person(web: Any, name: str) -> Browser:
    return sign_in(web, name)


def test_inbox_lists_the_task_for_the_roles_user_only(web, session, ccb, wf_for):
    instance_id = submitted(session, ccb, wf_for)
    task = ready(session, instance_id)["site_review"]
    html = person(web, "site").html("/app/tasks")
    assert f'data-task="{task.id}"' in html
    assert f"/app/tasks/{task.id}" in html and f"/app/processes/{instance_id}" in html
    assert "Add a drainage ditch" in html  # the record's title, linked
    assert 'data-testid="overdue"' not in html
    assert 'hx-get="/app/task-count"' in html
    assert 'data-testid="nav-task-count">1<' in person(web, "site").html("/app/task-count")
    other = person(web, "cost").html("/app/tasks")
    assert task.id not in other and 'data-testid="inbox-empty"' in other
    assert 'data-testid="inbox-empty"' in person(web, "site").html("/app/tasks?filter=mine")


def test_overdue_tasks_are_flagged_and_home_links_the_count(web, session, ccb, wf_for, clock):
    past = clock.now() - dt.timedelta(days=5)
    submitted(session, ccb, wf_for, now=past)  # due two days after the start: overdue now
    site = person(web, "site")
    assert 'data-testid="overdue"' in site.html("/app/tasks")
    assert 'href="/app/tasks" data-testid="open-tasks">1<' in site.html("/")


def test_task_page_renders_the_form_and_the_actions(web, session, ccb, wf_for):
    instance_id = submitted(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"])
    task = ready(session, instance_id)["cost_review"]
    html = person(web, "cost").html(f"/app/tasks/{task.id}")
    assert 'name="cost_impact"' in html and 'name="comment"' in html
    for action in ("approve", "reject", "return", "delegate", "add_signer"):
        assert f'name="action" value="{action}"' in html
    assert 'value="site_review"' in html  # the step a return can go back to
    assert 'data-testid="record-summary"' in html and "50,000.00" in html
    assert 'data-testid="history"' in html


def test_approve_moves_the_process_on_and_a_second_post_conflicts(web, session, ccb, wf_for):
    instance_id = submitted(session, ccb, wf_for)
    task = ready(session, instance_id)["site_review"]
    site = person(web, "site")
    site.html(f"/app/tasks/{task.id}")
    response = site.post(f"/app/tasks/{task.id}", {"action": "approve", "comment": "现场已核实"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/app/tasks")
    session.rollback()  # end the read snapshot
    assert set(ready(session, instance_id)) == {"cost_review", "pm_review"}
    entries = history_count(session, instance_id)
    again = site.post(f"/app/tasks/{task.id}", {"action": "approve", "comment": "again"})
    assert again.status_code == 409
    assert 'data-testid="conflict"' in again.get_data(as_text=True)
    session.rollback()  # end the read snapshot
    assert history_count(session, instance_id) == entries
    assert set(ready(session, instance_id)) == {"cost_review", "pm_review"}


def test_bad_form_data_is_shown_inline_and_nothing_changes(web, session, ccb, wf_for):
    instance_id = submitted(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"])
    task = ready(session, instance_id)["cost_review"]
    cost = person(web, "cost")
    cost.html(f"/app/tasks/{task.id}")
    for bad in ("-5", "abc"):
        response = cost.post(f"/app/tasks/{task.id}", {"action": "approve", "cost_impact": bad})
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert 'data-testid="error-task-cost_impact"' in html and f'value="{bad}"' in html
    session.rollback()  # end the read snapshot
    assert "cost_review" in ready(session, instance_id)


def test_return_and_delegate_take_their_target_from_the_form(web, session, ccb, wf_for):
    instance_id = submitted(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"])
    cost = person(web, "cost")
    task = ready(session, instance_id)["cost_review"]
    cost.html(f"/app/tasks/{task.id}")
    response = cost.post(f"/app/tasks/{task.id}", {"action": "delegate", "to_user": ""})
    assert response.status_code == 422 and 'data-testid="problems"' in response.get_data(True)
    response = cost.post(f"/app/tasks/{task.id}", {"action": "return", "to": "site_review"})
    assert response.status_code == 422  # a return says why
    assert "请填写意见" in response.get_data(True)
    response = cost.post(
        f"/app/tasks/{task.id}", {"action": "return", "to": "site_review", "comment": "缺照片"}
    )
    assert response.status_code == 302
    session.rollback()  # end the read snapshot
    assert "site_review" in ready(session, instance_id)


def test_task_actions_need_the_csrf_token(web, session, ccb, wf_for):
    instance_id = submitted(session, ccb, wf_for)
    task = ready(session, instance_id)["site_review"]
    site = person(web, "site")
    response = site.client.post(f"/app/tasks/{task.id}", data={"action": "approve"})
    assert response.status_code == 400
    session.rollback()  # end the read snapshot
    assert "site_review" in ready(session, instance_id)


def test_process_page_shows_history_and_the_steps_to_highlight(web, session, ccb, wf_for):
    instance_id = submitted(session, ccb, wf_for)
    act(wf_for, "site", ready(session, instance_id)["site_review"], comment="图纸齐全")
    html = person(web, "submitter").html(f"/app/processes/{instance_id}")
    found = PROCESS_DATA.search(html)
    assert found is not None
    data = json.loads(found.group(1))
    assert data["completed"] == ["site_review"]
    assert data["current"] == ["cost_review", "pm_review"]
    assert "<bpmn:definitions" in data["bpmn"]
    assert "bpmn-navigated-viewer.production.min.js" in html and "js/process.js" in html
    assert 'data-testid="history"' in html and "图纸齐全" in html
    assert 'data-action="approve"' in html and 'data-action="start"' in html
    assert "<script>" not in html  # no inline scripts


def test_process_page_is_hidden_from_people_with_no_part_in_it(web, session, ccb, wf_for):
    instance_id = submitted(session, ccb, wf_for)
    assert person(web, "fin").get(f"/app/processes/{instance_id}").status_code == 404
    assert session.get(ProcessInstance, instance_id).status == "running"


def test_a_record_is_submitted_from_its_page_by_a_user_who_may_submit(web, session, ccb):
    record_id = new_request(session, ccb)
    detail = f"/app/ccb/change_request/{record_id}"
    clerk = person(web, "submitter")
    page = clerk.html(detail)
    assert 'id="submit-approval"' in page and 'data-testid="approval-status"' not in page
    assert 'id="submit-approval"' not in person(web, "site").html(detail)  # no submit grant
    response = clerk.post(f"{detail}/submit")
    assert response.status_code == 302 and "/app/processes/" in response.headers["Location"]
    page = clerk.html(detail)
    assert 'data-testid="approval-status"' in page and 'id="submit-approval"' not in page
    again = clerk.post(f"{detail}/submit")  # already in approval: refused, said on the page
    assert again.status_code == 302 and again.headers["Location"].endswith(detail)
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessInstance)) == 1
    refused = person(web, "site").post(f"{detail}/submit")
    assert refused.status_code == 403
