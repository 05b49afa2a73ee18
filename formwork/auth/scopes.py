"""What an API token may reach: each /api/v1 endpoint belongs to an area, and an area
names the scope a token needs for a safe (GET) and for an unsafe call.

Every API endpoint must be listed in ENDPOINT_AREAS: a token calling an endpoint that is not
listed is refused (fail closed), and tests/security/test_auth_tokens.py checks the list
against the app's routes, so a new endpoint without a scope is noticed at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from formwork.auth.errors import UserError

SCOPES = ("read", "write", "workflow", "admin")
DEFAULT_SCOPES = ("read", "write", "workflow")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# area -> (scope for safe methods, scope for unsafe methods)
AREAS: dict[str, tuple[str, str]] = {
    "records": ("read", "write"),
    "workflow": ("read", "workflow"),
    "admin": ("admin", "admin"),
}

ENDPOINT_AREAS: dict[str, str] = {
    # records and files
    "api.list_view": "records",
    "api.create_view": "records",
    "api.get_view": "records",
    "api.update_view": "records",
    "api.delete_view": "records",
    "api.history_view": "records",
    "api.aggregate_view": "records",
    "api.upload_file": "records",
    "api.download_file": "records",
    "api.report_api": "records",  # GET only: a report's datasets, the viewer's rows
    "api.lifecycle_view": "records",
    "api.cancel_view": "records",
    "api.amend_view": "records",
    # workflow: tasks and process instances
    "api.tasks_view": "workflow",
    "api.task_view": "workflow",
    "api.complete_view": "workflow",
    "api.processes_view": "workflow",
    "api.process_view": "workflow",
    "api.start_view": "workflow",
    "api.retry_view": "workflow",
    "api.withdraw_view": "workflow",
    "api.definitions_view": "workflow",
    "api.notifications_view": "workflow",
    "api.notification_read_view": "workflow",
    "api.messages_view": "workflow",
    "api.signals_view": "workflow",
    # administration: deploying and migrating processes, packs, the security log
    "api.deploy_view": "admin",
    "api.migrate_view": "admin",
    "api.packs_list": "admin",
    "api.packs_check": "admin",
    "api.packs_install": "admin",
    "api.packs_enable": "admin",
    "api.packs_disable": "admin",
    "api.packs_uninstall": "admin",
    "api.packs_export": "admin",
    "api.packs_customisations": "admin",
    "api.packs_customise": "admin",
    "api.security_events": "admin",
    "api.roles_list": "admin",
    "api.role_create": "admin",
    "api.role_get": "admin",
    "api.role_delete": "admin",
    "api.role_permissions": "admin",
    "api.role_member_add": "admin",
    "api.role_member_remove": "admin",
}


def required_scope(endpoint: str | None, method: str) -> str | None:
    """Return the scope a token needs for this endpoint and method (None: not mapped)."""
    area = ENDPOINT_AREAS.get(endpoint or "")
    if area is None:
        return None
    safe, unsafe = AREAS[area]
    return safe if method.upper() in SAFE_METHODS else unsafe


def normalise_scopes(scopes: Iterable[str] | None) -> list[str]:
    """Return the scopes sorted in their canonical order; raise UserError for unknown ones."""
    wanted = list(DEFAULT_SCOPES if scopes is None else scopes)
    unknown = sorted(set(wanted) - set(SCOPES))
    if unknown:
        raise UserError(f"unknown scope(s) {', '.join(unknown)}; use {', '.join(SCOPES)}")
    if not wanted:
        raise UserError(f"give a token at least one scope: {', '.join(SCOPES)}")
    return [s for s in SCOPES if s in wanted]
