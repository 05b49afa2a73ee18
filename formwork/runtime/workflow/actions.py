"""The approval actions on a task: approve, reject, return (退回), delegate (转办),
add a signer (加签), withdraw (撤回) and comment. Each is one step and one history entry.

A completion changes only what the task's form declares (DESIGN.md decision 14): its
fields are validated against the form, anything else is refused with a pointer. A form field
that is a field of the bound record is written to the record (validated by its field type)
and read back, so later steps and postings use the record as approved; the others become
process data. Routing and assignment variables are never form fields (deploy refuses them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from formwork.runtime.errors import Conflict, FieldError, PermissionDenied, ValidationFailed
from formwork.runtime.workflow.binding import record_data, to_json, update_bound
from formwork.runtime.workflow.context import StepContext
from formwork.runtime.workflow.models import HistoryEntry, ProcessInstance, TaskRow
from formwork.runtime.workflow.outcomes import DECISION, routes_on_decision
from formwork.runtime.workflow.service import WorkflowService, check_data
from formwork.runtime.workflow.spiff import find_task
from formwork.runtime.workflow.tasks import (
    candidates,
    form_schema,
    get_row,
    require_actor,
    step_name,
)

ACTIONS = ("approve", "reject", "return", "delegate", "add_signer", "withdraw", "comment")
ACTED = ("approve", "reject", "return", "delegate", "add_signer")
MAX_COMMENT = 2000
# What `data` may hold for each action besides the approve form's fields.
ACTION_DATA = {"return": ("to",), "delegate": ("to",), "add_signer": ("to",)}
NEEDS_COMMENT = ("reject", "return", "comment")


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
            raise Conflict(f"task {row.id} is no longer ready").coded("task_gone")
        HANDLERS[action](service, workflow, ctx, row, task, comment, data)

    return service.step(row.instance_id, change)


def _check_request(action: Any, comment: Any, data: Any) -> tuple[str, str, dict[str, Any]]:
    errors = []
    if action not in ACTIONS:
        errors.append(FieldError("/action", "enum", {"allowed": ", ".join(ACTIONS)}))
    comment = "" if comment is None else comment
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        errors.append(FieldError("/comment", "invalid", {"detail": f"text up to {MAX_COMMENT}"}))
    elif action in NEEDS_COMMENT and not comment.strip():
        errors.append(FieldError("/comment", "comment_required"))
    data = {} if data is None else data
    if not isinstance(data, dict):
        errors.append(FieldError("/data", "not_object"))
    elif action in ACTIONS and action != "approve":
        allowed = ACTION_DATA.get(str(action), ())
        errors += [
            FieldError(f"/data/{key}", "unknown_field", {"name": key})
            for key in sorted(data)
            if key not in allowed
        ]
    if errors:
        raise ValidationFailed(errors)
    check_data(data, "/data")
    return str(action), comment, data


def _require_ready(row: TaskRow) -> None:
    if row.status != "ready":
        raise Conflict(f"task {row.id} is already {row.status}").coded("task_gone")


def _require_submitter(service: WorkflowService, instance: ProcessInstance) -> None:
    if not (service.principal.is_admin or instance.started_by == service.principal.user_id):
        raise PermissionDenied("only the submitter may withdraw")


def _done(row: TaskRow, ctx: StepContext) -> None:
    row.done_by = ctx.actor.user_id
    row.done_at = ctx.now


def _approve(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    data = _validate_form(task, data, _record_fields(ctx))
    back = task.internal_data.get("signers_back") or []
    if back:  # an added signer approved: the task goes back to whoever added them
        task.internal_data["assignee"] = back.pop()
        task.internal_data["signers_back"] = back
        ctx.history(
            "approve", task_id=row.id, step=row.step, comment=comment, details={"signer": True}
        )
        return
    process_values = _write_record_fields(ctx, task, data)
    for name in form_schema(task).get("properties") or ():
        if name not in process_values and name not in task.data:
            process_values[name] = None  # a declared field left empty is still defined
    task.set_data(**{**process_values, DECISION: "approve", "comment": comment})
    task.run()
    _done(row, ctx)
    ctx.history("approve", task_id=row.id, step=row.step, comment=comment, details=_shown(data))


def _write_record_fields(ctx: StepContext, task: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """Write the form fields that are fields of the bound record to the record (validated by
    their field types), refresh the task's data from it; return the other fields."""
    entity, record_id = ctx.instance.entity, ctx.instance.record_id
    if entity is None or record_id is None or ctx.registry is None or not data:
        return dict(data)
    definition = ctx.registry.entity(entity)
    on_record = {k: v for k, v in data.items() if definition.get_field(k) is not None}
    if on_record:
        try:
            update_bound(ctx, on_record)
        except ValidationFailed as exc:
            raise ValidationFailed(
                [FieldError(f"/data{e.pointer}", e.code, e.params) for e in exc.errors]
            ) from exc
        task.set_data(**record_data(ctx, entity, record_id))
    return {k: v for k, v in data.items() if k not in on_record}


