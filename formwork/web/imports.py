"""Import an Excel or CSV file into an entity: upload, map columns to fields, preview every
bad row with its reason (a dry run through the same saves), then commit all rows or none."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import login_required

from formwork.auth.events import record_request_event
from formwork.context import get_session, registry
from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.fields.relation import ReferenceType, UserType
from formwork.runtime.models import User
from formwork.runtime.registry import EntityMeta
from formwork.runtime.titles import find_by_title
from formwork.web import bp
from formwork.web.context import begin_transaction, entity_meta, principal, service
from formwork.web.i18n import current_locale
from formwork.web.import_lines import (
    group_rows,
    line_fields,
    line_label,
    mapped_children,
    names_of,
)
from formwork.web.spreadsheets import Sheet, SheetRefused, kind_of, read_sheet
from formwork.web.widgets import Lookups, widget

TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
SHOWN_PROBLEMS = 500


@dataclass
class ImportResult:
    """What a run found: rows that would be saved and every bad row with its reasons."""

    total: int = 0
    saved: int = 0
    problems: list[tuple[int, list[str]]] = field(default_factory=list)


def _folder() -> Path:
    folder = Path(current_app.config["INSTANCE_PATH"]) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def importable(meta: EntityMeta) -> list[FieldDef]:
    """Return the fields a column can be mapped to (writable by the signed-in user); the
    fields of line items come as `lines.field` (one sheet row per line item)."""
    locked = principal().read_only_fields(meta.entity.key, "create")
    own = [
        f
        for f in meta.entity.fields
        if not f.read_only and widget(f).importable and f.name not in locked
    ]
    return own + line_fields(meta, locked)


@bp.route("/app/<pack>/<entity>/import", methods=["GET", "POST"])
@login_required
def import_upload(pack: str, entity: str) -> Any:
    """Show the upload form, or store the uploaded file and go to column mapping."""
    meta = entity_meta(pack, entity, "import")
    principal().require(meta.entity.key, "create")
    if request.method == "GET":
        return _upload_page(meta)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _upload_page(meta, _("Choose a file first."), 400)
    limit = int(current_app.config.get("IMPORT_MAX_SIZE", 5 * 1024 * 1024))
    data = upload.stream.read(limit + 1)
    try:
        if len(data) > limit:
            raise SheetRefused(_("The file is larger than %(n)s MB.", n=limit // (1024 * 1024)))
        kind = kind_of(upload.filename, data[:8])
        token = secrets.token_hex(16)
        path = _folder() / f"{token}{kind}"
        path.write_bytes(data)
        sheet = _read(path)
    except SheetRefused as exc:
        _forget(locals().get("path"))
        return _upload_page(meta, str(exc), 400)
    if not any(_auto_map(meta, sheet.header).values()):
        path.unlink(missing_ok=True)
        expected = ", ".join(f.label(current_locale()) for f in importable(meta))
        message = _(
            "None of the columns match a field. Expected columns such as: %(names)s", names=expected
        )
        return _upload_page(meta, message, 400)
    session.setdefault("imports", [])
    session["imports"] = [*session["imports"][-9:], token]
    return redirect(url_for("web.import_map", pack=pack, entity=entity, token=token))


def _forget(path: Any) -> None:
    if isinstance(path, Path):
        path.unlink(missing_ok=True)


def _upload_page(meta: EntityMeta, error: str | None = None, status: int = 200) -> Any:
    fields = importable(meta)
    return render_template(
        "web/import_upload.html",
        entity=meta.entity,
        label=meta.entity.label(current_locale()),
        fields=fields,
        error=error,
        max_rows=_max_rows(),
    ), status


def _max_rows() -> int:
    return int(current_app.config.get("IMPORT_MAX_ROWS", 10_000))


def _read(path: Path) -> Sheet:
    return read_sheet(path, path.suffix, _max_rows())


def _token_path(token: str) -> Path:
    if not TOKEN_RE.match(token) or token not in session.get("imports", []):
        raise NotFound("no such import")
    for kind in (".xlsx", ".csv"):
        path = _folder() / f"{token}{kind}"
        if path.exists():
            return path
    raise NotFound("the uploaded file is gone; upload it again")


def _auto_map(meta: EntityMeta, header: list[str]) -> dict[int, str]:
    names: dict[str, str] = {}
    for fd in importable(meta):
        for text in names_of(fd):
            names.setdefault(text.strip().lower(), fd.name)
    mapping, used = {}, set()
    for index, title in enumerate(header):
        found = names.get(title.strip().lower(), "")
        if found and found not in used:
            mapping[index] = found
            used.add(found)
        else:
            mapping[index] = ""
    return mapping


def _posted_map(meta: EntityMeta, header: list[str]) -> dict[int, str]:
    allowed = {f.name for f in importable(meta)}
    out = {}
    for index in range(len(header)):
        chosen = request.form.get(f"col-{index}", "")
        out[index] = chosen if chosen in allowed else ""
    return out


def _mapping_problems(meta: EntityMeta, mapping: Mapping[int, str]) -> list[str]:
    chosen = [name for name in mapping.values() if name]
    problems = []
    fields = {f.name: f for f in importable(meta)}
    for name in sorted({n for n in chosen if chosen.count(n) > 1}):
        label = fields[name].label(current_locale())
        problems.append(_("Two columns are mapped to %(field)s.", field=label))
    lines = mapped_children(meta, mapping) is not None
    for fd in fields.values():
        if "." in fd.name and not lines:
            continue  # no line item columns: the records are imported without lines
        if fd.required and fd.default is None and fd.name not in chosen:
            problems.append(
                _(
                    "No column is mapped to the required field %(field)s.",
                    field=fd.label(current_locale()),
                )
            )
    return problems


@bp.route("/app/<pack>/<entity>/import/<token>", methods=["GET", "POST"])
@login_required
def import_map(pack: str, entity: str, token: str) -> Any:
    """Map columns to fields; preview (dry run) or commit every row, all or nothing."""
    meta = entity_meta(pack, entity, "import")
    principal().require(meta.entity.key, "create")
    path = _token_path(token)
    try:
        sheet = _read(path)
    except SheetRefused as exc:
        flash(str(exc), "danger")
        return redirect(url_for("web.import_upload", pack=pack, entity=entity))
    posted = request.method == "POST"
    mapping = _posted_map(meta, sheet.header) if posted else _auto_map(meta, sheet.header)
    problems = _mapping_problems(meta, mapping)
    result = None
    if posted and not problems:
        commit = request.form.get("action") == "commit"
        result = run_import(meta, sheet, mapping, commit)
        if commit and not result.problems:
            path.unlink(missing_ok=True)
            flash(_("%(n)s records imported.", n=result.saved), "success")
            return redirect(url_for("web.list_view", pack=pack, entity=entity))
    status = 422 if posted and (problems or (result and result.problems)) else 200
    return render_template(
        "web/import_map.html",
        entity=meta.entity,
        label=meta.entity.label(current_locale()),
        sheet=sheet,
        sample=sheet.rows[:5],
        mapping=mapping,
        fields=importable(meta),
        problems=problems,
        result=result,
        shown_problems=SHOWN_PROBLEMS,
        token=token,
    ), status


def run_import(
    meta: EntityMeta, sheet: Sheet, mapping: Mapping[int, str], commit: bool
) -> ImportResult:
    """Save every row (or every group of rows with line items) in one transaction; keep it
    only when `commit` and no row failed."""
    records = service()
    fields = {f.name: f for f in importable(meta)}
    lookups = _import_lookups(meta, fields, sheet, mapping)
    result = ImportResult(total=len(sheet.rows))
    locale = current_locale()
    children = mapped_children(meta, mapping)
    converted = [(n, *_payload(fields, mapping, cells, lookups)) for n, cells in sheet.rows]
    begin_transaction()
    if children is not None:
        _save_groups(meta, records, group_rows(converted, children), children, result)
    for number, payload, problems in converted if children is None else ():
        try:
            with records.session.begin_nested():
                if problems:
                    raise ValidationFailed(problems)
                records.create(meta.entity.key, payload)
            result.saved += 1
        except ValidationFailed as exc:
            result.problems.append((number, [_describe(meta, e, locale) for e in exc.errors]))
    if commit and not result.problems:
        record_request_event(
            "data.imported", entity=meta.entity.key, records=result.saved, rows=result.total
        )
        records.session.commit()
    else:
        records.session.rollback()
        result.saved = 0 if commit else result.saved
    return result


def _save_groups(
    meta: EntityMeta, records: Any, groups: list[Any], children: str, result: ImportResult
) -> None:
    """Save one record per group with its line items; report problems at their rows."""
    locale = current_locale()
    for group in groups:
        found: list[tuple[int, FieldError]] = list(group.problems)
        if not found:
            try:
                with records.session.begin_nested():
                    records.create(meta.entity.key, group.payload(children))
                result.saved += 1
            except ValidationFailed as exc:
                found = [(group.row_of(e, children), e) for e in exc.errors]
        by_row: dict[int, list[str]] = {}
        for row, error in found:
            by_row.setdefault(row, []).append(_describe(meta, error, locale))
        result.problems.extend(sorted(by_row.items()))


def _payload(
    fields: Mapping[str, FieldDef], mapping: Mapping[int, str], cells: list[Any], lookups: Lookups
) -> tuple[dict[str, Any], list[FieldError]]:
    payload: dict[str, Any] = {}
    problems: list[FieldError] = []
    for index, name in mapping.items():
        if not name:
            continue
        fd = fields[name]
        cell = cells[index] if index < len(cells) else None
        value = widget(fd).from_cell(fd, cell, lookups)
        if isinstance(fd.kind, ReferenceType) and isinstance(value, str):
            problems.append(
                FieldError(
                    f"/{name}",
                    "reference_missing",
                    {"entity": fd.opt("entity") or _("user"), "value": value},
                )
            )
            continue
        if value is not None or fd.required:
            payload[name] = value
    return payload, problems


def _import_lookups(
    meta: EntityMeta, fields: Mapping[str, FieldDef], sheet: Sheet, mapping: Mapping[int, str]
) -> Lookups:
    lookups = Lookups()
    for index, name in mapping.items():
        fd = fields.get(name) if name else None
        if fd is None or not isinstance(fd.kind, ReferenceType):
            continue
        texts = {
            str(c[index]).strip() for _n, c in sheet.rows if index < len(c) and c[index] is not None
        }
        if isinstance(fd.kind, UserType):
            rows = get_session().execute(
                sa.select(User.username, User.id).where(User.username.in_(texts))
            )
            lookups.by_title[name] = {str(r[0]): int(r[1]) for r in rows}
        else:
            target = fd.kind.target(fd, meta.entity)
            lookups.by_title[name] = find_by_title(get_session(), registry(), target, texts)
    return lookups


def _describe(meta: EntityMeta, error: FieldError, locale: str) -> str:
    name = error.pointer.strip("/").split("/")[0]
    fd = meta.entity.get_field(name)
    label = line_label(meta, error.pointer, locale) or (fd.label(locale) if fd else None)
    prefix = f"{label}: " if label else ""
    return prefix + error.message(locale)
