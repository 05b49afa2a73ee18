"""The OpenAPI operations of the pack endpoints (install, toggle, export, customise)."""

from __future__ import annotations

from typing import Any

from formwork.api.openapi_platform import (
    _FLAG,
    _items,
    _json_body,
    _object,
    _ok,
    _path,
    _query,
    _ref,
    problems,
)


def pack_paths() -> dict[str, dict[str, Any]]:
    """Return the operations of the pack endpoints (administrators) by path."""
    name = [_path("name", {"type": "string"})]
    report = _ok(_ref("PackReport"), "What was done")
    upload = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
        },
    }
    checked = _object(
        {"name": {"type": "string"}, "version": {"type": "string"}, "problems": {"type": "array"}}
    )
    install = [
        _query("demo", _FLAG),
        _query("confirm", _FLAG, "accept schema changes that lose data"),
        _query("resolution", {"type": "string"}, "how to settle conflicting customisations"),
    ]
    refused = problems(401, 403, 404, 409, 422)
    return {
        "/api/v1/packs": {
            "get": {
                "summary": "Installed packs (admins)",
                "tags": ["packs"],
                "responses": {**_ok(_items("Pack"), "Packs"), **problems(401, 403)},
            },
            "post": {
                "summary": "Install or upgrade a pack from a zip (admins)",
                "tags": ["packs"],
                "parameters": install,
                "requestBody": upload,
                "responses": {**_ok(_ref("PackReport"), "Installed", "201"), **refused},
            },
        },
        "/api/v1/packs/check": {
            "post": {
                "summary": "Check a pack zip without installing it (admins)",
                "tags": ["packs"],
                "requestBody": upload,
                "responses": {**_ok(checked, "No problems"), **problems(401, 403, 422)},
            }
        },
        "/api/v1/packs/{name}": {
            "delete": {
                "summary": "Uninstall a pack (data kept unless purge=1&confirm=1)",
                "tags": ["packs"],
                "parameters": [*name, _query("purge", _FLAG), _query("confirm", _FLAG)],
                "responses": {**report, **refused},
            }
        },
        "/api/v1/packs/{name}/enable": {
            "post": {
                "summary": "Switch a pack on",
                "tags": ["packs"],
                "parameters": name,
                "responses": {**report, **refused},
            },
        },  # fmt: skip
        "/api/v1/packs/{name}/disable": {
            "post": {
                "summary": "Switch a pack off (data kept)",
                "tags": ["packs"],
                "parameters": name,
                "responses": {**report, **refused},
            },
        },  # fmt: skip
        "/api/v1/packs/{name}/export": {"get": _export(name)},
        "/api/v1/packs/{name}/customisations": _customisations(name),
    }


def _export(name: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": "Download a pack as a zip",
        "tags": ["packs"],
        "parameters": [
            *name,
            _query("with_customisations", _FLAG),
            _query("with_data", _FLAG),
            _query("version", {"type": "string"}),
        ],
        "responses": {
            "200": {
                "description": "The pack",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            },
            **problems(401, 403, 404, 409, 422),
        },
    }


def _customisations(name: list[dict[str, Any]]) -> dict[str, Any]:
    patch = {
        "type": "object",
        "required": ["file", "patch"],
        "properties": {
            "file": {"type": "string", "description": "e.g. entities/project.json"},
            "patch": {"type": "object", "description": "A JSON merge patch (RFC 7386)"},
        },
    }
    return {
        "get": {
            "summary": "A pack's customisations (merge patches by file)",
            "tags": ["packs"],
            "parameters": name,
            "responses": {
                **_ok({"type": "object"}, "Merge patches by file"),
                **problems(401, 403, 404),
            },
        },
        "patch": {
            "summary": "Customise one file of a pack",
            "tags": ["packs"],
            "parameters": name,
            "requestBody": _json_body(patch),
            "responses": {
                **_ok(_ref("PackReport"), "Applied"),
                **problems(401, 403, 404, 409, 413, 415, 422),
            },
        },
    }
