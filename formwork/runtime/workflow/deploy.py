"""Deploy process definitions: refuse unsafe XML and unsafe expressions, store versions."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
import sqlalchemy as sa
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import VALIDATOR, SpiffBpmnParser
from sqlalchemy.orm import Session

from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.expressions import ExpressionError, check, check_script
from formwork.runtime.security import Principal
from formwork.runtime.workflow.models import ProcessDefinition

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
MAX_SOURCE = 2 * 1024 * 1024
EXPRESSION_PROPERTIES = ("assignee", "due")
BINDING_KEYS = frozenset(
    {"entity", "state_field", "title", "lanes", "outcomes", "self_approval", "initiator_lanes"}
)


@dataclass(frozen=True)
class ParsedProcess:
    """A parsed, checked process: its key, name, spec and the specs of its subprocesses."""

    key: str
    name: str
    spec: Any
    subprocess_specs: Mapping[str, Any]


def _xml(source: str | bytes, pointer: str) -> Any:
    raw = source.encode("utf-8") if isinstance(source, str) else source
    if len(raw) > MAX_SOURCE:
        raise ValidationFailed([_error(pointer, f"the document is larger than {MAX_SOURCE} bytes")])
    if _DOCTYPE.search(raw):
        raise ValidationFailed([_error(pointer, "XML with a DOCTYPE or ENTITY is refused")])
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        tree = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise ValidationFailed([_error(pointer, f"line {exc.lineno}: {exc.msg}")]) from None
    # The byte check above misses a DOCTYPE in another encoding (UTF-16): ask the parser too.
    info = tree.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise ValidationFailed([_error(pointer, "XML with a DOCTYPE or ENTITY is refused")])
    return tree


def _error(pointer: str, detail: str) -> FieldError:
    return FieldError(pointer, "bpmn", {"detail": detail})


def _lines(tree: Any) -> dict[str, int]:
    return {el.get("id"): el.sourceline for el in tree.iter() if el.get("id")}


def _process_id(tree: Any, wanted: str | None) -> str:
    ns = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
    processes = tree.xpath(".//bpmn:process", namespaces=ns)
    ids = [p.get("id") for p in processes if p.get("isExecutable", "true") == "true"]
    if wanted is not None:
        if wanted not in ids:
            raise ValidationFailed([_error("/bpmn", f"no executable process '{wanted}'")])
        return wanted
    if len(ids) != 1:
        raise ValidationFailed(
            [_error("/bpmn", f"expected one executable process, found {len(ids)}: {ids}")]
        )
    return str(ids[0])


def parse_process(bpmn: str | bytes, dmn: Sequence[str | bytes] = (), key: str | None = None):  # type: ignore[no-untyped-def]
    """Parse and check BPMN (and DMN) sources; every unsafe expression is reported."""
    tree = _xml(bpmn, "/bpmn")
    dmn_trees = [_xml(text, f"/dmn/{i}") for i, text in enumerate(dmn)]
    lines = _lines(tree)
    parser = SpiffBpmnParser(validator=VALIDATOR)
    try:
        for i, dmn_tree in enumerate(dmn_trees):
            lines.update(_lines(dmn_tree))
            parser.add_dmn_xml(dmn_tree, filename=f"dmn[{i}]")
        parser.add_bpmn_xml(tree, filename="bpmn")
        process_id = _process_id(tree, key)
        spec = parser.get_spec(process_id)
        subprocess_specs = parser.get_subprocess_specs(process_id)
    except ValidationException as exc:
        raise ValidationFailed([_error("/bpmn", _describe(exc, lines))]) from None
    except SpiffWorkflowException as exc:
        raise ValidationFailed([_error("/bpmn", str(exc))]) from None
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
        # Spiff's parser assumes well-formed BPMN; odd but valid XML trips it. Say so, not 500.
        detail = f"cannot be read as BPMN/DMN: {type(exc).__name__}: {exc}"
        raise ValidationFailed([_error("/bpmn", detail)]) from None
    problems = list(check_specs([spec, *subprocess_specs.values()], lines))
    if problems:
        raise ValidationFailed(problems)
    return ParsedProcess(process_id, spec.description or process_id, spec, subprocess_specs)


def _describe(exc: ValidationException, lines: Mapping[str, int]) -> str:
    where = []
    if getattr(exc, "id", ""):
        where.append(f"element '{exc.id}'")
    line = getattr(exc, "line_number", "") or lines.get(getattr(exc, "id", ""), "")
    if line:
        where.append(f"line {line}")
    message = exc.args[0] if exc.args else str(exc)
    return f"{', '.join(where)}: {message}" if where else str(message)


# --- the expression check ---------------------------------------------------------------------


def check_specs(specs: Iterable[Any], lines: Mapping[str, int]) -> Iterator[FieldError]:
    """Yield a problem for every script or expression the safe language refuses."""
    for spec in specs:
        for task_spec in spec.task_specs.values():
            for kind, text in _texts(task_spec):
                try:
                    (check_script if kind == "script" else check)(text)
                except ExpressionError as exc:
                    yield _element_error(task_spec, lines, kind, exc)
            form = ((getattr(task_spec, "extensions", None) or {}).get("properties") or {}).get(
                "form"
            )
            if form:
                problem = _form_problem(form)
                if problem:
                    yield _element_error(task_spec, lines, "form", ValueError(problem))


def _form_problem(text: str) -> str | None:
    try:
        schema = json.loads(text)
        jsonschema.Draft202012Validator.check_schema(schema)
    except (ValueError, jsonschema.SchemaError) as exc:
        return f"not a JSON Schema: {str(exc).splitlines()[0]}"
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return "a form must be a JSON Schema of type 'object'"
    return None


def _element_error(
    task_spec: Any, lines: Mapping[str, int], kind: str, exc: Exception
) -> FieldError:
    bpmn_id = getattr(task_spec, "bpmn_id", None) or task_spec.name
    name = getattr(task_spec, "bpmn_name", None)
    label = f"'{bpmn_id}'" + (f" ({name})" if name else "")
    line = lines.get(bpmn_id)
    at = f" at line {line}" if line else ""
    return _error("/bpmn", f"element {label}{at}: {kind} refused: {exc}")


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
    props = (getattr(task_spec, "extensions", None) or {}).get("properties") or {}
    for name in EXPRESSION_PROPERTIES:
        if props.get(name):
            yield f"{name} expression", props[name]
    engine = getattr(task_spec, "dmnEngine", None)
    if engine is not None:
        yield from _dmn_texts(engine.decision_table)


def _event_texts(event: Any) -> Iterator[tuple[str, str]]:
    for inner in getattr(event, "event_definitions", None) or ():
        yield from _event_texts(inner)
    expression = getattr(event, "expression", None)
    if isinstance(expression, str) and expression:
        yield "event expression", expression


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


# --- storing versions -------------------------------------------------------------------------


def source_hash(bpmn: str, dmn: Sequence[str], binding: Mapping[str, Any] | None) -> str:
    """Return the hash that identifies one deployment's sources."""
    payload = json.dumps({"bpmn": bpmn, "dmn": list(dmn), "binding": binding}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def check_binding(binding: Any, entities: Iterable[str] | None = None) -> dict[str, Any] | None:
    """Return a valid binding (process ↔ entity) or raise ValidationFailed."""
    if binding is None:
        return None
    if not isinstance(binding, dict) or not isinstance(binding.get("entity"), str):
        raise ValidationFailed([FieldError("/binding", "invalid", {"detail": "needs 'entity'"})])
    unknown = set(binding) - BINDING_KEYS
    if unknown:
        detail = f"unknown keys {sorted(unknown)}"
        raise ValidationFailed([FieldError("/binding", "invalid", {"detail": detail})])
    if entities is not None and binding["entity"] not in set(entities):
        detail = f"unknown entity '{binding['entity']}'"
        raise ValidationFailed([FieldError("/binding/entity", "invalid", {"detail": detail})])
    return dict(binding)


def deploy(
    session: Session,
    bpmn: str | bytes,
    dmn: Sequence[str | bytes] = (),
    *,
    principal: Principal,
    binding: Mapping[str, Any] | None = None,
    key: str | None = None,
    entities: Iterable[str] | None = None,
    pack: str | None = None,
    services: Mapping[str, Any] | None = None,
) -> tuple[ProcessDefinition, bool]:
    """Store a new version of a process unless its sources equal the latest one's.

    Returns the definition and whether a new version was created.
    """
    if not principal.is_admin:
        from formwork.runtime.errors import PermissionDenied

        raise PermissionDenied("only administrators deploy processes")
    bpmn_text = bpmn.decode("utf-8") if isinstance(bpmn, bytes) else bpmn
    dmn_texts = [d.decode("utf-8") if isinstance(d, bytes) else d for d in dmn]
    parsed = parse_process(bpmn_text, dmn_texts, key)
    checked = check_binding(binding, entities)
    _refuse_problems(parsed, checked, services)
    digest = source_hash(bpmn_text, dmn_texts, checked)
    latest = latest_definition(session, parsed.key, required=False)
    if latest is not None and latest.source_hash == digest:
        return latest, False
    row = ProcessDefinition(
        key=parsed.key,
        version=(latest.version + 1) if latest else 1,
        name=parsed.name,
        bpmn=bpmn_text,
        dmn=dmn_texts,
        source_hash=digest,
        binding=checked,
        deployed_by=principal.user_id,
        pack=pack,
    )
    session.add(row)
    session.flush()
    return row, True


def _refuse_problems(
    parsed: ParsedProcess, binding: Mapping[str, Any] | None, services: Mapping[str, Any] | None
) -> None:
    """Refuse a process whose outcomes, service tasks or forms do not check (checks.py)."""
    from formwork.runtime.workflow.checks import process_problems
    from formwork.runtime.workflow.services import default_services

    found = process_problems(
        [parsed.spec, *parsed.subprocess_specs.values()], binding, services or default_services()
    )
    if found:
        raise ValidationFailed([_error("/bpmn", problem) for problem in found])


def latest_definition(
    session: Session, key: str, required: bool = True
) -> ProcessDefinition | None:
    """Return the newest version of a process (NotFound when required and missing)."""
    row = session.scalars(
        sa.select(ProcessDefinition)
        .where(ProcessDefinition.key == key)
        .order_by(ProcessDefinition.version.desc())
        .limit(1)
    ).first()
    if row is None and required:
        raise NotFound(f"no process '{key}' is deployed")
    return row


class SpecCache:
    """Parsed specs per definition id; a definition never changes, so entries never go stale."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[int, ParsedProcess] = {}

    def get(self, definition: ProcessDefinition) -> ParsedProcess:
        """Return the parsed spec of a stored definition, parsing it on first use."""
        found = self._specs.get(definition.id)
        if found is not None:
            return found
        parsed = parse_process(definition.bpmn, definition.dmn or [], definition.key)
        with self._lock:
            self._specs[definition.id] = parsed
        return parsed
