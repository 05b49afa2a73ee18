"""Embedded subprocesses, event subprocesses and call activities, end to end: every step
saves and reloads the state, and timers inside them fire from the worker."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from formwork.runtime.workflow.models import ProcessDefinition, WaitingEvent
from formwork.runtime.workflow.worker import fire_timers
from tests.workflow.support import (
    act,
    budget_services,
    deploy_file,
    history,
    install_pack,
    instance,
    kernel_of,
    ready,
    service_for,
    source,
)

pytestmark = pytest.mark.dates


def test_a_process_with_subprocesses_moves_after_its_first_step(app, session, people):
    deploy_file(session, "subprocess.bpmn")
    boss = service_for(app, session)
    started = boss.start("sub_flow", {})
    session.commit()
    inner = ready(session, started.id)["inner_review"]  # a user task inside the subprocess
    assert inner.role == "clerk"  # the lane of the subprocess element
    act(boss, inner)  # loading the state failed here (a 500 on the API)
    act(boss, ready(session, started.id)["final_check"])
    done = instance(session, started.id)
    # The reminder event subprocess never fired: it is closed with its scope, not waited on.
    assert done.status == "completed" and done.timer_due_at is None


def test_timers_inside_subprocesses_fire_from_the_worker(app, session, people, clock):
    deploy_file(session, "subprocess.bpmn")
    boss = service_for(app, session)
    started = boss.start("sub_flow", {})
    session.commit()
    kernel = kernel_of(app)
    due = instance(session, started.id).timer_due_at
    assert due.replace(tzinfo=due.tzinfo or dt.UTC) == clock.now() + dt.timedelta(hours=1)
    clock.advance(dt.timedelta(minutes=61))  # the event subprocess's timer start
    assert (fire_timers(kernel).fired, list(ready(session, started.id))) == (1, ["inner_review"])
    clock.advance(dt.timedelta(minutes=60))  # the boundary timer inside the subprocess
    assert fire_timers(kernel).fired == 1
    final = ready(session, started.id)["final_check"]
    workflow = boss.read(instance(session, started.id))
    task = next(t for t in workflow.get_tasks() if str(t.id) == final.id)
    assert task.data["timed_out"] is True
    act(boss, final)
    assert instance(session, started.id).status == "completed"
    assert workflow.data == {} and history(session, started.id).count("timer") == 2
    assert boss.read(instance(session, started.id)).data["reminded"] is True


def test_a_call_activity_runs_a_process_of_the_same_deploy_request(
    app, session, people, api_for, clock
):
    chief = api_for("chief")
    refused = chief.post("/api/v1/process-definitions", {"bpmn": source("caller.bpmn")})
    assert refused.status_code == 422
    assert "called_review" in refused.json["errors"][0]["detail"]
    deployed = chief.post(
        "/api/v1/process-definitions",
        {"bpmn": source("caller.bpmn"), "called": [source("called.bpmn")]},
    )
    assert deployed.status_code == 201, deployed.json
    row = session.scalar(sa.select(ProcessDefinition).where(ProcessDefinition.key == "caller"))
    assert "called_review" in next(iter(row.resources["bpmn"].values()))  # self-contained
    started = chief.post("/api/v1/processes", {"process": "caller", "data": {"n": 1}})
    assert started.status_code == 201, started.json
    iid = started.json["id"]
    review = ready(session, iid)["review"]
    assert review.role == "reviewer"  # the called process's own lane
    clock.advance(dt.timedelta(minutes=61))
    assert fire_timers(kernel_of(app)).fired == 1  # a timer inside the called process
    after = ready(session, iid)["after_call"]
    act(service_for(app, session, people["requester"]["user"]), after)
    done = instance(session, iid)
    assert done.status == "completed"
    assert service_for(app, session).read(done).data["late"] is True


def test_a_pack_resolves_its_called_process_and_forms_at_deploy(app, session, people):
    install_pack(session, "procure", budget_services(app))
    query = sa.select(ProcessDefinition).where(ProcessDefinition.pack == "procure")
    rows = {r.key: r for r in session.scalars(query)}
    assert set(rows) == {"purchase", "vendor_check"}
    assert list(rows["purchase"].resources["bpmn"]) == ["workflows/vendor_check.bpmn"]
    assert list(rows["purchase"].resources["forms"]) == ["quote.json"]
    assert rows["vendor_check"].resources is None
    assert session.scalar(sa.select(sa.func.count()).select_from(WaitingEvent)) == 0
