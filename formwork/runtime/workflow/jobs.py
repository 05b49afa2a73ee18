"""Background jobs in the database: enqueue in any transaction, run by `formwork worker`.

A job is enqueued in the caller's transaction, so it exists only if that work commits. The
worker claims due jobs with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (any number of workers)
and runs each in its own transaction; a failure is retried with a growing delay, then the
job is marked failed with its error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.clock import session_clock
from formwork.runtime.workflow.models import Job

Handler = Callable[[Session, dict[str, Any]], None]
BACKOFF = dt.timedelta(seconds=30)


def enqueue(
    session: Session,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    run_at: dt.datetime | None = None,
    max_attempts: int = 5,
) -> Job:
    """Queue a job in the caller's transaction."""
    job = Job(
        kind=kind,
        payload=dict(payload or {}),
        run_at=run_at or session_clock(session).now(),
        max_attempts=max_attempts,
    )
    session.add(job)
    session.flush()
    return job


def _claim(session: Session, now: dt.datetime) -> Job | None:
    query = (
        sa.select(Job)
        .where(Job.status == "queued", Job.run_at <= now)
        .order_by(Job.run_at, Job.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()


def run_jobs(
    sessions: Callable[[], Session],
    handlers: Mapping[str, Handler],
    now: dt.datetime | None = None,
    limit: int = 100,
) -> tuple[int, int]:
    """Run up to `limit` due jobs, each in its own transaction; return (done, failed)."""
    done = failed = 0
    for _ in range(limit):
        with sessions() as session:
            moment = now or session_clock(session).now()
            job = _claim(session, moment)
            if job is None:
                return done, failed
            if _run(session, job, handlers, moment):
                done += 1
            else:
                failed += 1
    return done, failed


def _run(session: Session, job: Job, handlers: Mapping[str, Handler], now: dt.datetime) -> bool:
    job_id, kind, payload = job.id, job.kind, dict(job.payload)
    handler = handlers.get(kind)
    try:
        if handler is None:
            raise LookupError(f"no handler for jobs of kind '{kind}'")
        with session.begin_nested():
            handler(session, payload)
    except Exception as exc:  # noqa: BLE001  (a job's failure is recorded, never fatal)
        row = session.get(Job, job_id)
        assert row is not None
        row.attempts += 1
        row.error = f"{type(exc).__name__}: {exc}"[:4000]
        if row.attempts >= row.max_attempts or handler is None:
            row.status = "failed"
        else:
            row.run_at = now + BACKOFF * 2 ** (row.attempts - 1)
        session.commit()
        return False
    job.status, job.done_at, job.attempts = "done", now, job.attempts + 1
    session.commit()
    return True
