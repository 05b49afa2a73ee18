"""Add the page strings the catalogs miss: extract them from the code and templates (as
babel.cfg says), and append each new one to both catalogs with its zh-CN text from a JSON
file ({msgid: 中文}); English keeps the msgid. Prints what is still missing.

    .venv/bin/python scripts/translate.py new-strings.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
CATALOGS = ROOT / "formwork" / "translations"


def extracted() -> set[str]:
    """Return every msgid the code and templates use."""
    with tempfile.TemporaryDirectory() as folder:
        pot = Path(folder) / "messages.pot"
        subprocess.run(  # noqa: S603  (our own interpreter, fixed arguments)
            [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
             "-o", str(pot), "--no-location", "."],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        with pot.open("rb") as handle:
            return {str(m.id) for m in read_po(handle) if m.id}


def main(texts_file: str | None) -> int:
    """Append the missing strings; return 1 when some still lack a zh-CN text."""
    texts = json.loads(Path(texts_file).read_text("utf-8")) if texts_file else {}
    wanted, missing = extracted(), set()
    for folder in ("zh_Hans_CN", "en"):
        path = CATALOGS / folder / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            have = {str(m.id) for m in read_po(handle) if m.id}
        added = []
        for msgid in sorted(wanted - have):
            text = msgid if folder == "en" else texts.get(msgid)
            if text is None:
                missing.add(msgid)
                continue
            flag = "#, python-format\n" if "%(" in msgid else ""
            added.append(f"{flag}msgid {_quoted(msgid)}\nmsgstr {_quoted(text)}\n")
        if added:  # appended, so the rest of the file (and others' additions) stay as they are
            with path.open("a", encoding="utf-8") as out:
                out.write("\n" + "\n".join(added))
    for msgid in sorted(missing):
        print(f"missing zh-CN: {msgid!r}")
    return 1 if missing else 0


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else None))
