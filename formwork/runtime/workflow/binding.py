"""Processes bound to records: record data in (at the start and before every step), the
lifecycle state out, and record writes as the process principal.

The services that service tasks call are in `services.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.records import RecordService
from formwork.runtime.workflow.context import StepContext
from formwork.runtime.workflow.guard import process_changes
from formwork.runtime.workflow.lifecycle import move
from formwork.runtime.writing import read_row

_SYSTEM = ("created_at", "updated_at", "created_by", "updated_by")


def record_data(ctx: StepContext, entity: str, record_id: int) -> dict[str, Any]:
    """Return a record's stored values (Python values) as the process's starting data."""
    meta = _registry(ctx).meta(entity)
    values = read_row(ctx.session, meta, record_id)
    data = {k: v for k, v in values.items() if k not in _SYSTEM and not k.startswith("_")}
    data["record_id"] = record_id
    data["entity"] = entity
    return data


def set_record_state(ctx: StepContext, state: str) -> None:
    """Move the bound record to a lifecycle state, and show it in its state field."""
    entity, record_id = ctx.instance.entity, ctx.instance.record_id
    if entity is None or record_id is None:
        return
    move(
        ctx.session, entity, record_id, state,
        now=ctx.now, user_id=ctx.actor.user_id, instance_id=ctx.instance.id,
    )  # fmt: skip
    field_name = (ctx.binding or {}).get("state_field")
    if field_name:
        update_bound(ctx, {field_name: state})


def refresh_record(ctx: StepContext, workflow: BpmnWorkflow) -> None:
    """Put the bound record's current values into the data of every open task, so what a
    later step decides or posts comes from the record, not from what someone typed."""
    entity, record_id = ctx.instance.entity, ctx.instance.record_id
    if entity is None or record_id is None or ctx.registry is None:
        return
    if entity not in ctx.registry.entities:
        return
    values = record_data(ctx, entity, record_id)
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING | TaskState.STARTED):
        task.data.update(values)


def _registry(ctx: StepContext) -> Any:
    if ctx.registry is None:
        raise NotFound("no entity definitions are loaded")
    return ctx.registry


def update_bound(ctx: StepContext, values: Mapping[str, Any]) -> dict[str, Any]:
    """Change fields of the bound record as the process (validated, versioned, audited)."""
    entity, record_id = ctx.instance.entity, ctx.instance.record_id
    if entity is None or record_id is None:
        raise ValidationFailed([FieldError("/", "invalid", {"detail": "no bound record"})])
    registry = _registry(ctx)
    table = registry.meta(entity).table
    version = ctx.session.scalar(sa.select(table.c.version).where(table.c.id == record_id))
    if version is None:
        raise NotFound(f"{entity} {record_id} no longer exists")
    with process_changes(ctx.session):
        return records(ctx).update(entity, record_id, _json(dict(values)), version)


def records(ctx: StepContext) -> RecordService:
    """Return the records service of the process principal, on the step's clock."""
    return RecordService(
        ctx.session, _registry(ctx), ctx.workflow_principal(), ctx.events, ctx.clock
    )


def _json(value: Any) -> Any:
    """Return process values as the JSON the records API takes (exact decimals as text)."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


to_json = _json
