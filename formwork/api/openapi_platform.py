"""The fixed part of the OpenAPI document: problem details, files, workflow and packs.

The record endpoints are generated per entity in `openapi.py`; these do not depend on the
installed definitions. Every operation lists the problem statuses its view can answer, so a
client (and schemathesis) can hold the API to them.
"""

from __future__ import annotations

from typing import Any

from formwork.runtime.workflow.actions import ACTIONS

PROBLEM = {"$ref": "#/components/schemas/Problem"}
_STAMP = {"type": ["string", "null"], "format": "date-time"}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}
_TITLES = {
    400: "Bad query",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Body too large",
    415: "Body is not JSON",
    422: "Invalid input",
}


def problems(*codes: int) -> dict[str, Any]:
    """Return `responses` entries: a problem+json body for each status code.

    401 and 403 are always there: every operation needs a principal, and a token's scopes.
    """
    return {
        str(code): {
            "description": _TITLES.get(code, "Problem"),
            "content": {"application/problem+json": {"schema": PROBLEM}},
        }
        for code in sorted({401, 403, *codes})
    }


def _ok(schema: dict[str, Any], description: str, status: str = "200") -> dict[str, Any]:
    return {
        status: {"description": description, "content": {"application/json": {"schema": schema}}}
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _items(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref(name)}},
    }


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    out = {"name": name, "in": "query", "required": False, "schema": schema}
    return {**out, "description": description} if description else out


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


_FLAG = {"type": "string", "enum": ["0", "1", "true", "false"]}
_PAGE = [
    _query("page", {"type": "integer", "minimum": 1}),
    _query("per_page", {"type": "integer", "minimum": 1}, "at most 200 are returned"),
]


# --- component schemas ------------------------------------------------------------------------


def platform_schemas() -> dict[str, dict[str, Any]]:
    """Return the component schemas the fixed endpoints use."""
    return {
        "Problem": _problem(),
        "StoredFile": _object(
            {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "size": {"type": "integer"},
                "content_type": {"type": "string"},
                "sha256": {"type": "string"},
            }
        ),
        "AuditEntry": _object(
            {
                "id": {"type": "integer"},
                "action": {"type": "string"},
                "changes": {},
                "user_id": _INT_OR_NULL,
                "user": _STR_OR_NULL,
                "at": _STAMP,
            }
        ),
        "Task": _task(),
        "Notification": _object(
            {
                "id": {"type": "integer"},
                "subject": {"type": "string"},
                "body": {"type": "string"},
                "user_id": _INT_OR_NULL,
                "role": _STR_OR_NULL,
                "instance_id": _INT_OR_NULL,
                "created_at": _STAMP,
                "read": {"type": "boolean"},
            },
            required=("id", "subject", "created_at", "read"),
        ),
        "TaskDetail": _task_detail(),
        "HistoryEntry": _object(
            {
                "action": {"type": "string"},
                "step": _STR_OR_NULL,
                "task_id": _STR_OR_NULL,
                "comment": _STR_OR_NULL,
                "details": {},
                "user_id": _INT_OR_NULL,
                "at": _STAMP,
            },
            required=("action",),
        ),
        "ProcessInstance": _instance(),
        "ProcessDefinition": _object(
            {
                "id": {"type": "integer"},
                "key": {"type": "string"},
                "version": {"type": "integer"},
                "name": {"type": "string"},
                "hash": {"type": "string"},
                "binding": {"type": ["object", "null"]},
                "deployed_at": _STAMP,
                "bpmn": {"type": "string", "description": "Only on a single definition"},
            },
            required=("id", "key", "version"),
        ),
        "Pack": _object(
            {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "status": {"type": "string"},
                "enabled": {"type": "boolean"},
                "title": {"type": ["object", "null"]},
                "depends": {"type": "object"},
            },
            required=("name", "version", "status", "enabled"),
        ),
        "PackReport": _object({"report": {"type": "array", "items": {"type": "string"}}}),
        "Role": _object(
            {
                "name": {"type": "string"},
                "label": {},
                "pack": {"type": ["string", "null"]},
                "members": {"type": "integer"},
                "grants": {"type": "object"},
            },
            required=("name",),
        ),
    }


