"""Write this release's stored states into the corpus (see README.md).

Usage: python -m tests.workflow.corpus.generate PREFIX RELEASE
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal
from formwork.runtime.workflow.actions import complete
from formwork.runtime.workflow.deploy import deploy
from formwork.runtime.workflow.models import ProcessInstance, TaskRow
from formwork.runtime.workflow.service import WorkflowService
from formwork.runtime.workflow.spiff import SPIFF_VERSION
from formwork.runtime.workflow.state import FORMAT
from tests.conftest import make_test_app

CORPUS = Path(__file__).parent
BPMN = CORPUS / "bpmn"


class Writer:
    """Run the corpus processes on a throw-away database and write their states."""

    def __init__(self, prefix: str, release: str) -> None:
        app = make_test_app(Path(tempfile.mkdtemp()))
        kernel = app.extensions["formwork"]
        self.session = kernel.sessions()
        self.service = WorkflowService(
            self.session, system_principal(), kernel.workflow, load_registry(self.session),
            clock=kernel.clock,
        )  # fmt: skip
        self.prefix, self.release = prefix, release

    def start(self, bpmn: str, dmn: list[str], key: str, data: dict[str, Any]) -> int:
        """Deploy a corpus process (once) and start it."""
        texts = [(BPMN / d).read_text("utf-8") for d in dmn]
        deploy(self.session, (BPMN / bpmn).read_text("utf-8"), texts, principal=system_principal())
        instance = self.service.start(key, data)
        self.session.commit()
        return int(instance.id)

    def approve(self, instance_id: int, step: str | None = None) -> None:
        """Approve the instance's ready task at `step` (or its first one)."""
        rows = self.session.scalars(
            sa.select(TaskRow).where(TaskRow.instance_id == instance_id, TaskRow.status == "ready")
        ).all()
        row = next(r for r in rows if step is None or r.step == step)
        complete(self.service, row.id, "approve", "corpus", {})
        self.session.commit()

    def save(self, name: str, instance_id: int, entry: dict[str, Any]) -> None:
        """Write the instance's stored state as a corpus file."""
        self.session.expire_all()
        row = self.session.get(ProcessInstance, instance_id)
        assert row is not None
        document = {
            **entry, "release": self.release, "format": FORMAT, "spiff": SPIFF_VERSION,
            "state": row.state,
        }  # fmt: skip
        path = CORPUS / f"{self.prefix}_{name}.json"
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
        print(path.name)


def scenarios() -> list[Callable[[Writer], None]]:
    """Return the stops the corpus keeps: each starts a process and saves it midway."""

    def ccb(w: Writer) -> None:
        entry = {"bpmn": "ccb_change.bpmn", "dmn": ["routing.dmn"], "process": "ccb_change"}
        data = {"amount": Decimal("300000.00"), "project_manager": 1, "escalate_after": "PT3H"}
        iid = w.start(entry["bpmn"], entry["dmn"], "ccb_change", data)
        w.approve(iid, "site_review")
        w.save("ccb_parallel_reviews", iid, {**entry, "note": "two parallel reviews ready"})
        w.approve(iid, "cost_review")
        w.approve(iid, "pm_review")
        w.save("ccb_finance_timer", iid, {**entry, "note": "finance review, 3 h timer pending"})

    def countersign(w: Writer) -> None:
        entry = {"bpmn": "countersign.bpmn", "dmn": [], "process": "countersign"}
        iid = w.start(entry["bpmn"], [], "countersign", {"signers": [1, 2, 3], "candidates": [4]})
        w.approve(iid)
        w.save("countersign_mid", iid, {**entry, "note": "parallel multi-instance, one signed"})

    def subprocesses(w: Writer) -> None:
        entry = {"bpmn": "subprocess.bpmn", "dmn": [], "process": "sub_flow"}
        iid = w.start(entry["bpmn"], [], "sub_flow", {})
        w.save("subprocess_timers", iid, {**entry, "note": "inside an embedded subprocess"})

    return [ccb, countersign, subprocesses]


def main(argv: list[str]) -> None:
    """Write the corpus files of one release."""
    prefix, release = argv
    for scenario in scenarios():
        scenario(Writer(prefix, release))


if __name__ == "__main__":
    main(sys.argv[1:])
