"""What deploy and `pack check` verify of what a process may do (checks.py: its expressions):

- every end event of a bound process has an outcome (outcomes.py);
- every service task calls a registered service with its declared parameters, names its
  entity and field as quoted constants, and stays within the pack's reach (its own entities
  and those of the packs it depends on);
- a task's form declares only fields an approver may set: never a variable that assigns a
  step (assignee/due expressions), nor one the process computes (scripts, service results,
  DMN outputs), nor the platform's own names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from formwork.runtime.expressions import assigned_names, expression_names
from formwork.runtime.workflow.outcomes import DECISION, outcome_problems
from formwork.runtime.workflow.tasks import spec_form

RESERVED = frozenset({DECISION, "comment", "record_id", "entity", "assignee", "submitter"})
ASSIGNING = ("assignee", "due")


def process_problems(
    specs: Iterable[Any],
    binding: Mapping[str, Any] | None,
    services: Mapping[str, Any],
    packs: frozenset[str] | None = None,
    fields: Mapping[str, frozenset[str]] | None = None,
) -> list[str]:
    """Return every problem of a parsed process (its spec first, then its subprocesses).

    `packs` (the process's pack and those it depends on: what it may act on) and `fields`
    (entity key → field names, for the entities known) are given by `pack check`."""
    specs = list(specs)
    problems: list[str] = []
    if binding and binding.get("entity") and specs:
        problems += list(outcome_problems(specs[0], binding, specs[1:]))
    task_specs = [ts for spec in specs for ts in spec.task_specs.values()]
    for ts in task_specs:
        if hasattr(ts, "operation_name"):
            problems += list(_service_problems(ts, services, packs, fields))
    problems += list(_form_problems(task_specs))
    problems += list(_rule_problems(task_specs, binding))
    return problems


def _rule_problems(task_specs: list[Any], binding: Mapping[str, Any] | None) -> Iterator[str]:
    from formwork.runtime.workflow.assignment import rule_problem

    if binding and binding.get("self_approval") is not None:
        found = rule_problem(binding["self_approval"])
        if found:
            yield f"binding: {found}"
    for ts in task_specs:
        props = ((getattr(ts, "extensions", None) or {}).get("properties")) or {}
        if props.get("self_approval") is not None:
            found = rule_problem(props["self_approval"])
            if found:
                yield f"{_label(ts)}: {found}"


def _label(ts: Any) -> str:
    name = getattr(ts, "bpmn_name", None)
    return f"element '{ts.bpmn_id}'" + (f" ({name})" if name else "")


def _service_problems(
    ts: Any,
    services: Mapping[str, Any],
    packs: frozenset[str] | None,
    fields: Mapping[str, frozenset[str]] | None,
) -> Iterator[str]:
    spec = services.get(ts.operation_name)
    if spec is None:
        known = ", ".join(sorted(services))
        yield f"{_label(ts)}: unknown service '{ts.operation_name}' (known: {known})"
        return
    given = dict(getattr(ts, "operation_params", None) or {})
    for name in sorted(set(given) - set(spec.params)):
        yield f"{_label(ts)}: service '{spec.name}' has no parameter '{name}'"
    for name, param in spec.params.items():
        if param.required and name not in given:
            yield f"{_label(ts)}: service '{spec.name}' needs the parameter '{name}'"
    for group in spec.one_of:
        if not any(name in given for name in group):
            yield f"{_label(ts)}: service '{spec.name}' needs one of {', '.join(group)}"
    constants = {}
    for name, param in spec.params.items():
        if param.literal and name in given:
            value = _constant(given[name].get("value"))
            if not isinstance(value, str):
                yield f"{_label(ts)}: parameter '{name}' must be a quoted name, like 'pack.name'"
            constants[param.literal] = value
    yield from _reach_problems(ts, constants, packs, fields)


def _reach_problems(
    ts: Any,
    constants: Mapping[str, Any],
    packs: frozenset[str] | None,
    fields: Mapping[str, frozenset[str]] | None,
) -> Iterator[str]:
    entity = constants.get("entity")
    if not isinstance(entity, str):
        return
    pack = entity.partition(".")[0]
    if packs is not None and pack not in packs:
        yield (
            f"{_label(ts)}: the process may not act on '{entity}': only on its pack's entities "
            "and those of the packs it declares in `depends`"
        )
        return
    known_packs = {key.partition(".")[0] for key in fields or {}}
    if fields is not None and pack in known_packs and entity not in fields:
        yield f"{_label(ts)}: unknown entity '{entity}'"
        return
    field_name = constants.get("field")
    known = fields.get(entity) if fields is not None else None
    if known is not None and isinstance(field_name, str) and field_name not in known:
        yield f"{_label(ts)}: '{entity}' has no field '{field_name}'"


def _constant(text: Any) -> Any:
    try:
        return ast.literal_eval(str(text))
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return None


def routing_names(task_specs: Iterable[Any]) -> frozenset[str]:
    """Return the variables that assign steps or that the process computes itself."""
    names: set[str] = set(RESERVED)
    for ts in task_specs:
        props = ((getattr(ts, "extensions", None) or {}).get("properties")) or {}
        for key in ASSIGNING:
            if props.get(key):
                names |= expression_names(str(props[key]))
        if getattr(ts, "script", None):
            names |= assigned_names(str(ts.script))
        if getattr(ts, "result_variable", None):
            names.add(str(ts.result_variable))
        engine = getattr(ts, "dmnEngine", None)
        if engine is not None:
            names |= {str(o.name) for o in engine.decision_table.outputs if o.name}
    return frozenset(names)


def _form_problems(task_specs: list[Any]) -> Iterator[str]:
    protected = routing_names(task_specs)
    for ts in task_specs:
        try:
            form = spec_form(ts)
        except ValueError:
            continue  # the form itself is reported by the deploy check
        for name in sorted(set(form.get("properties") or ()) & protected):
            yield (
                f"{_label(ts)}: the form may not set '{name}': it assigns a step or is computed "
                "by the process; declare an approver field of its own (e.g. an approved amount)"
            )
