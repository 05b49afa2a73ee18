"""`formwork demo` (every pack with demo data, demo users with a printed password, a second
run harmless) and the fixture loader's date tokens, user values and users files."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from formwork.auth.users import authenticate
from formwork.cli import init_command
from formwork.cli_demo import demo_command
from formwork.runtime.clock import Clock
from formwork.runtime.errors import ValidationFailed
from formwork.runtime.models import User, UserRole
from formwork.runtime.packs.fixtures import ensure_users, load_fixtures, resolve_date_token
from tests.construction.conftest import MODULE_PACKS, demo_file

# Outcomes depend on the clock's date: `make test` runs these again a year ahead.
pytestmark = pytest.mark.dates


def run(app, command, *args):
    return app.test_cli_runner().invoke(command, list(args), catch_exceptions=False)


@pytest.fixture
def packs(tmp_path: Path) -> Path:
    """Return a folder with the projects and cost_center packs (the others are tested by
    their own helpers' tests)."""
    folder = tmp_path / "packs"
    for name in ("projects", "cost_center"):
        shutil.copytree(MODULE_PACKS / name, folder / name)
    return folder


def counts(session) -> tuple[int, int]:
    entries = session.execute(sa.text("SELECT count(*) FROM cost_center__cost_entry")).scalar()
    contracts = session.execute(sa.text("SELECT count(*) FROM projects__contract")).scalar()
    session.rollback()
    return int(entries), int(contracts)


def test_demo_installs_everything_once_and_prints_the_password(app, session, packs):
    assert run(app, init_command).exit_code == 0
    first = run(app, demo_command, "--packs", str(packs))
    assert first.exit_code == 0, first.output
    assert "projects installed 1.0.0" in first.output
    assert "cost_center installed 1.0.0" in first.output
    kept = Path(app.config["INSTANCE_PATH"]) / "demo_passwords"
    lines = kept.read_text("utf-8").splitlines()
    users = [u["username"] for u in demo_file("projects", "users.json")["users"]]
    assert [line.split(" ")[0] for line in lines] == users
    password = lines[0].split(" ")[1]
    assert f"/ {password}" in first.output and kept.stat().st_mode & 0o077 == 0
    assert authenticate(session, "lina", password) is not None
    assert counts(session) == (
        len(demo_file("cost_center", "cost_entries.json")["records"]),
        len(demo_file("projects", "contracts.json")["records"]),
    )
    again = run(app, demo_command, "--packs", str(packs))
    assert again.exit_code == 0, again.output
    assert "projects 1.0.0 is already installed" in again.output
    assert kept.read_text("utf-8").splitlines() == lines and f"/ {password}" in again.output
    assert counts(session) == (
        len(demo_file("cost_center", "cost_entries.json")["records"]),
        len(demo_file("projects", "contracts.json")["records"]),
    )


def test_demo_refuses_a_broken_pack_and_installs_nothing(app, session, packs):
    run(app, init_command)
    (packs / "cost_center" / "menu.json").write_text('{"items": [{"entity": "nope"}]}')
    result = app.test_cli_runner().invoke(demo_command, ["--packs", str(packs)])
    assert result.exit_code != 0 and "unknown entity 'nope'" in result.output
    assert session.scalar(sa.select(User.id).where(User.username == "lina")) is None
    assert not (Path(app.config["INSTANCE_PATH"]) / "demo_passwords").exists()


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("@today", dt.date(2026, 1, 15)),
        ("@today-30", dt.date(2025, 12, 16)),
        ("@today+20", dt.date(2026, 2, 4)),
        ("@month", dt.date(2026, 1, 1)),
        ("@month-2", dt.date(2025, 11, 1)),
        ("@month+12", dt.date(2027, 1, 1)),
        ("@today-x", None),
        ("today", None),
        ("2026-01-01", None),
    ],
)
def test_date_tokens(token, expected):
    assert resolve_date_token(token, dt.date(2026, 1, 15)) == expected


def test_users_files_and_user_values(sample, session):
    people = [{"username": "zhang", "display_name": "张", "roles": ["site_engineer"],
               "locale": "zh-CN"}, {"username": "admin2", "roles": []}]  # fmt: skip
    assert ensure_users(session, people) == ["zhang", "admin2"]
    assert ensure_users(session, people) == []  # existing users are left as they are
    zhang = session.scalar(sa.select(User).where(User.username == "zhang"))
    assert zhang.locale == "zh-CN" and authenticate(session, "zhang", "!") is None
    assert session.scalar(sa.select(UserRole.role).where(UserRole.user_id == zhang.id)) == (
        "site_engineer"
    )
    document = {"entity": "project", "key": "code", "records": [
        {"code": "T1", "name": "x", "manager": {"username": "zhang"}, "start_date": "@month-1"},
    ]}  # fmt: skip
    assert (
        load_fixtures(
            session,
            "sample",
            document,
            "demo/p.json",
            Clock(dt.datetime(2026, 3, 10, 2, tzinfo=dt.UTC)),
        )
        == 1
    )
    row = session.execute(sa.text("SELECT manager, start_date FROM sample__project")).one()
    assert row[0] == zhang.id and str(row[1]).startswith("2026-02-01")
    bad = {"entity": "project", "records": [{"code": "T2", "name": "y",
                                              "manager": {"username": "nobody"}}]}  # fmt: skip
    with pytest.raises(ValidationFailed) as caught:
        load_fixtures(session, "sample", bad, "demo/p.json")
    assert caught.value.errors[0].pointer == "demo/p.json#/records/0/manager"
