"""The one place that reaches into SpiffWorkflow's internals, pinned to the version it knows.

- Spiff's timer events read the wall clock (`datetime.now(timezone.utc)` inside
  `SpiffWorkflow.bpmn.specs.event_definitions.timer`). A step must see the kernel's clock,
  so that module's `datetime` is replaced by a subclass whose `now()` answers the moment of
  the step being run (a context variable; outside a step, the wall).
  A timer date without an offset is read in the company's zone (Spiff used the server's).
- The state serializer's encoder mode is a flag on Spiff's shared registry.
- Sub-workflows (embedded and event subprocesses, call activities) have no engine of their
  own: `BpmnSubWorkflow.script_engine` is a read-only property answering the top's.
- Spiff's start-event parser reads message, signal, timer and conditional start events
  only: an error (or escalation) start event becomes a *none* start, so an event
  subprocess meant to handle an error ran as soon as the process started. `Parser` reads
  them, and keeps `isInterrupting`, which Spiff ignores.
- A multi-instance task without an output item merged each instance's data, input item
  included, back into the parent, so the next sequential instance failed with "input item
  already exists": the input item is now an instance's own variable. Loop and
  multi-instance tasks are connected to their instances' completion when parsed, not only
  when an instance is made, so one loaded into a fresh spec still completes.
- Event subprocesses: an interrupting start event that fires cancels the rest of its scope,
  and a scope whose main flow ended cancels its event subprocesses that are only waiting
  to start (`settle`). Spiff 3.2 does neither: a process with a waiting timer event
  subprocess never completed.
- Events delivered to one task, and errors raised to the boundary events and event
  subprocesses that enclose a task (`deliver`, `catch_error`, `trigger`).

`tests/workflow/test_spiff_adapter.py` pins each behaviour; upgrading SpiffWorkflow means
re-reading this module and those tests.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CONDITIONAL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TIMER_EVENT_XPATH,
)
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit, _EndJoin
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, MultiInstanceTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.event_parsers import SpiffStartEventParser
from SpiffWorkflow.util.task import TaskState

SUPPORTED = ("3.2.0",)
SPIFF_VERSION = version("SpiffWorkflow")
if SPIFF_VERSION not in SUPPORTED:  # pragma: no cover  (caught by the suite after an upgrade)
    raise ImportError(
        f"formwork.runtime.workflow.spiff knows SpiffWorkflow {', '.join(SUPPORTED)}, "
        f"not {SPIFF_VERSION}: re-check the adapter before upgrading"
    )

_STEP_NOW: contextvars.ContextVar[dt.datetime | None] = contextvars.ContextVar(
    "formwork_step_now", default=None
)
_OPEN = TaskState.READY | TaskState.STARTED | TaskState.WAITING
INTERRUPTED = "fw_interrupted"


class _StepDatetime(dt.datetime):
    """`datetime` whose `now()` is the moment of the step being run."""

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> Any:  # type: ignore[override]
        """Return the step's moment (in `tz`), or the wall's outside a step."""
        moment = _STEP_NOW.get()
        if moment is None:
            return dt.datetime.now(tz)
        return moment.astimezone(tz) if tz is not None else moment.astimezone().replace(tzinfo=None)


_timer.datetime = _StepDatetime  # type: ignore[misc]

_SERVER_ZONE = _timer.LOCALTZ
_STEP_ZONE: contextvars.ContextVar[dt.tzinfo | None] = contextvars.ContextVar(
    "formwork_step_zone", default=None
)


class _StepZone(dt.tzinfo):
    """The time zone of a timer date written without an offset: the company's during a
    step (Spiff used the server's), the server's outside one."""

    def _zone(self) -> dt.tzinfo:
        return _STEP_ZONE.get() or _SERVER_ZONE

    def utcoffset(self, moment: dt.datetime | None) -> dt.timedelta | None:
        """Return the zone's offset at `moment`."""
        return self._zone().utcoffset(_naive(moment))

    def dst(self, moment: dt.datetime | None) -> dt.timedelta | None:
        """Return the zone's daylight-saving shift at `moment`."""
        return self._zone().dst(_naive(moment))

    def tzname(self, moment: dt.datetime | None) -> str | None:
        """Return the zone's name at `moment`."""
        return self._zone().tzname(_naive(moment))


def _naive(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.replace(tzinfo=None) if moment is not None else None


_timer.LOCALTZ = _StepZone()


@contextmanager
def step_moment(moment: dt.datetime, zone: str | None = None) -> Iterator[None]:
    """Let Spiff's timers read `moment` as now, and dates without an offset in `zone` (the
    company's), while the block runs."""
    token = _STEP_NOW.set(moment)
    try:
        with step_zone(zone):
            yield
    finally:
        _STEP_NOW.reset(token)


@contextmanager
def step_zone(zone: str | None) -> Iterator[None]:
    """Let Spiff read timer dates without an offset in `zone` while the block runs."""
    token = _STEP_ZONE.set(ZoneInfo(zone) if zone else None)
    try:
        yield
    finally:
        _STEP_ZONE.reset(token)


@contextmanager
def encoder_mode(registry: Any) -> Iterator[None]:
    """Put Spiff's serializer registry in encoder mode (its task converter relies on it to
    leave data deltas for the JSON encoder); the caller holds the serializer's lock."""
    registry._encoder_mode = True
    try:
        yield
    finally:
        registry._encoder_mode = False


# --- parsing ------------------------------------------------------------------------------------

_START_EVENTS = (
    MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TIMER_EVENT_XPATH, CONDITIONAL_EVENT_XPATH,
    ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH,
)  # fmt: skip


class _StartEventParser(SpiffStartEventParser):  # type: ignore[misc]
    """Read every start event kind an event subprocess may have, and `isInterrupting`."""

    def create_task(self) -> Any:
        """Return the start event's spec, connected to its process's start."""
        task = self._create_task(self.get_event_definition(list(_START_EVENTS)))
        task.interrupting = self.node.get("isInterrupting", "true") != "false"
        self.spec.start.connect(task)
        return task


class Parser(SpiffBpmnParser):  # type: ignore[misc]
    """Spiff's BPMN parser with the start events of event subprocesses read right."""

    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("startEvent"): (
            _StartEventParser,
            SpiffBpmnParser.OVERRIDE_PARSER_CLASSES[full_tag("startEvent")][1],
        ),
    }


# --- multi-instance -----------------------------------------------------------------------------

_merge_child = MultiInstanceTask.merge_child


def _merge_child_without_item(self: Any, workflow: Any, child: Any) -> None:
    _merge_child(self, workflow, child)
    if self.output_item is None and self.input_item is not None:
        child.parent.data.pop(self.input_item.bpmn_id, None)


MultiInstanceTask.merge_child = _merge_child_without_item  # type: ignore[method-assign]


def connect_loops(specs: Iterable[Any]) -> None:
    """Connect each loop and multi-instance task to the completion of its instances.

    Spiff connects them only when it creates an instance, so a process loaded with running
    instances into a freshly parsed spec (another web worker, a restart) never merged them:
    a countersign (会签) started in one process stayed open for ever in the next.
    """
    for spec in specs:
        for task_spec in spec.task_specs.values():
            if isinstance(task_spec, LoopTask):
                child = spec.task_specs[task_spec.task_spec]
                if not child.completed_event.is_connected(task_spec.merge_child):
                    child.completed_event.connect(task_spec.merge_child)


# --- tasks and waiting events -------------------------------------------------------------------


def find_task(workflow: Any, task_id: UUID | str) -> Any | None:
    """Return a task of the workflow or of any of its sub-workflows (None when gone)."""
    wanted = task_id if isinstance(task_id, UUID) else UUID(str(task_id))
    if wanted in workflow.tasks:
        return workflow.tasks[wanted]
    for sub in workflow.subprocesses.values():
        if wanted in sub.tasks:
            return sub.tasks[wanted]
    return None


def waiting_tasks(workflow: Any) -> list[Any]:
    """Return the catching tasks that wait for an event, in every sub-workflow."""
    return [t for t in workflow.event_manager.tasks.values() if t.state == TaskState.WAITING]


def scopes(workflow: Any) -> list[Any]:
    """Return the top workflow and its unfinished sub-workflows."""
    return [workflow, *(s for s in workflow.subprocesses.values() if not s.completed)]


def triggers(scope: Any) -> list[tuple[str, Any]]:
    """Return (event subprocess name, start event spec) a scope starts only on an event."""
    top = scope.top_workflow
    found = []
    for name in getattr(scope.spec.start, "trigger_specs", ()):
        spec = top.subprocess_specs.get(name)
        for start in getattr(spec, "bpmn_start_events", ()):
            found.append((name, start))
    return found


def trigger(scope: Any, name: str, start_spec: Any) -> Any:
    """Start the event subprocess `name` of a scope; return its start event's task."""
    top = scope.top_workflow
    child_id = scope.spec.start.trigger_wf(scope.task_tree, name)
    _predict_after(scope.tasks[child_id])
    sub = top.subprocesses[child_id]
    return next(t for t in sub.tasks.values() if t.task_spec.name == start_spec.name)


def _predict_after(holder: Any) -> bool:
    """Give a triggered event subprocess the tasks that follow it. Spiff starts one without
    predicting them, so when it ended nothing ran after it and the process never reached
    its end (its data was lost). Return True when tasks were added."""
    alive = TaskState.STARTED | TaskState.COMPLETED
    if holder.children or not holder.task_spec.outputs or not holder.state & alive:
        return False
    holder.task_spec._predict(holder, mask=TaskState.NOT_FINISHED_MASK)
    if holder.state == TaskState.COMPLETED:
        for child in holder.children:
            child.task_spec._update(child)
    return True


def deliver(
    task: Any, definition: Any, payload: Any, correlation: Mapping[str, Any] | None = None
) -> None:
    """Give one waiting catch event (or a triggered start event) the event of `definition`
    (its own, or one of an event-based gateway's) with a payload.

    Formwork chose the receiver by correlation already, so a message does not go through
    Spiff's own correlation: it would evaluate each property's retrieval expression over
    the payload (and fail when the payload names the value differently) and refuse a
    message whose correlations differ from the workflow's. The values given are recorded
    in the workflow's correlations the way Spiff keeps them.
    """
    event = BpmnEvent(definition, payload=payload)
    if (
        isinstance(definition, MessageEventDefinition)
        and task.task_spec.event_definition is definition
    ):
        _remember(task.workflow, definition, correlation or {})
        definition.update_internal_data(task, event)  # the payload, under the message's name
        task._set_internal_data(event_fired=True)
        if task.state != TaskState.WAITING:
            task._set_state(TaskState.WAITING)
    else:
        event.correlations = dict(getattr(task.workflow, "correlations", None) or {})
        task.task_spec.catch(task, event)
    task.task_spec._update(task)


def _remember(workflow: Any, definition: Any, correlation: Mapping[str, Any]) -> None:
    for prop in getattr(definition, "correlation_properties", ()):
        if prop.name in correlation:
            for key in prop.correlation_keys:
                workflow.correlations.setdefault(key, {})[prop.name] = correlation[prop.name]


# --- errors -------------------------------------------------------------------------------------


def catch_error(task: Any, code: str, payload: Any) -> Any | None:
    """Raise a BPMN error at a failed task; return the event that caught it (None: uncaught).

    The error goes to the task's own error boundary events, then to the error event
    subprocesses of its scope, then to the boundary events of the subprocess holding it and
    that scope's event subprocesses, up to the process. A catcher naming the code wins over
    a catch-all one at the same level.
    """
    top = task.workflow.top_workflow
    node, scope = task, task.workflow
    while True:
        caught = _catch_at_boundary(node, code, payload)
        if caught is None:
            caught = _catch_in_event_subprocess(scope, code, payload)
        if caught is not None or scope is top:
            return caught
        node = top.get_task_from_id(scope.parent_task_id)
        scope = node.workflow


def _matching(definition: Any, code: str) -> int:
    if not isinstance(definition, ErrorEventDefinition):
        return 0
    if definition.code == code:
        return 2
    return 1 if definition.code in (None, "") else 0


def _best(candidates: list[tuple[Any, Any]], code: str) -> Any | None:
    ranked = [(_matching(d, code), c) for c, d in candidates]
    ranked = [r for r in ranked if r[0]]
    return max(ranked, key=lambda r: r[0])[1] if ranked else None


def _throw(catcher: Any, code: str, payload: Any) -> None:
    definition = catcher.task_spec.event_definition
    event = BpmnEvent(type(definition)(definition.name, code=code), payload=payload)
    catcher.task_spec.catch(catcher, event)
    catcher.task_spec._update(catcher)


def _catch_at_boundary(node: Any, code: str, payload: Any) -> Any | None:
    parent = node.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return None
    waiting = [c for c in parent.children if c is not node and c.state == TaskState.WAITING]
    catcher = _best([(c, c.task_spec.event_definition) for c in waiting], code)
    if catcher is not None:
        _throw(catcher, code, payload)
    return catcher


def _catch_in_event_subprocess(scope: Any, code: str, payload: Any) -> Any | None:
    chosen = _best([((n, s), s.event_definition) for n, s in triggers(scope)], code)
    if chosen is None:
        return None
    start = trigger(scope, *chosen)
    _throw(start, code, payload)
    return start


# --- event subprocesses -------------------------------------------------------------------------


def settle(workflow: Any) -> bool:
    """Apply what Spiff leaves out for event subprocesses; return True when tasks changed
    (run the engine again then)."""
    changed = False
    for scope in scopes(workflow):
        for holder in _event_subprocess_tasks(scope):
            changed = _predict_after(holder) or changed
        changed = _interrupt(scope) or changed
        changed = _close_idle(scope) or changed
    return changed


def _event_subprocess_tasks(scope: Any) -> list[Any]:
    # The main flow starts with a start event; a subprocess right under a scope's start task
    # is an event subprocess (Spiff parses those with a timer start as plain subprocesses).
    return [c for c in scope.task_tree.children if isinstance(c.task_spec, SubWorkflowTask)]


def _interrupt(scope: Any) -> bool:
    top = scope.top_workflow
    for holder in _event_subprocess_tasks(scope):
        sub = top.subprocesses.get(holder.id)
        if sub is None or holder.internal_data.get(INTERRUPTED):
            continue
        started = [
            t for t in sub.tasks.values()
            if isinstance(t.task_spec, StartEvent) and t.task_spec.bpmn_id is not None
            and t.state == TaskState.COMPLETED and getattr(t.task_spec, "interrupting", False)
        ]  # fmt: skip
        if started:
            holder.internal_data[INTERRUPTED] = True
            _cancel_scope_except(scope, holder)
            return True
    return False


def _cancel_scope_except(scope: Any, keep: Any) -> None:
    for child in list(scope.task_tree.children):
        if child is not keep:
            child.cancel()
    for end in _waiting_ends(scope):  # the event subprocess may have ended already
        end.task_spec._update(end)


def _waiting_ends(scope: Any) -> list[Any]:
    return [
        t for t in scope.tasks.values()
        if isinstance(t.task_spec, _EndJoin) and t.state == TaskState.WAITING
    ]  # fmt: skip


def _close_idle(scope: Any) -> bool:
    ends = _waiting_ends(scope)
    holders = [h for h in _event_subprocess_tasks(scope) if h.state & _OPEN]
    if not ends or not holders:
        return False
    main = [t for t in scope.tasks.values() if t.state & _OPEN and t not in ends + holders]
    if main:  # the main flow is still running somewhere
        return False
    top = scope.top_workflow
    if not all(_only_waiting_to_start(top.subprocesses.get(h.id)) for h in holders):
        return False
    for holder in holders:
        holder.cancel()
    for end in ends:
        end.task_spec._update(end)
    return True


def _only_waiting_to_start(sub: Any) -> bool:
    if sub is None:
        return True
    busy = [t for t in sub.tasks.values() if t.state & _OPEN]
    return all(isinstance(t.task_spec, StartEvent) and t.state == TaskState.WAITING for t in busy)
