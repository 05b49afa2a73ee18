"""The workflow pages: the inbox (待办), a task with its form and actions, and the process view
with the BPMN diagram and the history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy.orm import Session

from formwork.context import clock, get_session, registry, workflow_service
from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import Conflict, FieldError, RuntimeFailure, ValidationFailed
from formwork.runtime.fields import get_field_type
from formwork.runtime.params import parse_id
from formwork.runtime.titles import user_names
from formwork.runtime.workflow import actions, views
from formwork.runtime.workflow.binding import to_json
from formwork.runtime.workflow.context import StepFailed
from formwork.runtime.workflow.instructions import task_instructions
from formwork.runtime.workflow.models import TaskRow
from formwork.runtime.workflow.notifications import mark_read, notifications_for
from formwork.runtime.workflow.service import WorkflowService
from formwork.runtime.workflow.steps import run_step
from formwork.runtime.workflow.tasks import candidates, count_open_tasks, get_row, inbox
from formwork.web import bp
from formwork.web.context import lookups_for, principal
from formwork.web.context import service as records
from formwork.web.form_view import FieldView
from formwork.web.i18n import current_locale
from formwork.web.widgets import Lookups, WidgetError, widget

INBOX_SIZE = "200"
SCOPES = ("all", "mine", "role")
# JSON-Schema types of a task form that name no Formwork field type.
SCHEMA_TYPES = {"number": "decimal", "integer": "integer", "boolean": "boolean"}
TARGETED = ("return", "delegate", "add_signer")


def _service() -> WorkflowService:
    return workflow_service(principal())


def _now() -> dt.datetime:
    return clock().now()


@bp.get("/app/task-count")
@login_required
def task_count() -> Any:
    """Return the menu's open-task badge (loaded after the page, so pages stay one query less)."""
    count = count_open_tasks(get_session(), principal())
    return render_template("web/_task_count.html", count=count)


# -- the inbox -----------------------------------------------------------------------------------
@bp.get("/app/tasks")
@login_required
def inbox_page() -> Any:
    """List my ready tasks: assigned to me and open to my roles (`filter=mine|role`)."""
    who = principal()
    scope = request.args.get("filter", "all")
    scope = scope if scope in SCOPES else "all"
    items = inbox(get_session(), who, {"per_page": INBOX_SIZE}, _now())
    if scope == "mine":
        items = [i for i in items if i["assignee_id"] is not None]
    elif scope == "role":
        items = [i for i in items if i["assignee_id"] is None]
    for item in items:
        item["record_url"] = _record_url(item["entity"], item["record_id"])
        item["due"] = _moment(item["due_at"])
    notes = notifications_for(get_session(), who)
    for note in notes:
        note["at"] = _moment(note["created_at"])
    return render_template(
        "web/tasks.html", items=items, scope=scope, scopes=_scope_labels(), notes=notes
    )


@bp.post("/app/notifications/<int:notification_id>/read")
@login_required
def notification_read(notification_id: int) -> Any:
    """Mark a reminder read and go back to the inbox."""
    session = get_session()
    mark_read(session, principal(), notification_id, _now())
    session.commit()
    return redirect(url_for("web.inbox_page"))


def _scope_labels() -> list[tuple[str, str]]:
    return [("all", _("All")), ("mine", _("Assigned to me")), ("role", _("For my role"))]


def _record_url(entity: str | None, record_id: int | None) -> str | None:
    if not entity or record_id is None or "." not in entity:
        return None
    pack, name = entity.split(".", 1)
    return url_for("web.detail", pack=pack, entity=name, record_id=record_id)


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


# -- one task ------------------------------------------------------------------------------------
@bp.route("/app/tasks/<task_id>", methods=["GET", "POST"])
@login_required
def task_page(task_id: str) -> Any:
    """Show a task (record, form, actions, history); POST performs one action on it."""
    service = _service()
    row = get_row(service.session, task_id)
    if request.method == "GET":
        return _render_task(service, row)
    action = request.form.get("action", "")
    comment = request.form.get("comment", "")
    try:
        data = _action_data(service, row, action)
        retry = {"instance_id": row.instance_id, "task_id": task_id, "action": action,
                 "comment": comment, "data": to_json(data)}  # fmt: skip
        # The kernel's one failure policy: a failed step keeps nothing and is shown, with
        # its retry, on the instance, as from the API and the worker.
        run_step(
            service.session,
            lambda: actions.complete(service, task_id, action, comment, data),
            retry,
            instance_id=row.instance_id,
        )
    except (Conflict, ValidationFailed, StepFailed) as exc:
        service.session.rollback()
        return _render_task(service, get_row(service.session, task_id), exc, action, comment)
    flash(_("Done: %(step)s", step=row.name), "success")
    return redirect(url_for("web.inbox_page"))


