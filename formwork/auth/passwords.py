"""The password policy: long enough, mixed, not the username, not a common password."""

from __future__ import annotations

import functools
import string
from pathlib import Path

from formwork.auth.errors import PasswordRejected

MIN_PASSWORD = 10
MAX_PASSWORD = 256
COMMON_FILE = Path(__file__).with_name("common_passwords.txt")
# Trailing digits and symbols do not make a common word safe ("Password123!").
DECORATION = string.digits + string.punctuation + " "


@functools.cache
def common_passwords() -> frozenset[str]:
    """Return the built-in list of common passwords (lower case), read once."""
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(s.strip().lower() for s in lines if s.strip() and not s.startswith("#"))


def character_classes(password: str) -> int:
    """Return how many of lower case, upper case, digits and other characters appear."""
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def check_password_policy(password: str, username: str = "") -> None:
    """Raise PasswordRejected unless the password meets the policy."""
    if len(password) < MIN_PASSWORD:
        raise PasswordRejected(
            "too_short", f"password must be at least {MIN_PASSWORD} characters", min=MIN_PASSWORD
        )
    if len(password) > MAX_PASSWORD:
        raise PasswordRejected(
            "too_long", f"password must be at most {MAX_PASSWORD} characters", max=MAX_PASSWORD
        )
    has_letter = any(c.isalpha() for c in password)
    has_digit = any(c.isdigit() for c in password)
    if not (has_letter and has_digit) and character_classes(password) < 3:
        raise PasswordRejected(
            "too_simple",
            "password must mix letters and digits, or use three of: lower case, upper case, "
            "digits, symbols",
        )
    lowered = password.lower()
    if len(username) >= 3 and username.lower() in lowered:
        raise PasswordRejected("contains_username", "password must not contain the username")
    if lowered in common_passwords() or lowered.rstrip(DECORATION) in common_passwords():
        raise PasswordRejected("common", "password must not be a commonly used password")
