"""What a process is checked for before it is deployed (or its pack is installed).

- Every script, condition, timer, multi-instance, assignee, DMN, message and correlation
  expression, and every `{{ placeholder }}` of a task's instructions, must be accepted by
  the safe expression language.
- Timer expressions: a bare name that reads like an ISO 8601 duration, date or cycle is
  refused ("quote it: 'PT1S'"); a constant one is evaluated and parsed here, not when
  the process reaches it.
- Spiff extensions: only those Formwork implements are accepted; any other is refused with
  the reason, never silently ignored.
- A task form (`form` property, or a `formJsonSchemaFilename` resolved by deploy) must be
  a JSON Schema of type object.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jsonschema
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)

from formwork.runtime.errors import FieldError
from formwork.runtime.expressions import ExpressionError, check, check_script, evaluate

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
EXPRESSION_PROPERTIES = ("assignee", "due")
PROPERTIES = {
    "assignee": "an expression giving the user (id or name) a task is assigned to",
    "due": "an expression giving an ISO 8601 duration until the task is due",
    "form": "the task's form, a JSON Schema",
    "self_approval": "when the step would go to the submitter: escalate, skip, allow or "
    "escalate:<role> (assignment.py)",
}
EXTENSIONS = frozenset(
    {
        "properties", "property", "serviceTaskOperator", "parameters", "parameter",
        "calledDecisionId", "preScript", "postScript", "formJsonSchemaFilename",
        "instructionsForEndUser", "messageVariable", "messagePayload",
        "processVariableCorrelation", "propertyId", "expression", "payloadExpression",
        "variableName",
    }
)  # fmt: skip
REFUSED = {
    "formUiSchemaFilename": "Formwork lays out task forms from their JSON Schema; "
    "a UI schema would be ignored",
    "unitTests": "Formwork does not run script unit tests; keep them outside the BPMN",
    "taskMetadataValues": "task metadata is not shown or stored by Formwork",
    "signalButtonLabel": "Formwork shows no signal buttons; send signals through "
    "POST /api/v1/signals or a send_signal service task",
    "allowGuest": "Formwork has no guest tasks; every task needs a signed-in user",
    "guestConfirmation": "Formwork has no guest tasks",
    "retry": "service retries are not supported; a failed step is retried by the worker "
    "or an administrator",
}
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# A name that is really an ISO 8601 duration (P2D, PT48H) or a basic-format time (T1000).
_ISO_LOOKING = re.compile(
    r"P(?=\w*\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?|T\d{2,6}", re.IGNORECASE
)
_CHECK_MOMENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def error(pointer: str, detail: str) -> FieldError:
    """Return a deploy problem about a BPMN/DMN document."""
    return FieldError(pointer, "bpmn", {"detail": detail})


def element_error(
    task_spec: Any, lines: Mapping[str, int], kind: str, exc: Exception | str
) -> FieldError:
    """Return a problem naming the BPMN element, its line and what was refused."""
    bpmn_id = getattr(task_spec, "bpmn_id", None) or task_spec.name
    name = getattr(task_spec, "bpmn_name", None)
    label = f"'{bpmn_id}'" + (f" ({name})" if name else "")
    line = lines.get(bpmn_id)
    at = f" at line {line}" if line else ""
    return error("/bpmn", f"element {label}{at}: {kind} refused: {exc}")


# --- expressions --------------------------------------------------------------------------------


def check_specs(specs: Iterable[Any], lines: Mapping[str, int]) -> Iterator[FieldError]:
    """Yield a problem for every expression, timer or form a process may not have."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            for kind, text in _texts(task_spec):
                try:
                    (check_script if kind == "script" else check)(text)
                except ExpressionError as exc:
                    yield element_error(task_spec, lines, kind, exc)
            for problem in _timer_problems(task_spec):
                yield element_error(task_spec, lines, "timer", problem)
            props = _properties(task_spec)
            if props.get("form"):
                form_problem = form_schema_problem(props["form"])
                if form_problem:
                    yield element_error(task_spec, lines, "form", form_problem)


def _properties(task_spec: Any) -> dict[str, str]:
    return dict(((getattr(task_spec, "extensions", None) or {}).get("properties")) or {})


def form_schema_problem(schema: Any) -> str | None:
    """Return why a task form (JSON text or a parsed schema) is not usable, or None."""
    try:
        parsed = json.loads(schema) if isinstance(schema, str) else schema
        jsonschema.Draft202012Validator.check_schema(parsed)
    except (ValueError, jsonschema.SchemaError) as exc:
        return f"not a JSON Schema: {str(exc).splitlines()[0]}"
    if not isinstance(parsed, dict) or parsed.get("type") != "object":
        return "a form must be a JSON Schema of type 'object'"
    return None


def _texts(task_spec: Any) -> Iterator[tuple[str, str]]:
    for attr in ("script", "prescript", "postscript"):
        if getattr(task_spec, attr, None):
            yield "script", getattr(task_spec, attr)
    for condition, _target in getattr(task_spec, "cond_task_specs", None) or ():
        text = condition.args[0] if hasattr(condition, "args") else condition
        if text:
            yield "condition", str(text)
    for attr in ("cardinality", "condition"):
        value = getattr(task_spec, attr, None)
        if isinstance(value, str) and value:
            yield attr, value
    event = getattr(task_spec, "event_definition", None)
    if event is not None:
        yield from _event_texts(event)
    for param in (getattr(task_spec, "operation_params", None) or {}).values():
        yield "service parameter", str(param.get("value", ""))
    props = _properties(task_spec)
    for name in EXPRESSION_PROPERTIES:
        if props.get(name):
            yield f"{name} expression", props[name]
    for placeholder in placeholders(_extensions(task_spec).get("instructionsForEndUser")):
        yield "instructions placeholder", placeholder
    engine = getattr(task_spec, "dmnEngine", None)
    if engine is not None:
        yield from _dmn_texts(engine.decision_table)