def _render_task(
    service: WorkflowService,
    row: TaskRow,
    error: RuntimeFailure | None = None,
    action: str = "",
    comment: str = "",
) -> Any:
    detail = views.task_detail(service, row, records())
    errors = _errors(error)
    values = request.form if error is not None else {}
    fields = _form_fields(detail["form"], detail["data"], values, errors)
    context = {
        "task": detail,
        "fields": fields,
        "record": _record_summary(detail["entity"], detail["record"]),
        "record_url": _record_url(detail["entity"], detail["record_id"]),
        "history": _history(service.session, row.instance_id, detail["history"]),
        "return_steps": _return_steps(service.session, row),
        "users": [(str(i), name) for i, name in candidates(service.session, row)],
        "conflict": str(error) if isinstance(error, Conflict) else None,
        "failed": str(error) if isinstance(error, StepFailed) else None,
        "instructions": task_instructions(service, row),
        "problems": errors.get("", []),
        "action": action,
        "comment": comment,
        "labels": action_labels(),
        "due": _moment(detail["due_at"]),
    }
    status = 200 if error is None else int(getattr(error, "status", 422))
    return render_template("web/task.html", **context), status


def _errors(error: RuntimeFailure | None) -> dict[str, list[str]]:
    """Return messages by form field ('' for those that belong to no field)."""
    out: dict[str, list[str]] = {}
    if isinstance(error, ValidationFailed):
        locale = current_locale()
        for found in error.errors:
            name = found.pointer.removeprefix("/data/").removeprefix("/").split("/")[0]
            name = "" if name in ("to", "data", "comment", "action") else name
            out.setdefault(name, []).append(found.message(locale))
    return out


def action_labels() -> dict[str, str]:
    """Return the label of every approval action and history entry."""
    return {
        "approve": _("Approve"), "reject": _("Reject"), "return": _("Return"),
        "delegate": _("Delegate"), "add_signer": _("Add signer"), "withdraw": _("Withdraw"),
        "comment": _("Comment"), "start": _("Submitted"), "approved": _("Approved"),
        "rejected": _("Rejected"), "withdrawn": _("Withdrawn"), "retry": _("Retried"),
    }  # fmt: skip


def _form_fields(
    form: Mapping[str, Any],
    data: Mapping[str, Any],
    values: Mapping[str, str],
    errors: Mapping[str, list[str]],
) -> list[FieldView]:
    """Return the task form's fields (all but the comment) as widget views."""
    required = set(form.get("required", ()))
    out = []
    for name, schema in form.get("properties", {}).items():
        if name == "comment":
            continue
        fd = _field(name, schema, name in required)
        if fd is None:
            continue
        found = widget(fd)
        raw = values.get(name) if name in values else found.form_value(fd, data.get(name))
        o = {"label": fd.label(current_locale()), "compact": False, "help": None}
        o["style"] = "default"
        element = f"task-{name}"
        out.append(
            FieldView(found.macro, fd, name, element, raw, found.attrs(fd), errors.get(name, []), o)
        )
    return out


def _field(name: str, schema: Mapping[str, Any], required: bool) -> FieldDef | None:
    kind = (schema.get("x-formwork") or {}).get("type") or SCHEMA_TYPES.get(
        str(schema.get("type")), "string"
    )
    if kind not in ("string", "text", "integer", "decimal", "money", "percent", "boolean", "date"):
        return None
    return FieldDef(name, get_field_type(kind), schema, required)


