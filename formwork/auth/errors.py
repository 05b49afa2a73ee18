"""Why a user, password, role or token request was refused."""

from __future__ import annotations

from typing import Any


class UserError(ValueError):
    """A user, role or token request was refused; the message says why (in English)."""


class PasswordRejected(UserError):
    """A password breaks the policy; `code` and `params` let a page say why in zh-CN or en."""

    def __init__(self, code: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params
