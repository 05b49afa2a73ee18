"""Security settings of the web app: cookie flags, HTTPS and proxies, session lifetime and
the sign-in limits, read from the app config (or FORMWORK_* environment variables)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from flask import Flask, current_app
from werkzeug.middleware.proxy_fix import ProxyFix

from formwork.auth.login import LoginLimits

# app config key -> (environment variable, default)
DEFAULTS: dict[str, tuple[str, Any]] = {
    "LOGIN_MAX_FAILURES": ("FORMWORK_LOGIN_MAX_FAILURES", 5),
    "LOGIN_LOCK_MINUTES": ("FORMWORK_LOGIN_LOCK_MINUTES", 15),
    "LOGIN_WINDOW_MINUTES": ("FORMWORK_LOGIN_WINDOW_MINUTES", 15),
    "LOGIN_MAX_IP_FAILURES": ("FORMWORK_LOGIN_MAX_IP_FAILURES", 20),
    "SESSION_LIFETIME_HOURS": ("FORMWORK_SESSION_HOURS", 12),
    "SESSION_IDLE_MINUTES": ("FORMWORK_SESSION_IDLE_MINUTES", 120),
    "TRUST_PROXY": ("FORMWORK_TRUST_PROXY", 0),
}


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def harden(app: Flask) -> None:
    """Fill in the security settings and set the cookie flags they imply."""
    config = app.config
    for key, (env, default) in DEFAULTS.items():
        if key not in config:
            raw = os.environ.get(env)
            config[key] = type(default)(raw) if raw not in (None, "") else default
    https = any(
        _flag(config.get(k, ""))
        for k in ("PREFER_HTTPS", "FORMWORK_HTTPS", "SESSION_COOKIE_SECURE")
    ) or _flag(os.environ.get("FORMWORK_HTTPS", ""))
    config["SESSION_COOKIE_SECURE"] = https
    config["REMEMBER_COOKIE_SECURE"] = https
    if https:
        config["PREFERRED_URL_SCHEME"] = "https"
    # Script cannot read the cookies, and other sites' forms do not carry them.
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["REMEMBER_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    config["REMEMBER_COOKIE_SAMESITE"] = config["SESSION_COOKIE_SAMESITE"]
    config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(
        hours=float(config["SESSION_LIFETIME_HOURS"])
    )
    hops = int(config["TRUST_PROXY"] or 0)
    if hops > 0:
        # Only behind a proxy we run: otherwise anyone could claim any address or scheme
        # (and dodge the per-address sign-in limit) with an X-Forwarded-* header.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def login_limits() -> LoginLimits:
    """Return the sign-in limits of the current app."""
    config = current_app.config
    return LoginLimits(
        max_failures=int(config["LOGIN_MAX_FAILURES"]),
        lock_minutes=float(config["LOGIN_LOCK_MINUTES"]),
        window_minutes=float(config["LOGIN_WINDOW_MINUTES"]),
        max_ip_failures=int(config["LOGIN_MAX_IP_FAILURES"]),
    )


def now() -> dt.datetime:
    """Return the current time from the kernel's clock (tests move it on)."""
    from formwork.context import clock

    return clock().now()
