"""Fixtures for pack tests: the test packs as sources and zips."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from formwork.runtime.packs import InstallOptions, install_packs, read_pack

PACKS = Path(__file__).parent


def source(name: str) -> Any:
    """Return a test pack (folder under tests/packs/) as a PackSource."""
    return read_pack(PACKS / name)


def zip_of(files: dict[str, Any]) -> bytes:
    """Return zip bytes of {path: text, bytes or JSON}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in files.items():
            if not isinstance(content, str | bytes):
                content = json.dumps(content, ensure_ascii=False)
            archive.writestr(path, content)
    return buffer.getvalue()


def folder_files(name: str) -> dict[str, bytes]:
    """Return the files of a test pack folder."""
    return dict(source(name).files)


def install(session: Any, *names: str, **options: Any) -> list[str]:
    """Install test packs and commit."""
    report = install_packs(session, [source(n) for n in names], InstallOptions(**options))
    session.commit()
    return report


@pytest.fixture
def site(app: Any, session: Any) -> Any:
    """Install site 1.0.0 with its demo data."""
    install(session, "site_v1", demo=True)
    return session
