"""The task projection: every ready user task as a row, so an inbox is one indexed query."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from formwork.runtime.errors import BadQuery, FieldError, NotFound, PermissionDenied
from formwork.runtime.models import User
from formwork.runtime.security import Principal
from formwork.runtime.workflow.models import ProcessInstance, TaskRow
from formwork.runtime.workflow.spiff import find_task

APPROVAL_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {"comment": {"type": "string", "maxLength": 2000}},
}


def ready_tasks(workflow: BpmnWorkflow) -> list[Any]:
    """Return the ready user tasks of a workflow."""
    return list(workflow.get_tasks(state=TaskState.READY, manual=True))


def properties(task: Any) -> dict[str, str]:
    """Return the spiff extension properties of a task's spec."""
    extensions = getattr(task.task_spec, "extensions", None) or {}
    return dict(extensions.get("properties") or {})


def assign(session: Session, workflow: BpmnWorkflow, now: dt.datetime) -> None:
    """Fix assignee and due time of newly ready tasks (kept in the task's state)."""
    for task in ready_tasks(workflow):
        if task.internal_data.get("fw_assigned"):
            continue
        props = properties(task)
        task.internal_data["fw_assigned"] = True
        if props.get("assignee"):
            value = workflow.script_engine.evaluate(task, props["assignee"])
            task.internal_data["assignee"] = _user_id(session, value)
        if props.get("due"):
            duration = workflow.script_engine.evaluate(task, props["due"])
            parsed = TimerEventDefinition.parse_iso_duration(str(duration))
            delta = TimerEventDefinition.get_timedelta_from_start(parsed, now)
            task.internal_data["due_at"] = (now + delta).isoformat()


