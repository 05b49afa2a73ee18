"""What the API and pages show: tasks with form and record, instances with history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import (
    BadQuery,
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
)
from formwork.runtime.records import RecordService
from formwork.runtime.security import redact
from formwork.runtime.workflow.binding import to_json
from formwork.runtime.workflow.models import (
    HistoryEntry,
    ProcessDefinition,
    ProcessInstance,
    TaskRow,
)
from formwork.runtime.workflow.service import WorkflowService
from formwork.runtime.workflow.spiff import find_task
from formwork.runtime.workflow.tasks import APPROVAL_FORM, form_schema, may_act, task_json

INSTANCE_FILTERS = ("process", "status", "entity", "record_id", "mine", "page", "per_page")


def task_detail(service: WorkflowService, row: TaskRow, records: RecordService) -> dict[str, Any]:
    """Return a task with its form, data, record, allowed actions and the instance history."""
    instance = service.session.get(ProcessInstance, row.instance_id)
    assert instance is not None
    if not (may_act(service.principal, row) or instance.started_by == service.principal.user_id):
        raise PermissionDenied(f"'{service.principal.username}' may not see task {row.id}")
    out = task_json(row, service.now)
    form = APPROVAL_FORM
    data: dict[str, Any] = {}
    if row.status == "ready":
        workflow = service.read(instance)
        task = find_task(workflow, row.id)  # in a subprocess too
        if task is not None:
            form = _merged_form(form_schema(task))
            data = to_json(dict(task.data))
    hidden = service.principal.hidden_fields(instance.entity) if instance.entity else frozenset()
    out["form"] = form
    out["data"] = redact(data, hidden)  # the process data holds the record's values too
    out["actions"] = _actions(service, row, instance)
    out["record"] = _record(records, instance, may_act(service.principal, row))
    out["history"] = history(service.session, instance.id)
    return out


def _merged_form(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "properties": {**schema.get("properties", {}), **APPROVAL_FORM["properties"]}}


def _actions(service: WorkflowService, row: TaskRow, instance: ProcessInstance) -> list[str]:
    if row.status != "ready":
        return []
    found = []
    if may_act(service.principal, row):
        found = ["approve", "reject", "return", "delegate", "add_signer", "comment"]
    if instance.started_by == service.principal.user_id or service.principal.is_admin:
        found.append("withdraw")
    return found


def _record(
    records: RecordService, instance: ProcessInstance, acting: bool
) -> dict[str, Any] | None:
    if instance.entity is None or instance.record_id is None:
        return None
    try:
        # The approver of a step sees the record they decide on even outside their row
        # rules (the process put it in front of them); their field rules still apply.
        return records.get(instance.entity, instance.record_id, for_task=acting)
    except (NotFound, PermissionDenied):
        return None


def history(session: Session, instance_id: int) -> list[dict[str, Any]]:
    """Return an instance's history, oldest first."""
    rows = session.scalars(
        sa.select(HistoryEntry)
        .where(HistoryEntry.instance_id == instance_id)
        .order_by(HistoryEntry.id)
    ).all()
    return [
        {
            "action": r.action, "step": r.step, "task_id": r.task_id, "comment": r.comment,
            "details": r.details, "user_id": r.user_id, "at": _iso(r.at),
        }
        for r in rows
    ]  # fmt: skip


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        import datetime as dt

        value = value.replace(tzinfo=dt.UTC)
    return str(value.isoformat())


def instance_json(
    service: WorkflowService,
    instance: ProcessInstance,
    *,
    with_tasks: bool = False,
    with_history: bool = False,
) -> dict[str, Any]:
    """Return an instance as the API shows it."""
    definition = service.definition(instance.definition_id)
    out: dict[str, Any] = {
        "id": instance.id,
        "process": instance.process_key,
        "version": definition.version if definition else None,
        "status": instance.status,
        "outcome": instance.outcome,
        "end_event": instance.end_event,
        "entity": instance.entity,
        "record_id": instance.record_id,
        "title": instance.title,
        "error": instance.error,
        "retry": bool(instance.error),
        "attempts": instance.attempts or 0,
        "next_try_at": _iso(instance.next_try_at),
        "started_by": instance.started_by,
        "started_at": _iso(instance.started_at),
        "updated_at": _iso(instance.updated_at),
        "ended_at": _iso(instance.ended_at),
        "timer_due_at": _iso(instance.timer_due_at),
    }
    if with_tasks:
        rows = service.session.scalars(
            sa.select(TaskRow).where(TaskRow.instance_id == instance.id, TaskRow.status == "ready")
        ).all()
        out["tasks"] = [task_json(r, service.now) for r in rows]
    if with_history:
        out["history"] = history(service.session, instance.id)
        out["completed_steps"] = sorted(
            set(
                service.session.scalars(
                    sa.select(TaskRow.step).where(
                        TaskRow.instance_id == instance.id, TaskRow.status == "completed"
                    )
                ).all()
            )
        )
    return out


