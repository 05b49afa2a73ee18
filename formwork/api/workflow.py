"""Workflow endpoints: the task inbox, task detail and actions, process instances, messages
and signals, deploys. Every step runs under the kernel's one failure policy
(`workflow.steps.run_step`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import jsonify, request, url_for

from formwork import context
from formwork.api import bp
from formwork.api.context import json_body, record_service
from formwork.api.problems import problem
from formwork.auth import current_principal
from formwork.context import get_session, registry
from formwork.runtime.errors import (
    BadQuery,
    FieldError,
    PermissionDenied,
    ValidationFailed,
)
from formwork.runtime.security import Principal
from formwork.runtime.workflow import actions, messages, views
from formwork.runtime.workflow.context import StepFailed
from formwork.runtime.workflow.deploy import deploy
from formwork.runtime.workflow.errors import problem_fields
from formwork.runtime.workflow.instructions import task_instructions
from formwork.runtime.workflow.models import ProcessInstance
from formwork.runtime.workflow.notifications import mark_read, notifications_for
from formwork.runtime.workflow.service import WorkflowService
from formwork.runtime.workflow.steps import retry_failed, run_step
from formwork.runtime.workflow.tasks import get_row, inbox

MAX_QUERY_INT = 2**31 - 1  # an INTEGER column; ids are BIGINT
INT_ARGS = {"page": MAX_QUERY_INT, "per_page": MAX_QUERY_INT, "record_id": 2**63 - 1}


def _principal() -> Principal:
    principal = current_principal()
    assert principal is not None  # the API's before_request refused anonymous calls
    return principal


def workflow_service() -> WorkflowService:
    """Return a workflow service for the request's principal."""
    return context.workflow_service(_principal())


def _body() -> dict[str, Any]:
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("/", "not_object")])
    return body


def _committed(
    service: WorkflowService, run: Callable[[], ProcessInstance], retry: dict[str, Any]
) -> ProcessInstance:
    """Run a step under the one failure policy: commit it, or keep nothing of it and show
    the error (with what a retry runs again) on the instance."""
    return run_step(service.session, run, retry, instance_id=retry.get("instance_id"))


@bp.errorhandler(StepFailed)
def _step_failed(exc: StepFailed) -> Any:
    """Answer a failed step with a 422 problem naming the instance, step, element and cause."""
    from formwork.api import locale

    return problem(exc.status, exc.title, str(exc), exc.kind, None, locale(), **problem_fields(exc))


def _now() -> dt.datetime:
    return context.clock().now()


def _query_args() -> dict[str, str]:
    """Return the query string, refusing integers no column holds (a 500 from the driver)."""
    args = request.args.to_dict()
    bad = [
        FieldError(name, "bad_query", {"detail": f"expected an integer from 0 to {limit}"})
        for name, limit in INT_ARGS.items()
        # ASCII digits only: '²'.isdigit() is true, yet int('²') raises.
        if args.get(name)
        and not (args[name].isascii() and args[name].isdigit() and int(args[name]) <= limit)
    ]
    if bad:
        raise BadQuery(bad)
    return args


@bp.get("/tasks")
def tasks_view() -> Any:
    """List my ready tasks: `process`, `step`, `entity`, `record_id`, `overdue=1`, `scope=all`."""
    items = inbox(get_session(), _principal(), _query_args(), _now())
    return jsonify(items=items)


@bp.get("/notifications")
def notifications_view() -> Any:
    """List the reminders processes left for me or my roles (`all=1`: read ones too)."""
    unread = request.args.get("all") not in ("1", "true")
    return jsonify(items=notifications_for(get_session(), _principal(), unread_only=unread))


@bp.post("/notifications/<int(max=9223372036854775807):notification_id>/read")
def notification_read_view(notification_id: int) -> Any:
    """Mark a reminder read."""
    session = get_session()
    mark_read(session, _principal(), notification_id, _now())
    session.commit()
    return "", 204


@bp.get("/tasks/<task_id>")
def task_view(task_id: str) -> Any:
    """Return a task with its form (JSON Schema), its record, actions and the history."""
    service = workflow_service()
    row = get_row(service.session, task_id)
    detail = views.task_detail(service, row, record_service())
    detail["instructions"] = task_instructions(service, row)
    return jsonify(detail)


@bp.post("/tasks/<task_id>/complete")
def complete_view(task_id: str) -> Any:
    """Act on a task: {"action": approve|reject|return|delegate|add_signer|withdraw|comment}."""
    body = _body()
    service = workflow_service()
    row = get_row(service.session, task_id)
    retry = {"instance_id": row.instance_id, "task_id": task_id, **_jsonable(body)}
    instance = _committed(
        service,
        lambda: actions.complete(
            service, task_id, body.get("action"), body.get("comment"), body.get("data")
        ),
        retry,
    )
    return jsonify(views.instance_json(service, instance, with_tasks=True))


@bp.get("/processes")
def processes_view() -> Any:
    """List process instances: `process`, `status`, `entity`, `record_id`, `mine=1`."""
    service = workflow_service()
    return jsonify(items=views.list_instances(service, _query_args()))


