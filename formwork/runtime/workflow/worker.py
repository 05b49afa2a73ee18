"""The background worker: fire due timers and run background jobs.

Each due instance is claimed and fired in one transaction: on PostgreSQL the claim
(`FOR UPDATE SKIP LOCKED`) holds until the step commits, so any number of workers may run
and none fires a timer another one fired. With SQLite run one worker.

One failing instance never stops the others: whatever it raises, its error, the attempt
and the time of the next try (a growing back-off) are recorded on it (`steps.run_step`)
and the worker goes on. After the back-off the worker fires it again, up to
`steps.MAX_ATTEMPTS`; then it waits for an administrator's retry.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from formwork.runtime.errors import Conflict
from formwork.runtime.security import system_principal
from formwork.runtime.workflow import messages
from formwork.runtime.workflow.jobs import run_jobs
from formwork.runtime.workflow.service import WorkflowService
from formwork.runtime.workflow.steps import run_step
from formwork.runtime.workflow.timers import claim_due

if TYPE_CHECKING:
    from formwork.runtime.kernel import Kernel

log = logging.getLogger("formwork.worker")
TIMERS = {"action": "timers"}


@dataclass
class Outcome:
    """What one pass of the worker did."""

    fired: int = 0
    failed: int = 0
    skipped: int = 0


def system_service(kernel: Kernel, session: Session, moment: Any = None) -> WorkflowService:
    """Return a workflow service acting for the system, on the kernel's clock (or at a
    fixed moment)."""
    return WorkflowService(
        session,
        system_principal(),
        kernel.workflow,
        kernel.registry(session),
        kernel.events,
        moment if moment is not None else kernel.clock,
    )


def fire_timers(kernel: Kernel, limit: int = 100) -> Outcome:
    """Fire every due timer once, at the kernel clock's now: each instance is claimed and
    fired in its own transaction; a failure is recorded on it and the pass goes on."""
    outcome = Outcome()
    moment = kernel.clock.now()
    passed: set[int] = set()  # refused this pass (a paused pack, a person's step): not again
    for _ in range(limit):
        with kernel.write_sessions() as session:
            instance_id = claim_due(session, moment, exclude=passed)
            if instance_id is None:
                break
            if not _fire(kernel, session, instance_id, moment, outcome):
                passed.add(instance_id)
    return outcome


def _fire(
    kernel: Kernel, session: Session, instance_id: int, moment: dt.datetime, outcome: Outcome
) -> bool:
    service = system_service(kernel, session, moment)
    try:
        run_step(
            session,
            lambda: service.step(instance_id, lambda wf, ctx: ctx.history("timer")),
            TIMERS,
            instance_id=instance_id,
        )
        outcome.fired += 1
    except Conflict:  # a person's step got there first, or the pack is switched off
        outcome.skipped += 1
        return False
    except Exception as exc:  # noqa: BLE001  (recorded on the instance; never stops the pass)
        log.warning("instance %s: timer step failed: %s", instance_id, exc)
        outcome.failed += 1
        return False
    return True


def job_handlers(kernel: Kernel) -> dict[str, Any]:
    """Return the handlers of every background job kind (the runtime's and deliveries)."""
    deliveries = messages.job_handlers(lambda session: system_service(kernel, session))
    return {**kernel.workflow.jobs, **deliveries}


def run_due_jobs(kernel: Kernel) -> tuple[int, int]:
    """Run the due background jobs (messages and signals processes sent, among others)."""
    return run_jobs(kernel.write_sessions, job_handlers(kernel))


def run_worker(kernel: Kernel, interval: float = 5.0, once: bool = False) -> None:
    """Fire due timers and run due jobs every `interval` seconds until interrupted (or once)."""
    while True:
        try:
            _pass(kernel)
        except Exception:  # noqa: BLE001  (the database went away: log it, try next pass)
            if once:
                raise
            log.exception("worker pass failed; trying again in %s s", interval)
        if once:
            return
        time.sleep(interval)


def _pass(kernel: Kernel) -> None:
    outcome = fire_timers(kernel)
    if outcome.fired or outcome.failed:
        log.info("timers fired: %s, failed: %s", outcome.fired, outcome.failed)
    done, failed = run_due_jobs(kernel)
    if done or failed:
        log.info("jobs done: %s, failed: %s", done, failed)
