"""`formwork pack …`: check, install, enable/disable, upgrade, uninstall, export, import, diff."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from formwork.context import get_session, kernel
from formwork.runtime.errors import DefinitionInvalid, DestructiveChange, ValidationFailed
from formwork.runtime.packs import (
    InstallOptions,
    PackInvalid,
    PackRefused,
    check_pack,
    customisations,
    customise,
    export_pack,
    import_data,
    install_packs,
    pack_records,
    read_pack,
    read_zip,
    set_enabled,
    uninstall,
)
from formwork.runtime.packs.installer import RESOLUTIONS, describe_patch
from formwork.runtime.packs.manifest import read_manifest
from formwork.runtime.registry import load_registry
from formwork.runtime.security_events import pack_changes, pack_state, record_cli_event

FAILURES = (PackInvalid, PackRefused, DefinitionInvalid, DestructiveChange, ValidationFailed)


@click.group("pack")
def pack_group() -> None:
    """Manage module packs."""


def initialised() -> bool:
    """Return True when the database has the Formwork tables (`formwork init` ran)."""
    import sqlalchemy as sa

    from formwork.runtime.models import PackRecord

    return bool(sa.inspect(get_session().get_bind()).has_table(PackRecord.__tablename__))


def require_initialised() -> None:
    """Stop with a clear message when the database has no Formwork tables yet."""
    if not initialised():
        raise click.ClickException("the database has no Formwork tables: run `formwork init`")


def _transaction(func: Callable[..., list[str] | str]) -> Callable[..., None]:
    """Run a pack command in one transaction: print its report, or roll back and explain."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> None:
        require_initialised()
        session = get_session()
        try:
            before = pack_state(session)
            result = func(*args, **kwargs)
            # Installs, upgrades and uninstalls go to the security log in this transaction.
            for kind, detail in pack_changes(before, pack_state(session)):
                record_cli_event(session, kind, **detail)
        except FAILURES as exc:
            session.rollback()
            raise click.ClickException(_explain(exc)) from exc
        session.commit()
        kernel().definitions_changed()
        click.echo("\n".join(result) if isinstance(result, list) else result)

    return run


def _explain(exc: Exception) -> str:
    if isinstance(exc, PackInvalid):
        return f"{len(exc.problems)} problem(s):\n" + "\n".join(str(p) for p in exc.problems)
    if isinstance(exc, DefinitionInvalid | ValidationFailed):
        return "\n".join(f"{e.pointer}: {e.message('en')}" for e in exc.errors)
    if isinstance(exc, DestructiveChange):
        return f"{exc}\nrun again with --confirm to accept the loss"
    return str(exc)


@pack_group.command("list")
@with_appcontext
def pack_list() -> None:
    """List installed packs with version and state."""
    require_initialised()
    for name, record in pack_records(get_session()).items():
        state = (
            record.status
            if record.status != "installed"
            else ("enabled" if record.enabled else "disabled")
        )
        title = record.manifest.get("title", {})
        click.echo(
            f"{name}\t{record.version}\t{state}\t{title.get('zh-CN', '')}\t{title.get('en', '')}"
        )


@pack_group.command("check")
@click.argument("path", type=click.Path(exists=True))
@with_appcontext
def pack_check(path: str) -> None:
    """Check a pack folder or zip; list every problem with its id, place and hint."""
    try:
        # Without a database the pack is checked on its own (dependencies taken on trust).
        known = load_registry(get_session()).entities if initialised() else {}
        checked = check_pack(read_pack(path), known=known)
    except PackInvalid as exc:
        raise click.ClickException(_explain(exc)) from exc
    click.echo(
        f"{checked.name} {checked.manifest.version}: OK ({len(checked.manifest.all_paths())} files)"
    )


def _options(demo: bool, confirm: bool, resolution: str | None) -> InstallOptions:
    return InstallOptions(
        demo=demo,
        confirm=confirm,
        resolution=resolution,
        clock=kernel().clock,
        services=kernel().workflow.services,
    )


@pack_group.command("install")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--demo", is_flag=True, help="Also load the packs' demo data.")
@click.option("--confirm", is_flag=True, help="Accept schema changes that lose data.")
@with_appcontext
@_transaction
def pack_install(paths: tuple[str, ...], demo: bool, confirm: bool) -> list[str]:
    """Install packs (folders or zips) in dependency order, all in one transaction."""
    return install_packs(
        get_session(), [read_pack(p) for p in paths], _options(demo, confirm, None)
    )


