"""The `formwork worker` and `formwork process deploy` commands; claiming due timers."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from formwork.runtime.workflow.models import ProcessDefinition, ProcessInstance
from formwork.runtime.workflow.timers import due_instances
from tests.workflow.conftest import BPMN
from tests.workflow.test_process import ready
from tests.workflow.test_timers import to_finance

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates


def test_process_deploy_command_versions_and_refuses_bad_files(app, session, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["process", "deploy", str(BPMN / "loop.bpmn")])
    assert result.exit_code == 0 and "loop version 1" in result.output
    again = runner.invoke(args=["process", "deploy", str(BPMN / "loop.bpmn")])
    assert "unchanged" in again.output
    bad = tmp_path / "bad.bpmn"
    bad.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    refused = runner.invoke(args=["process", "deploy", str(bad)])
    assert refused.exit_code != 0 and "DOCTYPE" in refused.output
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)) == 1


def test_worker_once_fires_due_timers(app, session, ccb, wf_for, clock):
    instance_id = to_finance(session, ccb, wf_for, "PT2H")
    clock.advance(dt.timedelta(hours=2, seconds=1))
    session.rollback()
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert list(ready(session, instance_id)) == ["escalated_review"]


def test_due_instances_skip_rows_locked_by_another_worker(app, session, ccb, wf_for, clock):
    instance_id = to_finance(session, ccb, wf_for, "PT0.1S")
    later = clock.now() + dt.timedelta(seconds=5)
    assert due_instances(session, later, 10) == [instance_id]
    session.rollback()
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite runs one worker; there is nothing to skip
    other = app.extensions["formwork"].sessions()
    try:
        other.execute(
            sa.select(ProcessInstance.id).where(ProcessInstance.id == instance_id).with_for_update()
        )
        assert due_instances(session, later, 10) == []  # claimed by the other worker
    finally:
        other.rollback()
        other.close()
    session.rollback()
    assert due_instances(session, later, 10) == [instance_id]


def test_jobs_run_once_after_commit_and_failures_back_off(app, session, clock):
    from formwork.runtime.workflow.jobs import enqueue, run_jobs
    from formwork.runtime.workflow.models import Job

    seen = []
    calls = {"flaky": 0}

    def flaky(session, payload):
        calls["flaky"] += 1
        raise RuntimeError("smtp down")

    handlers = {"ping": lambda s, payload: seen.append(payload["n"]), "flaky": flaky}
    sessions = app.extensions["formwork"].sessions
    enqueue(session, "ping", {"n": 0})
    session.rollback()  # the work that queued it rolled back: no job
    enqueue(session, "ping", {"n": 1})
    enqueue(session, "flaky", max_attempts=2)
    enqueue(session, "unknown")
    session.commit()
    session.rollback()
    assert run_jobs(sessions, handlers) == (1, 2)
    assert seen == [1] and run_jobs(sessions, handlers) == (0, 0)  # flaky waits its backoff
    clock.advance(dt.timedelta(minutes=5))
    assert run_jobs(sessions, handlers) == (0, 1)
    session.expire_all()
    states = dict(session.execute(sa.select(Job.kind, Job.status)).all())
    assert states == {"ping": "done", "flaky": "failed", "unknown": "failed"}
    assert calls["flaky"] == 2
