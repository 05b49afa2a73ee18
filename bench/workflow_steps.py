"""Workflow step costs on SQLite: one task completion through the API against the same step
in memory, the 10th against the 200th completion of a looping process, and the inbox query
among 100,000 open tasks. Prints the figures and a summary; exit 1 when a target is missed.

    .venv/bin/python bench/workflow_steps.py [--db FOLDER] [--completions 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (  # noqa: E402
    Timing,
    admin_token,
    auth_headers,
    make_app,
    open_session,
    print_table,
    settle,
    timed,
    verdict,
)
from formwork.runtime.security import Principal, system_principal  # noqa: E402
from formwork.runtime.workflow.deploy import deploy, parse_process  # noqa: E402
from formwork.runtime.workflow.engine import SafeScriptEngine  # noqa: E402
from formwork.runtime.workflow.models import ProcessInstance, TaskRow  # noqa: E402
from formwork.runtime.workflow.tasks import inbox  # noqa: E402

LOOP = Path(__file__).resolve().parents[1] / "tests" / "workflow" / "bpmn" / "loop.bpmn"


def api_completions(app: Any, token: str, count: int) -> tuple[Timing, dict[int, float]]:
    """Complete `count` tasks of one looping instance through the API; time each."""
    client = app.test_client()
    headers = auth_headers(token)
    started = client.post(
        "/api/v1/processes",
        json={"process": "loop", "data": {"count": 0, "limit": count + 10}},
        headers=headers,
    )
    task_id = started.json["tasks"][0]["id"]
    timing = Timing("api")
    by_number: dict[int, float] = {}
    for number in range(1, count + 1):
        path = f"/api/v1/tasks/{task_id}/complete"
        response = timed(
            timing, lambda p=path: client.post(p, json={"action": "approve"}, headers=headers)
        )
        assert response.status_code == 200, response.json
        by_number[number] = timing.samples[-1]
        task_id = response.json["tasks"][0]["id"]
    return timing, by_number


def memory_completions(count: int) -> Timing:
    """Run the same step with SpiffWorkflow in memory (safe engine, no database)."""
    parsed = parse_process(LOOP.read_text("utf-8"))
    workflow = BpmnWorkflow(parsed.spec, script_engine=SafeScriptEngine())
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data.update({"count": 0, "limit": count + 10})
    workflow.do_engine_steps()
    timing = Timing("memory")
    for _ in range(count):
        task = workflow.get_tasks(state=TaskState.READY, manual=True)[0]

        def step(t: Any = task) -> None:
            t.set_data(decision="approve")
            t.run()
            workflow.do_engine_steps()

        timed(timing, step)
    return timing


def growth(by_number: dict[int, float], around: int, width: int = 5) -> float:
    """Return the median of the completions around number `around` (less noise than one)."""
    window = sorted(
        by_number[n] for n in range(around - width, around + width + 1) if n in by_number
    )
    return window[len(window) // 2]


def fill_inbox(app: Any, total: int) -> Principal:
    """Insert `total` open task rows spread over 1,000 users and 20 roles; return one user."""
    now = dt.datetime.now(dt.UTC)
    with open_session(app) as session:
        definition_id = session.scalar(sa.text("SELECT id FROM fw_wf_definitions LIMIT 1"))
        instance = ProcessInstance(definition_id=definition_id, process_key="loop", state="{}")
        session.add(instance)
        session.flush()
        rows = [
            {
                "id": f"bench-{i:08d}", "instance_id": instance.id, "process_key": "loop",
                "step": "work", "name": "Check", "lane": f"role{i % 20}", "role": f"role{i % 20}",
                "assignee_id": (i % 1000) + 10_000 if i % 2 else None, "status": "ready",
                "created_at": now - dt.timedelta(seconds=i), "title": f"Request {i}",
                "due_at": now + dt.timedelta(hours=(i % 96) - 48),
            }
            for i in range(total)
        ]  # fmt: skip
        session.execute(sa.insert(TaskRow), rows)
        session.commit()
    return Principal(10_007, "u7", frozenset({"role7"}))


def inbox_timing(app: Any, principal: Principal, rounds: int = 50) -> Timing:
    """Time the inbox query of one user (first page, 50 tasks)."""
    timing = Timing("inbox")
    now = dt.datetime.now(dt.UTC)
    with open_session(app) as session:
        inbox(session, principal, {}, now)  # warm
        for _ in range(rounds):
            items = timed(timing, lambda: inbox(session, principal, {}, now))
            assert items, "the inbox must not be empty"
    return timing


def main() -> int:
    """Run the three measurements and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=None, help="folder for the SQLite file")
    parser.add_argument("--completions", type=int, default=300)
    parser.add_argument("--inbox-rows", type=int, default=100_000)
    args = parser.parse_args()
    folder = args.db or Path(tempfile.mkdtemp(prefix="formwork-wf-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    app = make_app(folder)
    token = admin_token(app)
    with open_session(app) as session:
        deploy(session, LOOP.read_text("utf-8"), principal=system_principal())
        session.commit()

    settle()
    api, by_number = api_completions(app, token, max(args.completions, 210))
    settle()
    memory = memory_completions(max(args.completions, 210))
    tenth, two_hundredth = growth(by_number, 10), growth(by_number, 200)
    settle()
    start = time.perf_counter()
    principal = fill_inbox(app, args.inbox_rows)
    filled = time.perf_counter() - start
    listing = inbox_timing(app, principal)

    rate = 1000 / api.median_ms()
    ratio = api.median_ms() / memory.median_ms()
    growth_ratio = two_hundredth / tenth
    lines = [
        f"complete one task via API (SQLite): median {api.median_ms():7.2f} ms  "
        f"p90 {api.quantile_ms(0.9):7.2f} ms  -> {rate:6.0f} completions/s",
        f"same step in memory (SpiffWorkflow): median {memory.median_ms():7.3f} ms  "
        f"-> API / memory = {ratio:5.1f}x",
        f"10th completion {tenth * 1000:6.2f} ms, 200th {two_hundredth * 1000:6.2f} ms  "
        f"-> ratio {growth_ratio:4.2f}",
        f"inbox among {args.inbox_rows:,} open tasks (filled in {filled:4.1f} s): "
        f"median {listing.median_ms():6.2f} ms  p90 {listing.quantile_ms(0.9):6.2f} ms",
        "",
        f"target >= 100 completions/s end to end ....... {verdict(rate >= 100)}",
        f"target 200th / 10th completion <= 1.5 ........ {verdict(growth_ratio <= 1.5)}",
        f"target inbox median <= 20 ms ................. {verdict(listing.median_ms() <= 20)}",
    ]
    print_table("Workflow steps (SQLite)", lines)
    ok = rate >= 100 and growth_ratio <= 1.5 and listing.median_ms() <= 20
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
