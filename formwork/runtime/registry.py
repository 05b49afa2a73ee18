"""The registry: the effective entity definitions of one version, with their tables,
validators and converters built once and shared."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import jsonschema
import marshmallow as ma
import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import EntityDef, parse_entity, qualify
from formwork.runtime.errors import NotFound
from formwork.runtime.models import EntityRecord, Setting
from formwork.runtime.storage import build_tables

VERSION_KEY = "definitions_version"


class EntityMeta:
    """Everything derived from one entity definition: table, validators, converters."""

    def __init__(self, entity: EntityDef, table: sa.Table, registry: Registry) -> None:
        self.entity = entity
        self.table = table
        self.registry = registry

    @cached_property
    def children(self) -> tuple[tuple[str, EntityMeta], ...]:
        """Return (field name, child meta) for each child-table field."""
        return tuple(
            (f.name, self.registry.meta(qualify(self.entity.pack, f.opt("entity"))))
            for f in self.entity.fields
            if f.kind.holds_rows
        )

    @cached_property
    def _unique_queries(self) -> dict[str, sa.Select[Any]]:
        table = self.table
        return {
            f.name: sa.select(table.c.id)
            .where(
                table.c[f.name] == sa.bindparam("value"), table.c.id != sa.bindparam("record_id")
            )
            .limit(1)
            for f in self.entity.stored_fields()
            if f.unique
        }

    def unique_query(self, name: str) -> sa.Select[Any]:
        """Return the prepared query that finds another record holding a unique value."""
        return self._unique_queries[name]

    def input_schema(self, creating: bool) -> dict[str, Any]:
        """Return the JSON Schema that raw input must satisfy."""
        props = {f.name: f.kind.json_schema(f) for f in self.entity.fields if not f.read_only}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if creating:
            schema["required"] = [
                f.name
                for f in self.entity.fields
                if f.required and not f.read_only and f.default is None
            ]
        return schema

    @cached_property
    def create_validator(self) -> jsonschema.Draft202012Validator:
        """Return the validator for a new record's raw input."""
        return _validator(self.input_schema(creating=True))

    @cached_property
    def update_validator(self) -> jsonschema.Draft202012Validator:
        """Return the validator for a partial update's raw input."""
        return _validator(self.input_schema(creating=False))

    @cached_property
    def converter(self) -> ma.Schema:
        """Return the marshmallow schema that turns JSON values into Python values."""
        fields = {f.name: f.kind.marshmallow_field(f) for f in self.entity.fields}
        return ma.Schema.from_dict(fields, name=f"{self.entity.key}Schema")(unknown=ma.RAISE)

    def output_schema(self) -> dict[str, Any]:
        """Return the JSON Schema of a record as the API returns it."""
        props: dict[str, Any] = {
            "id": {"type": "integer", "readOnly": True},
            "version": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time", "readOnly": True},
            "created_by": {"type": ["integer", "null"], "readOnly": True},
            "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
            "updated_by": {"type": ["integer", "null"], "readOnly": True},
        }
        props.update({f.name: f.kind.output_schema(f) for f in self.entity.fields})
        return {"type": "object", "title": self.entity.label("en"), "properties": props}


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