def _action_data(service: WorkflowService, row: TaskRow, action: str) -> dict[str, Any]:
    """Return the data of an action from the posted form (parsed by the fields' widgets)."""
    if action in TARGETED:
        if action == "return":
            step = request.form.get("to", "").strip()
            return {"to": step} if step else {}
        to = request.form.get("to_user", "").strip()
        return {"to": parse_id(to)}
    if action != "approve" or row.status != "ready":
        return {}
    detail = views.task_detail(service, row, records())
    data: dict[str, Any] = {}
    problems = []
    for view in _form_fields(detail["form"], {}, {}, {}):
        found = widget(view.fd)
        try:
            value = found.parse(view.fd, found.read(request.form, view.name))
        except WidgetError as exc:
            problems.append(FieldError(f"/data/{view.name}", exc.code, exc.params))
            continue
        if value is not None:
            data[view.name] = value
    if problems:
        raise ValidationFailed(problems)
    return data


def _record_summary(entity: str | None, record: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """Return (label, shown value) of the record's visible fields."""
    if not entity or record is None:
        return []
    meta = registry().meta(entity)
    lookups: Lookups = lookups_for(meta, [record])
    locale = current_locale()
    return [
        (fd.label(locale), widget(fd).display(fd, record.get(fd.name), lookups))
        for fd in meta.entity.fields
        if not fd.hidden and not fd.kind.holds_rows and record.get(fd.name) not in (None, "")
    ]


def _return_steps(session: Session, row: TaskRow) -> list[tuple[str, str]]:
    """Return (step, name) of the instance's completed steps, the choices of a return."""
    rows = session.execute(
        sa.select(TaskRow.step, TaskRow.name)
        .where(TaskRow.instance_id == row.instance_id, TaskRow.status == "completed")
        .distinct()
    ).all()
    return sorted({(str(step), str(name)) for step, name in rows}, key=lambda r: r[1])


def _history(
    session: Session, instance_id: int, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return the history with user and step names, decision labels and parsed moments."""
    names = user_names(session, {e["user_id"] for e in entries if e["user_id"] is not None})
    steps = dict(
        session.execute(
            sa.select(TaskRow.step, TaskRow.name).where(TaskRow.instance_id == instance_id)
        ).all()
    )
    labels = action_labels()
    return [
        {
            **entry,
            "step_name": steps.get(entry["step"], entry["step"]),
            "who": names.get(entry["user_id"], "—") if entry["user_id"] else "—",
            "decision": labels.get(entry["action"], entry["action"]),
            "when": _moment(entry["at"]),
        }
        for entry in entries
    ]


# -- the process view ----------------------------------------------------------------------------
@bp.get("/app/processes/<int:instance_id>")
@login_required
def process_page(instance_id: int) -> Any:
    """Show a process instance: its diagram with completed and current steps, and history."""
    service = _service()
    instance = views.visible_instance(service, instance_id)
    info = views.instance_json(service, instance, with_tasks=True, with_history=True)
    definition = service.definition(instance.definition_id)
    current = sorted({task["step"] for task in info["tasks"]})
    diagram = {"bpmn": definition.bpmn, "completed": info["completed_steps"], "current": current}
    return render_template(
        "web/process.html",
        process=info,
        name=definition.name or definition.key,
        diagram=diagram,
        history=_history(service.session, instance.id, info["history"]),
        record_url=_record_url(instance.entity, instance.record_id),
        statuses=_status_labels(),
    )


def _status_labels() -> dict[str, str]:
    return {
        "running": _("Running"), "completed": _("Approved"), "rejected": _("Rejected"),
        "withdrawn": _("Withdrawn"), "error": _("Error"),
    }  # fmt: skip


@bp.post("/app/<pack>/<entity>/<int:record_id>/submit")
@login_required
def submit_record(pack: str, entity: str, record_id: int) -> Any:
    """Submit a record for approval (start its bound process) and show the process."""
    from formwork.web.context import entity_meta

    meta = entity_meta(pack, entity, "submit")
    service = _service()
    back = url_for("web.detail", pack=pack, entity=entity, record_id=record_id)
    try:
        instance = service.submit(meta.entity.key, record_id)
    except RuntimeFailure as exc:
        service.session.rollback()
        flash(_("Not submitted: %(detail)s", detail=str(exc)), "danger")
        return redirect(back)
    service.session.commit()
    flash(_("Submitted for approval."), "success")
    return redirect(url_for("web.process_page", instance_id=instance.id))
