"""Timers: when an instance's next timer is due, and firing the due ones from the worker."""

from __future__ import annotations

import datetime as dt
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition


def next_timer(workflow: BpmnWorkflow) -> dt.datetime | None:
    """Return the earliest due time of the workflow's waiting timers (None: no timer)."""
    due: list[dt.datetime] = []
    for task in list(workflow.event_manager.tasks.values()):
        definition = getattr(task.task_spec, "event_definition", None)
        if not isinstance(definition, TimerEventDefinition):
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


def due_instances(session: Any, now: dt.datetime, limit: int) -> list[int]:
    """Claim up to `limit` running instances whose timer is due (SKIP LOCKED on PostgreSQL)."""
    import sqlalchemy as sa

    from formwork.runtime.workflow.models import ProcessInstance

    query = (
        sa.select(ProcessInstance.id)
        .where(
            ProcessInstance.status == "running",
            ProcessInstance.timer_due_at <= now,
            ProcessInstance.error.is_(None),
        )
        .order_by(ProcessInstance.timer_due_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [int(i) for i in session.scalars(query).all()]
