"""File endpoints: upload (multipart) and download by id.

A download is allowed to the person who uploaded the file, to administrators, and to whoever
may read a record that holds it (row rules and hidden fields applied, through RecordService).
Anyone else gets 404, as if the file did not exist.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request, send_file

from formwork.api import bp
from formwork.api.context import record_service
from formwork.auth import current_principal
from formwork.context import get_session, registry
from formwork.hardening import FILE_CSP
from formwork.runtime.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from formwork.runtime.files import (
    INLINE,
    FileStore,
    FileTooLarge,
    FileTypeRefused,
    attachment_ids,
    content_disposition,
    referencing_records,
)
from formwork.runtime.models import StoredFile
from formwork.runtime.security import Principal


def file_store() -> FileStore:
    """Return the store of uploaded files (instance/files, outside the static folder)."""
    return FileStore(current_app.config["FILES_DIR"])


def upload_problem(pointer: str, name: str, exc: Exception, limit: int) -> FieldError:
    """Return the field error for a refused upload (too large, or a type not allowed)."""
    if isinstance(exc, FileTypeRefused):
        params = {"name": name, "content_type": exc.content_type, "accept": ", ".join(exc.allowed)}
        return FieldError(pointer, "file_type", params)
    return FieldError(pointer, "file_too_large", {"name": name, "limit": limit})


@bp.post("/files")
def upload_file() -> Any:
    """Store an uploaded file (form field `file`) and return its id for attachment fields."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationFailed([FieldError("/file", "required")])
    principal = current_principal()
    session = get_session()
    limit = int(current_app.config["UPLOAD_MAX_BYTES"])
    try:
        row = file_store().save(
            session,
            upload.stream,
            upload.filename,
            upload.mimetype,
            limit,
            principal.user_id if principal else None,
            current_app.config["UPLOAD_ALLOWED_TYPES"],
        )
    except (FileTooLarge, FileTypeRefused) as exc:
        raise ValidationFailed([upload_problem("/file", upload.filename, exc, limit)]) from exc
    session.commit()
    return jsonify(
        id=row.id, name=row.name, size=row.size, content_type=row.content_type, sha256=row.sha256
    ), 201


@bp.get("/files/<file_id>")
def download_file(file_id: str) -> Any:
    """Send a stored file: images and PDF inline, the rest as a download, always sandboxed."""
    row = get_session().get(StoredFile, file_id) if len(file_id) == 32 else None
    principal = current_principal()
    if row is None or principal is None or not may_read_file(principal, row):
        raise NotFound(f"file {file_id} does not exist")
    inline = row.content_type in INLINE and request.args.get("download") != "1"
    response = send_file(
        file_store().path(row.id), mimetype=row.content_type, conditional=True, max_age=0
    )
    response.headers["Content-Disposition"] = content_disposition(row.name, inline)
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def may_read_file(principal: Principal, row: StoredFile) -> bool:
    """Return True when the principal uploaded the file or may read a record holding it."""
    if principal.is_admin or (row.created_by is not None and row.created_by == principal.user_id):
        return True
    current = registry()
    service = record_service()
    for key, record_id in referencing_records(get_session(), current, row.id):
        if not principal.can(key, "read"):
            continue
        try:
            record = service.get(key, record_id)
        except (NotFound, PermissionDenied):
            continue  # outside the principal's rows
        # The file must be in a field the principal sees (hidden fields are left out).
        if row.id in attachment_ids(current.meta(key), record):
            return True
    return False
