"""Copy the front-end files the pages need from node_modules/ to formwork/static/vendor/
and compile the Babel catalogs (.po -> .mo). Run after `npm ci`; needs no Node itself."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / "node_modules"
VENDOR = ROOT / "formwork" / "static" / "vendor"
TRANSLATIONS = ROOT / "formwork" / "translations"

# (package, path inside the package, path under static/vendor/)
FILES = (
    ("bootstrap", "dist/css/bootstrap.min.css", "bootstrap/bootstrap.min.css"),
    ("bootstrap", "dist/js/bootstrap.bundle.min.js", "bootstrap/bootstrap.bundle.min.js"),
    ("htmx.org", "dist/htmx.min.js", "htmx/htmx.min.js"),
    ("bpmn-js", "dist/bpmn-modeler.production.min.js", "bpmn-js/bpmn-modeler.production.min.js"),
    ("bpmn-js", "dist/bpmn-viewer.production.min.js", "bpmn-js/bpmn-viewer.production.min.js"),
    (
        "bpmn-js",
        "dist/bpmn-navigated-viewer.production.min.js",
        "bpmn-js/bpmn-navigated-viewer.production.min.js",
    ),
    ("bpmn-js", "dist/assets", "bpmn-js/assets"),
    ("echarts", "dist/echarts.min.js", "echarts/echarts.min.js"),
    ("frappe-gantt", "dist/frappe-gantt.umd.js", "frappe-gantt/frappe-gantt.umd.js"),
    ("frappe-gantt", "dist/frappe-gantt.css", "frappe-gantt/frappe-gantt.css"),
)


def copy_assets() -> list[str]:
    """Copy every listed file or folder; return what is missing."""
    missing = []
    for package, inner, target in FILES:
        source = MODULES / package / inner
        dest = VENDOR / target
        if not source.exists():
            missing.append(f"{package}/{inner}")
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest)
    return missing


def compile_catalogs() -> int:
    """Compile every formwork/translations/*/LC_MESSAGES/messages.po; return how many."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    count = 0
    for po_path in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
        with po_path.open("rb") as handle:
            catalog = read_po(handle)
        with po_path.with_suffix(".mo").open("wb") as out:
            write_mo(out, catalog)
        count += 1
    return count


def main() -> int:
    """Copy the assets and compile the catalogs; exit 1 when an asset is missing."""
    missing = copy_assets()
    compiled = compile_catalogs()
    print(f"assets copied to {VENDOR.relative_to(ROOT)}; {compiled} catalog(s) compiled")
    if missing:
        print("missing (run `npm ci` first): " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
