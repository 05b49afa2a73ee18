"""Principals and role permissions: who is acting, what they may do, to which records
and fields.

A role grants actions on an entity; a grant may narrow the records it reaches (row rules,
OR-ed) and hide fields or make them read-only. A principal holds the union over its roles:
an action reaches every record when one granting role has no row rule, otherwise the rules
of all granting roles; a field is hidden only when every granting role hides it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.errors import PermissionDenied
from formwork.runtime.models import RolePermission, User, UserRole

# cancel (作废) and amend (变更) act on approved documents (see workflow/lifecycle.py).
ACTIONS = ("read", "create", "update", "delete", "submit", "export", "import", "cancel", "amend")
WRITE_ACTIONS = ("create", "update")
ADMIN_ROLE = "admin"
PROCESS_ROLE = "process"  # the principal of a process's service tasks, never granted to people


@dataclass(frozen=True)
class RowRule:
    """One declarative row rule: `field` is me / is a record I am a member of / is in `values`."""

    field: str
    kind: str  # "is" | "member_of" | "in"
    value: Any

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RowRule:
        """Return the rule a roles.json `rows` item declares."""
        for kind in ("is", "member_of", "in"):
            if kind in document:
                value = document[kind]
                return cls(str(document["field"]), kind, tuple(value) if kind == "in" else value)
        raise ValueError(f"row rule without is/member_of/in: {dict(document)!r}")

    def to_json(self) -> dict[str, Any]:
        """Return the roles.json form of the rule."""
        value = list(self.value) if self.kind == "in" else self.value
        return {"field": self.field, self.kind: value}


@dataclass(frozen=True)
class Access:
    """What one action on one entity reaches: rows (None = every row) and field rules."""

    rows: tuple[RowRule, ...] | None = None
    hidden: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()


EVERYTHING = Access()


@dataclass(frozen=True)
class Principal:
    """The acting user with their roles and grants, passed explicitly to the runtime."""

    user_id: int | None
    username: str
    roles: frozenset[str] = frozenset()
    grants: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    locale: str = "zh-CN"
    access: Mapping[tuple[str, str], Access] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, hash=False
    )

    @property
    def is_admin(self) -> bool:
        """Return True for members of the admin role."""
        return ADMIN_ROLE in self.roles

    @property
    def is_process(self) -> bool:
        """Return True for the principal of a process's service tasks."""
        return PROCESS_ROLE in self.roles

    def can(self, entity_key: str, action: str) -> bool:
        """Return True when the principal may perform `action` on `entity_key`."""
        if self.is_admin:
            return True
        return (entity_key, action) in self.grants or ("*", action) in self.grants

    def require(self, entity_key: str, action: str) -> None:
        """Raise PermissionDenied unless the principal may perform the action."""
        if not self.can(entity_key, action):
            raise PermissionDenied(f"'{self.username}' may not {action} {entity_key}")

    def access_for(self, entity_key: str, action: str) -> Access | None:
        """Return what `action` on `entity_key` reaches, or None when it is not granted."""
        if self.is_admin:
            return EVERYTHING
        found = self.access.get((entity_key, action)) or self.access.get(("*", action))
        if found is not None:
            return found
        return EVERYTHING if self.can(entity_key, action) else None

    def rows_for(self, entity_key: str, action: str) -> tuple[RowRule, ...] | None:
        """Return the row rules narrowing `action` (None: every row; () : no row)."""
        found = self.access_for(entity_key, action)
        return () if found is None else found.rows

    def may_read_field(self, entity_key: str, name: str) -> bool:
        """Return True when the principal may read `entity_key` and `name` is not hidden
        from them (a field of an entity they may not read at all is as good as hidden)."""
        return self.can(entity_key, "read") and name not in self.hidden_fields(entity_key)

    def hidden_fields(self, entity_key: str) -> frozenset[str]:
        """Return the fields of `entity_key` this principal may not see."""
        found = self.access_for(entity_key, "read")
        return found.hidden if found is not None else frozenset()

    def read_only_fields(self, entity_key: str, action: str = "update") -> frozenset[str]:
        """Return the fields this principal may not set when creating or updating."""
        found = self.access_for(entity_key, action)
        own = found.read_only | found.hidden if found is not None else frozenset()
        return own | self.hidden_fields(entity_key)


