"""Run a list of schema operations inside the caller's transaction, refusing silent losses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

from formwork.runtime.errors import DestructiveChange
from formwork.runtime.migrations.context import OperationContext, build_context
from formwork.runtime.migrations.operations import Operation


def plan_losses(conn: sa.Connection, ops: Sequence[Operation]) -> list[str]:
    """Return what applying `ops` would lose, one sentence per destructive step; change nothing.

    A destructive step is measured against the schema the steps before it leave behind (a
    field renamed, then narrowed), so those steps are rehearsed in a savepoint that is always
    rolled back.
    """
    last = max((i for i, op in enumerate(ops) if op.destructive), default=-1)
    if last <= 0:
        return ops[0].losses(conn) if last == 0 else []
    ctx = build_context(conn)
    losses: list[str] = []
    rehearsal = conn.begin_nested()
    try:
        for op in ops[:last]:
            losses += op.losses(conn) if op.destructive else []
            op.forwards(ctx)
        losses += ops[last].losses(conn)
    finally:
        rehearsal.rollback()
    return losses


def apply_operations(
    conn: sa.Connection, ops: Sequence[Operation], *, confirm: bool = False
) -> None:
    """Apply `ops` in order; raise DestructiveChange before any change when data would be lost.

    Nothing is committed: the caller commits or rolls back. If a step fails, the steps before
    it are undone (a savepoint) and the error is raised with the caller's transaction usable.
    """
    losses = plan_losses(conn, ops)
    if losses and not confirm:
        raise DestructiveChange(losses)
    _run(build_context(conn), [op.forwards for op in ops])


def revert_operations(
    conn: sa.Connection, ops: Sequence[Operation], *, confirm: bool = False
) -> None:
    """Undo `ops` (backwards, last first); like apply, refuse unconfirmed data losses.

    Reversing is checked for every step before any runs (IrreversibleOperation otherwise).
    """
    reverses = [op.reverse() for op in reversed(ops)]
    apply_operations(conn, reverses, confirm=confirm)


def _run(ctx: OperationContext, steps: Sequence[Callable[[OperationContext], None]]) -> None:
    with ctx.connection.begin_nested():
        for step in steps:
            step(ctx)
