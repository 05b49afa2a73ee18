"""Field rules reach the task form: an approver whose role hides a field sees neither the
record's value nor the process data's copy of it; row rules do not hide the record a task
puts in front of its approver."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from formwork.auth.users import create_token, create_user, grant
from formwork.runtime.models import RolePermission
from formwork.runtime.workflow.models import TaskRow
from tests.conftest import PASSWORD, Api
from tests.packs.conftest import install
from tests.packs.test_workflows import submit


def test_an_approver_sees_the_record_without_the_fields_their_role_hides(
    app: Any, session: Any
) -> None:
    install(session, "approvals_v1")
    # The pack's approver may read and update requests; narrow it: amount hidden, and rows
    # limited to the approver's own records (which the request is not).
    session.execute(
        sa.update(RolePermission)
        .where(RolePermission.role == "approver")
        .values(fields={"amount": "hidden"}, rows=[{"field": "created_by", "is": "me"}])
    )
    approver = create_user(session, "approver1", PASSWORD, ["approver"])
    token = create_token(session, approver, "t")
    session.commit()
    instance_id = submit(session, "采购申请")
    api = Api(app.test_client(), token)
    [task] = api.get("/api/v1/tasks").get_json()["items"]
    assert task["instance_id"] == instance_id
    detail = api.get(f"/api/v1/tasks/{task['id']}").get_json()
    assert detail["record"]["title"] == "采购申请"
    assert "amount" not in detail["record"]
    assert "amount" not in detail["data"]
    # Outside the task, the rows rule applies: the record is not the approver's.
    assert api.get(f"/api/v1/approvals/request/{detail['record']['id']}").status_code == 404
    grant(session, "approver", "approvals.request", ["read"])  # an administrator's wider grant
    session.commit()
    record = api.get(f"/api/v1/approvals/request/{detail['record']['id']}").get_json()
    assert "amount" in record  # the union: this grant hides nothing
    assert session.scalar(sa.select(sa.func.count()).select_from(TaskRow)) == 1
