"""Uploaded files: stored under the instance folder by random id, never under static."""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session

from formwork.runtime.models import StoredFile

CHUNK = 64 * 1024


class FileTooLarge(ValueError):
    """The upload is larger than the limit."""


def safe_name(name: str) -> str:
    """Return a file name without folders or control characters, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*').strip(" .")
    return cleaned[:200] or "file"


class FileStore:
    """Save and open files in a folder, two levels of id prefix deep."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, file_id: str) -> Path:
        """Return where a file's bytes live."""
        return self.root / file_id[:2] / file_id

    def save(
        self,
        session: Session,
        stream: IO[bytes],
        name: str,
        content_type: str | None,
        limit: int,
        user_id: int | None,
    ) -> StoredFile:
        """Store the stream's bytes (refusing more than `limit`) and record them."""
        file_id = secrets.token_hex(16)
        target = self.path(file_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        try:
            with target.open("wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise FileTooLarge(f"the file is larger than {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        clean = safe_name(name)
        guessed = mimetypes.guess_type(clean)[0]
        row = StoredFile(
            id=file_id,
            name=clean,
            size=size,
            sha256=digest.hexdigest(),
            content_type=guessed or content_type or "application/octet-stream",
            created_by=user_id,
        )
        session.add(row)
        session.flush()
        return row