def _reject(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    _done(row, ctx)
    ctx.history("reject", task_id=row.id, step=row.step, comment=comment)
    if routes_on_decision(task.task_spec):
        # The process has its own path for a rejection (an end event, a rework loop).
        task.set_data(**{DECISION: "reject", "comment": comment})
        task.run()
        return
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
    to = _candidate(service, row, data)
    task.internal_data["assignee"] = to
    ctx.history("delegate", task_id=row.id, step=row.step, comment=comment, details={"to": to})


def _add_signer(service, workflow, ctx, row, task, comment, data) -> None:  # type: ignore[no-untyped-def]
    to = _candidate(service, row, data)
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


def _candidate(service: WorkflowService, row: TaskRow, data: Mapping[str, Any]) -> int:
    """Return the user a task is handed to: one who could hold it (see tasks.candidates)."""
    to = data.get("to")
    if to is None or to == "":
        raise ValidationFailed([FieldError("/data/to", "pick_user")])
    if not isinstance(to, int) or isinstance(to, bool):
        raise ValidationFailed([FieldError("/data/to", "type", {"expected": "integer"})])
    allowed = {user_id for user_id, _name in candidates(service.session, row)}
    if to not in allowed:
        raise ValidationFailed([FieldError("/data/to", "not_a_candidate")])
    return to


def _record_fields(ctx: StepContext) -> frozenset[str]:
    if ctx.registry is None or ctx.instance.entity not in ctx.registry.entities:
        return frozenset()
    return frozenset(ctx.registry.entity(str(ctx.instance.entity)).field_map)


def _validate_form(
    task: Any, data: Mapping[str, Any], record_fields: frozenset[str]
) -> dict[str, Any]:
    """Return the approve data if it fits the task's form: its declared fields only. A field
    of the bound record is checked by its field type when it is written (money as text)."""
    schema = form_schema(task)
    declared = set(schema.get("properties") or ())
    errors = [
        FieldError(f"/data/{key}", "not_in_form", {"name": key})
        for key in sorted(data)
        if key not in declared or key == "comment"
    ]
    errors += [
        FieldError(f"/data/{name}", "required")
        for name in schema.get("required") or ()
        if data.get(name) in (None, "")
    ]
    process = {k: v for k, v in data.items() if k not in record_fields}
    validator = jsonschema.Draft202012Validator(schema)
    errors += [
        FieldError(
            "/data" + "".join(f"/{p}" for p in e.absolute_path), "schema", {"detail": e.message}
        )
        for e in validator.iter_errors(_plain(process))
        if (not e.absolute_path and e.validator != "required")
        or (e.absolute_path and str(e.absolute_path[0]) in declared)
    ]
    if errors:
        raise ValidationFailed(errors)
    return dict(data)


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
    return {"data": to_json(dict(data))} if data else {}
