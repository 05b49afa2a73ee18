"""Document lifecycle endpoints of a record bound to a process: where it stands, and the
explicit cancel (作废) and amend (变更) of an approved record."""

from __future__ import annotations

from typing import Any

from flask import jsonify, url_for

from formwork import context
from formwork.api import bp
from formwork.api.context import json_body
from formwork.auth import current_principal
from formwork.context import entity_key
from formwork.runtime.errors import FieldError, NotFound, RuntimeFailure, ValidationFailed
from formwork.runtime.workflow import documents
from formwork.runtime.workflow.service import WorkflowService

RECORD = "/<pack>/<entity>/<int(max=9223372036854775807):record_id>"


def _service(pack: str, entity: str, action: str) -> tuple[WorkflowService, str]:
    principal = current_principal()
    assert principal is not None  # the API's before_request refused anonymous calls
    service = context.workflow_service(principal)
    key = entity_key(pack, entity)
    principal.require(key, action)  # refused before anything else is looked at
    if service.runtime.guard.binding(service.session, service.registry.entity(key)) is None:  # type: ignore[union-attr]
        raise NotFound(f"'{key}' is not bound to an approval process")
    return service, key


def _reason() -> Any:
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("/", "not_object")])
    return body.get("reason")


@bp.get(RECORD + "/lifecycle")
def lifecycle_view(pack: str, entity: str, record_id: int) -> Any:
    """Return where a bound record stands (draft, in-approval, approved, cancelled …), its
    approval instance, its amendment links and what the caller may do with it now."""
    service, key = _service(pack, entity, "read")
    context.record_service(service.principal).get(key, record_id)  # 404 when not readable
    return jsonify(documents.lifecycle(service, key, record_id))


@bp.post(RECORD + "/cancel")
def cancel_view(pack: str, entity: str, record_id: int) -> Any:
    """Cancel (作废) an approved record: {"reason"}; its approval's postings are reversed."""
    service, key = _service(pack, entity, "cancel")
    reason = _reason()
    result = _committed(service, lambda: documents.cancel(service, key, record_id, reason))
    return jsonify(result)


@bp.post(RECORD + "/amend")
def amend_view(pack: str, entity: str, record_id: int) -> Any:
    """Amend (变更) an approved record: {"reason"}; it is cancelled and a new draft copied
    from it is returned (201, Location)."""
    service, key = _service(pack, entity, "amend")
    reason = _reason()
    record = _committed(service, lambda: documents.amend(service, key, record_id, reason))
    location = url_for("api.get_view", pack=pack, entity=entity, record_id=record["id"])
    return jsonify(record), 201, {"Location": location}


def _committed(service: WorkflowService, run: Any) -> Any:
    try:
        result = run()
    except RuntimeFailure:
        service.session.rollback()
        raise
    service.session.commit()
    return result
