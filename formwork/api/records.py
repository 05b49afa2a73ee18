"""Record endpoints: /api/v1/<pack>/<entity>[/<id>] for every installed entity."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for

from formwork.api import bp
from formwork.api.context import json_body, record_service
from formwork.context import entity_key, get_session, registry
from formwork.runtime.aggregate import MAX_GROUPS, aggregate, check_params
from formwork.runtime.audit import history
from formwork.runtime.errors import BadQuery, FieldError, ValidationFailed
from formwork.runtime.params import check_aggregate, check_query, whole_number
from formwork.runtime.query import list_records


def _params() -> dict[str, list[str]]:
    return request.args.to_dict(flat=False)


@bp.get("/<pack>/<entity>")
def list_view(pack: str, entity: str) -> Any:
    """List records: filters `field__op=value`, `sort`, `page`, `per_page`, `q`."""
    key = entity_key(pack, entity)
    service = record_service()
    service.principal.require(key, "read")
    params = _params()
    check_query(params)
    page = list_records(
        get_session(), registry(), registry().meta(key), params, principal=service.principal
    )
    return jsonify(
        items=page.items,
        total=page.total,
        total_capped=page.total_capped,
        page=page.page,
        per_page=page.per_page,
    )


@bp.post("/<pack>/<entity>")
def create_view(pack: str, entity: str) -> Any:
    """Create a record."""
    key = entity_key(pack, entity)
    service = record_service()
    record = service.create(key, json_body())
    service.session.commit()
    location = url_for("api.get_view", pack=pack, entity=entity, record_id=record["id"])
    return jsonify(record), 201, {"Location": location}


@bp.get("/<pack>/<entity>/<int(max=9223372036854775807):record_id>")
def get_view(pack: str, entity: str, record_id: int) -> Any:
    """Return one record with its line items."""
    record = record_service().get(entity_key(pack, entity), record_id)
    return jsonify(record), 200, {"ETag": f'"{record["version"]}"'}


@bp.patch("/<pack>/<entity>/<int(max=9223372036854775807):record_id>")
def update_view(pack: str, entity: str, record_id: int) -> Any:
    """Change some fields of a record; `version` (body or If-Match) must be current."""
    key = entity_key(pack, entity)
    body = json_body()
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("/", "not_object")])
    version = body.pop("version", None)
    if version is None and request.headers.get("If-Match"):
        version = _if_match()
    service = record_service()
    record = service.update(key, record_id, body, version)
    service.session.commit()
    return jsonify(record), 200, {"ETag": f'"{record["version"]}"'}


@bp.delete("/<pack>/<entity>/<int(max=9223372036854775807):record_id>")
def delete_view(pack: str, entity: str, record_id: int) -> Any:
    """Delete a record (with `?version=` to refuse a stale delete)."""
    key = entity_key(pack, entity)
    raw = request.args.get("version")
    version = whole_number(raw, 0)
    if raw is not None and version is None:  # int("²") raises; 20 digits overflow the column
        raise ValidationFailed([FieldError("version", "type", {"expected": "integer"})])
    service = record_service()
    service.delete(key, record_id, version)
    service.session.commit()
    return "", 204


@bp.get("/<pack>/<entity>/aggregate")
def aggregate_view(pack: str, entity: str) -> Any:
    """Group and aggregate: `group=field,date:month`, `sum=`, `avg=`, `min=`, `max=`."""
    key = entity_key(pack, entity)
    principal = record_service().principal
    principal.require(key, "read")
    params = _params()
    check_params(params)
    check_aggregate(params)
    limit = _limit(params)
    rows = aggregate(get_session(), registry(), registry().meta(key), params, principal=principal)
    # The SQL stops at MAX_GROUPS groups; say so rather than dropping groups silently.
    return jsonify(items=rows[:limit], truncated=len(rows) > limit or len(rows) >= MAX_GROUPS)


def _limit(params: dict[str, list[str]]) -> int:
    """Return the aggregate's `limit` (how many groups to answer; all of them by default)."""
    raw = next(iter(params.get("limit") or ()), None)
    limit = whole_number(raw, 1, MAX_GROUPS)
    if raw is not None and limit is None:
        detail = f"expected an integer from 1 to {MAX_GROUPS}"
        raise BadQuery([FieldError("limit", "invalid", {"detail": detail})])
    return limit or MAX_GROUPS


@bp.get("/<pack>/<entity>/<int(max=9223372036854775807):record_id>/history")
def history_view(pack: str, entity: str, record_id: int) -> Any:
    """Return the audit history of a record."""
    key = entity_key(pack, entity)
    service = record_service()
    service.get(key, record_id)  # 404 unless the principal may read the record
    hidden = service.principal.hidden_fields(key)
    return jsonify(items=history(get_session(), key, record_id, hidden))


def _if_match() -> int | None:
    tag = (request.headers.get("If-Match") or "").strip().strip('"').removeprefix('W/"')
    version = whole_number(tag, 0)
    if version is None:
        raise ValidationFailed([FieldError("If-Match", "type", {"expected": "integer"})])
    return version
