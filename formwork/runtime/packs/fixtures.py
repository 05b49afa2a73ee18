"""Load a pack's fixture or demo records through the records service (so they are
validated, computed and audited like any other record)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import qualify
from formwork.runtime.errors import FieldError, ValidationFailed
from formwork.runtime.records import RecordService
from formwork.runtime.registry import Registry, load_registry
from formwork.runtime.security import system_principal


def load_fixtures(session: Session, pack: str, document: Mapping[str, Any], path: str) -> int:
    """Create or update (by `key`) the records of one fixture file; return how many."""
    registry = load_registry(session)
    key = qualify(pack, document["entity"])
    service = RecordService(session, registry, system_principal())
    table = registry.meta(key).table
    by = document.get("key")
    for i, raw in enumerate(document["records"]):
        record = _resolve_lookups(session, registry, key, raw, f"{path}#/records/{i}")
        existing = None
        if by and record.get(by) is not None:
            existing = session.execute(
                sa.select(table.c.id, table.c.version).where(table.c[by] == record[by])
            ).first()
        try:
            if existing is None:
                service.create(key, record)
            else:
                service.update(key, existing.id, record, existing.version)
        except ValidationFailed as exc:
            raise ValidationFailed(
                [
                    FieldError(f"{path}#/records/{i}{e.pointer}", e.code, e.params)
                    for e in exc.errors
                ]
            ) from exc
    return len(document["records"])


def _resolve_lookups(
    session: Session, registry: Registry, key: str, raw: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """Replace `{"code": "P-1"}` in a reference field by the id of the record it names."""
    entity = registry.entity(key)
    record = dict(raw)
    for name, value in raw.items():
        field_def = entity.get_field(name)
        target = field_def.kind.join_target(field_def, entity) if field_def else None
        if target is None or not isinstance(value, Mapping):
            continue
        table = registry.meta(target).table
        conditions = [table.c[k] == v for k, v in value.items() if k in table.c]
        found = session.execute(sa.select(table.c.id).where(*conditions)).scalars().all()
        if len(found) != 1 or len(conditions) != len(value):
            raise ValidationFailed(
                [
                    FieldError(
                        f"{where}/{name}",
                        "reference_missing",
                        {"entity": target, "value": dict(value)},
                    )
                ]
            )
        record[name] = found[0]
    return record
