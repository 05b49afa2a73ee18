"""The workflow REST API: inbox, task detail with form and record, actions, processes, deploy."""

from __future__ import annotations

from typing import Any

from tests.workflow.conftest import source


def create_request(api: Any, ccb: dict[str, Any], amount: str = "50000.00") -> int:
    body = {"title": "Extra rebar", "amount": amount, "project_manager": ccb["pm"]["id"]}
    response = api.post("/api/v1/ccb/change_request", body)
    assert response.status_code == 201, response.json
    return int(response.json["id"])


def test_submit_inbox_detail_and_complete(wf_api, ccb):
    submitter, site = wf_api("submitter"), wf_api("site")
    record_id = create_request(submitter, ccb)
    started = submitter.post(
        "/api/v1/processes", {"entity": "ccb.change_request", "record_id": record_id}
    )
    assert started.status_code == 201, started.json
    assert started.json["status"] == "running" and started.json["version"] == 1
    assert [t["step"] for t in started.json["tasks"]] == ["site_review"]
    again = submitter.post(
        "/api/v1/processes", {"entity": "ccb.change_request", "record_id": record_id}
    )
    assert again.status_code == 409 and again.mimetype == "application/problem+json"

    inbox = site.get("/api/v1/tasks").json["items"]
    assert [(t["step"], t["record_id"], t["role"]) for t in inbox] == [
        ("site_review", record_id, "site_engineer")
    ]
    assert wf_api("cost").get("/api/v1/tasks").json["items"] == []
    task_id = inbox[0]["id"]

    detail = site.get(f"/api/v1/tasks/{task_id}")
    assert detail.status_code == 200
    body = detail.json
    assert body["record"]["approval_state"] == "in-approval"
    assert body["form"]["type"] == "object" and "comment" in body["form"]["properties"]
    assert "approve" in body["actions"] and body["data"]["amount"] == "50000.00"
    assert [h["action"] for h in body["history"]] == ["start"]
    assert wf_api("cost").get(f"/api/v1/tasks/{task_id}").status_code == 403

    done = site.post(
        f"/api/v1/tasks/{task_id}/complete", {"action": "approve", "comment": "现场已核实"}
    )
    assert done.status_code == 200, done.json
    assert sorted(t["step"] for t in done.json["tasks"]) == ["cost_review", "pm_review"]
    stale = site.post(f"/api/v1/tasks/{task_id}/complete", {"action": "approve"})
    assert stale.status_code == 409 and stale.json["detail"] == "此待办已处理或已取消"

    cost_task = wf_api("cost").get("/api/v1/tasks").json["items"][0]
    bad = wf_api("cost").post(
        f"/api/v1/tasks/{cost_task['id']}/complete",
        {"action": "approve", "data": {"cost_impact": -5}},
    )
    assert bad.status_code == 422 and bad.json["errors"][0]["pointer"] == "/data/cost_impact"
    ok = wf_api("cost").post(
        f"/api/v1/tasks/{cost_task['id']}/complete",
        {"action": "approve", "data": {"cost_impact": 12.5}},
    )
    assert ok.status_code == 200
    pm_task = wf_api("pm").get("/api/v1/tasks?process=ccb_change").json["items"][0]
    assert (
        wf_api("pm")
        .post(f"/api/v1/tasks/{pm_task['id']}/complete", {"action": "approve"})
        .status_code
        == 200
    )

    instance = submitter.get(f"/api/v1/processes/{started.json['id']}").json
    assert instance["status"] == "completed"
    assert [h["action"] for h in instance["history"]] == [
        "start",
        "approve",
        "approve",
        "approve",
        "approved",
    ]
    assert (
        submitter.get(f"/api/v1/ccb/change_request/{record_id}").json["approval_state"]
        == "approved"
    )
    assert [i["id"] for i in submitter.get("/api/v1/processes").json["items"]] == [
        started.json["id"]
    ]


def test_bad_requests_get_problem_responses(wf_api, ccb):
    site, boss = wf_api("site"), wf_api("boss")
    assert site.get("/api/v1/tasks/nope").status_code == 404
    assert site.post("/api/v1/tasks/nope/complete", {"action": "approve"}).status_code == 404
    assert site.get("/api/v1/tasks?color=red").status_code == 400
    assert site.get("/api/v1/tasks?scope=all").status_code == 403
    assert site.get("/api/v1/processes/999").status_code == 404
    record_id = create_request(wf_api("submitter"), ccb)
    started = wf_api("submitter").post(
        "/api/v1/processes", {"entity": "ccb.change_request", "record_id": record_id}
    )
    task_id = started.json["tasks"][0]["id"]
    response = site.post(f"/api/v1/tasks/{task_id}/complete", {"action": "explode"})
    assert response.status_code == 422 and response.json["errors"][0]["pointer"] == "/action"
    response = site.post(
        f"/api/v1/tasks/{task_id}/complete", {"action": "delegate", "data": {"to": "x"}}
    )
    assert response.status_code == 422
    assert site.post(f"/api/v1/tasks/{task_id}/complete", ["approve"]).status_code == 422
    assert (
        wf_api("submitter")
        .post("/api/v1/processes", {"entity": "ccb.change_request", "record_id": "1"})
        .status_code
        == 422
    )
    assert (
        wf_api("submitter")
        .post("/api/v1/processes", {"entity": "nope.thing", "record_id": 1})
        .status_code
        == 404
    )
    assert (
        wf_api("submitter").post("/api/v1/processes", {"process": "ccb_change"}).status_code == 403
    )
    assert boss.post("/api/v1/process-definitions", {"bpmn": "<x>"}).status_code == 422
    doctype = boss.post(
        "/api/v1/process-definitions", {"bpmn": '<!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>'}
    )
    assert doctype.status_code == 422 and "DOCTYPE" in doctype.json["errors"][0]["detail"]
    assert (
        site.post("/api/v1/process-definitions", {"bpmn": source("loop.bpmn")}).status_code == 403
    )