def redact(record: dict[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    """Return the record without the hidden fields (`lines.rate` names a line-item field)."""
    if not hidden:
        return record
    out = {k: v for k, v in record.items() if k not in hidden}
    for name in hidden:
        head, _, tail = name.partition(".")
        rows = out.get(head)
        if tail and isinstance(rows, list):
            out[head] = [
                {k: v for k, v in row.items() if k != tail} if isinstance(row, dict) else row
                for row in rows
            ]
    return out


def process_principal(key: str, reach: Iterable[str], actor: Principal) -> Principal:
    """Return the principal a process's service tasks act as: every action on the entities
    it reaches and nothing more (a process is never an administrator); audited as `actor`."""
    grants = frozenset((entity, action) for entity in reach for action in ACTIONS)
    return Principal(
        actor.user_id, f"process:{key}"[:64], frozenset({PROCESS_ROLE}), grants, actor.locale
    )


def system_principal() -> Principal:
    """Return the principal used by the CLI and background work (all permissions)."""
    return Principal(None, "system", frozenset({ADMIN_ROLE}))


def combine(grants: Iterable[tuple[str, str, Any, Any]]) -> dict[tuple[str, str], Access]:
    """Return the union of (entity, action, rows, fields) grants over a principal's roles."""
    merged: dict[tuple[str, str], Access] = {}
    for entity, action, rows, fields in grants:
        merged[(entity, action)] = _union(
            merged.get((entity, action)), _access(action, rows, fields)
        )
    return merged


def _access(action: str, rows: Any, fields: Any) -> Access:
    rules = tuple(RowRule.from_json(r) for r in rows) if rows else None
    fields = fields or {}
    hidden = frozenset(n for n, how in fields.items() if how == "hidden")
    read_only = frozenset(n for n, how in fields.items() if how == "read_only")
    return Access(rules, hidden, read_only if action in WRITE_ACTIONS else frozenset())


def _union(left: Access | None, right: Access) -> Access:
    if left is None:
        return right
    rows = None if left.rows is None or right.rows is None else _unique(left.rows + right.rows)
    return Access(rows, left.hidden & right.hidden, left.read_only & right.read_only)


def _unique(rules: tuple[RowRule, ...]) -> tuple[RowRule, ...]:
    return tuple(dict.fromkeys(rules))


def load_principal(session: Session, user: User, locale: str | None = None) -> Principal:
    """Return the principal of a user, with their roles and grants, in one query."""
    rows = session.execute(
        sa.select(
            UserRole.role,
            RolePermission.entity,
            RolePermission.action,
            RolePermission.rows,
            RolePermission.fields,
        )
        .outerjoin(RolePermission, RolePermission.role == UserRole.role)
        .where(UserRole.user_id == user.id)
    ).all()
    roles = frozenset(str(r[0]) for r in rows)
    granted = [(str(e), str(a), rw, fl) for _r, e, a, rw, fl in rows if e is not None]
    return Principal(
        user.id,
        user.username,
        roles,
        frozenset((e, a) for e, a, _rw, _fl in granted),
        locale or user.locale or "zh-CN",
        MappingProxyType(combine(granted)),
    )


def principal_with_roles(principal: Principal, extra: frozenset[str]) -> Principal:
    """Return the principal with more roles (its grants and rules unchanged)."""
    return Principal(
        principal.user_id,
        principal.username,
        principal.roles | extra,
        principal.grants,
        principal.locale,
        principal.access,
    )


def row_condition(
    registry: Any,
    principal: Principal,
    meta: Any,
    action: str,
    session: Any = None,
    *,
    table: Any = None,
) -> Any:
    """Return the SQL condition a principal's row rules put on `meta` for `action`
    (None: no restriction; false when the action is not granted). `table` is an alias
    of the entity's table to write the condition on (a reference hop's join)."""
    from formwork.runtime.row_rules import compile_rules

    rules = principal.rows_for(meta.entity.key, action)
    if rules is None:
        return None
    return compile_rules(registry, principal, meta, rules, session, table=table)
