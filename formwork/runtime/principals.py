"""A short-lived cache of principals, so an API call does not reload its user, roles and
grants from the database on every request."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass

from formwork.runtime.security import Principal

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class CachedAuth:
    """A principal and, for a bearer token, the token's id and scopes."""

    principal: Principal
    scopes: frozenset[str] | None = None  # None: a session, not limited by scopes
    token_id: int | None = None


class PrincipalCache:
    """Remember principals for `ttl` seconds (or until the token expires, if sooner).

    Web workers are separate processes: a role, grant or token change made elsewhere is
    seen here within `ttl` seconds; a change made in this process clears the cache at once.
    Session entries are keyed by the session's epoch too, so a "sign out everywhere" made
    in another process ends cached sessions within `ttl` seconds as well.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._items: dict[Hashable, tuple[float, CachedAuth]] = {}

    def get(self, key: Hashable) -> CachedAuth | None:
        """Return the cached entry for `key`, or None when absent or stale."""
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: Hashable, entry: CachedAuth, valid_for: float | None = None) -> None:
        """Remember an entry (for at most `valid_for` seconds when given)."""
        if self.ttl <= 0:
            return
        lifetime = self.ttl if valid_for is None else max(0.0, min(self.ttl, valid_for))
        with self._lock:
            if len(self._items) >= MAX_ENTRIES:
                self._items.clear()
            self._items[key] = (time.monotonic() + lifetime, entry)

    def clear(self) -> None:
        """Forget every principal (after a change to roles, grants, users or tokens)."""
        with self._lock:
            self._items.clear()
