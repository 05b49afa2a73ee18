"""Uploaded files: stored under the instance folder by random id, never under static.

A file's type is what its bytes are (magic numbers), not what the browser or the name
claims: a "photo.png" that holds HTML is refused, and the stored type is the sniffed one,
so a download is always served as what it really is. Ids are random rather than content
hashes, so two people uploading the same bytes do not learn of each other's file and
deleting one never removes the other's.
"""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
import unicodedata
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import IO
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.definitions import qualify
from formwork.runtime.fields.special import AttachmentType
from formwork.runtime.models import StoredFile
from formwork.runtime.registry import EntityMeta, Registry

CHUNK = 64 * 1024
REFERENCES_PER_FIELD = 20
SNIFF_BYTES = 8 * 1024
UNKNOWN = "application/octet-stream"
OOXML = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
LEGACY_OFFICE = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
}
IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# Shown in the browser (inline); everything else is offered as a download.
INLINE = IMAGES | {"application/pdf"}
DEFAULT_ALLOWED = frozenset({*IMAGES, "application/pdf", *OOXML.values(), "text/csv", "text/plain"})
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
# Text that a browser would run as a page or an image with scripts, whatever its name says.
MARKUP_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<script", b"<iframe")
XML_STARTS = (b"<?xml", b"<svg", b"<!doctype svg", b"<!--")


class FileTooLarge(ValueError):
    """The upload is larger than the limit."""


class FileTypeRefused(ValueError):
    """The upload's content is of a type that is not allowed, or not what its name says."""

    def __init__(self, name: str, content_type: str, allowed: Collection[str]) -> None:
        super().__init__(f"{name}: content of type {content_type} is not allowed")
        self.name = name
        self.content_type = content_type
        self.allowed = sorted(allowed)


