"""Parse a process from BPMN and DMN text: safe XML, its called processes and form files,
and every check of `checks.py`, with each problem reported (never the first only).

A process may draw on more than its own document: the processes its call activities call
(`library`: other BPMN documents of the same pack, or of the same deploy request) and the
form schema files its tasks name with `formJsonSchemaFilename` (`forms`). The parsed
process says which of them it used, so deploy stores them with the version, which is then
self-contained.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser import VALIDATOR

from formwork.runtime.errors import FieldError, ValidationFailed
from formwork.runtime.workflow.checks import check_specs, error, extension_problems
from formwork.runtime.workflow.decisions import use_decision_engine
from formwork.runtime.workflow.spiff import Parser, connect_loops

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
MAX_SOURCE = 2 * 1024 * 1024
BPMN_NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
MAIN = "bpmn"


@dataclass(frozen=True)
class ParsedProcess:
    """A parsed, checked process: its key, name, spec, the specs of its subprocesses, and
    the called documents and form schemas it uses (by name)."""

    key: str
    name: str
    spec: Any
    subprocess_specs: Mapping[str, Any]
    library: Mapping[str, str] = field(default_factory=dict)
    forms: Mapping[str, Any] = field(default_factory=dict)


def xml(source: str | bytes, pointer: str) -> Any:
    """Return the parsed XML of a BPMN/DMN document, refusing DTDs, entities and giants."""
    raw = source.encode("utf-8") if isinstance(source, str) else source
    if len(raw) > MAX_SOURCE:
        raise ValidationFailed([error(pointer, f"the document is larger than {MAX_SOURCE} bytes")])
    if _DOCTYPE.search(raw):
        raise ValidationFailed([error(pointer, "XML with a DOCTYPE or ENTITY is refused")])
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        tree = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise ValidationFailed([error(pointer, f"line {exc.lineno}: {exc.msg}")]) from None
    # The byte check above misses a DOCTYPE in another encoding (UTF-16): ask the parser too.
    info = tree.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise ValidationFailed([error(pointer, "XML with a DOCTYPE or ENTITY is refused")])
    return tree


def _lines(tree: Any) -> dict[str, int]:
    return {el.get("id"): el.sourceline for el in tree.iter() if el.get("id")}


def process_id(tree: Any, wanted: str | None) -> str:
    """Return the executable process of a document to deploy: `wanted`, the only one, or
    the only one that no call activity of the document calls."""
    ids = [
        p.get("id")
        for p in tree.xpath(".//bpmn:process", namespaces=BPMN_NS)
        if p.get("isExecutable", "true") == "true"
    ]
    if wanted is not None:
        if wanted not in ids:
            raise ValidationFailed([error("/bpmn", f"no executable process '{wanted}'")])
        return wanted
    called = {
        c.get("calledElement") for c in tree.xpath(".//bpmn:callActivity", namespaces=BPMN_NS)
    }
    callers = [i for i in ids if i not in called] if len(ids) > 1 else ids
    if len(callers) != 1:
        raise ValidationFailed(
            [error("/bpmn", f"expected one executable process, found {len(ids)}: {ids}")]
        )
    return str(callers[0])


def parse_process(
    bpmn: str | bytes,
    dmn: Sequence[str | bytes] = (),
    key: str | None = None,
    *,
    library: Mapping[str, str] | None = None,
    forms: Mapping[str, Any] | None = None,
) -> ParsedProcess:
    """Parse and check BPMN (with its DMN, the documents it may call and the form schemas
    it may name); every problem is reported."""
    tree = xml(bpmn, "/bpmn")
    lines = _lines(tree)
    dmn_trees = [xml(text, f"/dmn/{i}") for i, text in enumerate(dmn)]
    called = {name: xml(text, f"/called/{name}") for name, text in (library or {}).items()}
    parser, key, spec, subprocess_specs = _parse(tree, dmn_trees, called, key, lines)
    specs = [spec, *subprocess_specs.values()]
    used = _used_documents(parser, subprocess_specs, called)
    problems = list(extension_problems(tree, lines))
    for name in used:
        their_lines = _lines(called[name])
        lines.update({k: v for k, v in their_lines.items() if k not in lines})
        problems += [_in(name, p) for p in extension_problems(called[name], their_lines)]
    used_forms, form_problems = resolve_forms(specs, forms or {}, lines)
    problems += form_problems + list(check_specs(specs, lines))
    if problems:
        raise ValidationFailed(problems)
    use_decision_engine(specs)
    connect_loops(specs)
    return ParsedProcess(
        key, spec.description or key, spec, subprocess_specs,
        {name: str((library or {})[name]) for name in used}, used_forms,
    )  # fmt: skip


def _parse(
    tree: Any, dmn_trees: list[Any], called: Mapping[str, Any], key: str | None, lines: Any
) -> tuple[Any, str, Any, Mapping[str, Any]]:
    """Return Spiff's parser, the process id, its spec and its subprocesses' specs."""
    parser = Parser(validator=VALIDATOR)
    try:
        for i, dmn_tree in enumerate(dmn_trees):
            lines.update(_lines(dmn_tree))
            parser.add_dmn_xml(dmn_tree, filename=f"dmn[{i}]")
        parser.add_bpmn_xml(tree, filename=MAIN)
        for name, called_tree in called.items():
            parser.add_bpmn_xml(called_tree, filename=name)
        key = process_id(tree, key)
        return parser, key, parser.get_spec(key), parser.get_subprocess_specs(key)
    except ValidationException as exc:
        raise ValidationFailed([error("/bpmn", _describe(exc, lines))]) from None
    except SpiffWorkflowException as exc:
        raise ValidationFailed([error("/bpmn", str(exc))]) from None
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
        # Spiff's parser assumes well-formed BPMN; odd but valid XML trips it. Say so, not 500.
        detail = f"cannot be read as BPMN/DMN: {type(exc).__name__}: {exc}"
        raise ValidationFailed([error("/bpmn", detail)]) from None


def _in(name: str, problem: FieldError) -> FieldError:
    detail = f"in called document '{name}': {problem.params.get('detail', '')}"
    return error(f"/called/{name}", detail)


def _used_documents(parser: Any, subprocess_specs: Mapping[str, Any], called: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    names = []
    for spec_name in subprocess_specs:
        found = parser.get_process_parser(spec_name)
        filename = getattr(found, "filename", None)
        if filename in called and filename not in names:
            names.append(filename)
    return names


def _describe(exc: ValidationException, lines: Mapping[str, int]) -> str:
    where = []
    if getattr(exc, "id", ""):
        where.append(f"element '{exc.id}'")
    line = getattr(exc, "line_number", "") or lines.get(getattr(exc, "id", ""), "")
    if line:
        where.append(f"line {line}")
    if getattr(exc, "file_name", "") not in ("", None, MAIN):
        where.append(f"in '{exc.file_name}'")
    message = exc.args[0] if exc.args else str(exc)
    return f"{', '.join(where)}: {message}" if where else str(message)


# --- form files ---------------------------------------------------------------------------------


def resolve_forms(
    specs: Iterable[Any], forms: Mapping[str, Any], lines: Mapping[str, int]
) -> tuple[dict[str, Any], list[FieldError]]:
    """Put the schema each `formJsonSchemaFilename` names into its task's `form` property.

    Returns the forms used (by the name the BPMN gives) and a problem for each name that is
    missing, ambiguous, or given beside a `form` property.
    """
    used: dict[str, Any] = {}
    problems: list[FieldError] = []
    for spec in specs:
        for task_spec in spec.task_specs.values():
            extensions = getattr(task_spec, "extensions", None) or {}
            name = extensions.get("formJsonSchemaFilename")
            if not name:
                continue
            found, problem = _find_form(forms, str(name).strip())
            props = extensions.setdefault("properties", {})
            if problem is None and props.get("form"):
                problem = "has both a 'form' property and a formJsonSchemaFilename; keep one"
            if problem is not None:
                bpmn_id = getattr(task_spec, "bpmn_id", None) or task_spec.name
                line = lines.get(bpmn_id)
                at = f" at line {line}" if line else ""
                problems.append(error("/bpmn", f"element '{bpmn_id}'{at}: {problem}"))
                continue
            used[str(name).strip()] = found
            props["form"] = json.dumps(found, ensure_ascii=False)
    return used, problems


def _find_form(forms: Mapping[str, Any], name: str) -> tuple[Any, str | None]:
    if name in forms:
        return forms[name], None
    base = PurePosixPath(name).name
    matches = [key for key in forms if PurePosixPath(key).name == base]
    if len(matches) == 1:
        return forms[matches[0]], None
    if matches:
        return None, f"form file '{name}' is ambiguous: {sorted(matches)}"
    listed = ", ".join(sorted(forms)) or "none"
    return None, (
        f"form file '{name}' is not in the pack or the request (forms given: {listed}); "
        "list it under files.forms in pack.json"
    )
