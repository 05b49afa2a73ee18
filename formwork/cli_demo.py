"""`formwork demo`: install every module pack with its demo data and sign-ins for the demo users."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from formwork.auth.users import set_password
from formwork.cli_packs import FAILURES, _explain
from formwork.context import get_session, kernel
from formwork.runtime.models import User
from formwork.runtime.packs import InstallOptions, install_packs, read_pack
from formwork.runtime.packs.manifest import read_manifest
from formwork.runtime.packs.source import PackSource
from formwork.runtime.security_events import pack_changes, pack_state, record_cli_event

PACKS = Path(__file__).resolve().parent.parent / "module_packs"
PASSWORD_FILE = "demo_passwords"  # noqa: S105  (a file name)


def pack_sources(folder: Path) -> list[PackSource]:
    """Return every pack folder (one holding a pack.json) directly under `folder`."""
    return [read_pack(p) for p in sorted(folder.iterdir()) if (p / "pack.json").is_file()]


def demo_usernames(sources: list[PackSource]) -> list[str]:
    """Return the usernames the packs' demo users files declare, in order."""
    names: list[str] = []
    for source in sources:
        for path in read_manifest(source).paths("demo"):
            document = json.loads(source.text(path))
            for person in document.get("users", []) if isinstance(document, dict) else []:
                if isinstance(person, dict) and person.get("username") not in names:
                    names.append(str(person.get("username")))
    return names


def give_passwords(session: Session, usernames: list[str]) -> str:
    """Set one new generated password on the given users; return it."""
    password = "Demo-" + secrets.token_urlsafe(9)
    for user in session.scalars(sa.select(User).where(User.username.in_(usernames))):
        set_password(session, user, password)
    return password


@click.command("demo")
@click.option(
    "--packs",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=PACKS,
    show_default=True,
    help="Folder whose pack folders are installed.",
)
@with_appcontext
def demo_command(folder: Path) -> None:
    """Install every module pack with its demo data and create the demo users.

    Packs already installed are left as they are, so a second run changes nothing. Demo
    users created by this run get one generated password, printed once and kept in
    instance/demo_passwords.
    """
    session = get_session()
    try:
        sources = pack_sources(folder)
        wanted = demo_usernames(sources)
        existing = set(session.scalars(sa.select(User.username).where(User.username.in_(wanted))))
        before = pack_state(session)
        report = install_packs(
            session,
            sources,
            InstallOptions(demo=True, clock=kernel().clock, services=kernel().workflow.services),
        )
        for kind, detail in pack_changes(before, pack_state(session)):
            record_cli_event(session, kind, **detail)
        created = [name for name in wanted if name not in existing]
        password = give_passwords(session, created) if created else None
    except FAILURES as exc:
        session.rollback()
        raise click.ClickException(_explain(exc)) from exc
    session.commit()
    kernel().definitions_changed()
    click.echo("\n".join(report))
    _announce(created, password)


def _announce(created: list[str], password: str | None) -> None:
    password_file = Path(current_app.config["INSTANCE_PATH"]) / PASSWORD_FILE
    if created and password:
        with password_file.open("a", encoding="utf-8") as out:
            out.write("".join(f"{name} {password}\n" for name in created))
        password_file.chmod(0o600)
    if not password_file.exists():
        return
    by_password: dict[str, list[str]] = {}
    for line in password_file.read_text("utf-8").splitlines():
        name, _, secret = line.partition(" ")
        if secret:
            by_password.setdefault(secret, []).append(name)
    for secret, names in by_password.items():
        click.echo(f"Demo users {', '.join(names)} / {secret}")
    click.echo(f"(kept in {password_file}; change these passwords before real use)")
