"""Imports kept in the database (`fw_imports`) and run in the background (no Flask).

An upload is stored with what its inspection found. A run of a small file happens in the
request; a larger one is queued as a job (`formwork worker` runs it) in the caller's
transaction, so it exists only if that commits. The job reads the file again under the same
limits, saves all rows or none in the job's transaction and stores the outcome on the
import row, where the result page finds it. While it runs, it notes its progress on a
`ProgressBoard` that other processes can read although its transaction is still open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from formwork.runtime.imports.limits import SheetLimits, SheetRefused
from formwork.runtime.imports.run import ImportPlan, ImportResult, run_import
from formwork.runtime.imports.sheets import Sheet, read_sheet
from formwork.runtime.models import ImportRecord, User
from formwork.runtime.security import load_principal
from formwork.runtime.security_events import record_event
from formwork.runtime.workflow.jobs import enqueue

if TYPE_CHECKING:
    from formwork.runtime.kernel import Kernel

IMPORT_JOB = "records.import"
KEPT_FOR = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Upload:
    """Who uploaded what, from which browser session."""

    user_id: int
    login_session_id: int | None
    entity: str
    filename: str
    kind: str
    content: bytes


def store_upload(db: Session, upload: Upload, sheet: Sheet, now: dt.datetime) -> ImportRecord:
    """Keep an inspected upload and return its row (the caller commits). The uploader's
    uploads over a day old go on the way, unless one is still queued."""
    db.execute(
        sa.delete(ImportRecord)
        .where(
            ImportRecord.user_id == upload.user_id,
            ImportRecord.created_at < now - KEPT_FOR,
            ImportRecord.status != "queued",
        )
        .execution_options(synchronize_session=False)
    )
    row = ImportRecord(
        token=secrets.token_hex(16),
        user_id=upload.user_id,
        login_session_id=upload.login_session_id,
        entity=upload.entity,
        filename=upload.filename[:255],
        kind=upload.kind,
        content=upload.content,
        header=sheet.header,
        sample=[[number, [_jsonable(c) for c in cells]] for number, cells in sheet.data],
        rows=sheet.rows,
        created_at=now,
    )
    db.add(row)
    db.flush()
    return row


def find_upload(
    db: Session, token: str, user_id: int, login_session_id: int | None
) -> ImportRecord | None:
    """Return the upload with this token if it belongs to this user's browser session."""
    row = db.scalar(sa.select(ImportRecord).where(ImportRecord.token == token))
    if row is None or row.user_id != user_id or row.login_session_id != login_session_id:
        return None
    return row


def queue_run(
    db: Session, row: ImportRecord, plan: ImportPlan, limits: SheetLimits, now: dt.datetime
) -> None:
    """Queue the run of an import as a background job (in the caller's transaction)."""
    row.status, row.action = "queued", "commit" if plan.commit else "preview"
    row.mapping = {str(k): v for k, v in plan.mapping.items()}
    row.limits, row.locale = dataclasses.asdict(limits), plan.locale
    row.progress_done, row.progress_total, row.error = 0, 0, None
    job = enqueue(db, IMPORT_JOB, {"import_id": row.id}, run_at=now, max_attempts=1)
    row.job_id = job.id


def store_result(
    row: ImportRecord, result: ImportResult | None, now: dt.datetime, error: str | None = None
) -> None:
    """Keep the outcome of a run on the import row."""
    row.status, row.finished_at, row.error = ("failed" if error else "done"), now, error
    if result is not None:
        row.saved, row.bad = result.saved, result.bad
        row.progress_done = row.progress_total = result.total
        row.problems = [[number, messages] for number, messages in result.problems]


def plan_of(row: ImportRecord, zone: dt.tzinfo) -> ImportPlan:
    """Return the plan a queued import was given."""
    mapping = {int(k): str(v) for k, v in (row.mapping or {}).items()}
    return ImportPlan(mapping, row.action == "commit", row.locale, zone)


def register_import_jobs(kernel: Kernel, instance_path: str | Path) -> None:
    """Teach the kernel's job runner to run imports."""
    board = ProgressBoard(kernel.engine, Path(instance_path) / "imports")
    kernel.workflow.jobs[IMPORT_JOB] = partial(run_import_job, kernel, board)


def run_import_job(
    kernel: Kernel, board: ProgressBoard, db: Session, payload: Mapping[str, Any]
) -> None:
    """Run a queued import in the job's transaction and store its outcome there."""
    row = db.get(ImportRecord, int(payload["import_id"]))
    if row is None or row.status != "queued":
        return  # run already, or the upload was removed
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        store_result(row, None, kernel.clock.now(), "the user who uploaded it is inactive")
        return
    principal = load_principal(db, user, row.locale)
    principal.require(row.entity, "import")
    principal.require(row.entity, "create")
    meta = kernel.registry(db).meta(row.entity)
    limits = SheetLimits(**(row.limits or {}))
    import_id, plan = row.id, plan_of(row, kernel.clock.zone)
    try:
        sheet = read_sheet(row.content, row.kind, limits)
    except SheetRefused as exc:
        store_result(row, None, kernel.clock.now(), exc.message(row.locale))
        return
    board.note(import_id, 0, sheet.rows)
    records = kernel.records(db, principal)
    result = run_import(records, meta, sheet, plan, partial(board.note, import_id))
    store_result(row, result, kernel.clock.now())  # only now: the row stays unlocked till here
    if plan.commit and not result.bad:
        row.content = b""  # imported: the file is not needed any more
    board.forget(import_id)
    if plan.commit and not result.bad:
        record_event(db, "data.imported", user_id=user.id, username=user.username,
                     detail={"entity": row.entity, "records": result.saved, "rows": result.total,
                             "background": True}, at=kernel.clock.now())  # fmt: skip


class ProgressBoard:
    """Where a running import notes how far it got, readable by other processes while the
    import's own transaction is still open.

    On PostgreSQL that is the import's row, written in a short transaction of its own (with
    a lock timeout, so a note never waits). SQLite has one writer at a time and the job
    holds it until the import commits, so there the note is a small file in the instance
    folder (SQLite means one machine, so the web process reads the same folder).
    """

    def __init__(self, engine: sa.Engine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder
        self.in_files = engine.dialect.name == "sqlite"

    def note(self, import_id: int, done: int, total: int) -> None:
        """Note that `done` of `total` rows are through."""
        if self.in_files:
            self._write_file(import_id, done, total)
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
                conn.execute(
                    sa.update(ImportRecord)
                    .where(ImportRecord.id == import_id, ImportRecord.status == "queued")
                    .values(progress_done=done, progress_total=total)
                )
        except sa.exc.OperationalError:
            pass  # the row is busy: the next note will do

    def read(self, row: ImportRecord) -> tuple[int, int]:
        """Return (done, total) of an import as last noted."""
        if self.in_files and row.status == "queued":
            try:
                found = json.loads(self._path(row.id).read_text("utf-8"))
                return int(found["done"]), int(found["total"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
        return row.progress_done, row.progress_total

    def forget(self, import_id: int) -> None:
        """Remove the note of a finished import."""
        if self.in_files:
            self._path(import_id).unlink(missing_ok=True)

    def _write_file(self, import_id: int, done: int, total: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(import_id)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"done": done, "total": total}), "utf-8")
        os.replace(temporary, path)  # readers see the old note or the new one, never half

    def _path(self, import_id: int) -> Path:
        return self.folder / f"{int(import_id)}.progress"


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
