"""The worker isolates a failing instance: its error, attempt and next try are recorded on it,
it is tried again after a growing back-off, and every other instance's timer still fires."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.workflow.models import ProcessInstance
from formwork.runtime.workflow.services import ServiceSpec
from formwork.runtime.workflow.steps import BACKOFF
from formwork.runtime.workflow.worker import fire_timers
from tests.workflow.support import deploy_file, history, instance, kernel_of, ready, service_for

pytestmark = pytest.mark.dates


@pytest.fixture
def flaky(app: Any) -> dict[str, bool]:
    """Register the `flaky` service the timer_service process calls; it fails while down."""
    state = {"down": True}

    def service(ctx: Any, params: dict[str, Any]) -> Any:
        if state["down"]:
            raise ConnectionError("the mail server is down")
        return {"ok": True}

    kernel_of(app).workflow.register(ServiceSpec("flaky", service))
    return state


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.replace(tzinfo=moment.tzinfo or dt.UTC) if moment else None


def start(app: Any, session: Any, key: str) -> int:
    found = service_for(app, session).start(key, {})
    session.commit()
    return int(found.id)


def test_one_poisoned_instance_never_stops_the_others(app, session, people, clock, flaky):
    deploy_file(session, "subprocess.bpmn")
    deploy_file(session, "timer_service.bpmn", services=kernel_of(app).workflow.services)
    healthy = [start(app, session, "sub_flow") for _ in range(2)]
    corrupt = start(app, session, "sub_flow")
    failing = start(app, session, "timer_service")
    session.execute(  # a state nothing can read: not a StepFailed, any exception counts
        sa.update(ProcessInstance).where(ProcessInstance.id == corrupt).values(state="{oops")
    )
    session.commit()
    kernel = kernel_of(app)
    clock.advance(dt.timedelta(minutes=61))
    outcome = fire_timers(kernel)
    assert (outcome.fired, outcome.failed) == (2, 2)
    for iid in healthy:
        assert history(session, iid).count("timer") == 1
    now = clock.now()
    for iid, text in ((corrupt, "not JSON"), (failing, "the mail server is down")):
        row = instance(session, iid)
        assert text in row.error and row.status == "running"
        assert (row.attempts, aware(row.next_try_at)) == (1, now + BACKOFF)
        assert row.failed_action == {"action": "timers"}
    assert "service 'flaky' failed" in instance(session, failing).error
    assert "step 'Ping' (element 'ping')" in instance(session, failing).error
    assert fire_timers(kernel).failed == 0  # backing off: not tried again at once
    clock.advance(BACKOFF + dt.timedelta(seconds=1))
    assert fire_timers(kernel).failed == 2
    row = instance(session, failing)
    assert (row.attempts, aware(row.next_try_at)) == (2, clock.now() + 2 * BACKOFF)
    flaky["down"] = False  # the mail server is back: the next try gets through
    clock.advance(2 * BACKOFF + dt.timedelta(seconds=1))
    outcome = fire_timers(kernel)
    assert (outcome.fired, outcome.failed) == (1, 1)
    row = instance(session, failing)
    assert (row.error, row.attempts, row.next_try_at) == (None, 0, None)
    assert list(ready(session, failing)) == ["after"]


def test_the_worker_command_goes_on_past_a_failing_instance(app, session, people, clock, flaky):
    deploy_file(session, "timer_service.bpmn", services=kernel_of(app).workflow.services)
    deploy_file(session, "subprocess.bpmn")
    failing = start(app, session, "timer_service")
    healthy = start(app, session, "sub_flow")
    clock.advance(dt.timedelta(minutes=61))
    session.rollback()
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert history(session, healthy).count("timer") == 1
    assert "mail server" in instance(session, failing).error
