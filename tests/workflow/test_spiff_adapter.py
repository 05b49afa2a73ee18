"""The SpiffWorkflow adapter (formwork/runtime/workflow/spiff.py): each behaviour it adds to
or changes in SpiffWorkflow 3.2 is pinned here, so an upgrade shows what to re-check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.bpmn.specs.event_definitions import timer

from formwork.runtime.workflow.spiff import SPIFF_VERSION, step_moment

BPMN = Path(__file__).parent / "bpmn"


def test_spiff_timers_see_the_step_moment_inside_a_step_only() -> None:
    assert SPIFF_VERSION == "3.2.0"
    moment = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    with step_moment(moment):
        assert timer.datetime.now(dt.UTC) == moment
        delta = timer.TimerEventDefinition.get_timedelta_from_start({"hours": 2})
        assert delta == dt.timedelta(hours=2)
    outside = timer.datetime.now(dt.UTC)
    assert abs(outside - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
    # the module still parses what Spiff stores
    assert timer.TimerEventDefinition.get_datetime("2030-01-02T03:04:00+00:00") == moment


def _workflow(name: str, services: Any = None) -> Any:
    from SpiffWorkflow.bpmn import BpmnWorkflow

    from formwork.runtime.workflow.deploy import parse_process
    from formwork.runtime.workflow.engine import SafeScriptEngine

    parsed = parse_process((BPMN / name).read_text("utf-8"))
    engine = SafeScriptEngine(services)
    return BpmnWorkflow(parsed.spec, dict(parsed.subprocess_specs), script_engine=engine), parsed


def test_sub_workflows_read_the_engine_of_the_top_workflow() -> None:
    from formwork.runtime.workflow.engine import SafeScriptEngine, attach_engine
    from formwork.runtime.workflow.steps import run_engine

    workflow, _parsed = _workflow("subprocess.bpmn")
    run_engine(workflow)
    other = SafeScriptEngine(None)
    attach_engine(workflow, other)
    assert workflow.subprocesses and all(
        sub.script_engine is other for sub in workflow.subprocesses.values()
    )
    with pytest.raises(AttributeError):  # read-only in 3.2: why attach_engine sets the top's
        next(iter(workflow.subprocesses.values())).script_engine = other


def test_error_start_events_are_read_and_keep_is_interrupting() -> None:
    from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
        ErrorEventDefinition,
    )

    _workflow_, parsed = _workflow("errors.bpmn")
    [start] = parsed.subprocess_specs["on_error"].bpmn_start_events
    assert isinstance(start.event_definition, ErrorEventDefinition)  # Spiff: a none start
    assert start.interrupting is True
    assert parsed.spec.start.trigger_specs == ["on_error"]  # not started with the process
    _wf, reminders = _workflow("subprocess.bpmn")
    [timer_start] = reminders.subprocess_specs["reminders"].bpmn_start_events
    assert timer_start.interrupting is False


def test_multi_instance_items_stay_with_their_instance_and_loops_are_connected() -> None:
    from SpiffWorkflow.util.task import TaskState

    from formwork.runtime.workflow.spiff import connect_loops

    workflow, parsed = _workflow("sequential.bpmn")
    workflow.get_tasks(state=TaskState.READY)[0].data.update({"signers": [1, 2], "candidates": []})
    workflow.do_engine_steps()
    for _ in range(2):
        [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
        task.run()
        workflow.do_engine_steps()
        assert "signer" not in task.parent.data  # Spiff merged it: "input item already exists"
    child = parsed.spec.task_specs[parsed.spec.task_specs["sign_all"].task_spec]
    assert child.completed_event.is_connected(parsed.spec.task_specs["sign_all"].merge_child)
    connect_loops([parsed.spec])  # idempotent


def test_a_message_is_delivered_without_spiffs_correlation_pass() -> None:
    from formwork.runtime.workflow.messages import waits
    from formwork.runtime.workflow.spiff import deliver
    from formwork.runtime.workflow.steps import run_engine

    workflow, _parsed = _workflow("shipping.bpmn")
    workflow.get_tasks(state=16)[0].data.update({"shipment_no": "S-1"})
    run_engine(workflow)
    wait = next(w for w in waits(workflow) if w.name == "goods_received")
    # The payload names the key differently from the retrieval expression (shipment_no).
    deliver(wait.receiver(), wait.definition, {"received_by": "x"}, {"shipment": "S-1"})
    run_engine(workflow)
    assert [w.name for w in waits(workflow)] == ["season_open", "cancel_shipment"]
    assert workflow.correlations == {"MainCorrelationKey": {"shipment": "S-1"}}


def test_a_bpmn_error_goes_to_the_failed_tasks_own_boundary_first() -> None:
    from formwork.runtime.workflow.errors import ServiceError
    from formwork.runtime.workflow.steps import run_engine

    def charge(task: Any, name: str, params: dict[str, Any]) -> Any:
        raise ServiceError("card-declined", "declined")

    workflow, _parsed = _workflow("errors.bpmn", charge)
    workflow.get_tasks(state=16)[0].data.update({"amount": 1})
    run_engine(workflow)
    [ready] = workflow.get_tasks(state=16, manual=True)
    assert ready.task_spec.name == "fix_payment"
