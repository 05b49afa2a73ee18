"""The outcome a record gets comes from the end event its process reached (DESIGN.md 14).

A binding maps each end event of the process to an outcome: `approved`, `rejected`,
`withdrawn` or a state of the pack's own (`{"state": "escalated", "editable": false}`).
Deploy and `pack check` refuse a bound process with an end event that has none; only a
process with a single plain end event may leave it out (it means approved). A reject on a
task whose process routes on `decision` runs that route (the BPMN's own rejection branch);
otherwise the platform ends the instance as rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.util.task import TaskState

from formwork.runtime.expressions import expression_names
from formwork.runtime.workflow.lifecycle import APPROVED

DECISION = "decision"


@dataclass(frozen=True)
class Outcome:
    """What reaching an end event gives the record."""

    state: str
    editable: bool = False


def end_events(spec: Any) -> list[Any]:
    """Return the end events of a process spec (not of its subprocesses)."""
    return sorted(
        (ts for ts in spec.task_specs.values() if isinstance(ts, EndEvent)),
        key=lambda ts: str(ts.bpmn_id),
    )


def outcome_problems(
    spec: Any, binding: Mapping[str, Any] | None, inner: Iterable[Any] = ()
) -> Iterator[str]:
    """Yield what is wrong with a binding's outcomes for a process (nothing when fine).

    `inner` are its subprocess specs: an event subprocess's end event may end the process
    too, so the binding may name it (it then maps that ending)."""
    declared = dict((binding or {}).get("outcomes") or {})
    ends = end_events(spec)
    ids = {str(ts.bpmn_id) for ts in ends}
    ids |= {str(ts.bpmn_id) for sub in inner for ts in end_events(sub)}
    for name in sorted(set(declared) - ids):
        yield f"outcomes name '{name}', which is not an end event of '{spec.name}'"
    if not declared and _single_plain_end(ends):
        return
    for ts in ends:
        if str(ts.bpmn_id) not in declared:
            yield (
                f"end event '{ts.bpmn_id}'"
                + (f" ({ts.bpmn_name})" if ts.bpmn_name else "")
                + " has no outcome: map it in the binding's `outcomes` "
                "(approved, rejected, withdrawn or a state of the pack's own)"
            )


def _single_plain_end(ends: list[Any]) -> bool:
    return len(ends) == 1 and isinstance(ends[0].event_definition, NoneEventDefinition)


def outcome_of(workflow: BpmnWorkflow, binding: Mapping[str, Any] | None) -> tuple[str, Outcome]:
    """Return the end event a completed workflow reached and the outcome it maps to.

    Raises LookupError when the end event has no outcome (the step then fails: a record is
    never approved by default).
    """
    reached = reached_end(workflow)
    if reached is None:
        raise LookupError("the process completed without reaching an end event")
    declared = dict((binding or {}).get("outcomes") or {})
    found = declared.get(reached)
    if found is None:
        ends = end_events(workflow.spec)
        if not declared and _single_plain_end(ends) and reached == str(ends[0].bpmn_id):
            return reached, Outcome(APPROVED)
        raise LookupError(f"end event '{reached}' has no outcome in the process binding")
    if isinstance(found, Mapping):
        return reached, Outcome(str(found["state"]), bool(found.get("editable")))
    return reached, Outcome(str(found))


def reached_end(workflow: BpmnWorkflow) -> str | None:
    """Return the id of the end event that ended a workflow: the last one of its top process
    reached, else the last one reached anywhere (an interrupting event subprocess's)."""
    done = [
        t
        for t in workflow.get_tasks(state=TaskState.COMPLETED)
        if isinstance(t.task_spec, EndEvent)
    ]
    top = [t for t in done if t.workflow is workflow]
    chosen = top or done
    if not chosen:
        return None
    last = max(chosen, key=lambda t: t.last_state_change)
    return str(last.task_spec.bpmn_id)


def routes_on_decision(task_spec: Any) -> bool:
    """Return True when the step's outgoing gateway routes on `decision` (the process has
    its own path for a rejection or a rework)."""
    return any(_mentions_decision(output) for output in task_spec.outputs)


def _mentions_decision(spec: Any) -> bool:
    for condition, _target in getattr(spec, "cond_task_specs", None) or ():
        text = condition.args[0] if hasattr(condition, "args") else condition
        if text and DECISION in _names(str(text)):
            return True
    return False


def _names(text: str) -> Iterable[str]:
    return expression_names(text)
