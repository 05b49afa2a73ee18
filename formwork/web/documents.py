"""A bound record's lifecycle on its pages: the state shown on the detail page, and the
withdraw (撤回), cancel (作废) and amend (变更) actions, each saying why when refused."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from formwork.context import workflow_service
from formwork.runtime.errors import RuntimeFailure
from formwork.runtime.security import Principal
from formwork.runtime.workflow import documents
from formwork.runtime.workflow.models import ProcessInstance
from formwork.runtime.workflow.views import withdraw
from formwork.web import bp
from formwork.web.context import entity_meta, principal
from formwork.web.i18n import current_locale

RECORD = "/app/<pack>/<entity>/<int:record_id>"


def state_labels() -> dict[str, str]:
    """Return the label of every lifecycle state."""
    return {
        "draft": _("Draft"), "in-approval": _("In approval"), "approved": _("Approved"),
        "rejected": _("Rejected"), "withdrawn": _("Withdrawn"), "cancelled": _("Cancelled"),
    }  # fmt: skip


def document_panel(entity: str, record_id: int, who: Principal) -> dict[str, Any] | None:
    """Return what the detail page shows of a record's lifecycle (None: not bound): its
    state, approval instance, amendment links and the actions the user may take now."""
    service = workflow_service(who)
    assert service.registry is not None
    if service.runtime.guard.binding(service.session, service.registry.entity(entity)) is None:
        return None
    panel = documents.lifecycle(service, entity, record_id)
    instance = (
        service.session.get(ProcessInstance, panel["instance_id"])
        if panel["instance_id"] is not None
        else None
    )
    panel["instance"] = instance
    panel["can"]["withdraw"] = documents.may_withdraw(service.session, instance, who)
    return panel


@bp.post(RECORD + "/withdraw")
@login_required
def withdraw_record(pack: str, entity: str, record_id: int) -> Any:
    """Withdraw a record's request while no approver has acted (the submitter)."""
    meta = entity_meta(pack, entity)
    who = principal()
    panel = document_panel(meta.entity.key, record_id, who) or {}
    instance = panel.get("instance")
    service = workflow_service(who)
    comment = request.form.get("comment", "")
    return _done(
        service,
        lambda: withdraw(service, instance.id if instance else 0, comment),
        _("Withdrawn: the record can be edited and submitted again."),
        _back(pack, entity, record_id),
    )


@bp.post(RECORD + "/cancel")
@login_required
def cancel_record(pack: str, entity: str, record_id: int) -> Any:
    """Cancel (作废) an approved record with a reason; its approval's postings are reversed."""
    meta = entity_meta(pack, entity, "cancel")
    service = workflow_service(principal())
    reason = request.form.get("reason", "")
    return _done(
        service,
        lambda: documents.cancel(service, meta.entity.key, record_id, reason),
        _("Cancelled. What its approval posted was reversed."),
        _back(pack, entity, record_id),
    )


@bp.post(RECORD + "/amend")
@login_required
def amend_record(pack: str, entity: str, record_id: int) -> Any:
    """Amend (变更) an approved record: cancel it and open the new draft copied from it."""
    meta = entity_meta(pack, entity, "amend")
    service = workflow_service(principal())
    reason = request.form.get("reason", "")
    return _done(
        service,
        lambda: documents.amend(service, meta.entity.key, record_id, reason),
        _("Amended: this is the new draft; change it and submit it again."),
        _back(pack, entity, record_id),
        lambda copy: url_for("web.edit", pack=pack, entity=entity, record_id=copy["id"]),
    )


def _done(service: Any, run: Any, message: str, back: str, then: Any = None) -> Any:
    """Run a lifecycle action and commit; on refusal keep nothing and say why on `back`;
    done, go to `then(result)` (or back)."""
    try:
        result = run()
    except RuntimeFailure as exc:
        service.session.rollback()
        flash(_("Not done: %(detail)s", detail=_why(exc)), "danger")
        return redirect(back)
    service.session.commit()
    flash(message, "success")
    return redirect(then(result) if then is not None else back)


def _why(exc: RuntimeFailure) -> str:
    locale = current_locale()
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(e.message(locale) for e in errors)
    return exc.describe(locale)


def _back(pack: str, entity: str, record_id: int) -> str:
    return url_for("web.detail", pack=pack, entity=entity, record_id=record_id)
