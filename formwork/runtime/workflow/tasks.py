"""The task projection: every ready user task as a row, so an inbox is one indexed query."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from formwork.runtime.errors import BadQuery, FieldError, NotFound, PermissionDenied
from formwork.runtime.models import RolePermission, User, UserRole
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
            row.excluded_id = task.internal_data.get("excluded")
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
    role = task.internal_data.get("role") or (lanes.get(lane, lane) if lane else None)
    return TaskRow(
        id=task_id,
        instance_id=instance.id,
        process_key=instance.process_key,
        step=step_name(task),
        name=(task.task_spec.bpmn_name or task.task_spec.name)[:255],
        lane=lane,
        role=role,
        assignee_id=task.internal_data.get("assignee"),
        excluded_id=task.internal_data.get("excluded"),
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
    """Return True when the principal may act on the task: its assignee, or one of its role
    when it has none (administrators on any task) — never the submitter it excludes."""
    if row.excluded_id is not None and row.excluded_id == principal.user_id:
        return False
    if principal.is_admin:
        return True
    if row.assignee_id is not None:
        return row.assignee_id == principal.user_id
    return row.role is not None and row.role in principal.roles


def require_actor(principal: Principal, row: TaskRow) -> None:
    """Raise PermissionDenied unless the principal may act on the task."""
    if not may_act(principal, row):
        own = row.excluded_id is not None and row.excluded_id == principal.user_id
        raise PermissionDenied(f"'{principal.username}' is not assigned task {row.id}").coded(
            "own_request" if own else "not_your_task"
        )


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
            parts.append(
                [*base, TaskRow.role == role, TaskRow.assignee_id.is_(None), _not_own(principal)]
            )
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
        open_to_role = sa.and_(
            TaskRow.assignee_id.is_(None), TaskRow.role.in_(who.roles), _not_own(who)
        )
        mine = sa.or_(mine, open_to_role)
    query = sa.select(sa.func.count()).select_from(TaskRow).where(TaskRow.status == "ready", mine)
    return int(session.scalar(query) or 0)


def _not_own(who: Principal) -> Any:
    """A task open to a role is not offered to the submitter it excludes."""
    return sa.or_(TaskRow.excluded_id.is_(None), TaskRow.excluded_id != who.user_id)


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
        "excluded_id": row.excluded_id,
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
    """Return the JSON Schema of a task's form (its `form` property; empty without one)."""
    return spec_form(task.task_spec)


def spec_form(task_spec: Any) -> dict[str, Any]:
    """Return the JSON Schema of the form a task spec declares (empty without one)."""
    extensions = getattr(task_spec, "extensions", None) or {}
    text = (extensions.get("properties") or {}).get("form")
    schema = json.loads(text) if text else {"type": "object", "properties": {}}
    schema.setdefault("properties", {})
    return schema


def candidates(session: Session, row: TaskRow, limit: int = 500) -> list[tuple[int, str]]:
    """Return (id, name) of the active users who could hold a task: the members of its role
    (without one, of the roles that may read its record), never the submitter it excludes
    nor its current holder. Administrators are offered only through such a role."""
    query = sa.select(User.id, User.display_name, User.username).where(User.is_active.is_(True))
    if row.role:
        roles: Any = sa.select(UserRole.user_id).where(UserRole.role == row.role)
    else:
        readers = sa.select(RolePermission.role).where(
            RolePermission.entity.in_([row.entity or "", "*"]), RolePermission.action == "read"
        )
        roles = sa.select(UserRole.user_id).where(UserRole.role.in_(readers))
    query = query.where(User.id.in_(roles))
    for other in (row.excluded_id, row.assignee_id):
        if other is not None:
            query = query.where(User.id != other)
    rows = session.execute(query.order_by(User.username).limit(limit))
    return [(int(r[0]), str(r[1] or r[2])) for r in rows]


def instance_rows(session: Session, ids: Iterable[int]) -> list[TaskRow]:
    """Return the ready task rows of the given instances."""
    return list(
        session.scalars(
            sa.select(TaskRow).where(TaskRow.instance_id.in_(list(ids)), TaskRow.status == "ready")
        )
    )
