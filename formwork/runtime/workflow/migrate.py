"""Move running instances to another version of their process, or say why not."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState

from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.workflow.models import ProcessDefinition, ProcessInstance, TaskRow
from formwork.runtime.workflow.service import WorkflowService

_OPEN = TaskState.READY | TaskState.WAITING | TaskState.STARTED
_DONE = TaskState.COMPLETED | TaskState.CANCELLED | TaskState.ERROR


def migrate(
    service: WorkflowService, instance_ids: Iterable[int], target: ProcessDefinition
) -> dict[str, Any]:
    """Migrate each instance that can move; report the moved ones and a reason for the rest."""
    moved: list[int] = []
    refused: dict[str, str] = {}
    for instance_id in instance_ids:
        reason = _migrate_one(service, instance_id, target)
        if reason is None:
            moved.append(instance_id)
        else:
            refused[str(instance_id)] = reason
    return {"migrated": moved, "refused": refused, "version": target.version}


def _migrate_one(
    service: WorkflowService, instance_id: int, target: ProcessDefinition
) -> str | None:
    try:
        with service.session.begin_nested():
            instance = service.lock(instance_id)
            return _move(service, instance, target)
    except NotFound as exc:
        return str(exc)


def _move(
    service: WorkflowService, instance: ProcessInstance, target: ProcessDefinition
) -> str | None:
    if instance.process_key != target.key:
        return f"instance {instance.id} runs '{instance.process_key}', not '{target.key}'"
    if instance.status != "running":
        return f"instance {instance.id} is {instance.status}"
    if instance.definition_id == target.id:
        return f"instance {instance.id} already runs version {target.version}"
    workflow = service.read(instance)
    parsed = service.runtime.specs.get(target)
    registry = service.runtime.serializer.registry
    top, subs = diff_workflow(registry, workflow, parsed.spec, parsed.subprocess_specs)
    missing = sorted(
        {
            t.task_spec.name
            for t, spec in top.alignment.items()
            if t.state & _OPEN and (spec is None or spec.name != t.task_spec.name)
        }
        | {t.task_spec.name for t in top.removed if t.state & _OPEN}
    )
    if missing:
        return f"current step(s) {', '.join(missing)} do not exist in version {target.version}"
    gone = sorted({t.task_spec.name for t in top.removed if t.state & _DONE})
    if gone:
        return f"step(s) {', '.join(gone)} of its history do not exist in version {target.version}"
    if any(diff is None for diff in subs.values()):
        return f"a running subprocess does not exist in version {target.version}"
    migrate_workflow(top, workflow, parsed.spec)
    for sub_id, diff in subs.items():
        sub = workflow.subprocesses[sub_id]
        migrate_workflow(diff, sub, parsed.subprocess_specs[sub.spec.name])
    workflow.subprocess_specs = dict(parsed.subprocess_specs)
    old_version = instance.definition_id
    instance.definition_id = target.id

    def record(_wf: Any, ctx: Any) -> None:
        ctx.history(
            "migrate", details={"from_definition": old_version, "to_version": target.version}
        )

    service.advance(instance, workflow, target, record)
    return None


def migrate_request(service: WorkflowService, body: Mapping[str, Any]) -> dict[str, Any]:
    """Check an API migration request and run it: explicit instances, or all at one step."""
    key, version = body.get("process"), body.get("to_version")
    if not isinstance(key, str) or not isinstance(version, int):
        raise ValidationFailed(
            [FieldError("/", "invalid", {"detail": "needs 'process' and 'to_version'"})]
        )
    target = service.session.scalar(
        sa.select(ProcessDefinition).where(
            ProcessDefinition.key == key, ProcessDefinition.version == version
        )
    )
    if target is None:
        raise NotFound(f"no version {version} of '{key}'")
    ids = body.get("instances")
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise ValidationFailed(
                [FieldError("/instances", "type", {"expected": "array of integers"})]
            )
    else:
        ids = instances_at(service, key, body.get("step"))
    return migrate(service, ids, target)


def instances_at(service: WorkflowService, key: str, step: Any) -> list[int]:
    """Return the running instances of a process (only those waiting at `step` when given)."""
    query = sa.select(ProcessInstance.id).where(
        ProcessInstance.process_key == key, ProcessInstance.status == "running"
    )
    if isinstance(step, str):
        waiting = sa.select(TaskRow.instance_id).where(
            TaskRow.status == "ready", TaskRow.step == step
        )
        query = query.where(ProcessInstance.id.in_(waiting))
    return [int(i) for i in service.session.scalars(query.order_by(ProcessInstance.id)).all()]
