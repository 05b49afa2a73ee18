"""Message and signal catch events can be reached: waiting events are projected to
fw_wf_waits, messages are delivered by correlation and signals to every waiting instance,
through the API (with permissions) and from other processes (service tasks and throw
events, as background jobs)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.models import Job, WaitingEvent
from formwork.runtime.workflow.worker import run_due_jobs
from tests.workflow.support import deploy_file, history, instance, kernel_of, ready, service_for

pytestmark = pytest.mark.dates
BINDING = {
    "entity": "ccb.change_request",
    "senders": ["dispatcher"],
    "outcomes": {"end": "approved", "cancel_end": "withdrawn"},
}


@pytest.fixture
def shipping(app: Any, session: Any, ccb: dict[str, Any], people: dict[str, Any]) -> Any:
    deploy_file(session, "shipping.bpmn", binding=BINDING)

    def start(shipment_no: str) -> int:
        records = RecordService(session, load_registry(session), system_principal())
        record = records.create("ccb.change_request", {"title": shipment_no, "amount": "1.00"})
        found = service_for(app, session).start(
            "shipping", {"shipment_no": shipment_no}, entity="ccb.change_request",
            record_id=record["id"],
        )  # fmt: skip
        session.commit()
        return int(found.id)

    return start


def waits(session: Any, instance_id: int) -> list[tuple[str, str, str, Any]]:
    session.rollback()
    rows = session.scalars(
        sa.select(WaitingEvent)
        .where(WaitingEvent.instance_id == instance_id)
        .order_by(WaitingEvent.kind, WaitingEvent.name)
    )
    return [(r.kind, r.name, r.step, r.correlation) for r in rows]


def test_waiting_events_are_projected_with_their_correlation(session, shipping):
    first = shipping("S-1")
    assert waits(session, first) == [
        ("message", "cancel_shipment", "cancel_start", {"shipment": "S-1"}),  # event subprocess
        ("message", "goods_received", "wait_received", {"shipment": "S-1"}),
    ]


def test_a_message_reaches_the_one_instance_its_correlation_names(session, shipping, api_for):
    first, second = shipping("S-1"), shipping("S-2")
    dispatcher = api_for("dispatcher")  # a role the binding lists under `senders`
    body = {"name": "goods_received", "correlation": {"shipment": "S-2"}}
    refused = dispatcher.post("/api/v1/messages", {**body, "payload": {}})
    assert refused.status_code == 422 and refused.json["errors"][0]["pointer"].startswith(
        "/payload"
    )  # the catch event's form: received_by is required
    sent = dispatcher.post("/api/v1/messages", {**body, "payload": {"received_by": "Wang"}})
    assert sent.status_code == 200, sent.json
    assert sent.json["id"] == second
    assert [w[1] for w in waits(session, second)] == ["cancel_shipment", "season_open"]
    assert [w[1] for w in waits(session, first)] == ["cancel_shipment", "goods_received"]
    again = dispatcher.post("/api/v1/messages", {**body, "payload": {"received_by": "Wang"}})
    assert again.status_code == 404 and "waits for message" in again.json["detail"]
    assert "message" in history(session, second)


def test_who_may_send_and_what_is_ambiguous(app, session, shipping, api_for):
    first, second = shipping("S-1"), shipping("S-1")  # the same shipment twice
    body = {"name": "goods_received", "correlation": {"shipment": "S-1"},
            "payload": {"received_by": "Li"}}  # fmt: skip
    # Someone who may not send learns nothing: not even that a process waits.
    hidden = api_for("outsider").post("/api/v1/messages", body)
    assert hidden.status_code == 404 and "you may send to" in hidden.json["detail"]
    ambiguous = api_for("chief").post("/api/v1/messages", body)
    assert ambiguous.status_code == 409 and "2 processes" in ambiguous.json["detail"]
    chosen = {**body, "correlation": {"shipment": "S-1", "instance_id": first}}
    sent = api_for("chief").post("/api/v1/messages", chosen)  # an administrator
    assert sent.status_code == 200 and sent.json["id"] == first
    assert [w[1] for w in waits(session, second)] == ["cancel_shipment", "goods_received"]


def test_a_signal_reaches_every_waiting_instance(app, session, shipping, api_for):
    ids = [shipping(f"S-{n}") for n in range(3)]
    for iid in ids[:2]:
        body = {"name": "goods_received", "correlation": {"shipment": f"S-{ids.index(iid)}"},
                "payload": {"received_by": "Li"}}  # fmt: skip
        assert api_for("chief").post("/api/v1/messages", body).status_code == 200
    outsider = api_for("outsider").post("/api/v1/signals", {"name": "season_open"})
    assert outsider.json["delivered"] == []
    sent = api_for("dispatcher").post("/api/v1/signals", {"name": "season_open"})
    assert sent.status_code == 200
    assert sent.json == {"name": "season_open", "delivered": ids[:2], "failed": {}}
    for iid in ids[:2]:
        assert list(ready(session, iid)) == ["unload"]
    assert list(ready(session, ids[2])) == []  # it waits for its goods first
    nobody = api_for("chief").post("/api/v1/signals", {"name": "nobody_waits"})
    assert nobody.json["delivered"] == []


def test_an_interrupting_message_start_cancels_the_main_flow(app, session, shipping, api_for):
    iid = shipping("S-9")
    body = {"name": "cancel_shipment", "correlation": {"shipment": "S-9"}}
    sent = api_for("chief").post("/api/v1/messages", body)
    assert sent.status_code == 200, sent.json
    done = instance(session, iid)
    assert done.status == "completed"
    assert service_for(app, session).read(done).data["cancelled"] is True
    assert waits(session, iid) == []


def test_processes_send_messages_and_signals_after_their_step_commits(app, session, shipping):
    iid = shipping("S-5")
    deploy_file(session, "notifier.bpmn")
    sender = service_for(app, session).start("notifier", {"shipment_no": "S-5"})
    session.commit()
    assert instance(session, sender.id).status == "completed"
    kinds = session.scalars(sa.select(Job.kind).order_by(Job.id)).all()
    assert kinds == ["workflow.message", "workflow.signal"]  # a service task; a throw event
    assert ready(session, iid) == {}  # nothing is delivered inside the sender's step
    assert run_due_jobs(kernel_of(app)) == (2, 0)
    assert list(ready(session, iid)) == ["unload"]
    workflow = service_for(app, session).read(instance(session, iid))
    unload = workflow.get_tasks(state=16, manual=True)[0]
    assert unload.data["receipt"] == {"shipment": "S-5", "received_by": "the gate"}


def test_senders_are_a_list_of_role_names():
    from formwork.runtime.errors import ValidationFailed
    from formwork.runtime.workflow.deploy import check_binding

    assert check_binding({"entity": "a.b", "senders": ["erp"]}) == {
        "entity": "a.b",
        "senders": ["erp"],
    }
    with pytest.raises(ValidationFailed, match="role names"):
        check_binding({"entity": "a.b", "senders": "erp"})
