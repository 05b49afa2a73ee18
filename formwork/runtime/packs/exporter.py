"""Export a pack as a deterministic zip (byte-identical on every export), optionally with
its customisations folded in as a new version and its records as JSON lines; import them."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from packaging.version import Version
from sqlalchemy.orm import Session

from formwork.runtime.packs.problems import PackRefused
from formwork.runtime.packs.source import PackSource, load_json
from formwork.runtime.packs.store import base_files, effective_files, pack_records
from formwork.runtime.registry import EntityMeta, load_registry
from formwork.runtime.validation import convert

EPOCH = (1980, 1, 1, 0, 0, 0)


def export_pack(
    session: Session,
    name: str,
    with_customisations: bool = False,
    with_data: bool = False,
    version: str | None = None,
) -> bytes:
    """Return the pack as zip bytes; the same state always gives the same bytes."""
    record = pack_records(session).get(name)
    if record is None or record.status != "installed":
        raise PackRefused(f"pack '{name}' is not installed")
    manifest = dict(record.manifest)
    if with_customisations:
        files = {p: _dump(c) for p, c in effective_files(session, name).items()}
        manifest["version"] = version or _next_patch(record.version)
        if Version(manifest["version"]) <= Version(record.version):
            raise PackRefused(f"the customised export needs a version above {record.version}")
    else:
        files = {p: r.content for p, r in base_files(session, name).items()}
    files["pack.json"] = _dump(manifest)
    if with_data:
        files.update(_data_files(session, name))
    return _zip(files)


def _next_patch(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}.{v.micro + 1}"


def _dump(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, sort_keys=True, indent=2) + "\n"


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[path].encode("utf-8"))
    return buffer.getvalue()


def _metas(session: Session, name: str) -> list[EntityMeta]:
    """Return the pack's entities, each after the ones it references or belongs to."""
    registry = load_registry(session)
    metas = {k: registry.meta(k) for k, e in sorted(registry.entities.items()) if e.pack == name}
    ordered: list[EntityMeta] = []

    def visit(key: str, path: tuple[str, ...] = ()) -> None:
        meta = metas.get(key)
        if meta is None or meta in ordered or key in path:
            return
        for before in _needs(meta):
            visit(before, (*path, key))
        ordered.append(meta)

    for key in metas:
        visit(key)
    return ordered


def _needs(meta: EntityMeta) -> list[str]:
    entity = meta.entity
    targets = [t for f in entity.fields for t in [f.kind.join_target(f, entity)] if t]
    if entity.child_of:
        targets.append(f"{entity.pack}.{entity.child_of}")
    return targets


def _data_files(session: Session, name: str) -> dict[str, str]:
    files = {}
    for meta in _metas(session, name):
        rows = session.execute(sa.select(meta.table).order_by(meta.table.c.id)).mappings()
        lines = [
            json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False, sort_keys=True)
            for row in rows
        ]
        files[f"data/{meta.entity.name}.jsonl"] = "".join(line + "\n" for line in lines)
    return files


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def import_data(session: Session, source: PackSource, name: str) -> int:
    """Insert the records of an export made `--with-data`, keeping their ids; return how many.

    The pack must be freshly installed (its tables empty), so ids and references stay valid.
    """
    count = 0
    for meta in _metas(session, name):
        text = source.files.get(f"data/{meta.entity.name}.jsonl")
        if not text:
            continue
        if session.execute(sa.select(meta.table.c.id).limit(1)).first() is not None:
            raise PackRefused(
                f"{meta.entity.key} already has records; import data only into an empty pack"
            )
        rows = _checked_rows(meta, text, f"data/{meta.entity.name}.jsonl")
        if rows:
            session.execute(sa.insert(meta.table), rows)
            _reset_sequence(session, meta)
            count += len(rows)
    return count


def _checked_rows(meta: EntityMeta, text: bytes, path: str) -> list[dict[str, Any]]:
    """Return the file's rows ready to insert, after checking each against the entity's
    definition like a save would (an archive from elsewhere is input like any other)."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        lines = text.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise PackRefused(f"{path}: not UTF-8 ({exc})") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = load_json(line)
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("id"), int):
            problems.append(f"{path}:{number}: a record is an object with an integer id")
            continue
        payload = {
            f.name: row[f.name]
            for f in meta.entity.stored_fields()
            if f.name in row and not f.read_only
        }
        errors = convert(meta, payload, creating=True).all_errors()
        problems += [f"{path}:{number}{e.pointer or '/'}: {e.message('en')}" for e in errors]
        rows.append(_typed(meta, row))
    if problems:
        shown = "\n".join(problems[:20])
        more = f"\n… and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise PackRefused(f"{len(problems)} bad record(s), nothing imported:\n{shown}{more}")
    return rows


def _typed(meta: EntityMeta, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for column in meta.table.columns:
        if column.name not in row:
            continue
        value = row[column.name]
        python_type = _python_type(column)
        if value is not None and python_type is Decimal:
            value = Decimal(value)
        elif value is not None and python_type in (dt.date, dt.datetime):
            value = python_type.fromisoformat(value)
        out[column.name] = value
    return out


def _python_type(column: sa.Column[Any]) -> Any:
    try:
        return column.type.python_type
    except NotImplementedError:
        return object


def _reset_sequence(session: Session, meta: EntityMeta) -> None:
    if session.get_bind().dialect.name == "postgresql":
        table = meta.table.name
        session.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f'(SELECT COALESCE(MAX(id), 1) FROM "{table}"))'
            )
        )
