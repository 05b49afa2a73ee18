"""The permission sample: pack `secure` (tests/packs/secure_v1) with a user per role and a few
records whose visibility each role's row and field rules decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from formwork.auth.users import create_token, create_user
from formwork.runtime.events import EventBus
from formwork.runtime.packs import InstallOptions, install_packs, read_pack
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal
from tests.conftest import PASSWORD, Api

SECURE = Path(__file__).parents[1] / "packs" / "secure_v1"
ROLES = ("admin", "site_engineer", "crew_leader", "finance", "note_taker")


@dataclass
class Secure:
    """The installed sample: API clients per user and the ids of what was created."""

    app: Flask
    users: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def api(self, user: str | None) -> Api:
        """Return an API client with `user`'s bearer token (None: anonymous)."""
        return Api(self.app.test_client(), self.tokens[user] if user else None)

    def service(self, session: Any, user: str) -> RecordService:
        """Return a record service acting as `user` (a principal loaded from the database)."""
        from formwork.runtime.models import User
        from formwork.runtime.security import load_principal

        principal = load_principal(session, session.get(User, self.users[user]))
        return RecordService(session, load_registry(session), principal, EventBus())


@pytest.fixture
def secure(app: Flask, session: Any) -> Secure:
    """Install the sample pack, a user per role (and a second note taker, and an inspector
    who reads every sheet but only P1 of the projects and no crew or worker) and records:
    projects P1 (engineer and inspector are members) and P2; crews A (led by the crew
    leader) and B; sheets s1 (P1, A, draft), s2 (P2, B, approved), s3 (P1, B, approved),
    each with a line of a worker of its crew (wA in crew A, wB in crew B)."""
    install_packs(session, [read_pack(SECURE)], InstallOptions())
    out = Secure(app)
    for name in (*ROLES, "note_taker2", "inspector"):
        role = "note_taker" if name == "note_taker2" else name
        user = create_user(session, name, PASSWORD, [role])
        out.users[name] = user.id
        scopes = ("read", "write", "workflow", "admin")  # roles, not scopes, are under test
        out.tokens[name] = create_token(session, user, "test", scopes=scopes)
    session.commit()
    records = RecordService(session, load_registry(session), system_principal(), EventBus())
    _seed(records, out)
    session.commit()
    return out


def _seed(records: RecordService, out: Secure) -> None:
    def make(name: str, key: str, payload: dict[str, Any]) -> None:
        out.ids[name] = records.create(f"secure.{key}", payload)["id"]

    make("P1", "project", {"code": "P1", "name": "一号楼", "budget": "1000000.00"})
    make("P2", "project", {"code": "P2", "name": "二号楼", "budget": "2000000.00"})
    make("m1", "member", {"project": out.ids["P1"], "user": out.users["site_engineer"]})
    make("m2", "member", {"project": out.ids["P1"], "user": out.users["inspector"]})
    make("A", "crew", {"name": "木工班", "leader": out.users["crew_leader"]})
    make("B", "crew", {"name": "钢筋班"})
    make("wA", "worker", {"name": "张三", "crew": out.ids["A"], "bank_card": "6222000011112222"})
    make("wB", "worker", {"name": "李四", "crew": out.ids["B"], "bank_card": "6222000033334444"})
    lines = {c: {"worker": out.ids[f"w{c}"], "days": "1.0", "day_rate": "300.00"} for c in "AB"}
    sheets = (
        ("s1", "P1", "A", "draft", "100.00"),
        ("s2", "P2", "B", "approved", "200.00"),
        ("s3", "P1", "B", "approved", "400.00"),
    )
    for name, project, crew, status, amount in sheets:
        payload = {
            "title": name,
            "project": out.ids[project],
            "crew": out.ids[crew],
            "status": status,
            "amount": amount,
            "lines": [lines[crew]],  # a worker of the sheet's crew (the line's filter)
        }
        make(name, "sheet", payload)
    make("n1", "note", {"text": "P1 的记事", "project": out.ids["P1"]})
    make("n2", "note", {"text": "P2 的记事", "project": out.ids["P2"]})