def _user_id(session: Session, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        found = session.scalar(sa.select(User.id).where(User.username == value))
        if found is None:
            raise ValueError(f"the assignee '{value}' is not a user")
        return int(found)
    raise ValueError(f"an assignee must be a user id or a user name, not {value!r}")


def project(
    session: Session,
    instance: ProcessInstance,
    workflow: BpmnWorkflow,
    lanes: Mapping[str, str],
    now: dt.datetime,
) -> None:
    """Bring the instance's task rows in line with its ready user tasks."""
    ready = {str(task.id): task for task in ready_tasks(workflow)}
    rows = session.scalars(
        sa.select(TaskRow).where(TaskRow.instance_id == instance.id, TaskRow.status == "ready")
    ).all()
    for row in rows:
        task = ready.pop(row.id, None)
        if task is None:
            _close(row, workflow, now)
        else:
            row.assignee_id = task.internal_data.get("assignee")
    if not ready:
        return
    # A task returned to (退回) or reset by a migration keeps its id and has a closed row.
    known = set(session.scalars(sa.select(TaskRow.id).where(TaskRow.id.in_(list(ready)))))
    for task_id, task in ready.items():
        fresh = _row(task_id, task, instance, lanes, now)
        if task_id in known:  # returned to (退回): the same task is ready again
            fresh.done_at = fresh.done_by = None
            session.merge(fresh)
        else:
            session.add(fresh)


def _close(row: TaskRow, workflow: BpmnWorkflow, now: dt.datetime) -> None:
    task = find_task(workflow, row.id)  # in a subprocess too
    row.status = (
        "completed" if task is not None and task.state == TaskState.COMPLETED else "cancelled"
    )
    row.done_at = row.done_at or now


def _row(
    task_id: str, task: Any, instance: ProcessInstance, lanes: Mapping[str, str], now: dt.datetime
) -> TaskRow:
    lane = getattr(task.task_spec, "lane", None)
    due = task.internal_data.get("due_at")
    return TaskRow(
        id=task_id,
        instance_id=instance.id,
        process_key=instance.process_key,
        step=step_name(task),
        name=(task.task_spec.bpmn_name or task.task_spec.name)[:255],
        lane=lane,
        role=lanes.get(lane, lane) if lane else None,
        assignee_id=task.internal_data.get("assignee"),
        entity=instance.entity,
        record_id=instance.record_id,
        title=instance.title,
        status="ready",
        created_at=now,
        due_at=dt.datetime.fromisoformat(due) if due else None,
    )


def step_name(task: Any) -> str:
    """Return the BPMN id of a task's step (a multi-instance child shares its parent's)."""
    return str(getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name)


def may_act(principal: Principal, row: TaskRow) -> bool:
    """Return True when the principal may act on the task."""
    if principal.is_admin:
        return True
    if row.assignee_id is not None:
        return row.assignee_id == principal.user_id
    return row.role is not None and row.role in principal.roles


def require_actor(principal: Principal, row: TaskRow) -> None:
    """Raise PermissionDenied unless the principal may act on the task."""
    if not may_act(principal, row):
        raise PermissionDenied(f"'{principal.username}' is not assigned task {row.id}")


# --- the inbox ---------------------------------------------------------------------------------

FILTERS = (
    "process",
    "step",
    "entity",
    "record_id",
    "overdue",
    "status",
    "scope",
    "page",
    "per_page",
)


def inbox(
    session: Session, principal: Principal, params: Mapping[str, str], now: dt.datetime
) -> list[dict[str, Any]]:
    """Return the principal's tasks (scope=all: everyone's, for admins), newest first.

    "Mine" is a few index range scans (assigned to me; unassigned in each of my roles), each
    already ordered and limited, merged here: fast where one OR query makes the database
    scan and sort.
    """
    unknown = set(params) - set(FILTERS)
    if unknown:
        raise BadQuery(
            [FieldError(n, "bad_query", {"detail": "unknown filter"}) for n in sorted(unknown)]
        )
    per_page = min(_int(params, "per_page", 50), 200)
    page = max(_int(params, "page", 1), 1)
    base = _filters(params, now)
    if params.get("scope") == "all":
        if not principal.is_admin:
            raise PermissionDenied("only administrators see every task")
        parts = [base]
    else:
        parts = [[*base, TaskRow.assignee_id == principal.user_id]]
        for role in sorted(principal.roles):  # one ordered index range per role
            parts.append([*base, TaskRow.role == role, TaskRow.assignee_id.is_(None)])
    wanted = page * per_page
    rows: list[TaskRow] = []
    for conditions in parts:
        query = sa.select(TaskRow).where(*conditions)
        query = query.order_by(TaskRow.created_at.desc(), TaskRow.id.desc()).limit(wanted)
        rows.extend(session.scalars(query))
    rows.sort(key=lambda r: (_aware(r.created_at), r.id), reverse=True)
    return [task_json(row, now) for row in rows[(page - 1) * per_page : wanted]]


def count_open_tasks(session: Session, who: Principal) -> int:
    """Return how many ready tasks the inbox shows the principal (assigned, or in a role)."""
    mine = TaskRow.assignee_id == who.user_id
    if who.roles:
        mine = sa.or_(mine, sa.and_(TaskRow.assignee_id.is_(None), TaskRow.role.in_(who.roles)))
    query = sa.select(sa.func.count()).select_from(TaskRow).where(TaskRow.status == "ready", mine)
    return int(session.scalar(query) or 0)


def _filters(params: Mapping[str, str], now: dt.datetime) -> list[Any]:
    conditions: list[Any] = [TaskRow.status == params.get("status", "ready")]
    columns = (
        ("process", TaskRow.process_key), ("step", TaskRow.step), ("entity", TaskRow.entity),
    )  # fmt: skip
    for name, column in columns:
        if params.get(name):
            conditions.append(column == params[name])
    if params.get("record_id"):
        conditions.append(TaskRow.record_id == _int(params, "record_id"))
    if params.get("overdue") in ("1", "true"):
        conditions.append(TaskRow.due_at < now)
    return conditions


def _int(params: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None and default is not None:
        return default
    if raw is None or not str(raw).isdigit():
        raise BadQuery([FieldError(name, "bad_query", {"detail": "expected a positive integer"})])
    return int(raw)


def task_json(row: TaskRow, now: dt.datetime) -> dict[str, Any]:
    """Return a task row as the API shows it."""
    due = _aware(row.due_at)
    return {
        "id": row.id,
        "instance_id": row.instance_id,
        "process": row.process_key,
        "step": row.step,
        "name": row.name,
        "lane": row.lane,
        "role": row.role,
        "assignee_id": row.assignee_id,
        "entity": row.entity,
        "record_id": row.record_id,
        "title": row.title,
        "status": row.status,
        "created_at": _iso(row.created_at),
        "due_at": _iso(due),
        "overdue": bool(due is not None and row.status == "ready" and due < now),
        "done_at": _iso(row.done_at),
        "done_by": row.done_by,
    }


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _iso(value: dt.datetime | None) -> str | None:
    return _aware(value).isoformat() if value is not None else None  # type: ignore[union-attr]


def get_row(session: Session, task_id: str) -> TaskRow:
    """Return a task row or raise NotFound."""
    row = session.get(TaskRow, task_id) if len(task_id) <= 36 else None
    if row is None:
        raise NotFound(f"no task '{task_id}'")
    return row


def form_schema(task: Any) -> dict[str, Any]:
    """Return the JSON Schema of a task's form: its own `form` property or the approval form."""
    text = properties(task).get("form")
    schema = json.loads(text) if text else {"type": "object", "properties": {}}
    schema.setdefault("properties", {})
    return schema


def instance_rows(session: Session, ids: Iterable[int]) -> list[TaskRow]:
    """Return the ready task rows of the given instances."""
    return list(
        session.scalars(
            sa.select(TaskRow).where(TaskRow.instance_id.in_(list(ids)), TaskRow.status == "ready")
        )
    )