def _extensions(task_spec: Any) -> dict[str, Any]:
    return dict(getattr(task_spec, "extensions", None) or {})


def placeholders(text: Any) -> list[str]:
    """Return the expressions of the `{{ expression }}` placeholders of a text."""
    return [m.strip() for m in _PLACEHOLDER.findall(text)] if isinstance(text, str) else []


def _event_texts(event: Any) -> Iterator[tuple[str, str]]:
    for inner in getattr(event, "event_definitions", None) or ():
        yield from _event_texts(inner)
    expression = getattr(event, "expression", None)
    if isinstance(expression, str) and expression:
        yield "event expression", expression
    for attr in ("correlation_properties", "process_correlations"):
        for prop in getattr(event, attr, None) or ():
            if prop.retrieval_expression:
                yield "correlation expression", prop.retrieval_expression


def _dmn_texts(table: Any) -> Iterator[tuple[str, str]]:
    for item in table.inputs:
        if item.expression:
            yield "DMN input", item.expression
    for rule in table.rules:
        for entry in rule.inputEntries:
            for lhs in entry.lhs:
                if lhs is not None:
                    yield "DMN cell", _dmn_match(entry.input.expression or "", lhs)
        for entry in rule.outputEntries:
            if entry.text:
                yield "DMN output", entry.text


def _dmn_match(input_expr: str, match: str) -> str:
    """Return the expression the DMN engine will evaluate for one input cell."""
    match = re.sub(r"(\?)(?=(?:[^'\"]|['\"][^'\"]*['\"])*$)", "dmninputexpr", match)
    if "dmninputexpr" in match:
        return match
    try:
        ast.parse(match)
    except SyntaxError:
        return f"{input_expr} {match}"
    return f"({input_expr}) == ({match})"


# --- timers -------------------------------------------------------------------------------------


def _timers(event: Any) -> Iterator[Any]:
    for inner in getattr(event, "event_definitions", None) or ():
        yield from _timers(inner)
    if isinstance(event, TimerEventDefinition):
        yield event


def _timer_problems(task_spec: Any) -> Iterator[str]:
    for timer in _timers(getattr(task_spec, "event_definition", None)):
        problem = timer_problem(timer)
        if problem:
            yield problem


def timer_problem(timer: Any) -> str | None:
    """Return why a timer's expression cannot work, when that can be known at deploy."""
    text = str(timer.expression or "").strip()
    if not text:
        return "the timer has no expression"
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None  # reported by the expression check
    if isinstance(tree.body, ast.Name) and _ISO_LOOKING.fullmatch(text):
        return f"{text!r} reads as a variable name; quote it: '{text}'"
    if any(isinstance(node, ast.Name) for node in ast.walk(tree)):
        return None  # depends on the process data: checked when the timer starts
    try:
        value = evaluate(text, {}, now=_CHECK_MOMENT)
    except ExpressionError as exc:
        return str(exc)
    return _timer_value_problem(timer, value)


def _timer_value_problem(timer: Any, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{timer.expression!r} gives {value!r}, not ISO 8601 text; quote it"
    try:
        if isinstance(timer, DurationTimerEventDefinition):
            TimerEventDefinition.parse_iso_duration(value)
        elif isinstance(timer, TimeDateEventDefinition):
            TimerEventDefinition.get_datetime(value)
        elif isinstance(timer, CycleTimerEventDefinition):
            TimerEventDefinition.parse_iso_recurring_interval(value)
    except Exception:  # noqa: BLE001  (Spiff's parsers raise bare Exception)
        kind = {
            DurationTimerEventDefinition: "an ISO 8601 duration such as 'PT2H' or 'P2D'",
            TimeDateEventDefinition: "an ISO 8601 date and time such as '2026-03-16T10:00'",
            CycleTimerEventDefinition: "an ISO 8601 cycle such as 'R3/PT1H'",
        }.get(type(timer), "an ISO 8601 value")
        return f"{value!r} is not {kind}"
    return None


# --- spiff extensions ---------------------------------------------------------------------------


def extension_problems(tree: Any, lines: Mapping[str, int]) -> Iterator[FieldError]:
    """Yield a problem for every Spiff extension element Formwork does not implement."""
    refused: set[Any] = set()
    for node in tree.iter(f"{{{SPIFF_NS}}}*"):
        if any(parent in refused for parent in node.iterancestors()):
            continue  # inside a refused extension: said once, for the extension
        name = node.tag.split("}", 1)[1]
        owner = _owner_id(node)
        at = f"element '{owner}'" + (f" at line {node.sourceline}" if node.sourceline else "")
        if name == "property":
            prop = node.get("name", "")
            if prop not in PROPERTIES:
                known = ", ".join(sorted(PROPERTIES))
                yield error("/bpmn", f"{at}: spiffworkflow property '{prop}' is not one "
                                     f"Formwork reads ({known})")  # fmt: skip
        elif name not in EXTENSIONS:
            refused.add(node)
            reason = REFUSED.get(name, "Formwork does not implement it")
            yield error("/bpmn", f"{at}: spiffworkflow:{name} refused: {reason}")


def _owner_id(node: Any) -> str:
    current = node
    while current is not None:
        found = current.get("id")
        if found and not current.tag.startswith(f"{{{SPIFF_NS}}}"):
            return str(found)
        current = current.getparent()
    return "?"
