"""The OpenAPI 3.1 document: records of the installed entities (generated from their
definitions), plus the fixed platform endpoints (files, workflow, packs; `openapi_platform`)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import jsonify

from formwork.api import bp
from formwork.api.openapi_extras import add_common_responses, security_paths
from formwork.api.openapi_platform import platform_paths, platform_schemas, problems
from formwork.context import registry
from formwork.runtime.query import OPERATORS
from formwork.runtime.registry import EntityMeta

ID_PARAMETER = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
    "example": 1,
}


def build_spec(metas: list[EntityMeta]) -> dict[str, Any]:
    """Return the OpenAPI document for the given entities."""
    spec = APISpec(
        title="Formwork API",
        version="1",
        openapi_version="3.1.0",
        info={
            "description": "Records of every installed entity, files, workflow (tasks and "
            "processes) and pack administration. Errors are RFC 9457 problem details."
        },
    )
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "An API token"}
    )
    for name, schema in platform_schemas().items():
        spec.components.schema(name, schema)
    for meta in metas:
        name = meta.entity.key
        spec.components.schema(name, _record_schema(meta))
        base = f"/api/v1/{meta.entity.pack}/{meta.entity.name}"
        spec.path(path=base, operations=_collection_ops(meta))
        spec.path(
            path=base + "/{id}",
            operations=_item_ops(meta),
            parameters=[ID_PARAMETER],
        )
        _record_extras(spec, meta, base)
        if (meta.entity.options.get("workflow") or {}).get("process"):
            _lifecycle_ops(spec, meta, base)
    for path, operations in {**platform_paths(), **security_paths()}.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
    add_common_responses(document)
    return document


def _record_schema(meta: EntityMeta) -> dict[str, Any]:
    schema = meta.output_schema()
    for name, child in meta.children:
        schema["properties"][name] = {
            "type": "array",
            "items": child.output_schema(),
            "title": meta.entity.field_map[name].label("en"),
        }
    return schema


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    return {**ok, **problems(*codes)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _collection_ops(meta: EntityMeta) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{meta.entity.key}"}
    page = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": ref},
            "total": {"type": "integer"},
            "total_capped": {"type": "boolean"},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
        },
    }
    label = meta.entity.label("en")
    return {
        "get": {
            "summary": f"List {label}",
            "tags": [meta.entity.pack],
            "parameters": _list_parameters(meta),
            "responses": _responses({"200": _json(page, "A page of records")}, 400, 401, 403, 404),
        },
        "post": {
            "summary": f"Create {label}",
            "tags": [meta.entity.pack],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": meta.input_schema(creating=True)}},
            },
            "responses": _responses(
                {"201": _json(ref, "Created")}, 400, 401, 403, 404, 413, 415, 422
            ),
        },
    }


def _item_ops(meta: EntityMeta) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{meta.entity.key}"}
    patch = meta.input_schema(creating=False)
    patch["properties"] = {**patch["properties"], "version": {"type": "integer"}}
    patch["required"] = ["version"]
    tags = [meta.entity.pack]
    return {
        "get": {
            "summary": "Get one record",
            "tags": tags,
            "responses": _responses({"200": _json(ref, "The record")}, 401, 403, 404),
        },
        "patch": {
            "summary": "Change a record (optimistic lock on version)",
            "tags": tags,
            "requestBody": {"required": True, "content": {"application/json": {"schema": patch}}},
            "responses": _responses(
                {"200": _json(ref, "The changed record")}, 400, 404, 405, 409, 413, 415, 422
            ),
        },
        "delete": {
            "summary": "Delete a record",
            "tags": tags,
            "parameters": [{"name": "version", "in": "query", "schema": {"type": "integer"}}],
            "responses": _responses({"204": {"description": "Deleted"}}, 404, 405, 409, 422),
        },
    }


# An id past 2**63 - 1 matches no route: GET answers 404, other methods 405 (werkzeug).


def _record_extras(spec: APISpec, meta: EntityMeta, base: str) -> None:
    """Add the aggregate and history operations of an entity."""
    tags = [meta.entity.pack]
    rows = {
        "type": "object",
        "required": ["items", "truncated"],
        "properties": {
            "items": {"type": "array", "items": {"type": "object"}},
            "truncated": {"type": "boolean"},
        },
    }
    fields = ", ".join(f.name for f in meta.entity.stored_fields())
    # Comma lists (and `date:month`), so a string: an enum of one name would refuse them.
    names = {"type": "string", "description": f"of: {fields}"}
    measures = [
        {"name": name, "in": "query", "schema": names, "description": text}
        for name, text in (
            ("group", "Comma-separated fields to group by; dates as field:day|week|month|year"),
            ("sum", "Comma-separated numeric fields"),
            ("avg", "Comma-separated numeric fields"),
            ("min", "Comma-separated fields"),
            ("max", "Comma-separated fields"),
        )
    ]
    measures.append({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}})
    spec.path(
        path=base + "/aggregate",
        operations={
            "get": {
                "summary": "Group and aggregate in SQL (filters as on the list)",
                "tags": tags,
                "parameters": measures + _list_parameters(meta)[4:],
                "responses": _responses(
                    {"200": _json(rows, "One row per group")}, 400, 401, 403, 404
                ),
            }
        },
    )
    history = {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}}
        },
    }
    spec.path(
        path=base + "/{id}/history",
        operations={
            "get": {
                "summary": "The audit history of a record",
                "tags": tags,
                "responses": _responses({"200": _json(history, "Audit entries")}, 401, 403, 404),
            }
        },
        parameters=[ID_PARAMETER],
    )


LIFECYCLE = {
    "type": "object",
    "required": ["state", "editable", "can"],
    "properties": {
        "state": {"type": "string"},
        "instance_id": {"type": ["integer", "null"]},
        "amended_from": {"type": ["integer", "null"]},
        "amended_to": {"type": ["integer", "null"]},
        "reason": {"type": "string"},
        "editable": {"type": "boolean"},
        "can": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "reversed": {"type": "array", "items": {"type": "integer"}},
    },
}
REASON = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["reason"],
                "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 2000}},
            }
        }
    },
}


def _lifecycle_ops(spec: APISpec, meta: EntityMeta, base: str) -> None:
    """Add the lifecycle, cancel and amend operations of an entity bound to a process."""
    tags = [meta.entity.pack]
    ref = {"$ref": f"#/components/schemas/{meta.entity.key}"}
    errors = (400, 401, 403, 404, 409, 413, 415, 422)
    operations: dict[str, tuple[str, str, Any, dict[str, Any]]] = {
        "lifecycle": ("get", "Where the record stands in its approval lifecycle", None, LIFECYCLE),
        "cancel": ("post", "Cancel (作废) an approved record; reverse what it posted", REASON,
                   LIFECYCLE),
        "amend": ("post", "Amend (变更): cancel it and get a new draft copied from it", REASON,
                  ref),
    }  # fmt: skip
    for name, (method, summary, body, answer) in operations.items():
        status = "201" if name == "amend" else "200"
        operation: dict[str, Any] = {
            "summary": summary,
            "tags": tags,
            "responses": _responses({status: _json(answer, summary)}, *errors),
        }
        if body is not None:
            operation["requestBody"] = body
        spec.path(
            path=f"{base}/{{id}}/{name}",
            operations={method: operation},
            parameters=[ID_PARAMETER],
        )


def _list_parameters(meta: EntityMeta) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": "sort",
            "in": "query",
            "schema": {"type": "string"},
            "description": "Comma-separated fields, '-' for descending",
        },
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {
            "name": "per_page",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
        },
        {
            "name": "q",
            "in": "query",
            "schema": {"type": "string"},
            "description": "Quick search over the entity's search fields",
        },
    ]
    shapes = meta.output_schema()["properties"]
    for field_def in meta.entity.stored_fields():
        for op in sorted(field_def.kind.ops(field_def)):
            if op in OPERATORS:
                params.append(
                    {
                        "name": f"{field_def.name}__{op}",
                        "in": "query",
                        "schema": _filter_schema(shapes.get(field_def.name, {}), op),
                        "required": False,
                    }
                )
    return params


def _filter_schema(shape: dict[str, Any], op: str) -> dict[str, Any]:
    """Return the schema of one filter value: the field's own scalar type where it has one."""
    if op == "isnull":
        return {"type": "string", "enum": ["true", "false", "1", "0"]}
    kinds = shape.get("type")
    kinds = [k for k in kinds if k != "null"] if isinstance(kinds, list) else [kinds]
    if op in ("in", "contains", "startswith") or len(kinds) != 1:
        return {"type": "string"}
    if kinds[0] in ("integer", "number", "boolean"):
        return {"type": kinds[0]}
    if kinds[0] == "string":
        return {k: v for k, v in shape.items() if k in ("format", "enum")} | {"type": "string"}
    return {"type": "string"}


def current_document() -> dict[str, Any]:
    """Return the OpenAPI document of the current definitions."""
    current = registry()
    return build_spec([current.meta(e.key) for e in current.top_level()])


@bp.get("/openapi.json")
def openapi() -> Any:
    """Return the OpenAPI 3.1 document of the installed entities."""
    return jsonify(current_document())
