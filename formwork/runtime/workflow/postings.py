"""Postings: what a process changes in other records, exactly once per instance and step,
and how a cancellation reverses it (DESIGN.md decision 13).

A service task that creates, increments or updates another record first claims a posting
row keyed by (instance, step, run of the step): a unique constraint makes a second claim of
the same run impossible (two workers, a replayed request), and a run that posted already
gets its first result back instead of posting twice. A process that loops through a posting
step on purpose (a reminder per deposit) posts once per pass: each pass is a new run.

Cancelling (作废) an approved record reverses its postings: a created record gets a
reversing record (its numbers negated, as the target entity's
`x-formwork.reversal` declares), an increment is taken back, an update is undone when nobody
changed the values since — each reversal is a posting too, so it also happens once.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from formwork.runtime.errors import Conflict, NotFound
from formwork.runtime.workflow.context import StepContext
from formwork.runtime.workflow.models import Posting
from formwork.runtime.writing import read_row

REVERSE_PREFIX = "reverse:"


def claim(ctx: StepContext, service: str, entity: str) -> Posting | None:
    """Claim the posting of the running step: a new row, or the earlier one when this step
    already posted in this instance (None when no step is running: nothing to key on)."""
    if ctx.element is None:
        return None
    found = posting_of(ctx, ctx.element, ctx.run)
    if found is not None:
        ctx.history("posting_repeated", step=ctx.element, details={"posting": found.id})
        return found
    row = Posting(
        instance_id=ctx.instance.id, step=ctx.element, key=ctx.run, service=service,
        entity=entity, created_at=ctx.now,
    )  # fmt: skip
    ctx.session.add(row)
    ctx.session.flush()  # the unique key refuses a concurrent second claim here
    return row


def posting_of(ctx: StepContext, step: str, key: str) -> Posting | None:
    """Return the posting of an instance's step, if it posted."""
    return ctx.session.scalars(
        sa.select(Posting).where(
            Posting.instance_id == ctx.instance.id, Posting.step == step, Posting.key == key
        )
    ).first()


def done(row: Posting | None, record_id: int, payload: Mapping[str, Any], result: Any) -> Any:
    """Complete a claimed posting with what was posted; return the service's result."""
    if row is not None:
        row.record_id = record_id
        row.payload = _plain(dict(payload))
        row.result = _plain(result) if isinstance(result, Mapping) else {"value": _plain(result)}
    return result


def repeated(row: Posting | None) -> bool:
    """Return True when the claimed posting was made before (its result stands)."""
    return row is not None and row.record_id is not None


def reverse_instance(ctx: StepContext, records: Any) -> list[int]:
    """Reverse every posting an instance made that is not reversed yet, newest first;
    return the ids of the reversing postings."""
    rows = ctx.session.scalars(
        sa.select(Posting)
        .where(
            Posting.instance_id == ctx.instance.id,
            Posting.reversal_of.is_(None),
            Posting.reversed_by.is_(None),
            Posting.record_id.is_not(None),
        )
        .order_by(Posting.id.desc())
    ).all()
    return [_reverse(ctx, records, row) for row in rows]


def _reverse(ctx: StepContext, records: Any, original: Posting) -> int:
    step = f"{REVERSE_PREFIX}{original.step}"[:200]
    if posting_of(ctx, step, str(original.id)) is not None:
        raise Conflict(f"posting {original.id} was reversed already")
    reversal = Posting(
        instance_id=ctx.instance.id, step=step, key=str(original.id), service=original.service,
        entity=original.entity, reversal_of=original.id, created_at=ctx.now,
    )  # fmt: skip
    ctx.session.add(reversal)
    ctx.session.flush()
    handler = {"create_record": _reverse_create, "increment_record": _reverse_increment}.get(
        original.service, _reverse_update
    )
    record_id, payload = handler(ctx, records, original)
    reversal.record_id, reversal.payload = record_id, _plain(payload)
    original.reversed_by = reversal.id
    ctx.session.flush()
    return reversal.id


def _reverse_create(ctx: StepContext, records: Any, original: Posting) -> tuple[int, Any]:
    meta = records.registry.meta(original.entity)
    declared = meta.entity.options.get("reversal") or {}
    negate = declared.get("negate") or [
        name
        for name in original.payload
        if (fd := meta.entity.get_field(name)) is not None and fd.kind.can_aggregate(fd)
    ]
    values = {k: v for k, v in original.payload.items() if not _system(k)}
    for name in negate:
        if values.get(name) is not None:
            values[name] = str(-Decimal(str(values[name])))
    values.update(declared.get("set") or {})
    created = records.create(original.entity, values)
    return int(created["id"]), values


def _reverse_increment(ctx: StepContext, records: Any, original: Posting) -> tuple[int, Any]:
    field_name, by = str(original.payload["field"]), Decimal(str(original.payload["by"]))
    meta = records.registry.meta(original.entity)
    row = _current(ctx, meta, original)
    fd = meta.entity.get_field(field_name)
    old = row.get(field_name)
    new = (Decimal(str(old)) if old is not None else Decimal(0)) - by
    value: Any = int(new) if fd is not None and fd.kind.name == "integer" else str(new)
    records.update(original.entity, original.record_id, {field_name: value}, row["version"])
    return int(original.record_id or 0), {"field": field_name, "by": str(-by)}


def _reverse_update(ctx: StepContext, records: Any, original: Posting) -> tuple[int, Any]:
    meta = records.registry.meta(original.entity)
    row = _current(ctx, meta, original)
    before, after = original.payload.get("before") or {}, original.payload.get("after") or {}
    shown = records.get(original.entity, original.record_id)
    changed = [n for n, v in after.items() if _plain(shown.get(n)) != _plain(v)]
    if changed:
        raise Conflict(
            f"{original.entity} {original.record_id} changed since the approval "
            f"({', '.join(sorted(changed))}); reverse it by hand"
        )
    records.update(original.entity, original.record_id, dict(before), row["version"])
    return int(original.record_id or 0), {"restored": before}


def _current(ctx: StepContext, meta: Any, original: Posting) -> dict[str, Any]:
    try:
        return read_row(ctx.session, meta, int(original.record_id or 0), lock=True)
    except NotFound:
        raise Conflict(
            f"{original.entity} {original.record_id}, posted by this approval, no longer exists"
        ) from None


def _system(name: str) -> bool:
    return name in ("id", "version", "created_at", "created_by", "updated_at", "updated_by")


def _plain(value: Any) -> Any:
    from formwork.runtime.workflow.binding import to_json

    return to_json(value)