def visible_instance(service: WorkflowService, instance_id: int) -> ProcessInstance:
    """Return an instance the principal may see (admin, submitter, or someone with a task)."""
    instance = service.session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"no process instance {instance_id}")
    principal = service.principal
    if principal.is_admin or instance.started_by == principal.user_id:
        return instance
    rows = service.session.scalars(
        sa.select(TaskRow).where(TaskRow.instance_id == instance_id)
    ).all()
    if any(r.done_by == principal.user_id or may_act(principal, r) for r in rows):
        return instance
    raise NotFound(f"no process instance {instance_id}")


def list_instances(service: WorkflowService, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """List instances (admins: all; others: the ones they started)."""
    unknown = set(params) - set(INSTANCE_FILTERS)
    if unknown:
        raise BadQuery(
            [FieldError(n, "bad_query", {"detail": "unknown filter"}) for n in sorted(unknown)]
        )
    query = sa.select(ProcessInstance)
    if not service.principal.is_admin or params.get("mine") in ("1", "true"):
        query = query.where(ProcessInstance.started_by == service.principal.user_id)
    for name, column in (
        ("process", ProcessInstance.process_key), ("status", ProcessInstance.status),
        ("entity", ProcessInstance.entity),
    ):  # fmt: skip
        if params.get(name):
            query = query.where(column == params[name])
    if params.get("record_id"):
        if not params["record_id"].isdigit():
            raise BadQuery(
                [FieldError("record_id", "bad_query", {"detail": "expected an integer"})]
            )
        query = query.where(ProcessInstance.record_id == int(params["record_id"]))
    page, per_page = _page(params)
    query = query.order_by(ProcessInstance.id.desc()).limit(per_page).offset((page - 1) * per_page)
    return [instance_json(service, row) for row in service.session.scalars(query)]


def _page(params: Mapping[str, str]) -> tuple[int, int]:
    values = []
    for name, default in (("page", 1), ("per_page", 50)):
        raw = params.get(name, str(default))
        if not raw.isdigit() or int(raw) < 1:
            raise BadQuery(
                [FieldError(name, "bad_query", {"detail": "expected a positive integer"})]
            )
        values.append(int(raw))
    return values[0], min(values[1], 200)


def retry(service: WorkflowService, instance_id: int) -> ProcessInstance:
    """Run a failed step again: the failed action, message or signal, or the engine (timers)."""
    from formwork.runtime.workflow.steps import retry_failed

    return retry_failed(service, instance_id)


def withdraw(service: WorkflowService, instance_id: int, comment: Any) -> ProcessInstance:
    """Withdraw through any of the instance's ready tasks (the submitter, before anyone acts)."""
    from formwork.runtime.workflow.actions import complete

    instance = visible_instance(service, instance_id)
    row = service.session.scalars(
        sa.select(TaskRow)
        .where(TaskRow.instance_id == instance.id, TaskRow.status == "ready")
        .limit(1)
    ).first()
    if row is None:
        raise Conflict(f"instance {instance_id} is {instance.status}; nothing to withdraw")
    return complete(service, row.id, "withdraw", comment)


def definition_json(row: ProcessDefinition) -> dict[str, Any]:
    """Return a definition's metadata, and its BPMN for a process viewer."""
    return {
        "id": row.id, "key": row.key, "version": row.version, "name": row.name,
        "hash": row.source_hash, "binding": row.binding, "deployed_at": _iso(row.deployed_at),
        "bpmn": row.bpmn,
    }  # fmt: skip


def list_definitions(session: Session) -> list[dict[str, Any]]:
    """Return every deployed version, newest first per process."""
    rows = session.scalars(
        sa.select(ProcessDefinition).order_by(
            ProcessDefinition.key, ProcessDefinition.version.desc()
        )
    ).all()
    return [{k: v for k, v in definition_json(r).items() if k != "bpmn"} for r in rows]