def _object(properties: dict[str, Any], required: tuple[str, ...] | None = None) -> dict[str, Any]:
    keys = list(properties) if required is None else list(required)
    return {"type": "object", "required": keys, "properties": properties}


def _problem() -> dict[str, Any]:
    error = _object(
        {"pointer": {"type": "string"}, "code": {"type": "string"}, "detail": {"type": "string"}}
    )
    pack_problem = _object(
        {
            "code": {"type": "string", "description": "A stable id such as pack.E080"},
            "file": {"type": "string"},
            "where": {"type": "string"},
            "message": {"type": "string"},
            "hint": {"type": "string"},
        }
    )
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "description": "What went wrong, and where"},
            "errors": {
                "type": "array",
                "items": error,
                "description": "One entry per bad value, addressed by a JSON pointer "
                "(or a query parameter's name)",
            },
            "problems": {"type": "array", "items": pack_problem},
            "current": {"type": "object", "description": "The record as it is now (409)"},
        },
    }


def _task() -> dict[str, Any]:
    return _object(
        {
            "id": {"type": "string"},
            "instance_id": {"type": "integer"},
            "process": {"type": "string"},
            "step": {"type": "string"},
            "name": _STR_OR_NULL,
            "lane": _STR_OR_NULL,
            "role": _STR_OR_NULL,
            "assignee_id": _INT_OR_NULL,
            "excluded_id": {**_INT_OR_NULL, "description": "the submitter, who may not act"},
            "entity": _STR_OR_NULL,
            "record_id": _INT_OR_NULL,
            "title": _STR_OR_NULL,
            "status": {"type": "string"},
            "created_at": _STAMP,
            "due_at": _STAMP,
            "overdue": {"type": "boolean"},
            "done_at": _STAMP,
            "done_by": _INT_OR_NULL,
        },
        required=("id", "instance_id", "process", "step", "status"),
    )


def _task_detail() -> dict[str, Any]:
    detail = {
        "form": {"type": "object", "description": "The task's form as a JSON Schema"},
        "data": {"type": "object"},
        "actions": {"type": "array", "items": {"type": "string"}},
        "record": {"type": ["object", "null"]},
        "history": {"type": "array", "items": _ref("HistoryEntry")},
        "instructions": {
            "type": ["string", "null"],
            "description": "The task's instructions, placeholders filled in (plain text)",
        },
    }
    return {"allOf": [_ref("Task"), _object(detail, required=("form", "actions", "history"))]}


def _instance() -> dict[str, Any]:
    return _object(
        {
            "id": {"type": "integer"},
            "process": {"type": "string"},
            "version": _INT_OR_NULL,
            "status": {"type": "string"},
            "outcome": {**_STR_OR_NULL, "description": "what the record got at the end"},
            "end_event": _STR_OR_NULL,
            "entity": _STR_OR_NULL,
            "record_id": _INT_OR_NULL,
            "title": _STR_OR_NULL,
            "error": _STR_OR_NULL,
            "retry": {"type": "boolean"},
            "attempts": {"type": "integer", "description": "failed steps in a row"},
            "next_try_at": {**_STAMP, "description": "when the worker tries a failed timer again"},
            "started_by": _INT_OR_NULL,
            "started_at": _STAMP,
            "updated_at": _STAMP,
            "ended_at": _STAMP,
            "timer_due_at": _STAMP,
            "tasks": {"type": "array", "items": _ref("Task")},
            "history": {"type": "array", "items": _ref("HistoryEntry")},
            "completed_steps": {"type": "array", "items": {"type": "string"}},
        },
        required=("id", "process", "status"),
    )


# --- paths ------------------------------------------------------------------------------------


def platform_paths() -> dict[str, dict[str, Any]]:
    """Return the operations of the files, workflow and packs endpoints by path."""
    from formwork.api.openapi_packs import pack_paths

    return {
        **_file_paths(),
        **_task_paths(),
        **_process_paths(),
        **_event_paths(),
        **pack_paths(),
        **_role_paths(),
        **_report_paths(),
    }