def safe_name(name: str) -> str:
    """Return a file name without folders or control characters, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable() and c not in '<>:"|?*;').strip(" .")
    return cleaned[:200] or "file"


def sniff(head: bytes, name: str) -> str:
    """Return the content type of a file from its first bytes (and its name's extension).

    The extension only chooses between formats that share a container (an .xlsx and a
    .docx are both zip files); it never turns one kind of content into another.
    """
    for magic, content_type in MAGIC:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    suffix = Path(name).suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        return OOXML.get(suffix, "application/zip")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return LEGACY_OFFICE.get(suffix, UNKNOWN)
    text = _as_text(head)
    if text is None:
        return UNKNOWN
    start = text.lstrip().lower()
    if start.startswith(MARKUP_STARTS):
        return "text/html"
    if start.startswith(XML_STARTS):
        return "image/svg+xml" if b"<svg" in start else "application/xml"
    return "text/csv" if suffix == ".csv" else "text/plain"


def _as_text(head: bytes) -> bytes | None:
    """Return the bytes (BOM removed) when they read as UTF-8 or GB18030 text, else None."""
    if b"\x00" in head:
        return None
    body = head.removeprefix(b"\xef\xbb\xbf")
    for encoding in ("utf-8", "gb18030"):
        try:
            # The sniffed block may end inside a multi-byte character: allow a cut tail.
            body[: len(body) - 3 if len(body) >= SNIFF_BYTES else None].decode(encoding)
            return body
        except UnicodeDecodeError:
            continue
    return None


def is_allowed(content_type: str, allowed: Collection[str]) -> bool:
    """Return True when the type is in the allow-list (`image/*` matches a family).

    HTML is never allowed; SVG (an image that can hold scripts) only when listed by name.
    """
    if content_type == "text/html":
        return False
    if content_type == "image/svg+xml":
        return content_type in allowed
    return content_type in allowed or content_type.split("/", 1)[0] + "/*" in allowed


def content_disposition(name: str, inline: bool = False) -> str:
    """Return a Content-Disposition value: an ASCII `filename` and the UTF-8 `filename*`."""
    name = safe_name(name)
    stem, suffix = Path(name).stem, Path(name).suffix
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    ascii_stem = " ".join("".join(c for c in folded if c.isalnum() or c in "-_.() ").split())
    # A Chinese name folds to nothing; keep the extension so the file still opens.
    ascii_stem = ascii_stem.strip(" ._-") or "download"
    ascii_name = ascii_stem + "".join(
        c for c in suffix if c.isascii() and (c.isalnum() or c == ".")
    )
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


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
        allowed: Collection[str] = DEFAULT_ALLOWED,
    ) -> StoredFile:
        """Store the stream's bytes (refusing more than `limit` or a type not `allowed`)."""
        clean = safe_name(name)
        file_id = secrets.token_hex(16)
        target = self.path(file_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            digest, size, head = self._write(stream, target, limit)
            detected = _checked_type(target, head, clean, content_type, allowed)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        row = StoredFile(
            id=file_id,
            name=clean,
            size=size,
            sha256=digest,
            content_type=detected,
            created_by=user_id,
        )
        session.add(row)
        session.flush()
        return row

    def _write(self, stream: IO[bytes], target: Path, limit: int) -> tuple[str, int, bytes]:
        digest, size, head = hashlib.sha256(), 0, b""
        with target.open("wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise FileTooLarge(f"the file is larger than {limit} bytes")
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                digest.update(chunk)
                out.write(chunk)
        return digest.hexdigest(), size, head


def _checked_type(
    path: Path, head: bytes, name: str, declared: str | None, allowed: Collection[str]
) -> str:
    """Return the sniffed type of a stored file, or raise FileTypeRefused."""
    detected = sniff(head, name)
    if detected in OOXML.values() and not _is_ooxml(path):
        detected = "application/zip"
    guessed = mimetypes.guess_type(name)[0] or ""
    claimed = {guessed, (declared or "").split(";")[0].strip().lower()}
    # A name or a declared type that says image/PDF/Office must be backed by the bytes:
    # "photo.png" holding HTML is the classic way to smuggle a page onto a site. (A PNG
    # named .jpg is only mislabelled, and is kept as the PNG it is.)
    for kind in claimed & (INLINE | set(OOXML.values())):
        if kind != detected and not (kind in IMAGES and detected in IMAGES):
            raise FileTypeRefused(name, detected, [kind])  # "…is not allowed (image/png)"
    if not is_allowed(detected, allowed):
        raise FileTypeRefused(name, detected, allowed)
    return detected


def _is_ooxml(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "[Content_Types].xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def referencing_records(
    session: Session, registry: Registry, file_id: str
) -> list[tuple[str, int]]:
    """Return (entity key, record id) of enabled records whose attachment fields hold the file.

    A file on a line item is reported on its parent record, the one a person can open.
    Whether the caller may see those records is for RecordService to say.
    """
    found: list[tuple[str, int]] = []
    for key, entity in registry.entities.items():
        if not registry.is_enabled(key):
            continue
        meta = registry.meta(key)
        # Line items answer with their parent's id (parent_id), under the parent's key.
        parent_key = qualify(entity.pack, entity.child_of) if entity.child_of else key
        id_column = meta.table.c.parent_id if entity.child_of else meta.table.c.id
        for name in _attachment_fields(meta):
            column = meta.table.c[name]
            # A multiple field stores "id,id"; ids are hex, so LIKE needs no escaping.
            holds = column.contains(file_id) if _multiple(meta, name) else column == file_id
            statement = sa.select(id_column).where(holds).limit(REFERENCES_PER_FIELD)
            rows = session.connection().execute(statement).scalars()
            found += [(parent_key, int(r)) for r in rows]
    return list(dict.fromkeys(found))


def attachment_ids(meta: EntityMeta, record: dict[str, object]) -> set[str]:
    """Return the file ids held by a record's attachment fields and its line items'."""
    ids: set[str] = set()
    for name in _attachment_fields(meta):
        value = record.get(name)
        ids.update(value if isinstance(value, list) else [value] if isinstance(value, str) else [])
    for name, child in meta.children:
        rows = record.get(name)
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict):
                ids |= attachment_ids(child, row)
    return ids


def _attachment_fields(meta: EntityMeta) -> list[str]:
    return [
        f.name for f in meta.entity.fields if isinstance(f.kind, AttachmentType) and f.kind.stored
    ]


def _multiple(meta: EntityMeta, name: str) -> bool:
    field_def = meta.entity.get_field(name)
    return field_def is not None and bool(field_def.opt("multiple", False))
