"""Switch packs on and off, customise them, and uninstall them (data kept unless purged)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.clock import session_clock
from formwork.runtime.models import Customisation, EntityRecord, PackFile, PackRecord
from formwork.runtime.packs.check import check_pack
from formwork.runtime.packs.overlay import make_patch, merge_patch
from formwork.runtime.packs.problems import PackRefused
from formwork.runtime.packs.roles import install_roles, remove_grants
from formwork.runtime.packs.source import PackSource
from formwork.runtime.packs.store import base_files, effective_files, pack_records, parse
from formwork.runtime.registry import bump_version, load_registry
from formwork.runtime.schema import apply_definitions


def _installed(session: Session, name: str) -> PackRecord:
    record = pack_records(session).get(name)
    if record is None or record.status != "installed":
        raise PackRefused(f"pack '{name}' is not installed")
    return record


def dependants(session: Session, name: str, enabled_only: bool = False) -> list[str]:
    """Return the installed packs that declare a dependency on `name`."""
    return sorted(
        r.name
        for r in pack_records(session).values()
        if r.status == "installed"
        and name in r.manifest.get("depends", {})
        and (r.enabled or not enabled_only)
    )


def set_enabled(session: Session, name: str, enabled: bool) -> str:
    """Switch a pack on or off; its tables and data stay either way."""
    record = _installed(session, name)
    if not enabled:
        users = dependants(session, name, enabled_only=True)
        if users:
            raise PackRefused(
                f"cannot disable '{name}': enabled pack(s) {', '.join(users)} "
                "depend on it; disable them first"
            )
    else:
        off = [
            d
            for d in record.manifest.get("depends", {})
            if not (pack_records(session).get(d) and pack_records(session)[d].enabled)
        ]
        if off:
            raise PackRefused(f"cannot enable '{name}': it needs {', '.join(off)} enabled first")
    record.enabled = enabled
    record.updated_at = session_clock(session).now()
    bump_version(session)
    return f"{name} {'enabled' if enabled else 'disabled'}"


def uninstall(session: Session, name: str, purge: bool = False, confirm: bool = False) -> str:
    """Remove a pack's files, menus, workflows and roles; keep its tables unless `purge`."""
    _installed(session, name)
    users = dependants(session, name)
    if users:
        raise PackRefused(f"cannot uninstall '{name}': {', '.join(users)} depend on it")
    remove_grants(session, name)
    session.execute(sa.delete(PackFile).where(PackFile.pack == name))
    record = pack_records(session)[name]
    if purge:
        _refuse_if_referenced(session, name)
        if not confirm:
            raise PackRefused(
                f"purging '{name}' drops its tables and every record in them; confirm to go ahead"
            )
        apply_definitions(session, name, {}, confirm=True)
        session.execute(sa.delete(Customisation).where(Customisation.pack == name))
        session.delete(record)
        result = f"{name} uninstalled and purged (tables dropped)"
    else:
        record.status, record.enabled = "archived", False
        result = f"{name} uninstalled; its tables and records are kept (archived)"
    session.flush()
    bump_version(session)
    return result


def _refuse_if_referenced(session: Session, name: str) -> None:
    from formwork.runtime.registry import stored_entities

    for entity in stored_entities(session).values():
        if entity.pack == name:
            continue
        for field_def in entity.fields:
            for target in field_def.kind.references(field_def, entity):
                if target.split(".", 1)[0] == name:
                    raise PackRefused(
                        f"cannot purge '{name}': {entity.key}.{field_def.name} "
                        f"(pack {entity.pack}, kept after uninstall) still "
                        f"references {target}; purge {entity.pack} first"
                    )


def customise(
    session: Session, name: str, path: str, patch: Any, user_id: int | None = None
) -> list[str]:
    """Apply a merge patch to one file of a pack as a customisation (the base is untouched)."""
    _installed(session, name)
    base = base_files(session, name)
    if path not in base:
        raise PackRefused(f"pack '{name}' has no file '{path}'")
    current = effective_files(session, name)
    changed = {**current, path: merge_patch(current[path], patch)}
    _check_effective(session, name, changed)
    row = session.get(Customisation, (name, path)) or Customisation(pack=name, path=path)
    row.patch, row.updated_by, row.updated_at = (
        make_patch(parse(base[path]), changed[path]),
        user_id,
        session_clock(session).now(),
    )
    session.add(row)
    session.flush()
    done = _reapply(session, name, changed, user_id)
    bump_version(session)
    return done


def _check_effective(session: Session, name: str, files: dict[str, Any]) -> None:
    import json

    record = pack_records(session)[name]
    source = PackSource(f"{name} (customised)")
    source.files["pack.json"] = json.dumps(record.manifest).encode()
    for path, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        source.files[path] = text.encode()
    check_pack(source, known=load_registry(session).entities)


def _reapply(session: Session, name: str, files: dict[str, Any], user_id: int | None) -> list[str]:
    kinds = {p: r.kind for p, r in base_files(session, name).items()}
    entities = {p: d for p, d in files.items() if kinds[p] == "entities"}
    done = apply_definitions(session, name, entities, user_id=user_id)
    install_roles(session, name, [d for p, d in files.items() if kinds[p] == "roles"])
    return done


def archived_entities(session: Session, name: str) -> list[str]:
    """Return the entity keys kept from an uninstalled pack."""
    rows = session.scalars(sa.select(EntityRecord.key).where(EntityRecord.pack == name))
    return sorted(rows)
