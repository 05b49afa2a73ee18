"""One failure policy for every way a step runs (the API, the pages, the worker, jobs): a
failed step keeps nothing, and its error and the action a retry runs are on the instance."""

from __future__ import annotations

from typing import Any

import pytest

from formwork.runtime.workflow.context import StepFailed
from formwork.runtime.workflow.steps import run_step
from tests.web.conftest import sign_in
from tests.workflow.support import instance, kernel_of, ready


def submit(session: Any, ccb: dict[str, Any], wf_for: Any) -> int:
    from formwork.runtime.records import RecordService
    from formwork.runtime.registry import load_registry
    from formwork.runtime.security import system_principal
    from formwork.runtime.workflow.actions import complete

    records = RecordService(session, load_registry(session), system_principal())
    body = {"title": "Drain", "amount": "500.00", "project_manager": ccb["pm"]["id"]}
    record = records.create("ccb.change_request", body)
    session.commit()
    iid = wf_for("submitter").submit("ccb.change_request", record["id"]).id
    session.commit()
    for who, step in (("site", "site_review"), ("cost", "cost_review")):
        complete(wf_for(who), ready(session, iid)[step].id, "approve", "ok")
        session.commit()
    return int(iid)


def test_a_step_that_fails_on_the_task_page_is_recorded_and_retried(
    app, session, ccb, wf_for, wf_api
):
    iid = submit(session, ccb, wf_for)
    services = kernel_of(app).workflow.services
    good = services["update_record"]

    def broken(ctx: Any, params: dict[str, Any]) -> Any:
        raise RuntimeError("disk full")

    services["update_record"] = broken
    task = ready(session, iid)["pm_review"]
    browser = sign_in(app, "pm")
    page = browser.get(f"/app/tasks/{task.id}")
    assert page.status_code == 200
    failed = browser.post(f"/app/tasks/{task.id}", {"action": "approve", "comment": "fine"})
    assert failed.status_code == 422
    assert 'data-testid="step-failed"' in failed.get_data(as_text=True)
    row = instance(session, iid)
    assert "disk full" in row.error and row.attempts == 1
    assert row.failed_action["task_id"] == task.id
    assert row.failed_action["action"] == "approve"
    assert row.failed_action["comment"] == "fine"
    assert row.next_try_at is None  # a person's action: not retried by the worker
    assert list(ready(session, iid)) == ["pm_review"]  # nothing of the step was kept
    services["update_record"] = good
    retried = wf_api("boss").post(f"/api/v1/processes/{iid}/retry", {})
    assert retried.status_code == 200 and retried.json["status"] == "completed"
    row = instance(session, iid)
    assert (row.error, row.attempts, row.failed_action) == (None, 0, None)


def test_any_exception_of_a_step_is_recorded_not_only_step_failures(
    app, session, ccb, wf_for, wf_api
):
    iid = submit(session, ccb, wf_for)

    def bug() -> None:
        raise KeyError("a bug outside the engine")

    with pytest.raises(KeyError):
        run_step(session, bug, {"action": "retry"}, instance_id=iid)
    row = instance(session, iid)
    assert "KeyError" in row.error and row.attempts == 1 and row.next_try_at is not None
    shown = wf_api("boss").get(f"/api/v1/processes/{iid}").json
    assert shown["attempts"] == 1 and shown["next_try_at"] is not None
    session.rollback()  # SQLite: a fresh snapshot after the request's writes
    with pytest.raises(StepFailed):
        run_step(session, lambda: (_ for _ in ()).throw(StepFailed("boom", iid)), None)
    assert instance(session, iid).attempts == 2
