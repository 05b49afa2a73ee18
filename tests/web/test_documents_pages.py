"""A bound record's lifecycle on its pages: what the detail page offers in each state, the
edit form refusing a locked record with its reason, withdraw, cancel and amend."""

from __future__ import annotations

from typing import Any

import pytest

from formwork.auth.users import grant
from tests.web.conftest import sign_in
from tests.workflow import conftest as workflow_fixtures
from tests.workflow.test_process import act, new_request, ready, record

pytestmark = pytest.mark.dates

ccb, runtime, wf_for = workflow_fixtures.ccb, workflow_fixtures.runtime, workflow_fixtures.wf_for
PAGE = "/app/ccb/change_request/{id}"


def approved(session: Any, ccb: dict[str, Any], wf_for: Any) -> int:
    record_id = new_request(session, ccb)
    instance = wf_for("submitter").submit("ccb.change_request", record_id)
    session.commit()
    act(wf_for, "site", ready(session, instance.id)["site_review"])
    act(wf_for, "cost", ready(session, instance.id)["cost_review"])
    act(wf_for, "pm", ready(session, instance.id)["pm_review"])
    assert record(session, record_id)["approval_state"] == "approved"
    return record_id


def test_a_draft_offers_edit_and_submit_then_withdraw_while_nobody_acted(web, session, ccb, wf_for):
    record_id = new_request(session, ccb)
    page = PAGE.format(id=record_id)
    submitter = sign_in(web, "submitter")
    html = submitter.html(page)
    assert 'id="submit-approval"' in html and 'id="edit"' in html
    assert 'data-testid="lifecycle-state">草稿<' in html
    submitted = submitter.post(page + "/submit")
    assert submitted.status_code == 302
    html = submitter.html(page)
    assert 'data-testid="lifecycle-state">审批中<' in html
    assert 'id="edit"' not in html and 'id="submit-approval"' not in html
    assert 'id="withdraw"' in html
    # The edit page says why it cannot be used, and a forged post gets the reason too.
    redirected = submitter.get(page + "/edit")
    assert redirected.status_code == 303
    assert "审批中" in submitter.html(page)
    version = record(session, record_id)["version"]
    posted = submitter.post(page + "/edit", {"title": "改标题", "_version": str(version)})
    assert posted.status_code == 409 and "审批中" in posted.get_data(True)
    withdrawn = submitter.post(page + "/withdraw", {"comment": "金额有误"})
    assert withdrawn.status_code == 302
    session.rollback()  # end the read snapshot
    assert record(session, record_id)["approval_state"] == "withdrawn"
    assert 'id="edit"' in submitter.html(page)


def test_an_approved_record_offers_only_cancel_and_amend_to_those_granted(
    web, session, ccb, wf_for
):
    record_id = approved(session, ccb, wf_for)
    page = PAGE.format(id=record_id)
    html = sign_in(web, "submitter").html(page)
    assert 'data-testid="lifecycle-state">已通过<' in html
    for absent in ('id="edit"', 'id="submit-approval"', 'id="withdraw"', 'id="cancel-record"'):
        assert absent not in html
    session.rollback()  # end the read snapshot before writing
    grant(session, "project_manager", "ccb.change_request", ["cancel", "amend"])
    session.commit()
    pm = sign_in(web, "pm")
    html = pm.html(page)
    assert 'id="cancel-record"' in html and 'id="amend-record"' in html
    refused = pm.post(page + "/cancel", {"reason": ""})
    assert refused.status_code == 302 and "请填写意见" in pm.html(page)
    amended = pm.post(page + "/amend", {"reason": "金额调整"})
    assert amended.status_code == 302 and amended.headers["Location"].endswith("/edit")
    new_id = int(amended.headers["Location"].split("/")[-2])
    html = pm.html(page)
    assert 'data-testid="lifecycle-state">已作废<' in html
    assert f'data-testid="amended-to">#{new_id}<' in html
    assert f'data-testid="amended-from">#{record_id}<' in pm.html(PAGE.format(id=new_id))
