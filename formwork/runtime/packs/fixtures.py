"""Load a pack's fixture or demo records through the records service (so they are
validated, computed and audited like any other record).

A records file is `{"entity", "key"?, "records": [...]}`. Values may name other records
instead of giving ids: a reference as `{"code": "P2401"}` (a field of the target), a user as
`{"username": "zhang"}`. Dates may be tokens resolved at load time, so demo data stays
current: `@today`, `@today-30`, `@today+14` (days) and `@month`, `@month-2` (the first day
of this month, of two months ago). A users file `{"users": [...]}` declares (demo) people:
each missing user is created with its roles and no usable password (an administrator, or
`formwork demo`, sets one); existing users are left as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.clock import Clock, session_clock
from formwork.runtime.definitions import qualify
from formwork.runtime.errors import FieldError, ValidationFailed
from formwork.runtime.models import Role, User, UserRole
from formwork.runtime.records import RecordService
from formwork.runtime.registry import Registry, load_registry
from formwork.runtime.security import system_principal

DATE_TOKEN = re.compile(r"^@(today|month)(?:([+-])(\d{1,5}))?$")
# werkzeug's check_password_hash() refuses a hash without a method: nobody can sign in
# with this until a password is set.
NO_PASSWORD = "!"  # noqa: S105  (a marker, not a password)


def resolve_date_token(text: str, today: dt.date) -> dt.date | None:
    """Return the date a token such as `@today-30` or `@month-2` names, None for other text."""
    match = DATE_TOKEN.match(text)
    if match is None:
        return None
    unit, sign, amount = match.group(1), match.group(2), int(match.group(3) or 0)
    offset = -amount if sign == "-" else amount
    if unit == "today":
        return today + dt.timedelta(days=offset)
    months = today.year * 12 + today.month - 1 + offset
    return dt.date(months // 12, months % 12 + 1, 1)


def load_fixtures(
    session: Session,
    pack: str,
    document: Mapping[str, Any],
    path: str,
    clock: Clock | None = None,
    registry: Registry | None = None,
) -> int:
    """Create or update (by `key`) the records of one fixture file; return how many.

    A users file creates the users it declares that do not exist yet. Pass the `registry`
    when loading many files against the same definitions (building one is not free).
    Date tokens and the records' timestamps follow `clock` (the kernel's; the wall if None).
    """
    if "users" in document:
        return len(ensure_users(session, document["users"]))
    registry = registry or load_registry(session)
    key = qualify(pack, document["entity"])
    clock = clock or session_clock(session)
    service = RecordService(session, registry, system_principal(), clock=clock)
    table = registry.meta(key).table
    by = document.get("key")
    loader = _Resolver(session, registry, clock.today())
    for i, raw in enumerate(document["records"]):
        where = f"{path}#/records/{i}"
        record = loader.record(key, raw, where)
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
                [FieldError(f"{where}{e.pointer}", e.code, e.params) for e in exc.errors]
            ) from exc
    return len(document["records"])


def ensure_users(session: Session, users: list[Mapping[str, Any]]) -> list[str]:
    """Create the declared users that do not exist (with their roles); return their names."""
    created = []
    for person in users:
        username = person["username"]
        if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
            continue
        user = User(
            username=username,
            display_name=person.get("display_name") or username,
            email=person.get("email"),
            locale=person.get("locale"),
            password_hash=NO_PASSWORD,
        )
        session.add(user)
        session.flush()
        for role in person.get("roles", []):
            if session.get(Role, role) is None:
                session.add(Role(name=role, label={"zh-CN": role, "en": role}))
                session.flush()
            session.add(UserRole(user_id=user.id, role=role))
        created.append(username)
    session.flush()
    return created


class _Resolver:
    """Turn a fixture record's lookups and date tokens into stored values."""

    def __init__(self, session: Session, registry: Registry, today: dt.date) -> None:
        self.session = session
        self.registry = registry
        self.today = today

    def record(self, key: str, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Return the record with references, users, line items and dates resolved."""
        entity = self.registry.entity(key)
        record = dict(raw)
        for name, value in raw.items():
            field_def = entity.get_field(name)
            if field_def is None:
                continue  # the records service reports the unknown field
            kind = field_def.kind
            if isinstance(value, str):
                record[name] = self.date(value, kind.name)
            elif kind.name == "user" and isinstance(value, Mapping):
                record[name] = self.user(value, f"{where}/{name}")
            elif kind.holds_rows and isinstance(value, list):
                child = qualify(entity.pack, field_def.opt("entity"))
                record[name] = [
                    self.record(child, row, f"{where}/{name}/{i}")
                    if isinstance(row, Mapping)
                    else row
                    for i, row in enumerate(value)
                ]
            elif isinstance(value, Mapping):
                target = kind.join_target(field_def, entity)
                if target is not None:
                    record[name] = self.reference(target, value, f"{where}/{name}")
        return record

    def date(self, text: str, kind: str) -> Any:
        """Return a date token's date as ISO text (midnight UTC for datetime fields)."""
        day = resolve_date_token(text, self.today)
        if day is None:
            return text
        if kind == "datetime":
            return dt.datetime.combine(day, dt.time(), dt.UTC).isoformat()
        return day.isoformat()

    def user(self, value: Mapping[str, Any], where: str) -> int:
        """Return the id of the user named by `{"username": ...}`."""
        found = self.session.scalar(
            sa.select(User.id).where(User.username == value.get("username"))
        )
        if found is None or set(value) != {"username"}:
            raise ValidationFailed([FieldError(where, "user_missing", {"value": dict(value)})])
        return int(found)

    def reference(self, target: str, value: Mapping[str, Any], where: str) -> int:
        """Return the id of the one record of `target` whose fields equal `value`."""
        table = self.registry.meta(target).table
        conditions = [table.c[k] == v for k, v in value.items() if k in table.c]
        found = self.session.execute(sa.select(table.c.id).where(*conditions)).scalars().all()
        if len(found) != 1 or len(conditions) != len(value):
            raise ValidationFailed(
                [FieldError(where, "reference_missing", {"entity": target, "value": dict(value)})]
            )
        return int(found[0])
