"""Timers: when an instance's next timer is due, and claiming the due ones for the worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from sqlalchemy.orm import Session

from formwork.runtime.workflow.models import ProcessInstance
from formwork.runtime.workflow.spiff import step_zone, waiting_tasks


def next_timer(workflow: BpmnWorkflow, zone: str | None = None) -> dt.datetime | None:
    """Return the earliest due time of the workflow's waiting timers (None: no timer),
    those inside subprocesses and event subprocesses included; a date without an offset
    is in `zone` (the company's)."""
    with step_zone(zone):
        return _earliest(workflow)


def _earliest(workflow: BpmnWorkflow) -> dt.datetime | None:
    due: list[dt.datetime] = []
    for task in waiting_tasks(workflow):
        if not _has_timer(getattr(task.task_spec, "event_definition", None)):
            continue
        value: Any = task.internal_data.get("event_value")
        if isinstance(value, dict):
            value = value.get("next")
        if isinstance(value, str):
            try:
                due.append(TimerEventDefinition.get_datetime(value))
            except ValueError:
                continue
    return min(due) if due else None


def _has_timer(definition: Any) -> bool:
    inner = getattr(definition, "event_definitions", None) or [definition]
    return any(isinstance(d, TimerEventDefinition) for d in inner)


def due_condition(now: dt.datetime) -> Any:
    """Return the SQL condition of an instance whose timer the worker should fire now:
    running, due, and either healthy or past the back-off of a failed timer step."""
    return sa.and_(
        ProcessInstance.status == "running",
        ProcessInstance.timer_due_at <= now,
        sa.or_(ProcessInstance.error.is_(None), ProcessInstance.next_try_at <= now),
    )


def claim_due(session: Session, now: dt.datetime, exclude: Collection[int] = ()) -> int | None:
    """Claim the next instance whose timer is due, for the rest of this transaction.

    On PostgreSQL the row stays locked (`FOR UPDATE SKIP LOCKED`) until the caller commits
    the step it runs, so another worker skips it and no timer fires twice. SQLite runs
    one worker (its write transactions are serialised anyway).
    """
    query = sa.select(ProcessInstance.id).where(due_condition(now))
    if exclude:
        query = query.where(ProcessInstance.id.not_in(list(exclude)))
    query = query.order_by(ProcessInstance.timer_due_at, ProcessInstance.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = session.scalar(query)
    return int(found) if found is not None else None


def due_instances(session: Any, now: dt.datetime, limit: int) -> list[int]:
    """Return up to `limit` instances whose timer is due (locked, SKIP LOCKED, on
    PostgreSQL until the caller's transaction ends)."""
    query = (
        sa.select(ProcessInstance.id)
        .where(due_condition(now))
        .order_by(ProcessInstance.timer_due_at, ProcessInstance.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [int(i) for i in session.scalars(query).all()]
