"""The approval actions on a task: approve, reject, return (退回), delegate (转办),
add a signer (加签), withdraw (撤回) and comment. Each is one step and one history entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from formwork.runtime.errors import Conflict, FieldError, PermissionDenied, ValidationFailed
from formwork.runtime.models import User
from formwork.runtime.workflow.context import StepContext
from formwork.runtime.workflow.models import HistoryEntry, ProcessInstance, TaskRow
from formwork.runtime.workflow.service import WorkflowService, check_data
from formwork.runtime.workflow.spiff import find_task
from formwork.runtime.workflow.tasks import form_schema, get_row, require_actor, step_name

ACTIONS = ("approve", "reject", "return", "delegate", "add_signer", "withdraw", "comment")
ACTED = ("approve", "reject", "return", "delegate", "add_signer")
MAX_COMMENT = 2000


def complete(
    service: WorkflowService,
    task_id: str,
    action: Any,
    comment: Any = "",
    data: Any = None,
) -> ProcessInstance:
    """Apply an approval action to a ready task (409 when it is no longer ready)."""
    action, comment, data = _check_request(action, comment, data)
    row = get_row(service.session, task_id)
    _require_ready(row)
    if action == "withdraw":
        instance = service.session.get(ProcessInstance, row.instance_id)
        assert instance is not None
        _require_submitter(service, instance)
    else:
        require_actor(service.principal, row)

    def change(workflow: BpmnWorkflow, ctx: StepContext) -> None:
        # The state was read under the instance lock: if another step completed the task
        # while we waited for the lock, the task is no longer ready in it.
        task = find_task(workflow, row.id)  # in a subprocess too
        if task is None or task.state != TaskState.READY:
            raise Conflict(f"task {row.id} is no longer ready")
        HANDLERS[action](service, workflow, ctx, row, task, comment, data)

    return service.step(row.instance_id, change)


def _check_request(action: Any, comment: Any, data: Any) -> tuple[str, str, dict[str, Any]]:
    errors = []
    if action not in ACTIONS:
        errors.append(FieldError("/action", "enum", {"allowed": ", ".join(ACTIONS)}))
    if comment is None:
        comment = ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        errors.append(FieldError("/comment", "invalid", {"detail": f"text up to {MAX_COMMENT}"}))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(FieldError("/data", "not_object"))
    if errors:
        raise ValidationFailed(errors)
    check_data(data, "/data")
    return str(action), comment, data


def _require_ready(row: TaskRow) -> None:
    if row.status != "ready":
        raise Conflict(f"task {row.id} is already {row.status}")


def _require_submitter(service: WorkflowService, instance: ProcessInstance) -> None:
    if not (service.principal.is_admin or instance.started_by == service.principal.user_id):
        raise PermissionDenied("only the submitter may withdraw")


def _done(row: TaskRow, ctx: StepContext) -> None:
    row.done_by = ctx.actor.user_id
    row.done_at = ctx.now


def _approve(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    _validate_form(task, data)
    back = task.internal_data.get("signers_back") or []
    if back:  # an added signer approved: the task goes back to whoever added them
        task.internal_data["assignee"] = back.pop()
        task.internal_data["signers_back"] = back
        ctx.history(
            "approve", task_id=row.id, step=row.step, comment=comment, details={"signer": True}
        )
        return
    task.set_data(**{**data, "decision": "approve", "comment": comment})
    task.run()
    _done(row, ctx)
    ctx.history("approve", task_id=row.id, step=row.step, comment=comment, details=_shown(data))


def _reject(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    task.set_data(decision="reject", comment=comment)
    _done(row, ctx)
    ctx.history("reject", task_id=row.id, step=row.step, comment=comment)
    service.end(ctx.instance, ctx, workflow, "rejected")


def _return(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    wanted = data.get("to")
    done = [
        t for t in workflow.get_tasks(state=TaskState.COMPLETED, manual=True)
        if wanted is None or step_name(t) == wanted
    ]  # fmt: skip
    if not done:
        detail = f"no completed step '{wanted}'" if wanted else "no earlier step to return to"
        raise ValidationFailed([FieldError("/data/to", "invalid", {"detail": detail})])
    target = max(done, key=lambda t: t.last_state_change)
    _done(row, ctx)
    workflow.reset_from_task_id(target.id)
    target.internal_data.pop("signers_back", None)
    details = {"to": step_name(target)}
    ctx.history("return", task_id=row.id, step=row.step, comment=comment, details=details)


def _delegate(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    to = _user(service, data)
    task.internal_data["assignee"] = to
    ctx.history("delegate", task_id=row.id, step=row.step, comment=comment, details={"to": to})


def _add_signer(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    to = _user(service, data)
    back = list(task.internal_data.get("signers_back") or [])
    back.append(row.assignee_id if row.assignee_id is not None else ctx.actor.user_id)
    task.internal_data["signers_back"] = back
    task.internal_data["assignee"] = to
    ctx.history("add_signer", task_id=row.id, step=row.step, comment=comment, details={"to": to})


def _withdraw(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    acted = service.session.scalar(
        sa.select(HistoryEntry.id)
        .where(HistoryEntry.instance_id == ctx.instance.id, HistoryEntry.action.in_(ACTED))
        .limit(1)
    )
    if acted is not None:
        raise Conflict("an approver has already acted; the request can no longer be withdrawn")
    ctx.history("withdraw", task_id=row.id, step=row.step, comment=comment)
    service.end(ctx.instance, ctx, workflow, "withdrawn")


def _comment(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    if not comment:
        raise ValidationFailed([FieldError("/comment", "required")])
    ctx.history("comment", task_id=row.id, step=row.step, comment=comment)


HANDLERS = {
    "approve": _approve,
    "reject": _reject,
    "return": _return,
    "delegate": _delegate,
    "add_signer": _add_signer,
    "withdraw": _withdraw,
    "comment": _comment,
}


def _user(service: WorkflowService, data: Mapping[str, Any]) -> int:
    to = data.get("to")
    if not isinstance(to, int) or isinstance(to, bool):
        raise ValidationFailed([FieldError("/data/to", "type", {"expected": "integer"})])
    active = service.session.scalar(sa.select(User.is_active).where(User.id == to))
    if not active:
        raise ValidationFailed(
            [FieldError("/data/to", "invalid", {"detail": f"no active user {to}"})]
        )
    return to


def _validate_form(task: Any, data: Mapping[str, Any]) -> None:
    schema = form_schema(task)
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        FieldError(
            "/data" + "".join(f"/{p}" for p in e.absolute_path), "schema", {"detail": e.message}
        )
        for e in validator.iter_errors(_plain(data))
    ]
    if errors:
        raise ValidationFailed(errors)


def _plain(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _shown(data: Mapping[str, Any]) -> dict[str, Any]:
    from formwork.runtime.workflow.binding import to_json

    return {"data": to_json(dict(data))} if data else {}
