"""One policy for running a step and for what a failed step leaves behind.

`run_engine` runs Spiff until the process waits: a failed service task is raised as a
BPMN error to the boundary events and event subprocesses around it, and event
subprocesses are interrupted or closed as BPMN says (`spiff.settle`).

`run_step` is how the API, the pages, the worker and background jobs run a step: in a
savepoint, so that a failure leaves nothing of the step but keeps the caller's claim on
the instance (the worker's `FOR UPDATE SKIP LOCKED`), records the error, the attempt and
the action a retry runs again on the instance, and commits that. Any exception counts,
not only a StepFailed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy.orm import Session

from formwork.runtime.clock import session_clock
from formwork.runtime.errors import Conflict, NotFound, RuntimeFailure
from formwork.runtime.workflow.context import StepFailed
from formwork.runtime.workflow.errors import ServiceFailed
from formwork.runtime.workflow.models import ProcessInstance
from formwork.runtime.workflow.spiff import catch_error, settle

T = TypeVar("T")
log = logging.getLogger("formwork.workflow")

MAX_ROUNDS = 100
BACKOFF = dt.timedelta(minutes=1)
MAX_BACKOFF = dt.timedelta(hours=6)
MAX_ATTEMPTS = 8
# Failed actions the worker runs again by itself after the back-off; a person's action (a
# task completion) waits for the person or an administrator instead.
WORKER_RETRIES = frozenset({"timers", "retry"})


def run_engine(workflow: BpmnWorkflow) -> None:
    """Run the engine until the process waits, routing service failures as BPMN errors.

    Raises the ServiceFailed that no error event catches.
    """
    for _ in range(MAX_ROUNDS):
        try:
            workflow.refresh_timers()
            workflow.do_engine_steps()
        except ServiceFailed as exc:
            if catch_error(exc.task, exc.code, exc.payload()) is None:
                raise
            continue
        if not settle(workflow):
            return
    raise RuntimeError(f"the process did not come to rest after {MAX_ROUNDS} rounds")


def run_step(
    session: Session,
    step: Callable[[], T],
    retry_action: Mapping[str, Any] | None = None,
    *,
    instance_id: int | None = None,
    commit: bool = True,
) -> T:
    """Run a step and commit; on failure keep nothing of it and record it on the instance.

    A StepFailed (or any unexpected exception) is recorded on its instance with
    `retry_action`, what a retry runs again, then raised; a refusal (409, 403, 404, a 422
    about the request) is only raised. The record is committed in the transaction that
    holds the caller's claim on the instance. With `commit=False` (a background job, which
    commits itself) the step is kept or undone in its savepoint and nothing is committed.
    """
    savepoint = session.begin_nested()
    try:
        result = step()
        savepoint.commit()
    except StepFailed as exc:
        _rollback(session, savepoint)
        target = exc.instance_id if exc.instance_id is not None else instance_id
        _recorded(session, target, str(exc), retry_action, commit)
        raise
    except RuntimeFailure:
        _rollback(session, savepoint)
        if commit:
            session.rollback()
        raise
    except Exception as exc:  # noqa: BLE001  (recorded, then raised: never lost)
        _rollback(session, savepoint)
        text = f"{type(exc).__name__}: {exc}"
        _recorded(session, instance_id, text, retry_action, commit)
        raise
    if commit:
        session.commit()
    return result


def _recorded(
    session: Session,
    instance_id: int | None,
    text: str,
    action: Mapping[str, Any] | None,
    commit: bool,
) -> None:
    if instance_id is not None:  # none for a start that failed: nothing to show it on
        record_failure(session, instance_id, text, action)
    if commit:
        session.commit()


def _rollback(session: Session, savepoint: Any) -> None:
    try:
        savepoint.rollback()
    except Exception:  # noqa: BLE001  (the connection itself failed: start afresh)
        session.rollback()


def record_failure(
    session: Session,
    instance_id: int,
    message: str,
    action: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Show a failed step's error on the instance, count the attempt and set when the
    worker may try again (for its own actions; see WORKER_RETRIES).

    `action` is what a retry runs again.
    """
    row = session.execute(
        sa.select(ProcessInstance.attempts).where(ProcessInstance.id == instance_id)
    ).first()
    if row is None:
        return
    attempts = int(row[0] or 0) + 1
    moment = now or session_clock(session).now()
    again = None
    if action and action.get("action") in WORKER_RETRIES and attempts < MAX_ATTEMPTS:
        again = moment + min(BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)
    session.execute(
        sa.update(ProcessInstance)
        .where(ProcessInstance.id == instance_id)
        .values(
            error=message[:4000],
            failed_action=dict(action) if action else None,
            attempts=attempts,
            next_try_at=again,
        )
        .execution_options(synchronize_session=False)
    )
    log.warning("instance %s: step failed (attempt %s): %s", instance_id, attempts, message)


def retry_failed(service: Any, instance_id: int) -> ProcessInstance:
    """Run an instance's failed step again: the failed task action, message or signal, or
    the engine (timers) when nothing else is kept."""
    from formwork.runtime.workflow.actions import complete
    from formwork.runtime.workflow.messages import redeliver

    instance = service.session.get(ProcessInstance, instance_id)
    if instance is None:
        raise NotFound(f"no process instance {instance_id}")
    if not instance.error:
        raise Conflict(f"instance {instance_id} has no failed step to retry")
    failed = dict(instance.failed_action or {})
    if failed.get("task_id"):
        return complete(
            service,
            failed["task_id"],
            failed.get("action"),
            failed.get("comment"),
            failed.get("data"),
        )
    if failed.get("action") in ("message", "signal"):
        return redeliver(service, instance_id, failed)
    return service.step(instance_id, lambda wf, ctx: ctx.history("retry"))  # type: ignore[no-any-return]
