"""Record pages: create and edit forms, the detail page with its audit history, delete,
the live preview of computed values, and the reference look-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from formwork.api.files import upload_problem
from formwork.context import clock, get_session, registry
from formwork.runtime import reference_filters
from formwork.runtime.audit import history
from formwork.runtime.errors import Conflict, FieldError, NotFound, ValidationFailed
from formwork.runtime.files import FileStore, FileTooLarge, FileTypeRefused
from formwork.runtime.params import parse_id, whole_number
from formwork.runtime.registry import EntityMeta
from formwork.runtime.save_context import SaveContext
from formwork.web import bp
from formwork.web.context import (
    begin_transaction,
    entity_meta,
    form_for,
    lookup_options,
    lookups_for,
    principal,
    service,
)
from formwork.web.documents import document_panel, state_labels
from formwork.web.form_view import section_views
from formwork.web.forms import (
    FormState,
    lookup_values,
    merge_errors,
    parse_form,
    preview_computed,
    state_from_record,
    without,
)
from formwork.web.i18n import current_locale
from formwork.web.layouts import FormLayout
from formwork.web.widgets import widget


@bp.route("/app/<pack>/<entity>/new", methods=["GET", "POST"])
@login_required
def new(pack: str, entity: str) -> Any:
    """Show the empty form, or create the record from the posted form."""
    meta = entity_meta(pack, entity, "create")
    layout = form_for(meta, "create")
    if request.method == "POST":
        return _save(meta, layout, None)
    return _render_form(meta, layout, state_from_record(meta, layout, {}), None)


@bp.route("/app/<pack>/<entity>/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def edit(pack: str, entity: str, record_id: int) -> Any:
    """Show the record in its form, or save the posted changes (optimistic lock)."""
    meta = entity_meta(pack, entity, "update")
    layout = form_for(meta, "update")
    record = service().get(meta.entity.key, record_id)
    if request.method == "POST":
        return _save(meta, layout, record)
    document = document_panel(meta.entity.key, record_id, principal())
    if document is not None and not document["editable"]:
        flash(_why_locked(document["state"]), "warning")
        return redirect(
            url_for("web.detail", pack=pack, entity=entity, record_id=record_id), code=303
        )
    return _render_form(meta, layout, state_from_record(meta, layout, record), record)


def _why_locked(state: str) -> str:
    if state == "in-approval":
        return _("This record is in approval and cannot be edited; the submitter can withdraw it.")
    if state == "cancelled":
        return _("This record is cancelled and cannot be edited.")
    return _("This record is approved and cannot be edited; cancel or amend it instead.")


def _render_form(
    meta: EntityMeta,
    layout: FormLayout,
    state: FormState,
    record: dict[str, Any] | None,
    status: int = 200,
    conflict: dict[str, Any] | None = None,
    version: int | None = None,
) -> Any:
    shown = [record or {}] + ([conflict] if conflict else [])
    for name, rows in state.rows.items():
        shown.append({name: [_ids_only(r) for r in rows]})
    lookups = lookups_for(meta, [*shown, _ids_only(state.raw)])
    context = {
        "meta": meta,
        "entity": meta.entity,
        "layout": layout,
        "state": state,
        "record": record,
        "version": version if version is not None else (record or {}).get("version"),
        "lookups": lookups,
        "conflict": conflict,
        "children": dict(meta.children),
        "widget": widget,
        "label": meta.entity.label(current_locale()),
        "section_views": lambda fields: section_views(meta, fields, state, lookups),
    }
    return render_template("web/form.html", **context), status


def _ids_only(raw: dict[str, Any]) -> dict[str, Any]:
    ids = {k: parse_id(v) for k, v in raw.items() if isinstance(v, str)}
    return {k: v for k, v in ids.items() if v is not None}


def _save(meta: EntityMeta, layout: FormLayout, record: dict[str, Any] | None) -> Any:
    payload, state, problems = parse_form(meta, layout, request.form)
    records, saved = service(), list[str]()
    key, locale = meta.entity.key, current_locale()
    begin_transaction()
    try:
        problems += _attach_files(meta, layout, payload, record, saved)
        clean = without(payload, problems)
        if record is None:
            result = records.create(key, clean)
        else:
            result = records.update(key, record["id"], clean, _posted_version())
        if problems:
            raise ValidationFailed([])
    except ValidationFailed as exc:
        _undo(records.session, saved)
        state.add_errors(merge_errors(problems, exc.errors), locale)
        _fill_computed(meta, payload, state)
        return _render_form(meta, layout, state, record, 422, version=_posted_version())
    except Conflict as exc:
        _undo(records.session, saved)
        _fill_computed(meta, payload, state)
        if exc.current is None:  # refused (a locked record), not someone else's newer save
            state.form_errors.append(exc.describe(locale))
            return _render_form(meta, layout, state, record, 409, version=_posted_version())
        current = exc.current
        return _render_form(
            meta, layout, state, record, 409, conflict=current, version=current.get("version")
        )
    records.session.commit()
    flash(_("Saved."), "success")
    return redirect(
        url_for(
            "web.detail", pack=meta.entity.pack, entity=meta.entity.name, record_id=result["id"]
        )
    )


def _posted_version() -> int | None:
    return whole_number(request.form.get("_version"), 0)


def _undo(session: Any, saved: list[str]) -> None:
    session.rollback()
    store = FileStore(current_app.config["FILES_DIR"])
    for file_id in saved:
        Path(store.path(file_id)).unlink(missing_ok=True)


def _fill_computed(meta: EntityMeta, payload: dict[str, Any], state: FormState) -> None:
    """Fill the form's computed values as the user would see them: sum_of/count_of read only
    rows the user may read (a value shown to them is never built from other rows; the save
    itself computes over every row, and stores what its rules need)."""
    moment = clock()
    who = principal()
    ctx = SaveContext(
        get_session(),
        registry(),
        meta.entity,
        moment.now(),
        local_now=moment.local_now(),
        author=who,
        reader=who,
    )
    values, lines = preview_computed(meta, payload, ctx)
    state.computed.update(values)
    for name, rows in lines.items():
        for row_state, row in zip(state.rows.get(name, []), rows, strict=False):
            for fd in dict(meta.children)[name].entity.fields:
                if fd.read_only:
                    row_state[f"_computed_{fd.name}"] = row.get(fd.name)


def _attach_files(
    meta: EntityMeta,
    layout: FormLayout,
    payload: dict[str, Any],
    record: dict[str, Any] | None,
    saved: list[str],
) -> list[FieldError]:
    """Store uploads of attachment fields and put their ids in the payload."""
    problems = []
    store = FileStore(current_app.config["FILES_DIR"])
    for placed in layout.fields():
        fd = placed.field
        if widget(fd).macro != "attachment" or fd.read_only:
            continue
        multiple = bool(fd.opt("multiple", False))
        kept = (
            []
            if request.form.get(f"{fd.name}__remove")
            else request.form.getlist(f"{fd.name}__keep")
        )
        kept = [k for k in kept if k in _current_ids((record or {}).get(fd.name))]
        uploads = [u for u in request.files.getlist(fd.name) if u and u.filename]
        limit = min(int(fd.opt("max_size") or 10**12), current_app.config["UPLOAD_MAX_BYTES"])
        new_ids = []
        for upload in uploads[: 1 if not multiple else None]:
            try:
                row = store.save(
                    get_session(),
                    upload.stream,
                    upload.filename or "file",
                    upload.mimetype,
                    limit,
                    principal().user_id,
                    current_app.config["UPLOAD_ALLOWED_TYPES"],
                )
            except (FileTooLarge, FileTypeRefused) as exc:
                name = upload.filename or "file"
                problems.append(upload_problem(f"/{fd.name}", name, exc, limit))
                continue
            saved.append(row.id)
            new_ids.append(row.id)
        if multiple:
            payload[fd.name] = kept + new_ids
        else:
            chosen = new_ids or kept
            payload[fd.name] = chosen[0] if chosen else None
    return problems


def _current_ids(value: Any) -> list[str]:
    if isinstance(value, list):
        return value
    return [value] if value else []


@bp.get("/app/<pack>/<entity>/<int:record_id>")
@login_required
def detail(pack: str, entity: str, record_id: int) -> Any:
    """Show a record, its line items and its audit history (who, when, old → new)."""
    meta = entity_meta(pack, entity)
    record = service().get(meta.entity.key, record_id)
    who = principal()
    entries = history(get_session(), meta.entity.key, record_id, who.hidden_fields(meta.entity.key))
    changed = [
        {name: pair[i] for name, pair in e["changes"].items() if isinstance(pair, list)}
        for e in entries
        for i in (0, 1)
    ]
    lookups = lookups_for(meta, [record, *changed])
    key = meta.entity.key
    document = document_panel(key, record_id, who)
    return render_template(
        "web/detail.html",
        meta=meta,
        entity=meta.entity,
        layout=form_for(meta),
        record=record,
        lookups=lookups,
        history=entries,
        children=dict(meta.children),
        widget=widget,
        label=meta.entity.label(current_locale()),
        can_update=document["can"]["update"] if document else who.can(key, "update"),
        can_delete=document["can"]["delete"] if document else who.can(key, "delete"),
        document=document,
        state_labels=state_labels(),
        line_hidden=who.hidden_fields(meta.entity.key),
    )


@bp.post("/app/<pack>/<entity>/<int:record_id>/delete")
@login_required
def delete(pack: str, entity: str, record_id: int) -> Any:
    """Delete one record (refused when it changed since it was shown, or is referenced)."""
    meta = entity_meta(pack, entity, "delete")
    records = service()
    begin_transaction()
    try:
        records.delete(meta.entity.key, record_id, _posted_version())
    except Conflict as exc:
        records.session.rollback()
        flash(_("Not deleted: %(detail)s", detail=str(exc)), "danger")
        return redirect(url_for("web.detail", pack=pack, entity=entity, record_id=record_id))
    records.session.commit()
    flash(_("Deleted."), "success")
    return redirect(url_for("web.list_view", pack=pack, entity=entity))


@bp.post("/app/<pack>/<entity>/compute")
@login_required
def compute(pack: str, entity: str) -> Any:
    """Return the computed values for the form as typed so far (htmx out-of-band swaps)."""
    meta = entity_meta(pack, entity)
    layout = form_for(meta, "update" if request.form.get("version") else "create")
    payload, state, _problems = parse_form(meta, layout, request.form)
    _fill_computed(meta, payload, state)
    lookups = lookups_for(meta, [])
    return render_template(
        "web/_computed.html",
        meta=meta,
        layout=layout,
        state=state,
        lookups=lookups,
        children=dict(meta.children),
        widget=widget,
    )


@bp.get("/app/<pack>/<entity>/lookup/<field>")
@login_required
def lookup(pack: str, entity: str, field: str) -> Any:
    """Return up to ten records of a reference field's target matching `q` (htmx)."""
    meta = entity_meta(pack, entity)
    grid = request.args.get("grid")
    owner = dict(meta.children).get(grid, meta) if grid else meta
    fd = owner.entity.get_field(field)
    if fd is None or widget(fd).macro != "reference":
        raise NotFound(f"no reference field {field}")
    target = registry().meta(fd.kind.target(fd, owner.entity))  # type: ignore[attr-defined]
    text = (request.args.get("q") or request.args.get("lookup_q") or "").strip()[:100]
    # The field's filter, from the form's current values (the form sends the inputs it
    # names): a sheet line offers only workers of the sheet's crew.
    own, parent = lookup_values(meta, owner, fd, grid, request.args.get("row", ""), request.args)
    where = reference_filters.conditions(target, fd, own, parent if grid else None)
    options = lookup_options(target, text, where)
    return render_template("web/_lookup.html", options=options, q=text)
