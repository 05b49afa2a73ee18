"""An exact decimal column type that stays exact on SQLite too."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(p, s) on PostgreSQL; on SQLite an integer count of 10^-s units.

    SQLite has no decimal type: its NUMERIC stores binary floats, so a SUM over a
    million amounts drifts. Storing scaled integers keeps every value, comparison,
    sort and SUM exact; the scale comes back on the way out.
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        """Return BIGINT on SQLite and NUMERIC(p, s) elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Return the value scaled to an integer on SQLite."""
        if value is None or dialect.name != "sqlite":
            return value
        return int(Decimal(str(value)).scaleb(self.scale).to_integral_value())

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Return a Decimal at the column's scale."""
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale)
        return Decimal(value)

    def __repr__(self) -> str:
        return f"ExactDecimal({self.precision}, {self.scale})"
