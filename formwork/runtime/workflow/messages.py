"""Messages and signals: who waits for them, and delivering them.

Every message or signal catch event an instance waits at (intermediate and boundary
events, receive tasks, event-based gateways, and the start events of event subprocesses
that start on a message or signal) is projected into `fw_wf_waits` at each step, with the
values its correlation properties take in the instance. A delivery finds its receivers
with one indexed query, never by reading every instance's state.

- A message goes to exactly one instance: the one whose waiting event has the message's
  name and exactly the correlation given (`instance_id` may name the instance). Its
  correlation values are handed to the process with the payload.
- A signal goes to every instance waiting for it.
- People send through the API (administrators, or a role the process binding lists under
  `senders`); processes send with the `send_message` / `send_signal` service tasks or a
  message/signal throw event, to processes of their own pack, through a background job
  that exists only if the sending step commits.

Each delivery is one step of the receiving instance, run with the one failure policy
(`steps.run_step`). Payloads are checked like task data, and against the catch event's
form when it declares one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import jsonschema
import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from sqlalchemy.orm import Session

from formwork.runtime.errors import (
    Conflict,
    FieldError,
    NotFound,
    ValidationFailed,
)
from formwork.runtime.expressions import ExpressionError, evaluate
from formwork.runtime.workflow.binding import to_json
from formwork.runtime.workflow.context import StepContext, StepFailed
from formwork.runtime.workflow.jobs import enqueue
from formwork.runtime.workflow.models import ProcessDefinition, ProcessInstance, WaitingEvent
from formwork.runtime.workflow.spiff import deliver, scopes, trigger, triggers, waiting_tasks
from formwork.runtime.workflow.steps import run_step

KINDS = {"message": MessageEventDefinition, "signal": SignalEventDefinition}
JOB_KINDS = {"message": "workflow.message", "signal": "workflow.signal"}
MAX_NAME = 255


@dataclass(frozen=True)
class Sender:
    """Who sends: a person (checked against the binding's `senders`) or a process of a pack
    (None: a process deployed by hand, which may reach any)."""

    process: bool = False
    pack: str | None = None


PERSON = Sender()


@dataclass
class Wait:
    """One event an instance waits for: a waiting task, or an event subprocess's start."""

    id: str
    step: str
    kind: str
    name: str
    definition: Any
    correlation: dict[str, Any] = field(default_factory=dict)
    task: Any = None
    start: tuple[Any, str, Any] | None = None  # (scope, event subprocess, start event spec)

    def receiver(self) -> Any:
        """Return the task that takes the event (starting the event subprocess if needed)."""
        return self.task if self.task is not None else trigger(*self.start)  # type: ignore[misc]

    @property
    def spec(self) -> Any:
        """Return the catch event's spec."""
        return self.task.task_spec if self.task is not None else self.start[2]  # type: ignore[index]


# --- who waits ----------------------------------------------------------------------------------


def _kind(definition: Any) -> str | None:
    for kind, cls in KINDS.items():
        if isinstance(definition, cls):
            return kind
    return None


def _definitions(definition: Any) -> list[Any]:
    inner = getattr(definition, "event_definitions", None)
    return list(inner) if inner else [definition]


def waits(workflow: Any) -> list[Wait]:
    """Return every message and signal event the workflow waits for."""
    found = []
    for task in waiting_tasks(workflow):
        for definition in _definitions(task.task_spec.event_definition):
            kind = _kind(definition)
            if kind is not None:
                data = task.data
                found.append(_wait(str(task.id), task.task_spec, kind, definition, data, task))
    for scope in scopes(workflow):
        for sp_name, start in triggers(scope):
            kind = _kind(start.event_definition)
            if kind is None:
                continue
            wait_id = str(uuid5(_namespace(scope), f"{sp_name}/{start.name}"))
            data = (scope.last_task or scope.task_tree).data
            wait = _wait(wait_id, start, kind, start.event_definition, data, None)
            wait.start = (scope, sp_name, start)
            found.append(wait)
    return found


def _namespace(scope: Any) -> UUID:
    return uuid5(NAMESPACE_URL, f"formwork-wait:{scope.task_tree.id}")


def _wait(
    wait_id: str, spec: Any, kind: str, definition: Any, data: Mapping[str, Any], task: Any
) -> Wait:
    step = str(getattr(spec, "bpmn_id", None) or spec.name)
    wait = Wait(wait_id, step, kind, str(definition.name or ""), definition, task=task)
    if kind == "message":
        wait.correlation = _instance_correlation(step, definition, data)
    return wait


def _instance_correlation(step: str, definition: Any, data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the values the message's correlation properties take in the process data."""
    props = [*getattr(definition, "correlation_properties", ()), *getattr(
        definition, "process_correlations", ()
    )]  # fmt: skip
    values: dict[str, Any] = {}
    for prop in props:
        try:
            values[prop.name] = evaluate(prop.retrieval_expression, data)
        except ExpressionError as exc:
            raise StepFailed(
                f"step '{step}': message '{definition.name}' waits for correlation "
                f"'{prop.name}', which the process data cannot give: {exc}",
                step=step, element=step, cause=str(exc), code="correlation",
            ) from None  # fmt: skip
    return values


def canonical(value: Any) -> Any:
    """Return a correlation value as it is compared: numbers as plain text (12 == 12.00)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        number = Decimal(value).normalize()
        return format(number, "f")
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return str(to_json(value))


def correlation_key(correlation: Mapping[str, Any]) -> str:
    """Return the indexed text of a correlation (its canonical values, sorted)."""
    text = json.dumps(canonical(dict(correlation)), sort_keys=True, separators=(",", ":"))
    if len(text) <= MAX_NAME:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def project_waits(session: Session, instance: ProcessInstance, workflow: Any) -> None:
    """Bring the instance's rows in `fw_wf_waits` in line with what it waits for now."""
    try:
        current = {w.id: w for w in waits(workflow)} if instance.status == "running" else {}
    except StepFailed as exc:
        exc.instance_id = instance.id
        raise
    rows = session.scalars(
        sa.select(WaitingEvent).where(WaitingEvent.instance_id == instance.id)
    ).all()
    for row in rows:
        wait = current.pop(row.id, None)
        if wait is None:
            session.delete(row)
        else:
            row.correlation = to_json(wait.correlation)
            row.correlation_key = correlation_key(wait.correlation)
    for wait in current.values():
        session.add(
            WaitingEvent(
                id=wait.id, instance_id=instance.id, process_key=instance.process_key,
                step=wait.step[:200], kind=wait.kind, name=wait.name[:MAX_NAME],
                correlation=to_json(wait.correlation),
                correlation_key=correlation_key(wait.correlation),
                created_at=instance.updated_at,
            )
        )  # fmt: skip


def send_thrown(ctx: StepContext, workflow: Any) -> None:
    """Queue the messages and signals the process threw and did not catch itself."""
    for event in workflow.get_events():
        kind = _kind(event.event_definition)
        if kind is None:
            continue  # an uncaught error or escalation: nothing outside the process takes it
        correlation: dict[str, Any] = {}
        for values in (event.correlations or {}).values():
            if isinstance(values, Mapping):
                correlation.update(values)
        payload = event.payload if isinstance(event.payload, Mapping) else {}
        _queue(ctx, kind, str(event.event_definition.name), correlation, payload)


# --- delivering ---------------------------------------------------------------------------------


def check_request(name: Any, correlation: Any, payload: Any) -> tuple[str, dict, dict]:  # type: ignore[type-arg]
    """Return a delivery's name, correlation and payload, or raise ValidationFailed."""
    from formwork.runtime.workflow.service import check_data

    errors = []
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not name.isprintable():
        errors.append(FieldError("/name", "invalid", {"detail": "the event's name"}))
    correlation = {} if correlation is None else correlation
    payload = {} if payload is None else payload
    for pointer, value in (("/correlation", correlation), ("/payload", payload)):
        if not isinstance(value, dict):
            errors.append(FieldError(pointer, "not_object"))
    if errors:
        raise ValidationFailed(errors)
    check_data(correlation, "/correlation")
    check_data(payload, "/payload")
    return name, correlation, payload


def deliver_message(
    service: Any,
    name: Any,
    correlation: Any = None,
    payload: Any = None,
    *,
    sender: Sender = PERSON,
    commit: bool = True,
) -> ProcessInstance:
    """Deliver a message to the one instance waiting for it with this correlation."""
    name, correlation, payload = check_request(name, correlation, payload)
    rows = _allowed(service, _rows(service.session, "message", name, correlation), sender)
    instances = sorted({r.instance_id for r in rows})
    if not instances:
        shown = json.dumps(to_json(correlation), ensure_ascii=False, sort_keys=True)
        raise NotFound(
            f"no process you may send to waits for message '{name}' with correlation {shown}"
        )
    if len(instances) > 1:
        raise Conflict(
            f"{len(instances)} processes wait for message '{name}' with this correlation; "
            "give the correlation keys that tell them apart, or instance_id"
        )
    action = {"action": "message", "name": name, "correlation": to_json(correlation),
              "payload": to_json(payload)}  # fmt: skip
    change = _delivery(rows, "message", name, correlation, payload)
    return run_step(
        service.session, lambda: service.step(instances[0], change), action,
        instance_id=instances[0], commit=commit,
    )  # fmt: skip


def broadcast_signal(
    service: Any, name: Any, payload: Any = None, *, sender: Sender = PERSON, commit: bool = True
) -> dict[str, Any]:
    """Deliver a signal to every instance waiting for it, each in its own step; a failed
    one is recorded on its instance and the others go on."""
    name, _none, payload = check_request(name, None, payload)
    rows = _allowed(service, _rows(service.session, "signal", name, {}), sender)
    delivered, failed = [], {}
    action = {"action": "signal", "name": name, "payload": to_json(payload)}
    for instance_id in sorted({r.instance_id for r in rows}):
        mine = [r for r in rows if r.instance_id == instance_id]
        step = partial(service.step, instance_id, _delivery(mine, "signal", name, {}, payload))
        try:
            run_step(service.session, step, action, instance_id=instance_id, commit=commit)
        except (StepFailed, Conflict) as exc:
            failed[str(instance_id)] = str(exc)
            continue
        delivered.append(instance_id)
    return {"name": name, "delivered": delivered, "failed": failed}


def redeliver(service: Any, instance_id: int, failed: Mapping[str, Any]) -> ProcessInstance:
    """Run a failed delivery to one instance again (the retry of its failed step)."""
    kind = str(failed.get("action"))
    name, correlation, payload = check_request(
        failed.get("name"), failed.get("correlation"), failed.get("payload")
    )
    rows = service.session.scalars(
        sa.select(WaitingEvent).where(
            WaitingEvent.instance_id == instance_id,
            WaitingEvent.kind == kind,
            WaitingEvent.name == name,
        )
    ).all()
    if not rows:
        raise Conflict(f"instance {instance_id} no longer waits for {kind} '{name}'")
    return service.step(instance_id, _delivery(rows, kind, name, correlation, payload))  # type: ignore[no-any-return]


def _rows(session: Session, kind: str, name: str, correlation: Mapping[str, Any]) -> list[Any]:
    wanted = dict(correlation)
    instance_id = wanted.pop("instance_id", None)
    query = sa.select(WaitingEvent).where(WaitingEvent.kind == kind, WaitingEvent.name == name)
    if instance_id is not None:
        if (
            not isinstance(instance_id, int)
            or isinstance(instance_id, bool)
            or not (0 < instance_id < 2**63)
        ):
            detail = "instance_id must be an integer"
            raise ValidationFailed([FieldError("/correlation/instance_id", "invalid",
                                               {"detail": detail})])  # fmt: skip
        query = query.where(WaitingEvent.instance_id == instance_id)
    if kind == "message" and (wanted or instance_id is None):
        query = query.where(WaitingEvent.correlation_key == correlation_key(wanted))
    return list(session.scalars(query.order_by(WaitingEvent.instance_id)))


def _allowed(service: Any, rows: list[Any], sender: Sender) -> list[Any]:
    """Return the rows whose instance the sender may reach. The others are left out as if
    they did not wait: whether a process waits is not told to someone who may not send."""
    if not rows:
        return rows
    instances = {
        i.id: i
        for i in service.session.scalars(
            sa.select(ProcessInstance).where(ProcessInstance.id.in_({r.instance_id for r in rows}))
        )
    }
    allowed = [
        r for r in rows
        if r.instance_id in instances and _may_send(service, instances[r.instance_id], sender)
    ]  # fmt: skip
    return allowed


def _may_send(service: Any, instance: ProcessInstance, sender: Sender) -> bool:
    if instance.status != "running":
        return False
    if sender.process:
        return sender.pack is None or service.definition(instance.definition_id).pack == sender.pack
    principal = service.principal
    if principal.is_admin:
        return True
    roles = set(service.binding(instance).get("senders") or ())
    return bool(roles & set(principal.roles))


def _delivery(
    rows: list[Any], kind: str, name: str, correlation: Mapping[str, Any], payload: dict
) -> Callable[[Any, StepContext], None]:  # type: ignore[type-arg]
    wanted = {r.id for r in rows}
    given = {k: v for k, v in correlation.items() if k != "instance_id"}

    def change(workflow: Any, ctx: StepContext) -> None:
        current = [w for w in waits(workflow) if w.id in wanted and w.name == name]
        if not current:
            raise Conflict(f"instance {ctx.instance.id} no longer waits for {kind} '{name}'")
        for wait in current:
            content = {**given, **payload} if kind == "message" else payload
            _check_payload(wait, content)
            deliver(wait.receiver(), wait.definition, content, given)
            details = {"name": name, "correlation": to_json(given)} if given else {"name": name}
            ctx.history(kind, step=wait.step, details=details)

    return change


def _check_payload(wait: Wait, content: dict) -> None:  # type: ignore[type-arg]
    props = ((getattr(wait.spec, "extensions", None) or {}).get("properties")) or {}
    if not props.get("form"):
        return
    validator = jsonschema.Draft202012Validator(json.loads(props["form"]))
    errors = [
        FieldError(
            "/payload" + "".join(f"/{p}" for p in e.absolute_path), "schema", {"detail": e.message}
        )
        for e in validator.iter_errors(to_json(content))
    ]
    if errors:
        raise ValidationFailed(errors)


# --- process senders ----------------------------------------------------------------------------


def _queue(ctx: StepContext, kind: str, name: str, correlation: Mapping, payload: Mapping) -> int:  # type: ignore[type-arg]
    definition = ctx.session.get(ProcessDefinition, ctx.instance.definition_id)
    job = enqueue(
        ctx.session,
        JOB_KINDS[kind],
        {
            "name": name, "correlation": to_json(dict(correlation)),
            "payload": to_json(dict(payload)), "from_instance": ctx.instance.id,
            "from_pack": definition.pack if definition is not None else None,
        },
        run_at=ctx.now,
    )  # fmt: skip
    return job.id


def send_message(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `send_message`: send a message (`name`, `correlation`, `payload`) to the one
    process of this pack that waits for it, after this step commits."""
    name, correlation, payload = check_request(
        params.get("name"), params.get("correlation"), params.get("payload")
    )
    return {"queued": _queue(ctx, "message", name, correlation, payload)}


def send_signal(ctx: StepContext, params: dict[str, Any]) -> Any:
    """Service `send_signal`: send a signal (`name`, `payload`) to every process of this pack
    that waits for it, after this step commits."""
    name, _none, payload = check_request(params.get("name"), None, params.get("payload"))
    return {"queued": _queue(ctx, "signal", name, {}, payload)}


def event_services() -> dict[str, Any]:
    """Return the message and signal services for BPMN service tasks, with their parameters."""
    from formwork.runtime.workflow.services import Param, ServiceSpec

    return {
        "send_message": ServiceSpec(
            "send_message", send_message,
            {"name": Param(True), "correlation": Param(), "payload": Param()},
            "send a message to the one process of this pack that waits for it",
        ),
        "send_signal": ServiceSpec(
            "send_signal", send_signal, {"name": Param(True), "payload": Param()},
            "send a signal to every process of this pack that waits for it",
        ),
    }  # fmt: skip


def job_handlers(service_for: Callable[[Session], Any]) -> dict[str, Any]:
    """Return the background job handlers that deliver what processes sent."""

    def message(session: Session, payload: dict[str, Any]) -> None:
        sender = Sender(process=True, pack=payload.get("from_pack"))
        try:
            deliver_message(
                service_for(session), payload.get("name"), payload.get("correlation"),
                payload.get("payload"), sender=sender, commit=False,
            )  # fmt: skip
        except StepFailed:
            return  # recorded on the receiving instance, whose retry delivers it again

    def signal(session: Session, payload: dict[str, Any]) -> None:
        sender = Sender(process=True, pack=payload.get("from_pack"))
        broadcast_signal(
            service_for(session), payload.get("name"), payload.get("payload"),
            sender=sender, commit=False,
        )  # fmt: skip

    return {JOB_KINDS["message"]: message, JOB_KINDS["signal"]: signal}