def test_withdraw_through_the_process_endpoint(wf_api, ccb):
    submitter = wf_api("submitter")
    record_id = create_request(submitter, ccb)
    started = submitter.post(
        "/api/v1/processes", {"entity": "ccb.change_request", "record_id": record_id}
    )
    response = submitter.post(
        f"/api/v1/processes/{started.json['id']}/withdraw", {"comment": "填错了"}
    )
    assert response.status_code == 200 and response.json["status"] == "withdrawn"
    assert response.json["tasks"] == []
    assert wf_api("site").get("/api/v1/tasks").json["items"] == []
    assert submitter.post(f"/api/v1/processes/{started.json['id']}/withdraw", {}).status_code == 409


def test_deploy_start_and_migrate_over_the_api(wf_api, ccb):
    boss = wf_api("boss")
    first = boss.post("/api/v1/process-definitions", {"bpmn": source("loop.bpmn")})
    assert first.status_code == 201 and first.json["version"] == 1
    assert (
        boss.post("/api/v1/process-definitions", {"bpmn": source("loop.bpmn")}).status_code == 200
    )
    started = boss.post("/api/v1/processes", {"process": "loop", "data": {"count": 0, "limit": 2}})
    assert started.status_code == 201 and started.json["tasks"][0]["role"] == "clerk"
    second = boss.post(
        "/api/v1/process-definitions",
        {"bpmn": source("loop.bpmn").replace('name="Check"', 'name="Check again"')},
    )
    assert second.json["version"] == 2
    moved = boss.post(
        "/api/v1/processes/migrate", {"process": "loop", "to_version": 2, "step": "work"}
    )
    assert moved.status_code == 200 and moved.json["migrated"] == [started.json["id"]]
    assert boss.get(f"/api/v1/processes/{started.json['id']}").json["version"] == 2
    assert (
        boss.post("/api/v1/processes/migrate", {"process": "loop", "to_version": 9}).status_code
        == 404
    )
    versions = boss.get("/api/v1/process-definitions").json["items"]
    assert [(v["key"], v["version"]) for v in versions if v["key"] == "loop"] == [
        ("loop", 2),
        ("loop", 1),
    ]


def test_records_in_approval_are_locked_and_the_state_is_the_process_s(wf_api, ccb):
    submitter = wf_api("submitter")
    forged = submitter.post(
        "/api/v1/ccb/change_request", {"title": "x", "amount": "1", "approval_state": "approved"}
    )
    assert forged.status_code == 422 and forged.json["errors"][0]["pointer"] == "/approval_state"
    record_id = create_request(submitter, ccb)
    path = f"/api/v1/ccb/change_request/{record_id}"
    assert submitter.patch(path, {"version": 1, "approval_state": "approved"}).status_code == 422
    started = submitter.post(
        "/api/v1/processes", {"entity": "ccb.change_request", "record_id": record_id}
    )
    version = submitter.get(path).json["version"]
    locked = submitter.patch(path, {"version": version, "amount": "1.00"})
    assert locked.status_code == 409 and "审批中" in locked.json["detail"]
    english = submitter.patch(
        path, {"version": version, "amount": "1.00"}, headers={"Accept-Language": "en"}
    )
    assert "in approval" in english.json["detail"]
    assert wf_api("boss").delete(f"{path}?version={version}").status_code == 409
    submitter.post(f"/api/v1/processes/{started.json['id']}/withdraw", {})
    version = submitter.get(path).json["version"]
    assert submitter.patch(path, {"version": version, "amount": "1.00"}).status_code == 200


def test_a_failed_step_shows_on_the_instance_and_retry_finishes_it(app, wf_api, ccb):
    submitter = wf_api("submitter")
    record_id = create_request(submitter, ccb)
    started = submitter.post(
        "/api/v1/processes", {"entity": "ccb.change_request", "record_id": record_id}
    )
    instance_path = f"/api/v1/processes/{started.json['id']}"
    for who in ("site", "cost"):
        task = wf_api(who).get("/api/v1/tasks").json["items"][0]
        wf_api(who).post(f"/api/v1/tasks/{task['id']}/complete", {"action": "approve"})
    services = app.extensions["formwork"].workflow.services
    good = services["update_record"]

    def broken(ctx, params):
        raise RuntimeError("disk full")

    services["update_record"] = broken
    pm_task = wf_api("pm").get("/api/v1/tasks").json["items"][0]
    failed = wf_api("pm").post(f"/api/v1/tasks/{pm_task['id']}/complete", {"action": "approve"})
    assert failed.status_code == 422 and failed.json["type"].endswith("step-failed")
    shown = submitter.get(instance_path).json
    assert "disk full" in shown["error"] and shown["retry"] is True
    assert [t["step"] for t in shown["tasks"]] == ["pm_review"]  # nothing of the step was kept
    assert submitter.get(f"/api/v1/ccb/change_request/{record_id}").json["note"] is None
    services["update_record"] = good
    assert submitter.post(f"{instance_path}/retry", {}).status_code == 403
    retried = wf_api("boss").post(f"{instance_path}/retry", {})
    assert retried.status_code == 200 and retried.json["status"] == "completed"
    assert retried.json["error"] is None
    assert wf_api("boss").post(f"{instance_path}/retry", {}).status_code == 409
