"""An instance made by an older Formwork is brought up to date when the app's tables are
created: new columns and indexes are added, a table whose unique constraints changed is
rebuilt with its rows, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from formwork.runtime.database import create_system_tables, make_engine
from formwork.runtime.models import RolePermission
from tests.conftest import database_url

OLD_TABLES = [
    """CREATE TABLE fw_roles (name VARCHAR(64) PRIMARY KEY, label JSON, pack VARCHAR(40))""",
    """CREATE TABLE fw_users (id INTEGER PRIMARY KEY, username VARCHAR(64) UNIQUE,
       display_name VARCHAR(128), email VARCHAR(255), password_hash VARCHAR(255),
       is_active BOOLEAN, locale VARCHAR(10), created_at TIMESTAMP, last_login_at TIMESTAMP)""",
    """CREATE TABLE fw_role_permissions (id INTEGER PRIMARY KEY,
       role VARCHAR(64) REFERENCES fw_roles(name) ON DELETE CASCADE,
       entity VARCHAR(100), action VARCHAR(20), UNIQUE (role, entity, action))""",
]


def test_an_older_instance_is_upgraded_in_place(tmp_path: Path) -> None:
    engine = make_engine(database_url(tmp_path))
    with engine.begin() as conn:
        for statement in OLD_TABLES:
            conn.execute(sa.text(statement))
        conn.execute(sa.text("INSERT INTO fw_roles (name, label) VALUES ('clerk', '{}')"))
        conn.execute(
            sa.text(
                "INSERT INTO fw_users (id, username, password_hash, is_active)"
                " VALUES (1, 'old', 'x', true)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO fw_role_permissions (id, role, entity, action)"
                " VALUES (7, 'clerk', 'site.project', 'read')"
            )
        )
    create_system_tables(engine)
    with engine.begin() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("fw_users")}
        assert {"locked_until", "password_changed_at"} <= columns
        user = conn.execute(sa.text("SELECT username, locked_until FROM fw_users")).one()
        assert tuple(user) == ("old", None)
        assert "fw_sessions" in sa.inspect(conn).get_table_names()
        grants = conn.execute(sa.select(RolePermission.id, RolePermission.entity)).all()
        assert [tuple(g) for g in grants] == [(7, "site.project")]
        # The old unique (role, entity, action) is gone: two packs may grant the same.
        for pack in ("site", "costs"):
            conn.execute(
                sa.insert(RolePermission).values(
                    role="clerk", entity="site.project", action="read", pack=pack
                )
            )
        assert conn.execute(sa.select(sa.func.max(RolePermission.id))).scalar() == 9
    create_system_tables(engine)  # a second run changes nothing
    engine.dispose()
