"""The base classes of schema operations."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from formwork.runtime.migrations.context import OperationContext
from formwork.runtime.migrations.errors import IrreversibleOperation, MigrationError


class Operation:
    """Base of every schema operation (subclasses are frozen dataclasses)."""

    @property
    def destructive(self) -> bool:
        """Return True when running forwards can lose data."""
        return False

    def forwards(self, ctx: OperationContext) -> None:
        """Apply the operation."""
        raise NotImplementedError

    def reverse(self) -> Operation:
        """Return the operation that undoes this one (raise IrreversibleOperation if none)."""
        raise IrreversibleOperation(f"{self.describe()}: cannot be reversed")

    def backwards(self, ctx: OperationContext) -> None:
        """Undo the operation's schema change (data removed by forwards stays lost)."""
        self.reverse().forwards(ctx)

    def describe(self) -> str:
        """Return one human line saying what the operation does."""
        raise NotImplementedError

    def losses(self, conn: sa.Connection) -> list[str]:
        """Return what running forwards now would lose, one sentence each ([] for nothing)."""
        return []

    def to_json(self) -> dict[str, Any]:
        """Return the operation as a self-contained JSON object with its `op` name."""
        fields = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {"op": type(self).__name__, **json.loads(json.dumps(fields))}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Operation:
        """Return the operation a `to_json` object describes."""
        # The registry is built where every operation class exists; importing it here avoids
        # a cycle (those modules import this base).
        from formwork.runtime.migrations.operations import OPERATIONS

        values = dict(data)
        name = values.pop("op", None)
        if name not in OPERATIONS:
            raise MigrationError(f"unknown schema operation {name!r}")
        return OPERATIONS[name](**values)


@dataclasses.dataclass(frozen=True)
class FieldOperation(Operation):
    """Common parts of the operations on one field."""

    pack: str
    entity: str
    table: str
    field: str

    @property
    def key(self) -> str:
        """Return `pack.entity.field`."""
        return f"{self.pack}.{self.entity}.{self.field}"
