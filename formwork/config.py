"""Configuration from the environment, with an instance folder for local state."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def instance_path() -> Path:
    """Return the instance folder (FORMWORK_INSTANCE_PATH or ./instance), creating it."""
    path = Path(os.environ.get("FORMWORK_INSTANCE_PATH", ROOT / "instance")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def secret_key(folder: Path) -> str:
    """Return the secret key, generated once into the instance folder."""
    from_env = os.environ.get("FORMWORK_SECRET_KEY")
    if from_env:
        return from_env
    key_file = folder / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the app configuration: defaults, then environment, then `overrides`."""
    folder = Path((overrides or {}).get("INSTANCE_PATH") or instance_path())
    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "INSTANCE_PATH": str(folder),
        "DATABASE_URL": os.environ.get(
            "FORMWORK_DATABASE_URL", f"sqlite:///{folder / 'formwork.db'}"
        ),
        "FILES_DIR": str(folder / "files"),
        "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
        "API_MAX_BODY": int(os.environ.get("FORMWORK_API_MAX_BODY", 1024 * 1024)),
        "MAX_UPLOAD_SIZE": int(os.environ.get("FORMWORK_MAX_UPLOAD", 20 * 1024 * 1024)),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("FORMWORK_SECURE_COOKIES", "") == "1",
        "REGISTRY_TTL": float(os.environ.get("FORMWORK_REGISTRY_TTL", "2")),
        "PRINCIPAL_TTL": float(os.environ.get("FORMWORK_PRINCIPAL_TTL", "5")),
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        # The company's time zone: what "today" means in reports, demo data and forms.
        "DISPLAY_TIMEZONE": os.environ.get("FORMWORK_TIME_ZONE", "Asia/Shanghai"),
        # The kernel's clock: empty for the wall, or a fixed ISO moment (reproducible demos).
        "CLOCK": os.environ.get("FORMWORK_CLOCK", ""),
    }
    config.update(overrides or {})
    config.setdefault("SECRET_KEY", secret_key(folder))
    return config
