"""Apply entity definitions: check them, turn the change into recorded operations,
migrate the tables and store the definitions — in one transaction."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import EntityDef, parse_entity, qualify
from formwork.runtime.errors import DefinitionInvalid, FieldError
from formwork.runtime.migrations import apply_operations, detect
from formwork.runtime.models import EntityRecord, Migration
from formwork.runtime.registry import bump_version, stored_entities


def digest(document: Mapping[str, Any]) -> str:
    """Return a stable SHA-256 of a definition document."""
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def parse_documents(pack: str, documents: Mapping[str, Any]) -> list[EntityDef]:
    """Return parsed entities; raise DefinitionInvalid listing every problem of every file.

    `documents` maps a source name (a file path) to its parsed JSON, so each problem
    names the file and the JSON pointer.
    """
    entities, problems = [], []
    for source, document in documents.items():
        try:
            entities.append(parse_entity(pack, document))
        except DefinitionInvalid as exc:
            problems += [FieldError(f"{source}#{e.pointer}", e.code, e.params) for e in exc.errors]
    if problems:
        raise DefinitionInvalid(problems)
    return entities


def cross_check(entities: Mapping[str, EntityDef]) -> list[FieldError]:
    """Return problems with references between entities (unknown targets, orphans)."""
    problems = []
    for entity in entities.values():
        for field_def in entity.fields:
            for target in field_def.kind.references(field_def, entity):
                if target not in entities:
                    problems.append(_unknown_target(entity, field_def.name, target, entities))
        if entity.child_of and qualify(entity.pack, entity.child_of) not in entities:
            problems.append(
                FieldError(
                    f"{entity.key}#/x-formwork/child_of",
                    "schema",
                    {"detail": f"parent entity '{entity.child_of}' does not exist"},
                )
            )
    return problems


def _unknown_target(
    entity: EntityDef, field: str, target: str, entities: Mapping[str, EntityDef]
) -> FieldError:
    close = difflib.get_close_matches(target, list(entities), n=1)
    names = {k.split(".", 1)[1]: k for k in entities}
    close = close or [names[target.split(".", 1)[1]]] if target.split(".", 1)[1] in names else close
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return FieldError(
        f"{entity.key}#/properties/{field}/x-formwork/entity",
        "schema",
        {"detail": f"reference to unknown entity '{target}'{hint}"},
    )


def apply_definitions(
    session: Session,
    pack: str,
    documents: Mapping[str, Any],
    *,
    confirm: bool = False,
    user_id: int | None = None,
    remove_missing: bool = True,
) -> list[str]:
    """Make the pack's entities match `documents`; return what was done, one line each.

    Raises DefinitionInvalid (nothing written) or DestructiveChange (nothing written,
    unless `confirm`). The caller commits.
    """
    parsed = {e.key: e for e in parse_documents(pack, documents)}
    current = stored_entities(session)
    old = {k: e for k, e in current.items() if e.pack == pack}
    new = dict(parsed) if remove_missing else {**old, **parsed}
    problems = cross_check({**{k: e for k, e in current.items() if e.pack != pack}, **new})
    if problems:
        raise DefinitionInvalid(problems)
    operations = detect(old, new)
    if not operations and all(_same(old.get(k), e) for k, e in new.items()):
        return []
    apply_operations(session.connection(), operations, confirm=confirm)
    _store(session, pack, old, new)
    session.add(
        Migration(
            pack=pack,
            operations=[op.to_json() for op in operations],
            description="\n".join(op.describe() for op in operations),
            applied_by=user_id,
        )
    )
    bump_version(session)
    return [op.describe() for op in operations] or [f"updated definitions of pack {pack}"]


def _same(old: EntityDef | None, new: EntityDef) -> bool:
    return old is not None and digest(old.document) == digest(new.document)


def _store(
    session: Session, pack: str, old: Mapping[str, EntityDef], new: Mapping[str, EntityDef]
) -> None:
    gone = set(old) - set(new)
    if gone:
        session.execute(sa.delete(EntityRecord).where(EntityRecord.key.in_(gone)))
    for key, entity in new.items():
        row = session.get(EntityRecord, key) or EntityRecord(key=key, pack=pack, name=entity.name)
        row.definition = dict(entity.document)
        row.digest = digest(entity.document)
        session.add(row)
    session.flush()


def read_definition_files(paths: Iterable[str]) -> dict[str, Any]:
    """Return {path: JSON} for definition files, refusing unreadable or malformed JSON."""
    documents, problems = {}, []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                documents[path] = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(FieldError(f"{path}#", "schema", {"detail": f"cannot read: {exc}"}))
    if problems:
        raise DefinitionInvalid(problems)
    return documents