@bp.post("/processes")
def start_view() -> Any:
    """Start a process: {"entity", "record_id"} submits a record; {"process", "data"} starts one."""
    body = _body()
    service = workflow_service()
    if body.get("entity") is not None:
        record_id = body.get("record_id")
        if not isinstance(record_id, int) or isinstance(record_id, bool):
            raise ValidationFailed([FieldError("/record_id", "type", {"expected": "integer"})])
        run = lambda: service.submit(str(body["entity"]), record_id)  # noqa: E731
    elif isinstance(body.get("process"), str):
        if not service.principal.is_admin:
            raise PermissionDenied("only administrators start unbound processes directly")
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise ValidationFailed([FieldError("/data", "not_object")])
        run = lambda: service.start(body["process"], data)  # noqa: E731
    else:
        raise ValidationFailed([FieldError("/entity", "required")])
    instance = _committed(service, run, {})
    location = url_for("api.process_view", instance_id=instance.id)
    return (
        jsonify(views.instance_json(service, instance, with_tasks=True)),
        201,
        {"Location": location},
    )


@bp.get("/processes/<int(max=9223372036854775807):instance_id>")
def process_view(instance_id: int) -> Any:
    """Return an instance: status, error, ready tasks, history and the BPMN for a viewer."""
    service = workflow_service()
    instance = views.visible_instance(service, instance_id)
    return jsonify(views.instance_json(service, instance, with_tasks=True, with_history=True))


@bp.post("/processes/<int(max=9223372036854775807):instance_id>/retry")
def retry_view(instance_id: int) -> Any:
    """Run a failed step again (admins)."""
    service = workflow_service()
    if not service.principal.is_admin:
        raise PermissionDenied("only administrators retry failed steps")
    instance = _committed(
        service, lambda: retry_failed(service, instance_id), {"instance_id": instance_id}
    )
    return jsonify(views.instance_json(service, instance, with_tasks=True))


@bp.post("/processes/<int(max=9223372036854775807):instance_id>/withdraw")
def withdraw_view(instance_id: int) -> Any:
    """Withdraw a request while no approver has acted (the submitter)."""
    body = _body() if request.content_length else {}
    service = workflow_service()
    instance = _committed(
        service, lambda: views.withdraw(service, instance_id, body.get("comment")), {}
    )
    return jsonify(views.instance_json(service, instance, with_tasks=True))


@bp.post("/processes/migrate")
def migrate_view() -> Any:
    """Move running instances to another version: {"process", "to_version", "instances"|"step"}."""
    from formwork.runtime.workflow.migrate import migrate_request

    service = workflow_service()
    if not service.principal.is_admin:
        raise PermissionDenied("only administrators migrate instances")
    body = _body()
    version = body.get("to_version")
    if isinstance(version, int) and not 1 <= version <= MAX_QUERY_INT:  # an INTEGER column
        raise ValidationFailed(
            [FieldError("/to_version", "invalid", {"detail": "no such version"})]
        )
    result = migrate_request(service, body)
    service.session.commit()
    return jsonify(result)


@bp.post("/process-definitions")
def deploy_view() -> Any:
    """Deploy a process: {"bpmn": xml, "dmn": [xml…], "binding": {...}} (admins)."""
    if not _principal().is_admin:  # before looking at the body: a refusal says nothing more
        raise PermissionDenied("deploying processes is for administrators")
    body = _body()
    if not isinstance(body.get("bpmn"), str):
        raise ValidationFailed([FieldError("/bpmn", "required")])
    dmn = body.get("dmn") or []
    if not isinstance(dmn, list) or not all(isinstance(d, str) for d in dmn):
        raise ValidationFailed([FieldError("/dmn", "type", {"expected": "array of strings"})])
    library, forms = _called(body.get("called")), _forms(body.get("forms"))
    session = get_session()
    row, created = deploy(
        session, body["bpmn"], dmn, principal=_principal(), binding=body.get("binding"),
        entities=list(registry().entities), library=library, forms=forms,
    )  # fmt: skip
    session.commit()
    context.kernel().definitions_changed()
    return jsonify(views.definition_json(row)), 201 if created else 200


def _called(value: Any) -> dict[str, str]:
    """Return the BPMN documents a deploy request gives for its call activities, by name."""
    if value is None:
        return {}
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise ValidationFailed([FieldError("/called", "type", {"expected": "array of strings"})])
    return {f"called[{i}]": text for i, text in enumerate(value)}


def _forms(value: Any) -> dict[str, Any]:
    """Return the form schemas a deploy request gives, by the file name the BPMN uses."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        detail = "an object of form file name to JSON Schema"
        raise ValidationFailed([FieldError("/forms", "invalid", {"detail": detail})])
    return dict(value)


@bp.post("/messages")
def messages_view() -> Any:
    """Deliver a message: {"name", "correlation": {...}, "payload": {...}} to the one process
    waiting for it (administrators, or a role the process binding lists under `senders`)."""
    body = _body()
    service = workflow_service()
    name, correlation, payload = messages.check_request(
        body.get("name"), body.get("correlation"), body.get("payload")
    )
    instance = messages.deliver_message(service, name, correlation, payload)
    return jsonify(views.instance_json(service, instance, with_tasks=True))


@bp.post("/signals")
def signals_view() -> Any:
    """Send a signal: {"name", "payload": {...}} to every process waiting for it that the
    caller may reach; each receives it in its own step."""
    body = _body()
    service = workflow_service()
    return jsonify(messages.broadcast_signal(service, body.get("name"), body.get("payload")))


@bp.get("/process-definitions")
def definitions_view() -> Any:
    """List deployed process versions."""
    return jsonify(items=views.list_definitions(get_session()))


def _jsonable(body: dict[str, Any]) -> dict[str, Any]:
    from formwork.runtime.workflow.binding import to_json

    return {k: to_json(v) for k, v in body.items() if k in ("action", "comment", "data")}
