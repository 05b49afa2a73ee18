"""Stored states from each release load and run to completion, so SpiffWorkflow (or the
state layout) can change while instances are running.

tests/workflow/corpus/*.json hold states as a release stored them, with the BPMN they
belong to under corpus/bpmn/. Each is loaded through today's serializer (migrating its
format), then run at the engine level — every user task approved, every timer waited
for — saving and loading the state at each step, until the process completes.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from SpiffWorkflow.util.task import TaskState

from formwork.runtime.workflow.deploy import parse_process
from formwork.runtime.workflow.engine import SafeScriptEngine, StateSerializer
from formwork.runtime.workflow.models import ProcessInstance
from formwork.runtime.workflow.service import WorkflowRuntime
from formwork.runtime.workflow.spiff import SPIFF_VERSION, step_moment
from formwork.runtime.workflow.state import FORMAT, StateFormatError, unwrap
from formwork.runtime.workflow.steps import run_engine
from formwork.runtime.workflow.timers import next_timer
from tests.workflow.support import act, deploy_file, kernel_of, ready, service_for

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.json"))
START = dt.datetime(2026, 3, 16, 2, tzinfo=dt.UTC)  # when the corpus states were stored


def corpus(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text("utf-8")))


def parsed(entry: dict[str, Any]) -> Any:
    text = (CORPUS / "bpmn" / entry["bpmn"]).read_text("utf-8")
    dmn = [(CORPUS / "bpmn" / name).read_text("utf-8") for name in entry["dmn"]]
    return parse_process(text, dmn, entry["process"])


def engine(moment: dt.datetime) -> SafeScriptEngine:
    return SafeScriptEngine(lambda task, name, params: {"service": name}, moment)


def run_to_completion(serializer: StateSerializer, spec: Any, text: str) -> Any:
    moment = START
    for _ in range(300):
        workflow = serializer.load(text, spec.spec, spec.subprocess_specs, engine(moment))
        with step_moment(moment):
            run_engine(workflow)
            if workflow.is_completed():
                return workflow
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            for task in ready:
                task.set_data(decision="approve", comment="corpus")
                task.run()
            if not ready:  # waiting for a timer: the next one is due a second later
                due = next_timer(workflow)
                assert due is not None, "the process waits for nothing it can be given"
                moment = max(moment, due) + dt.timedelta(seconds=1)
        text = serializer.dump(workflow)
    raise AssertionError("the process did not complete")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_each_stored_state_loads_and_runs_to_completion(path):
    entry = corpus(path)
    assert {"release", "format", "spiff", "bpmn", "process", "state"} <= set(entry)
    done = run_to_completion(StateSerializer(), parsed(entry), entry["state"])
    assert done.is_completed()


def test_the_corpus_has_every_format_up_to_todays():
    formats = {corpus(p)["format"] for p in FILES}
    assert formats == set(range(FORMAT + 1))  # a new format comes with its stored states


def test_states_are_stored_in_an_envelope_and_old_ones_still_load(app, session, people):
    deploy_file(session, "subprocess.bpmn")
    boss = service_for(app, session)
    started = boss.start("sub_flow", {})
    session.commit()
    stored = json.loads(session.get(ProcessInstance, started.id).state)
    assert (stored["format"], stored["spiff"]) == (FORMAT, SPIFF_VERSION) == (1, "3.2.0")
    old = json.dumps(stored["state"])  # as 0.1.0 stored it: bare, no envelope
    session.execute(
        sa.update(ProcessInstance).where(ProcessInstance.id == started.id).values(state=old)
    )
    session.commit()
    act(boss, ready(session, started.id)["inner_review"])
    act(boss, ready(session, started.id)["final_check"])
    assert boss.read(session.get(ProcessInstance, started.id)).is_completed()


def test_a_state_from_a_newer_formwork_is_refused_with_the_reason():
    newer = json.dumps({"format": FORMAT + 1, "spiff": "9.0.0", "state": {}})
    with pytest.raises(StateFormatError, match="this Formwork reads up to format 1"):
        unwrap(newer)
    with pytest.raises(StateFormatError):
        unwrap('{"nothing": 1}')


def test_a_countersign_started_in_one_process_completes_in_another(app, session, people):
    deploy_file(session, "countersign.bpmn")
    boss = service_for(app, session)
    signers = [people[n]["id"] for n in ("reviewer", "finance")]
    started = boss.start("countersign", {"signers": signers, "candidates": signers[:1]})
    session.commit()
    act(boss, ready(session, started.id)["sign_all"])
    # Another web worker, or a restart: the spec is parsed afresh (a cold cache).
    kernel_of(app).workflow = WorkflowRuntime()
    act(service_for(app, session), ready(session, started.id)["sign_all"])
    assert list(ready(session, started.id)) == ["sign_any"]  # it stayed open for ever
