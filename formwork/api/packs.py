"""Pack administration over REST (admins only): the same operations as `formwork pack`."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from formwork.api import bp
from formwork.api.context import json_body
from formwork.auth import current_principal, principal_cache
from formwork.auth.events import record_request_event
from formwork.context import get_session, kernel
from formwork.runtime.errors import FieldError, PermissionDenied, ValidationFailed
from formwork.runtime.packs import (
    InstallOptions,
    check_pack,
    customisations,
    customise,
    export_pack,
    install_packs,
    pack_records,
    read_zip,
    set_enabled,
    uninstall,
)
from formwork.runtime.registry import load_registry
from formwork.runtime.security_events import pack_changes, pack_state

MAX_PACK_UPLOAD = 50 * 1024 * 1024


def _admin() -> None:
    principal = current_principal()
    if principal is None or not principal.is_admin:
        raise PermissionDenied("pack administration is for administrators")


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def _upload() -> Any:
    _admin()
    upload = request.files.get("file")
    data = upload.read(MAX_PACK_UPLOAD + 1) if upload else request.get_data(cache=False)
    if not data:
        raise ValidationFailed([FieldError("/file", "required")])
    if len(data) > MAX_PACK_UPLOAD:
        raise ValidationFailed(
            [FieldError("/file", "invalid", {"detail": "the zip is larger than 50 MiB"})]
        )
    return read_zip(data, upload.filename if upload and upload.filename else "upload.zip")


def _done(lines: list[str] | str, status: int = 200) -> Any:
    get_session().commit()
    kernel().definitions_changed()
    principal_cache().clear()  # roles and grants may have changed
    return jsonify(report=lines if isinstance(lines, list) else [lines]), status


@bp.get("/packs")
def packs_list() -> Any:
    """List installed packs."""
    _admin()
    return jsonify(
        items=[
            {
                "name": n,
                "version": r.version,
                "status": r.status,
                "enabled": r.enabled,
                "title": r.manifest.get("title"),
                "depends": r.manifest.get("depends", {}),
            }
            for n, r in pack_records(get_session()).items()
        ]
    )


@bp.post("/packs/check")
def packs_check() -> Any:
    """Check an uploaded pack zip without installing it."""
    checked = check_pack(_upload(), known=load_registry(get_session()).entities)
    return jsonify(name=checked.name, version=str(checked.manifest.version), problems=[])


@bp.post("/packs")
def packs_install() -> Any:
    """Install or upgrade from an uploaded zip (`?demo=1&confirm=1&resolution=…`)."""
    options = InstallOptions(
        demo=_flag("demo"),
        confirm=_flag("confirm"),
        resolution=request.args.get("resolution"),
        clock=kernel().clock,
        services=kernel().workflow.services,
    )
    source, session = _upload(), get_session()
    before = pack_state(session)
    report = install_packs(session, [source], options)
    for kind, detail in pack_changes(before, pack_state(session)):
        record_request_event(kind, **detail)  # committed with the install by _done
    return _done(report, 201)


@bp.post("/packs/<name>/enable")
def packs_enable(name: str) -> Any:
    """Switch a pack on."""
    _admin()
    report = set_enabled(get_session(), name, True)
    record_request_event("pack.enabled", pack=name)
    return _done(report)


@bp.post("/packs/<name>/disable")
def packs_disable(name: str) -> Any:
    """Switch a pack off (data kept)."""
    _admin()
    report = set_enabled(get_session(), name, False)
    record_request_event("pack.disabled", pack=name)
    return _done(report)


@bp.delete("/packs/<name>")
def packs_uninstall(name: str) -> Any:
    """Uninstall (`?purge=1&confirm=1` drops the tables too)."""
    _admin()
    report = uninstall(get_session(), name, purge=_flag("purge"), confirm=_flag("confirm"))
    record_request_event("pack.uninstalled", pack=name, purge=_flag("purge"))
    return _done(report)


@bp.get("/packs/<name>/export")
def packs_export(name: str) -> Any:
    """Download the pack as a zip (`?with_customisations=1&with_data=1&version=`)."""
    _admin()
    data = export_pack(
        get_session(),
        name,
        _flag("with_customisations"),
        _flag("with_data"),
        request.args.get("version"),
    )
    return Response(
        data,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}.zip"'},
    )


@bp.get("/packs/<name>/customisations")
def packs_customisations(name: str) -> Any:
    """Return the pack's customisations (merge patches by file)."""
    _admin()
    return jsonify(customisations(get_session(), name))


@bp.patch("/packs/<name>/customisations")
def packs_customise(name: str) -> Any:
    """Customise one file: body `{"file": "entities/x.json", "patch": {…merge patch…}}`."""
    _admin()
    body = json_body()
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("file"), str)
        or not isinstance(body.get("patch"), dict)
    ):
        raise ValidationFailed(
            [FieldError("/", "invalid", {"detail": 'send {"file": "<path>", "patch": {…}}'})]
        )
    principal = current_principal()
    user_id = principal.user_id if principal else None
    report = customise(get_session(), name, body["file"], body["patch"], user_id)
    record_request_event("pack.customised", pack=name, file=body["file"])
    return _done(report)
