"""Import an Excel or CSV file into an entity: upload (every check at once), map columns to
fields, then a dry run listing every bad row or the import itself, all rows or none.

The work is the kernel's (formwork/runtime/imports/); these pages are thin. A file of up to
IMPORT_SYNC_ROWS rows runs in the request; a larger one is queued for `formwork worker`, and
its page shows the progress, then the result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from formwork.auth.events import record_request_event
from formwork.auth.sessions import current_login
from formwork.context import clock, get_session, kernel
from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import NotFound
from formwork.runtime.imports.jobs import (
    ProgressBoard,
    Upload,
    find_upload,
    queue_run,
    store_result,
    store_upload,
)
from formwork.runtime.imports.limits import SheetLimits, SheetRefused
from formwork.runtime.imports.lines import mapped_children, names_of
from formwork.runtime.imports.run import ImportPlan, ImportResult, importable_fields, run_import
from formwork.runtime.imports.sheets import inspect_sheet, kind_of, read_sheet
from formwork.runtime.models import ImportRecord
from formwork.runtime.registry import EntityMeta
from formwork.web import bp
from formwork.web.context import begin_transaction, entity_meta, principal, service
from formwork.web.i18n import current_locale

TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
SYNC_ROWS = 500  # larger files run in the background


def importable(meta: EntityMeta) -> list[FieldDef]:
    """Return the fields a column can be mapped to by the signed-in user."""
    return importable_fields(meta, principal())


def sheet_limits() -> SheetLimits:
    """Return the import limits of the app (IMPORT_MAX_* settings)."""
    config, base = current_app.config, SheetLimits()
    return SheetLimits(
        size=int(config.get("IMPORT_MAX_SIZE", base.size)),
        rows=int(config.get("IMPORT_MAX_ROWS", base.rows)),
        columns=int(config.get("IMPORT_MAX_COLUMNS", base.columns)),
        cells=int(config.get("IMPORT_MAX_CELLS", base.cells)),
    )


def _board() -> ProgressBoard:
    folder = current_app.config["INSTANCE_PATH"]
    return ProgressBoard(kernel().engine, Path(folder) / "imports")


def _import_meta(pack: str, entity: str) -> EntityMeta:
    meta = entity_meta(pack, entity, "import")
    principal().require(meta.entity.key, "create")
    return meta


@bp.route("/app/<pack>/<entity>/import", methods=["GET", "POST"])
@login_required
def import_upload(pack: str, entity: str) -> Any:
    """Show the upload form, or check and keep the uploaded file and go to column mapping."""
    meta = _import_meta(pack, entity)
    if request.method == "GET":
        return _upload_page(meta)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _upload_page(meta, _("Choose a file first."), 400)
    limits = sheet_limits()
    data = upload.stream.read(limits.size + 1)
    try:
        if len(data) > limits.size:
            raise SheetRefused("sheet_too_large", n=limits.size // (1024 * 1024))
        kind = kind_of(upload.filename, data[:8])
        sheet = inspect_sheet(data, kind, limits)
    except SheetRefused as exc:
        return _upload_page(meta, exc.message(current_locale()), 400)
    if not any(_auto_map(meta, sheet.header).values()):
        expected = ", ".join(f.label(current_locale()) for f in importable(meta))
        message = _(
            "None of the columns match a field. Expected columns such as: %(names)s", names=expected
        )
        return _upload_page(meta, message, 400)
    row = store_upload(get_session(), _upload_of(meta, upload.filename, kind, data), sheet, _now())
    get_session().commit()
    return redirect(url_for("web.import_map", pack=pack, entity=entity, token=row.token))


def _upload_of(meta: EntityMeta, filename: str, kind: str, data: bytes) -> Upload:
    login = current_login()
    user_id = principal().user_id
    assert user_id is not None  # pages are for signed-in people
    return Upload(user_id, login.id if login else None, meta.entity.key, filename, kind, data)


def _upload_page(meta: EntityMeta, error: str | None = None, status: int = 200) -> Any:
    return render_template(
        "web/import_upload.html",
        entity=meta.entity,
        label=meta.entity.label(current_locale()),
        fields=importable(meta),
        error=error,
        max_rows=sheet_limits().rows,
    ), status


def _now() -> Any:
    return clock().now()


def _upload_row(meta: EntityMeta, token: str) -> ImportRecord:
    login, user_id = current_login(), principal().user_id
    found = None
    if TOKEN_RE.match(token) and user_id is not None:
        found = find_upload(get_session(), token, user_id, login.id if login else None)
    if found is None or found.entity != meta.entity.key:
        raise NotFound("no such import")
    return found


def _auto_map(meta: EntityMeta, header: list[str]) -> dict[int, str]:
    names: dict[str, str] = {}
    for fd in importable(meta):
        for text in names_of(fd):
            names.setdefault(text.strip().lower(), fd.name)
    mapping, used = {}, set()
    for index, title in enumerate(header):
        found = names.get(str(title).strip().lower(), "")
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
            label = fd.label(current_locale())
            problems.append(_("No column is mapped to the required field %(field)s.", field=label))
    return problems


@bp.route("/app/<pack>/<entity>/import/<token>", methods=["GET", "POST"])
@login_required
def import_map(pack: str, entity: str, token: str) -> Any:
    """Map columns to fields; run a dry run or the import (in the background when large)."""
    meta = _import_meta(pack, entity)
    row = _upload_row(meta, token)
    if row.status == "queued":  # running in the background: its page shows how far it got
        return redirect(url_for("web.import_status", pack=pack, entity=entity, token=token))
    if row.status == "done" and row.action == "commit" and not row.bad:
        raise NotFound("this file was imported; upload it again to import it again")
    posted = request.method == "POST"
    mapping = _posted_map(meta, row.header) if posted else _auto_map(meta, row.header)
    problems = _mapping_problems(meta, mapping)
    result = None
    if posted and not problems:
        commit = request.form.get("action") == "commit"
        plan = ImportPlan(mapping, commit, current_locale(), clock().zone)
        if row.rows > int(current_app.config.get("IMPORT_SYNC_ROWS", SYNC_ROWS)):
            queue_run(get_session(), row, plan, sheet_limits(), _now())
            get_session().commit()
            return redirect(url_for("web.import_status", pack=pack, entity=entity, token=token))
        result = _run_now(meta, row, plan)
        if result is None:
            return redirect(url_for("web.import_map", pack=pack, entity=entity, token=token))
        if plan.commit and not result.bad:
            flash(_("%(n)s records imported.", n=result.saved), "success")
            return redirect(url_for("web.list_view", pack=pack, entity=entity))
    status = 422 if posted and (problems or (result and result.bad)) else 200
    return render_template(
        "web/import_map.html",
        entity=meta.entity,
        label=meta.entity.label(current_locale()),
        upload=row,
        mapping=mapping,
        fields=importable(meta),
        problems=problems,
        result=result,
        token=token,
    ), status


def _run_now(meta: EntityMeta, row: ImportRecord, plan: ImportPlan) -> ImportResult | None:
    """Run a small import in the request; None when the file turned out unreadable."""
    try:
        sheet = read_sheet(row.content, row.kind, sheet_limits())
    except SheetRefused as exc:
        flash(exc.message(current_locale()), "danger")
        return None
    begin_transaction()
    result = run_import(service(), meta, sheet, plan)
    if plan.commit and not result.bad:
        record_request_event(
            "data.imported", entity=meta.entity.key, records=result.saved, rows=result.total
        )
        get_session().delete(row)  # imported: the upload is gone
    get_session().commit()
    return result


@bp.get("/app/<pack>/<entity>/import/<token>/status")
@login_required
def import_status(pack: str, entity: str, token: str) -> Any:
    """Show a background import: waiting, how far it got, then its result (htmx polls)."""
    meta = _import_meta(pack, entity)
    row = _upload_row(meta, token)
    _note_failed_job(row)
    done, total = _board().read(row)
    context = {
        "entity": meta.entity,
        "label": meta.entity.label(current_locale()),
        "upload": row,
        "done": done,
        "total": total,
        "result": _stored_result(row),
        "token": token,
    }
    partial = bool(request.headers.get("HX-Request"))
    template = "web/_import_status.html" if partial else "web/import_status.html"
    return render_template(template, **context)


def _note_failed_job(row: ImportRecord) -> None:
    """Show a job that failed outright (an unexpected error) as a failed import."""
    if row.status != "queued" or row.job_id is None:
        return
    from formwork.runtime.workflow.models import Job

    job = get_session().get(Job, row.job_id)
    if job is not None and job.status == "failed":
        store_result(row, None, _now(), _("The import stopped: %(error)s", error=job.error or ""))
        get_session().commit()


def _stored_result(row: ImportRecord) -> ImportResult | None:
    if row.status != "done":
        return None
    problems = [(int(n), list(messages)) for n, messages in row.problems or []]
    return ImportResult(row.progress_total, row.saved, row.bad, problems)
