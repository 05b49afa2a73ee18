"""Errors of schema migrations."""

from __future__ import annotations

from formwork.runtime.errors import RuntimeFailure


class MigrationError(RuntimeFailure):
    """A schema operation cannot run against the data as it stands."""

    status = 409
    title = "Schema change refused"
    kind = "migration"


class IrreversibleOperation(MigrationError):
    """An operation cannot be run backwards."""

    title = "Schema change cannot be reversed"
    kind = "irreversible-migration"
