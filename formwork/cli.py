"""The `formwork` command line (a Flask CLI group)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from formwork.auth.users import (
    UserError,
    create_user,
    ensure_role,
    grant,
    is_admin_present,
)
from formwork.cli_users import user_group
from formwork.context import get_session, kernel
from formwork.runtime.database import create_system_tables
from formwork.runtime.errors import DefinitionInvalid, DestructiveChange, ValidationFailed
from formwork.runtime.registry import load_registry
from formwork.runtime.role_admin import set_permissions
from formwork.runtime.security import ADMIN_ROLE
from formwork.runtime.security_events import record_event

PASSWORD_FILE = "initial_admin_password"  # noqa: S105  (a file name)


def main() -> None:
    """Run the `formwork` command."""
    from formwork.app import create_app

    FlaskGroup(create_app=lambda: create_app(), add_default_commands=True)(prog_name="formwork")


def init_app(app: Flask) -> None:
    """Register the commands on the app."""
    from formwork.cli_demo import demo_command
    from formwork.cli_packs import pack_group

    for command in (
        init_command, user_group, role_group, entity_group, pack_group, worker_command,
        process_group, demo_command,
    ):  # fmt: skip
        app.cli.add_command(command)


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create the platform tables and the first admin (password printed and kept in instance/)."""
    create_system_tables(kernel().engine)
    session = get_session()
    ensure_role(session, ADMIN_ROLE, {"zh-CN": "管理员", "en": "Administrator"})
    password_file = Path(current_app.config["INSTANCE_PATH"]) / PASSWORD_FILE
    if not is_admin_present(session):
        password = "Fw-" + secrets.token_urlsafe(12)
        create_user(session, "admin", password, [ADMIN_ROLE], "Administrator")
        password_file.write_text(password + "\n", encoding="utf-8")
        password_file.chmod(0o600)
    session.commit()
    click.echo("Formwork database ready.")
    if password_file.exists():
        click.echo(
            f"Sign in as admin / {password_file.read_text(encoding='utf-8').strip()}"
            f"  (kept in {password_file}; delete it after changing the password)"
        )


@click.group("role")
def role_group() -> None:
    """Manage roles and their permissions."""


@role_group.command("grant")
@click.argument("role")
@click.argument("entity")
@click.argument("actions", nargs=-1, required=True)
@click.option(
    "--rows",
    default=None,
    help='Row rules, JSON: [{"field": "project", "member_of": "projects.project"}].',
)
@click.option("--fields", default=None, help='Field rules, JSON: {"bank_card": "hidden"}.')
@with_appcontext
def role_grant(
    role: str, entity: str, actions: tuple[str, ...], rows: str | None, fields: str | None
) -> None:
    """Allow ROLE the ACTIONS (read/create/update/delete/submit/export/import/cancel/amend)
    on ENTITY (`pack.name` or `*`), on the records --rows reach, with the field rules
    --fields."""
    session = get_session()
    permission: dict[str, Any] = {"entity": entity, "actions": list(actions)}
    for option, text in (("rows", rows), ("fields", fields)):
        if text:
            try:
                permission[option] = json.loads(text)
            except ValueError as exc:
                raise click.BadParameter(f"not JSON: {exc}", param_hint=f"--{option}") from exc
    try:
        if role != ADMIN_ROLE and (rows or fields):
            ensure_role(session, role)
            set_permissions(
                session, load_registry(session), role, None, _merged(session, role, permission)
            )
        else:
            grant(session, role, entity, actions)
        record_event(
            session, "permission.changed", username=_cli_user(), detail={"role": role, **permission}
        )
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationFailed as exc:
        problems = "; ".join(f"{e.pointer}: {e.message('en')}" for e in exc.errors)
        raise click.ClickException(problems) from exc
    session.commit()
    click.echo(f"{role} may {', '.join(actions)} {entity}" + (f" where {rows}" if rows else ""))


def _merged(session: Any, role: str, permission: dict[str, Any]) -> list[dict[str, Any]]:
    # The administrator's other grants of the role stay; this entity's are replaced.
    from formwork.runtime.role_admin import get_role

    own = get_role(session, role)["grants"].get(None, [])
    return [g for g in own if g["entity"] != permission["entity"]] + [permission]


def _cli_user() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@role_group.command("list")
@with_appcontext
def role_list() -> None:
    """List roles with their grants (JSON)."""
    from formwork.runtime.role_admin import list_roles

    click.echo(json.dumps(list_roles(get_session()), ensure_ascii=False, indent=2, default=str))


@click.group("entity")
def entity_group() -> None:
    """Apply and inspect entity definitions."""


