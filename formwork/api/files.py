"""File endpoints: upload (multipart) and download by id."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request, send_file

from formwork.api import bp
from formwork.auth import current_principal
from formwork.db import get_session
from formwork.runtime.errors import FieldError, NotFound, ValidationFailed
from formwork.runtime.files import FileStore, FileTooLarge
from formwork.runtime.models import StoredFile


def _store() -> FileStore:
    return FileStore(current_app.config["FILES_DIR"])


@bp.post("/files")
def upload_file() -> Any:
    """Store an uploaded file (form field `file`) and return its id for attachment fields."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationFailed([FieldError("/file", "required")])
    principal = current_principal()
    session = get_session()
    try:
        row = _store().save(
            session,
            upload.stream,
            upload.filename,
            upload.mimetype,
            current_app.config["MAX_UPLOAD_SIZE"],
            principal.user_id if principal else None,
        )
    except FileTooLarge as exc:
        raise ValidationFailed([FieldError("/file", "invalid", {"detail": str(exc)})]) from exc
    session.commit()
    return jsonify(
        id=row.id, name=row.name, size=row.size, content_type=row.content_type, sha256=row.sha256
    ), 201


@bp.get("/files/<file_id>")
def download_file(file_id: str) -> Any:
    """Send a stored file as an attachment with a safe name."""
    row = get_session().get(StoredFile, file_id) if len(file_id) == 32 else None
    if row is None:
        raise NotFound(f"file {file_id} does not exist")
    return send_file(
        _store().path(row.id),
        mimetype=row.content_type,
        as_attachment=True,
        download_name=row.name,
        max_age=0,
    )
