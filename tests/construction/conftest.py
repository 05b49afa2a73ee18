"""The construction packs installed with their demo data, once per test module.

Installing every pack of module_packs/ with its demo data takes seconds, so the app lives for
a whole test module (`construction`): tests that change data should create their own records
(or use the tender project P2501, which has no costs) and leave the demo records as they are.
Do not mix it with the function-scoped `app` fixture in one module: on PostgreSQL that
fixture empties the schema.

    def test_something(construction):
        pm = construction.api("zhangwei")          # a demo user, by bearer token
        rows = pm.get("/api/v1/projects/project").json["items"]
        lines = construction.demo("cost_center", "cost_entries.json")   # the demo JSON
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from formwork.auth.users import create_token, create_user
from formwork.runtime.models import User
from formwork.runtime.packs import InstallOptions, install_packs, read_pack
from formwork.runtime.packs.fixtures import resolve_date_token
from tests.conftest import PASSWORD, Api, make_test_app, test_today

MODULE_PACKS = Path(__file__).resolve().parents[2] / "module_packs"


def pack_folders(names: list[str] | None = None) -> list[Path]:
    """Return the pack folders under module_packs/ (all, or those named)."""
    found = [p for p in sorted(MODULE_PACKS.iterdir()) if (p / "pack.json").is_file()]
    return [p for p in found if names is None or p.name in names]


def demo_file(pack: str, name: str) -> Any:
    """Return a pack's demo (or fixtures) JSON file: demo_file("projects", "contracts.json")."""
    for folder in ("demo", "fixtures"):
        path = MODULE_PACKS / pack / folder / name
        if path.is_file():
            return json.loads(path.read_text("utf-8"))
    raise FileNotFoundError(f"{pack}: no demo or fixture file {name}")


def resolve_date(value: str, today: dt.date | None = None) -> dt.date:
    """Return the date a demo value names (a token like @today-30, or ISO text)."""
    day = today or test_today()
    return resolve_date_token(value, day) or dt.date.fromisoformat(value)


@dataclass
class Construction:
    """The app with the packs installed, and API clients for admin and the demo users."""

    app: Flask
    session: Any
    report: list[str]
    tokens: dict[str, str] = field(default_factory=dict)

    def api(self, username: str = "admin") -> Api:
        """Return a JSON client acting as `username` (a bearer token made on first use)."""
        if username not in self.tokens:
            user = self.session.scalar(sa.select(User).where(User.username == username))
            if user is None:
                self.session.rollback()
                raise KeyError(f"no user {username!r}")
            self.tokens[username] = create_token(self.session, user, "test")
            self.session.commit()
        return Api(self.app.test_client(), self.tokens[username])

    def demo(self, pack: str, name: str) -> Any:
        """Return a pack's demo JSON file."""
        return demo_file(pack, name)

    def user_id(self, username: str) -> int:
        """Return a user's id."""
        found = self.session.scalar(sa.select(User.id).where(User.username == username))
        self.session.rollback()  # end the read: SQLite would keep the app's writes waiting
        if found is None:
            raise KeyError(f"no user {username!r}")
        return int(found)

    def id_of(self, entity: str, **values: Any) -> int:
        """Return the id of the one record of `pack.entity` with these field values."""
        pack, name = entity.split(".")
        query = "&".join(f"{k}__eq={v}" for k, v in values.items())
        items = self.api().get(f"/api/v1/{pack}/{name}?{query}").json["items"]
        assert len(items) == 1, (entity, values, items)
        return int(items[0]["id"])


def build(tmp: Path, packs: list[str] | None = None) -> Construction:
    """Return an app on an empty database with the packs (and demo data) installed."""
    app = make_test_app(tmp)
    session = app.extensions["formwork"].sessions()
    create_user(session, "admin", PASSWORD, ["admin"], "Administrator")
    sources = [read_pack(p) for p in pack_folders(packs)]
    report = install_packs(session, sources, InstallOptions(demo=True))
    session.commit()
    return Construction(app, session, report)


@pytest.fixture(scope="module")
def construction(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Construction]:
    """Return every pack of module_packs/ installed with demo data (one per test module)."""
    built = build(tmp_path_factory.mktemp("construction"))
    yield built
    built.session.close()
    built.app.extensions["formwork"].engine.dispose()