@entity_group.command("apply")
@click.argument("pack")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--confirm", is_flag=True, help="Allow changes that lose data.")
@click.option(
    "--keep-missing", is_flag=True, help="Keep the pack's entities that the files do not mention."
)
@with_appcontext
def entity_apply(pack: str, files: tuple[str, ...], confirm: bool, keep_missing: bool) -> None:
    """Create or change PACK's entities from definition FILES (one transaction)."""
    from formwork.runtime.schema import apply_definitions, read_definition_files

    session = get_session()
    try:
        done = apply_definitions(
            session,
            pack,
            read_definition_files(files),
            confirm=confirm,
            remove_missing=not keep_missing,
        )
    except (DefinitionInvalid, DestructiveChange) as exc:
        session.rollback()
        raise click.ClickException(_problems(exc)) from exc
    session.commit()
    kernel().definitions_changed()
    click.echo("\n".join(done) if done else "nothing to change")


@entity_group.command("check")
@click.argument("pack")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def entity_check(pack: str, files: tuple[str, ...]) -> None:
    """Check definition FILES without a database; list every problem."""
    from formwork.runtime.schema import cross_check, parse_documents, read_definition_files

    try:
        entities = {e.key: e for e in parse_documents(pack, read_definition_files(files))}
        problems = cross_check(entities)
        if problems:
            raise DefinitionInvalid(problems)
    except DefinitionInvalid as exc:
        raise click.ClickException(_problems(exc)) from exc
    click.echo(f"{len(entities)} definition(s) OK")


@entity_group.command("list")
@with_appcontext
def entity_list() -> None:
    """List the installed entities."""
    registry = kernel().registry(get_session())
    for entity in registry.entities.values():
        click.echo(f"{entity.key}\t{entity.label('zh-CN')}\t{entity.label('en')}")


def _problems(exc: Any) -> str:
    if isinstance(exc, DestructiveChange):
        return str(exc) + "\nrun again with --confirm to accept the loss"
    lines = [f"{e.pointer}: {e.message('en')}" for e in exc.errors]
    return f"{len(lines)} problem(s):\n" + "\n".join(lines)


@click.command("worker")
@click.option(
    "--interval", default=5.0, type=click.FloatRange(0.1, 3600), help="Seconds between passes."
)
@click.option("--once", is_flag=True, help="Fire what is due now and exit.")
@with_appcontext
def worker_command(interval: float, once: bool) -> None:
    """Fire due workflow timers (run several against PostgreSQL; one with SQLite)."""
    from formwork.runtime.workflow.worker import run_worker

    click.echo(f"formwork worker: firing due timers every {interval:g} s")
    run_worker(kernel(), interval, once)


@click.group("process")
def process_group() -> None:
    """Deploy and list workflow processes."""


@process_group.command("deploy")
@click.argument("bpmn", type=click.Path(dir_okay=False, exists=True))
@click.option("--dmn", multiple=True, type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--called", multiple=True, type=click.Path(dir_okay=False, exists=True),
    help="A BPMN file with a process the call activities call.",
)  # fmt: skip
@click.option(
    "--form", "forms", multiple=True, type=click.Path(dir_okay=False, exists=True),
    help="A JSON Schema file a formJsonSchemaFilename names.",
)  # fmt: skip
@click.option(
    "--binding", default=None, help='JSON, e.g. {"entity": "pack.name", "state_field": "state"}'
)
@with_appcontext
def process_deploy(
    bpmn: str,
    dmn: tuple[str, ...],
    called: tuple[str, ...],
    forms: tuple[str, ...],
    binding: str | None,
) -> None:
    """Deploy a BPMN file (with its DMN tables, called processes and form files) as a new
    version unless unchanged."""
    import json

    from formwork.runtime.errors import ValidationFailed
    from formwork.runtime.security import system_principal
    from formwork.runtime.workflow.deploy import deploy

    session = get_session()
    try:
        texts = [Path(p).read_text(encoding="utf-8") for p in dmn]
        library = {Path(p).name: Path(p).read_text(encoding="utf-8") for p in called}
        schemas = {Path(p).name: json.loads(Path(p).read_text(encoding="utf-8")) for p in forms}
        row, created = deploy(
            session, Path(bpmn).read_text(encoding="utf-8"), texts, principal=system_principal(),
            binding=json.loads(binding) if binding else None, library=library, forms=schemas,
        )  # fmt: skip
    except (ValidationFailed, ValueError) as exc:
        text = _problems(exc) if isinstance(exc, ValidationFailed) else str(exc)
        raise click.ClickException(text) from exc
    session.commit()
    click.echo(f"{row.key} version {row.version}" + ("" if created else " (unchanged)"))