@pack_group.command("upgrade")
@click.argument("path", type=click.Path(exists=True))
@click.option("--confirm", is_flag=True, help="Accept schema changes that lose data.")
@click.option(
    "--resolution",
    type=click.Choice(RESOLUTIONS),
    help="How to settle customisations that conflict with the new version.",
)
@with_appcontext
@_transaction
def pack_upgrade(path: str, confirm: bool, resolution: str | None) -> list[str]:
    """Upgrade an installed pack, keeping data and re-applying customisations."""
    source = read_pack(path)
    name = read_manifest(source).name  # a broken pack.json is a refusal, not a traceback
    if name not in pack_records(get_session()):
        raise PackRefused(f"pack '{name}' is not installed; use `formwork pack install`")
    return install_packs(get_session(), [source], _options(False, confirm, resolution))


@pack_group.command("enable")
@click.argument("name")
@with_appcontext
@_transaction
def pack_enable(name: str) -> str:
    """Switch a pack on."""
    report = set_enabled(get_session(), name, True)
    record_cli_event(get_session(), "pack.enabled", pack=name)
    return report


@pack_group.command("disable")
@click.argument("name")
@with_appcontext
@_transaction
def pack_disable(name: str) -> str:
    """Switch a pack off: its menus, pages and API disappear; data stays."""
    report = set_enabled(get_session(), name, False)
    record_cli_event(get_session(), "pack.disabled", pack=name)
    return report


@pack_group.command("uninstall")
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also drop the pack's tables and records.")
@click.option("--yes", is_flag=True, help="Do not ask before purging.")
@with_appcontext
@_transaction
def pack_uninstall(name: str, purge: bool, yes: bool) -> str:
    """Uninstall a pack; its tables and records are kept unless --purge."""
    confirmed = yes or (
        purge
        and click.confirm(
            f"Drop every table and record of '{name}'? This cannot be undone", default=False
        )
    )
    return uninstall(get_session(), name, purge=purge, confirm=confirmed)


@pack_group.command("export")
@click.argument("name")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--with-customisations",
    is_flag=True,
    help="Fold the customisations into the files, as a new version.",
)
@click.option("--version", "version", help="Version of a customised export.")
@click.option("--with-data", is_flag=True, help="Include the records as JSON lines.")
@with_appcontext
def pack_export(
    name: str, output: str, with_customisations: bool, version: str | None, with_data: bool
) -> None:
    """Write a pack to a zip; the same state always gives the same bytes."""
    require_initialised()
    try:
        data = export_pack(get_session(), name, with_customisations, with_data, version)
    except PackRefused as exc:
        raise click.ClickException(str(exc)) from exc
    Path(output).write_bytes(data)
    click.echo(f"wrote {output} ({len(data)} bytes)")


@pack_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--with-data", is_flag=True, help="Also insert the records the zip carries.")
@click.option("--demo", is_flag=True, help="Also load the pack's demo data.")
@click.option("--confirm", is_flag=True, help="Accept schema changes that lose data.")
@with_appcontext
@_transaction
def pack_import(file: str, with_data: bool, demo: bool, confirm: bool) -> list[str]:
    """Install or upgrade a pack from a zip (refused whole if anything is wrong)."""
    source = read_zip(Path(file).read_bytes(), file)
    session = get_session()
    options = _options(demo, confirm, None)
    # Exported records include the fixtures' records: load them once, from the data.
    options.fixtures = not with_data
    report = install_packs(session, [source], options)
    name = json.loads(source.files["pack.json"])["name"]
    records = import_data(session, source, name) if with_data else 0
    if with_data:
        report.append(f"imported {records} record(s)")
    record_cli_event(session, "pack.imported", pack=name, file=Path(file).name, records=records)
    return report


@pack_group.command("diff")
@click.argument("name")
@with_appcontext
def pack_diff(name: str) -> None:
    """Show the customisations of a pack (the overlay over its base)."""
    require_initialised()
    patches = customisations(get_session(), name)
    if not patches:
        click.echo(f"{name}: no customisations")
    for path, patch in sorted(patches.items()):
        click.echo(f"--- {path}")
        for line in describe_patch(patch):
            click.echo(f"  {line}")


@pack_group.command("customise")
@click.argument("name")
@click.argument("file")
@click.argument("patch", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
@_transaction
def pack_customise(name: str, file: str, patch: str) -> list[str]:
    """Apply a JSON merge patch (PATCH file) to FILE of pack NAME, as a customisation."""
    try:
        document = json.loads(Path(patch).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PackRefused(f"cannot read the patch {patch}: {exc}") from exc
    report = customise(get_session(), name, file, document) or ["customisation saved"]
    record_cli_event(get_session(), "pack.customised", pack=name, file=file)
    return report
