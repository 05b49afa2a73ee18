"""Errors the runtime raises, each carrying what a caller needs to answer well."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from formwork.runtime.messages import render


@dataclass(frozen=True)
class FieldError:
    """One problem with one value, addressed by a JSON pointer into the payload."""

    pointer: str
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def message(self, locale: str = "zh-CN") -> str:
        """Return the message for this error in the given locale."""
        return render(self.code, self.params, locale)

    def as_dict(self, locale: str = "zh-CN") -> dict[str, Any]:
        """Return the error as the JSON object used in problem responses."""
        return {"pointer": self.pointer, "code": self.code, "detail": self.message(locale)}


class RuntimeFailure(Exception):
    """Base class of every error the runtime raises on purpose.

    A failure raised with a message `code` (and `params`) is told to people in their own
    language (`describe`); its `str()` stays the English text for logs and tests.
    """

    status = 400
    title = "Bad request"
    kind = "bad-request"
    code: str | None = None
    params: Mapping[str, Any] = MappingProxyType({})

    def describe(self, locale: str = "zh-CN") -> str:
        """Return the failure's message in `locale` (its text when it carries no code)."""
        if self.code is None:
            return str(self)
        return render(self.code, self.params, locale)

    def coded(self, code: str, **params: Any) -> RuntimeFailure:
        """Attach a message code (for `describe`) and return the failure, to raise it."""
        self.code, self.params = code, MappingProxyType(params)
        return self


class ProblemList(RuntimeFailure):
    """A failure made of several problems, each addressed by a pointer; all are listed."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{e.pointer or '/'}: {e.message('en')}" for e in self.errors))


class ValidationFailed(ProblemList):
    """A payload broke one or more rules."""

    status = 422
    title = "Validation failed"
    kind = "validation"


class NotFound(RuntimeFailure):
    """The entity or record does not exist (or is not visible to the caller)."""

    status = 404
    title = "Not found"
    kind = "not-found"


class PermissionDenied(RuntimeFailure):
    """The principal may not perform this action."""

    status = 403
    title = "Forbidden"
    kind = "forbidden"


class Conflict(RuntimeFailure):
    """The record changed since the caller read it (optimistic lock)."""

    status = 409
    title = "Conflict"
    kind = "conflict"

    def __init__(self, message: str, current: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.current = dict(current) if current is not None else None


class BadQuery(ProblemList):
    """A filter, sort or aggregate parameter is not understood; every problem is listed."""

    status = 400
    title = "Bad query"
    kind = "bad-query"


class DefinitionInvalid(ProblemList):
    """An entity definition failed its checks; every problem is listed."""

    status = 422
    title = "Invalid definition"
    kind = "definition"


class DestructiveChange(RuntimeFailure):
    """A schema change would lose data and was not confirmed."""

    status = 409
    title = "Destructive change needs confirmation"
    kind = "destructive-change"

    def __init__(self, losses: Iterable[str]) -> None:
        self.losses = list(losses)
        super().__init__(
            "refusing a destructive schema change without confirmation: " + "; ".join(self.losses)
        )