def _role_paths() -> dict[str, dict[str, Any]]:
    name = [_path("name", {"type": "string"})]
    member = [*name, _path("user_id", {"type": "integer", "minimum": 1, "example": 1})]
    role = _ref("Role")
    done = {"204": {"description": "Done"}}
    create = _object(
        {"name": {"type": "string"}, "label": {"type": "object"}}, required=("name", "label")
    )
    grants = _object(
        {
            "pack": {"type": ["string", "null"], "description": "null: the administrator's own"},
            "permissions": {"type": "array", "items": {"type": "object"}},
        },
        required=("permissions",),
    )
    tags = ["roles"]
    return {
        "/api/v1/roles": {
            "get": {"summary": "Roles with their grants and member counts (admins)", "tags": tags,
                    "responses": {**_ok(_items("Role"), "Roles"), **problems()}},
            "post": {"summary": "Create a role", "tags": tags, "requestBody": _json_body(create),
                     "responses": {**_ok(role, "Created", "201"),
                                   **problems(409, 413, 415, 422)}},
        },
        "/api/v1/roles/{name}": {
            "get": {"summary": "One role", "tags": tags, "parameters": name,
                    "responses": {**_ok(role, "The role"), **problems(404)}},
            "delete": {"summary": "Delete an administrator's role", "tags": tags,
                       "parameters": name, "responses": {**done, **problems(404, 409, 422)}},
        },
        "/api/v1/roles/{name}/permissions": {
            "put": {"summary": "Replace the grants one pack gives the role", "tags": tags,
                    "parameters": name, "requestBody": _json_body(grants),
                    "responses": {**_ok(role, "The role"),
                                  **problems(404, 409, 413, 415, 422)}},
        },
        "/api/v1/roles/{name}/members/{user_id}": {
            "put": {"summary": "Give the role to a user", "tags": tags, "parameters": member,
                    "responses": {**done, **problems(404, 405, 409, 422)}},
            "delete": {"summary": "Take the role from a user", "tags": tags,
                       "parameters": member, "responses": {**done, **problems(404, 405, 409, 422)}},
        },
    }  # fmt: skip


def _report_paths() -> dict[str, dict[str, Any]]:
    result = _object(
        {
            "report": {"type": "string"},
            "params": {"type": "object"},
            "columns": {"type": "array", "items": {"type": "object"}},
            "rows": {"type": "array", "items": {"type": "object"}},
            "totals": {"type": "object"},
            "styles": {},
            "titles": {"type": "object"},
        },
        required=("report", "columns", "rows", "totals"),
    )
    return {
        "/api/v1/reports/{pack}/{name}": {
            "get": {
                "summary": "Run a report (its parameters as query parameters)",
                "tags": ["reports"],
                "parameters": [
                    _path("pack", {"type": "string"}),
                    _path("name", {"type": "string"}),
                ],
                "responses": {**_ok(result, "Columns, rows and totals"), **problems(400, 404, 422)},
            }
        }
    }