class Registry:
    """The effective definitions of one version; immutable once built."""

    def __init__(
        self,
        entities: Iterable[EntityDef],
        version: int = 0,
        disabled_packs: frozenset[str] = frozenset(),
        depends: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.version = version
        self.disabled_packs = disabled_packs
        # Each installed pack's declared dependencies (pack.json `depends`).
        self.depends: Mapping[str, frozenset[str]] = dict(depends or {})
        self.entities: Mapping[str, EntityDef] = {e.key: e for e in entities}
        self.metadata, self.tables = build_tables(self.entities.values())
        self._metas = {k: EntityMeta(e, self.tables[k], self) for k, e in self.entities.items()}

    def meta(self, key: str) -> EntityMeta:
        """Return the derived objects of an entity by key, or raise NotFound."""
        try:
            return self._metas[key]
        except KeyError:
            raise NotFound(f"unknown entity '{key}'") from None

    def entity(self, key: str) -> EntityDef:
        """Return an entity definition by key, or raise NotFound."""
        return self.meta(key).entity

    def top_level(self) -> list[EntityDef]:
        """Return the enabled entities that are not line items of another, sorted by key."""
        return sorted(
            (
                e
                for e in self.entities.values()
                if not e.child_of and e.pack not in self.disabled_packs
            ),
            key=lambda e: e.key,
        )

    @cached_property
    def memberships(self) -> dict[str, list[tuple[str, str, str]]]:
        """Return, per scope entity, the (entity, user field, scope field) of every entity
        whose records make users members of it (`x-formwork.membership`)."""
        found: dict[str, list[tuple[str, str, str]]] = {}
        for entity in self.entities.values():
            declared = entity.options.get("membership")
            if not declared:
                continue
            user, scope = declared["user"], declared["scope"]
            target: str | None = entity.key
            if scope != "id":
                field_def = entity.get_field(scope)
                target = field_def.kind.join_target(field_def, entity) if field_def else None
            if target is not None:
                found.setdefault(target, []).append((entity.key, user, scope))
        return found

    def reach_of(self, pack: str | None) -> frozenset[str]:
        """Return the entities a pack's processes may act on: the pack's own and those of the
        packs it declares as dependencies (DESIGN.md decision 14)."""
        if pack is None:
            return frozenset()
        packs = {pack, *self.depends.get(pack, frozenset())}
        return frozenset(k for k, e in self.entities.items() if e.pack in packs)

    def is_enabled(self, key: str) -> bool:
        """Return False when the entity's pack is switched off."""
        return self.entity(key).pack not in self.disabled_packs


def load_registry(session: Session) -> Registry:
    """Return a Registry built from the stored definitions."""
    from formwork.runtime.models import PackRecord

    states = {r.name: r for r in session.scalars(sa.select(PackRecord))}
    archived = {n for n, r in states.items() if r.status != "installed"}
    disabled = frozenset(n for n, r in states.items() if not r.enabled)
    rows = session.scalars(sa.select(EntityRecord).order_by(EntityRecord.key)).all()
    # An uninstalled pack's tables and definitions are kept, but it is not served.
    entities = [parse_entity(row.pack, row.definition) for row in rows if row.pack not in archived]
    depends = {n: frozenset((r.manifest or {}).get("depends") or {}) for n, r in states.items()}
    return Registry(entities, stored_version(session), disabled, depends)


def stored_entities(session: Session) -> dict[str, EntityDef]:
    """Return every stored definition, served or not (an uninstalled pack's are kept)."""
    rows = session.scalars(sa.select(EntityRecord).order_by(EntityRecord.key)).all()
    return {row.key: parse_entity(row.pack, row.definition) for row in rows}


def stored_version(session: Session) -> int:
    """Return the definitions' version counter (0 before the first change)."""
    value = session.scalar(sa.select(Setting.value).where(Setting.key == VERSION_KEY))
    return int(value) if value is not None else 0


def bump_version(session: Session) -> int:
    """Increment the definitions' version counter inside the caller's transaction."""
    row = session.get(Setting, VERSION_KEY, with_for_update=True)
    if row is None:
        row = Setting(key=VERSION_KEY, value="0")
        session.add(row)
    row.value = str(int(row.value) + 1)
    session.flush()
    return int(row.value)


class RegistryCache:
    """Hold the current Registry for one process; re-read it when the version moves.

    Web workers are separate processes, so a change made in one is noticed by the
    others when they next look at the version counter — at most every `ttl` seconds,
    which keeps that look-up off the hot path of every request.
    """

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._registry: Registry | None = None
        self._checked = 0.0

    def get(self, session: Session) -> Registry:
        """Return the current Registry, reloading it when the stored version changed."""
        now = time.monotonic()
        registry = self._registry
        if registry is not None and now - self._checked < self.ttl:
            return registry
        with self._lock:
            version = stored_version(session)
            if self._registry is None or self._registry.version != version:
                self._registry = load_registry(session)
            self._checked = now
            return self._registry

    def invalidate(self) -> None:
        """Forget the cached Registry so the next `get` reloads it."""
        with self._lock:
            self._registry = None
