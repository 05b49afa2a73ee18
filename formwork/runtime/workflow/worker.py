"""The background worker: fire due timers (one instance per transaction) and run jobs.

Several workers may run against PostgreSQL: each claims due instances with
``FOR UPDATE SKIP LOCKED`` so no two fire the same timer. With SQLite run one worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from formwork.runtime.errors import Conflict
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.context import StepFailed
from formwork.runtime.workflow.jobs import run_jobs
from formwork.runtime.workflow.service import WorkflowService, record_failure
from formwork.runtime.workflow.timers import due_instances

if TYPE_CHECKING:
    from formwork.runtime.kernel import Kernel

log = logging.getLogger("formwork.worker")


@dataclass
class Outcome:
    """What one pass of the worker did."""

    fired: int = 0
    failed: int = 0
    skipped: int = 0


def fire_timers(kernel: Kernel, limit: int = 100) -> Outcome:
    """Fire every due timer once, at the kernel clock's now; each instance is its own
    transaction."""
    outcome = Outcome()
    moment = kernel.clock.now()
    with kernel.sessions() as session:
        ids = due_instances(session, moment, limit)
        session.rollback()
    for instance_id in ids:
        with kernel.write_sessions() as session:
            service = WorkflowService(
                session,
                system_principal(),
                kernel.workflow,
                kernel.registry(session),
                kernel.events,
                moment,
            )
            try:
                service.step(instance_id, lambda wf, ctx: ctx.history("timer"))
                session.commit()
                outcome.fired += 1
            except Conflict:  # another worker or a user step got there first
                session.rollback()
                outcome.skipped += 1
            except StepFailed as exc:
                session.rollback()
                record_failure(session, instance_id, str(exc), {"action": "timers"})
                session.commit()
                log.warning("instance %s: timer step failed: %s", instance_id, exc)
                outcome.failed += 1
    return outcome


def run_worker(kernel: Kernel, interval: float = 5.0, once: bool = False) -> None:
    """Fire due timers and run due jobs every `interval` seconds until interrupted (or once)."""
    while True:
        outcome = fire_timers(kernel)
        if outcome.fired or outcome.failed:
            log.info("timers fired: %s, failed: %s", outcome.fired, outcome.failed)
        done, failed = run_jobs(kernel.write_sessions, kernel.workflow.jobs)
        if done or failed:
            log.info("jobs done: %s, failed: %s", done, failed)
        if once:
            return
        time.sleep(interval)