def _file_paths() -> dict[str, dict[str, Any]]:
    upload = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
    return {
        "/api/v1/files": {
            "post": {
                "summary": "Upload a file for an attachment field",
                "tags": ["files"],
                "requestBody": upload,
                "responses": {
                    **_ok(_ref("StoredFile"), "Stored", "201"),
                    **problems(401, 403, 413, 422),
                },
            }
        },
        "/api/v1/files/{file_id}": {
            "get": {
                "summary": "Download a stored file",
                "tags": ["files"],
                "parameters": [_path("file_id", {"type": "string"})],
                "responses": {
                    "200": {
                        "description": "The file, as an attachment",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **problems(401, 403, 404),
                },
            }
        },
    }


def _task_paths() -> dict[str, dict[str, Any]]:
    task_id = [_path("task_id", {"type": "string"})]
    action = {
        "type": "object",
        "required": ["action"],
        "properties": {
            "action": {
                "type": "string",
                "enum": list(ACTIONS),
            },
            "comment": {"type": "string"},
            "data": {"type": "object", "description": "The task form's values"},
        },
    }
    inbox = [
        _query("process", {"type": "string"}),
        _query("step", {"type": "string"}),
        _query("entity", {"type": "string"}),
        _query("record_id", {"type": "integer", "minimum": 0}),
        _query("overdue", _FLAG),
        _query("status", {"type": "string", "enum": ["ready", "completed", "cancelled"]}),
        _query("scope", {"type": "string", "enum": ["mine", "all"]}, "all: every task (admins)"),
        *_PAGE,
    ]
    notification_id = [
        {"name": "notification_id", "in": "path", "required": True,
         "schema": {"type": "integer", "minimum": 1}}
    ]  # fmt: skip
    return {
        "/api/v1/notifications": {
            "get": {
                "summary": "Reminders processes left for me or my roles (unread; all=1: all)",
                "tags": ["workflow"],
                "parameters": [_query("all", _FLAG)],
                "responses": {
                    **_ok(_items("Notification"), "Reminders"),
                    **problems(400, 401, 403),
                },
            }
        },
        "/api/v1/notifications/{notification_id}/read": {
            "post": {
                "summary": "Mark a reminder read",
                "tags": ["workflow"],
                "parameters": notification_id,
                "responses": {"204": {"description": "Marked read"}, **problems(401, 403, 404)},
            }
        },
        "/api/v1/tasks": {
            "get": {
                "summary": "My inbox: ready tasks assigned to me or to one of my roles",
                "tags": ["workflow"],
                "parameters": inbox,
                "responses": {**_ok(_items("Task"), "Tasks"), **problems(400, 401, 403)},
            }
        },
        "/api/v1/tasks/{task_id}": {
            "get": {
                "summary": "A task with its form, record, allowed actions and history",
                "tags": ["workflow"],
                "parameters": task_id,
                "responses": {**_ok(_ref("TaskDetail"), "The task"), **problems(401, 403, 404)},
            }
        },
        "/api/v1/tasks/{task_id}/complete": {
            "post": {
                "summary": "Act on a task (approve, reject, return, delegate, …)",
                "tags": ["workflow"],
                "parameters": task_id,
                "requestBody": _json_body(action),
                "responses": {
                    **_ok(_ref("ProcessInstance"), "The instance after the step"),
                    **problems(401, 403, 404, 409, 413, 415, 422),
                },
            }
        },
    }


def _process_paths() -> dict[str, dict[str, Any]]:
    instance_id = [_path("instance_id", {"type": "integer"})]
    start = {
        "type": "object",
        "description": '{"entity", "record_id"} submits a record for approval; '
        '{"process", "data"} starts an unbound process (admins)',
        "properties": {
            "entity": {"type": "string"},
            "record_id": {"type": "integer"},
            "process": {"type": "string"},
            "data": {"type": "object"},
        },
    }
    listing = [
        _query("process", {"type": "string"}),
        _query("status", {"type": "string"}),
        _query("entity", {"type": "string"}),
        _query("record_id", {"type": "integer", "minimum": 0}),
        _query("mine", _FLAG),
        *_PAGE,
    ]
    one = {**_ok(_ref("ProcessInstance"), "The instance")}
    return {
        "/api/v1/processes": {
            "get": {
                "summary": "Process instances (admins: all; others: the ones they started)",
                "tags": ["workflow"],
                "parameters": listing,
                "responses": {**_ok(_items("ProcessInstance"), "Instances"), **problems(400, 401)},
            },
            "post": {
                "summary": "Submit a record, or start a process",
                "tags": ["workflow"],
                "requestBody": _json_body(start),
                "responses": {
                    **_ok(_ref("ProcessInstance"), "Started", "201"),
                    **problems(401, 403, 404, 409, 413, 415, 422),
                },
            },
        },
        "/api/v1/processes/{instance_id}": {
            "get": {
                "summary": "An instance with its ready tasks, history and completed steps",
                "tags": ["workflow"],
                "parameters": instance_id,
                "responses": {**one, **problems(401, 404)},
            }
        },
        "/api/v1/processes/{instance_id}/retry": {
            "post": {
                "summary": "Run a failed step again (admins)",
                "tags": ["workflow"],
                "parameters": instance_id,
                "responses": {**one, **problems(404, 405, 409, 422)},
            }
        },
        "/api/v1/processes/{instance_id}/withdraw": {
            "post": {
                "summary": "Withdraw a request while no approver has acted (the submitter)",
                "tags": ["workflow"],
                "parameters": instance_id,
                "requestBody": _json_body(
                    {"type": "object", "properties": {"comment": {"type": "string"}}}, False
                ),
                "responses": {**one, **problems(404, 405, 409, 413, 415, 422)},
            }
        },
        "/api/v1/processes/migrate": {"post": _migrate()},
        "/api/v1/process-definitions": _definitions(),
    }


def _event_paths() -> dict[str, dict[str, Any]]:
    message = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "correlation": {
                "type": "object",
                "description": "The values of the message's correlation properties (by id); "
                "instance_id may name the instance",
            },
            "payload": {"type": "object"},
        },
    }
    signal = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string"}, "payload": {"type": "object"}},
    }
    sent = _object(
        {
            "name": {"type": "string"},
            "delivered": {"type": "array", "items": {"type": "integer"}},
            "failed": {"type": "object", "additionalProperties": {"type": "string"}},
        }
    )
    return {
        "/api/v1/messages": {
            "post": {
                "summary": "Deliver a message to the one process waiting for it "
                "(administrators, or a role the binding lists under senders)",
                "tags": ["workflow"],
                "requestBody": _json_body(message),
                "responses": {
                    **_ok(_ref("ProcessInstance"), "The instance after the step"),
                    **problems(401, 403, 404, 409, 413, 415, 422),
                },
            }
        },
        "/api/v1/signals": {
            "post": {
                "summary": "Send a signal to every process waiting for it that the caller "
                "may reach, each in its own step",
                "tags": ["workflow"],
                "requestBody": _json_body(signal),
                "responses": {**_ok(sent, "Where it went"), **problems(401, 403, 413, 415, 422)},
            }
        },
    }


