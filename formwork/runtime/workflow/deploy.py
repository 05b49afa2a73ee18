"""Deploy process definitions: parse and check them (`parsing.py`, `checks.py`), store
versions. A version holds everything it runs on: its BPMN and DMN, and the called
processes and form schemas it uses (`resources`), so it never changes after deploy."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from formwork.runtime.security import Principal
from formwork.runtime.workflow.models import ProcessDefinition
from formwork.runtime.workflow.parsing import MAX_SOURCE, ParsedProcess, parse_process

__all__ = ["MAX_SOURCE", "ParsedProcess", "SpecCache", "deploy", "parse_process"]

BINDING_KEYS = frozenset(
    {"entity", "state_field", "title", "lanes", "senders", "outcomes", "self_approval",
     "initiator_lanes"}
)  # fmt: skip


# --- storing versions -------------------------------------------------------------------------


def source_hash(
    bpmn: str,
    dmn: Sequence[str],
    binding: Mapping[str, Any] | None,
    resources: Mapping[str, Any] | None = None,
) -> str:
    """Return the hash that identifies one deployment's sources."""
    document: dict[str, Any] = {"bpmn": bpmn, "dmn": list(dmn), "binding": binding}
    if resources:  # absent for a version without any: its hash stays what it was
        document["resources"] = resources
    payload = json.dumps(document, sort_keys=True)
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
    senders = binding.get("senders", [])
    if not isinstance(senders, list) or not all(isinstance(r, str) and r for r in senders):
        detail = "a list of role names that may send messages and signals"
        raise ValidationFailed([FieldError("/binding/senders", "invalid", {"detail": detail})])
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
    library: Mapping[str, str] | None = None,
    forms: Mapping[str, Any] | None = None,
) -> tuple[ProcessDefinition, bool]:
    """Store a new version of a process unless its sources equal the latest one's.

    `library` holds the other BPMN documents (by name) its call activities may call, and
    `forms` the form schemas (by file name) its `formJsonSchemaFilename`s may name; those it
    uses are stored with the version. Returns the definition and whether it is new.
    """
    if not principal.is_admin:
        raise PermissionDenied("only administrators deploy processes")
    bpmn_text, dmn_texts = _text(bpmn), [_text(d) for d in dmn]
    parsed = parse_process(bpmn_text, dmn_texts, key, library=library, forms=forms)
    checked = check_binding(binding, entities)
    _refuse_problems(parsed, checked, services)
    resources = _resources(parsed)
    digest = source_hash(bpmn_text, dmn_texts, checked, resources)
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
        resources=resources,
    )
    session.add(row)
    session.flush()
    return row, True


def _refuse_problems(
    parsed: ParsedProcess, binding: Mapping[str, Any] | None, services: Mapping[str, Any] | None
) -> None:
    """Refuse a process whose outcomes, service tasks or forms do not check (checks.py)."""
    from formwork.runtime.workflow.process_rules import process_problems
    from formwork.runtime.workflow.services import platform_services

    found = process_problems(
        [parsed.spec, *parsed.subprocess_specs.values()], binding, services or platform_services()
    )
    if found:
        raise ValidationFailed([FieldError("/bpmn", "bpmn", {"detail": p}) for p in found])


def _text(source: str | bytes) -> str:
    return source.decode("utf-8") if isinstance(source, bytes) else source


def _resources(parsed: ParsedProcess) -> dict[str, Any] | None:
    found = {"bpmn": dict(parsed.library), "forms": dict(parsed.forms)}
    return {k: v for k, v in found.items() if v} or None


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
        resources = definition.resources or {}
        parsed = parse_process(
            definition.bpmn,
            definition.dmn or [],
            definition.key,
            library=resources.get("bpmn"),
            forms=resources.get("forms"),
        )
        with self._lock:
            self._specs[definition.id] = parsed
        return parsed
