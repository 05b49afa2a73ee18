"""The OpenAPI 3.1 document, generated from the installed definitions."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from flask import jsonify

from formwork.api import bp
from formwork.api.context import registry
from formwork.runtime.query import OPERATORS
from formwork.runtime.registry import EntityMeta

PROBLEM = {"$ref": "#/components/schemas/Problem"}


def build_spec(metas: list[EntityMeta]) -> dict[str, Any]:
    """Return the OpenAPI document for the given entities."""
    spec = APISpec(
        title="Formwork API",
        version="1",
        openapi_version="3.1.0",
        info={"description": "Records of every installed entity."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", _problem_schema())
    for meta in metas:
        name = meta.entity.key
        spec.components.schema(name, _record_schema(meta))
        base = f"/api/v1/{meta.entity.pack}/{meta.entity.name}"
        spec.path(path=base, operations=_collection_ops(meta))
        spec.path(
            path=base + "/{id}",
            operations=_item_ops(meta),
            parameters=[
                {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
        )
    document = spec.to_dict()
    document["security"] = [{"bearer": []}]
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


def _problem_schema() -> dict[str, Any]:
    error = {
        "type": "object",
        "properties": {
            "pointer": {"type": "string"},
            "code": {"type": "string"},
            "detail": {"type": "string"},
        },
    }
    return {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": error},
        },
    }


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    out = dict(ok)
    for code in codes:
        out[str(code)] = {
            "description": "Problem",
            "content": {"application/problem+json": {"schema": PROBLEM}},
        }
    return out


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
            "responses": _responses({"200": _json(page, "A page of records")}, 400, 401, 403),
        },
        "post": {
            "summary": f"Create {label}",
            "tags": [meta.entity.pack],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": meta.input_schema(creating=True)}},
            },
            "responses": _responses({"201": _json(ref, "Created")}, 400, 401, 403, 413, 422),
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
                {"200": _json(ref, "The changed record")}, 400, 401, 403, 404, 409, 422
            ),
        },
        "delete": {
            "summary": "Delete a record",
            "tags": tags,
            "parameters": [{"name": "version", "in": "query", "schema": {"type": "integer"}}],
            "responses": _responses({"204": {"description": "Deleted"}}, 401, 403, 404, 409),
        },
    }


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
    for field_def in meta.entity.stored_fields():
        for op in sorted(field_def.kind.ops(field_def)):
            if op in OPERATORS:
                params.append(
                    {
                        "name": f"{field_def.name}__{op}",
                        "in": "query",
                        "schema": {"type": "string"},
                        "required": False,
                    }
                )
    return params


@bp.get("/openapi.json")
def openapi() -> Any:
    """Return the OpenAPI 3.1 document of the installed entities."""
    current = registry()
    metas = [current.meta(e.key) for e in current.top_level()]
    return jsonify(build_spec(metas))