def _migrate() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["process", "to_version"],
        "properties": {
            "process": {"type": "string"},
            "to_version": {"type": "integer"},
            "instances": {"type": "array", "items": {"type": "integer"}},
            "step": {"type": "string"},
        },
    }
    result = {"type": "object", "description": "The instances moved and those left, with why"}
    return {
        "summary": "Move running instances to another version (admins)",
        "tags": ["workflow"],
        "requestBody": _json_body(body),
        "responses": {
            **_ok(result, "What was migrated"),
            **problems(401, 403, 404, 409, 413, 415, 422),
        },
    }


def _definitions() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["bpmn"],
        "properties": {
            "bpmn": {"type": "string", "description": "BPMN 2.0 XML (no DOCTYPE)"},
            "dmn": {"type": "array", "items": {"type": "string"}},
            "called": {
                "type": "array",
                "items": {"type": "string"},
                "description": "BPMN documents with the processes its call activities call",
            },
            "forms": {
                "type": "object",
                "additionalProperties": {"type": "object"},
                "description": "Form schemas by the file name a formJsonSchemaFilename gives",
            },
            "binding": {
                "type": "object",
                "required": ["entity"],
                "properties": {
                    "entity": {"type": "string"},
                    "state_field": {"type": "string"},
                    "title": {"type": "string"},
                    "lanes": {"type": "object"},
                    "senders": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }
    return {
        "get": {
            "summary": "Deployed process versions",
            "tags": ["workflow"],
            "responses": {**_ok(_items("ProcessDefinition"), "Versions"), **problems(401)},
        },
        "post": {
            "summary": "Deploy a process version (admins; unchanged sources answer 200)",
            "tags": ["workflow"],
            "requestBody": _json_body(body),
            "responses": {
                **_ok(_ref("ProcessDefinition"), "Already deployed"),
                **_ok(_ref("ProcessDefinition"), "Deployed", "201"),
                **problems(401, 403, 413, 415, 422),
            },
        },
    }
