"""Helpers shared by the workflow engine tests (not a test module)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from formwork.runtime.packs import InstallOptions, install_packs, read_pack
from formwork.runtime.security import load_principal, system_principal
from formwork.runtime.workflow.actions import complete
from formwork.runtime.workflow.deploy import deploy
from formwork.runtime.workflow.errors import ServiceError
from formwork.runtime.workflow.models import HistoryEntry, ProcessInstance, TaskRow

HERE = Path(__file__).parent
BPMN = HERE / "bpmn"
PACKS = HERE / "packs"


def source(name: str) -> str:
    """Return a test BPMN/DMN file's text."""
    return (BPMN / name).read_text("utf-8")


def deploy_file(session: Any, name: str, dmn: tuple[str, ...] = (), **kw: Any) -> Any:
    """Deploy a test BPMN file (with DMN files) and commit; return the definition."""
    row, _created = deploy(
        session, source(name), [source(d) for d in dmn], principal=system_principal(), **kw
    )
    session.commit()
    return row


def install_pack(session: Any, name: str, services: Any = None) -> list[str]:
    """Install a test pack from tests/workflow/packs (with the kernel's `services`), commit."""
    options = InstallOptions(services=services)
    report = install_packs(session, [read_pack(PACKS / name)], options)
    session.commit()
    return report


def kernel_of(app: Any) -> Any:
    """Return the app's kernel."""
    return app.extensions["formwork"]


def service_for(app: Any, session: Any, user: Any = None) -> Any:
    """Return a workflow service on the app's kernel, as a user (default: the system)."""
    principal = system_principal() if user is None else load_principal(session, user)
    return kernel_of(app).workflows(session, principal)


def ready(session: Any, instance_id: int) -> dict[str, TaskRow]:
    """Return the instance's ready task rows by step (in a fresh transaction)."""
    session.rollback()
    session.expire_all()  # rows kept from before (expire_on_commit is off) are read again
    rows = session.scalars(
        sa.select(TaskRow).where(TaskRow.instance_id == instance_id, TaskRow.status == "ready")
    ).all()
    return {row.step: row for row in rows}


def act(service: Any, row: TaskRow, action: str = "approve", data: Any = None) -> Any:
    """Complete a task as the service's principal and commit (in a fresh transaction: on
    SQLite a step fails with 409 when another connection wrote since its snapshot)."""
    service.session.rollback()
    instance = complete(service, row.id, action, "ok", data)
    service.session.commit()
    return instance


def instance(session: Any, instance_id: int) -> ProcessInstance:
    """Return an instance as stored now (in a fresh transaction)."""
    session.rollback()
    session.expire_all()  # an instance kept from before (expire_on_commit is off) is read again
    found = session.get(ProcessInstance, instance_id)
    assert found is not None
    return found


def history(session: Any, instance_id: int) -> list[str]:
    """Return the actions of an instance's history, oldest first."""
    return list(
        session.scalars(
            sa.select(HistoryEntry.action)
            .where(HistoryEntry.instance_id == instance_id)
            .order_by(HistoryEntry.id)
        )
    )


def reserve_budget(ctx: Any, params: dict[str, Any]) -> Any:
    """A platform service the pack's process calls: no budget above 20 000."""
    if Decimal(str(params["amount"])) > 20000:
        raise ServiceError("no-budget", f"no budget left for {params['amount']}")
    return {"reserved": str(params["amount"])}


def budget_spec() -> Any:
    """Return the declaration of the procure pack's `reserve_budget` service."""
    from formwork.runtime.workflow.services import Param, ServiceSpec

    return ServiceSpec("reserve_budget", reserve_budget, {"amount": Param(True)})


def procure_services() -> dict[str, Any]:
    """Return the platform's services and `reserve_budget` (for a check without an app)."""
    from formwork.runtime.workflow.services import platform_services

    return {**platform_services(), "reserve_budget": budget_spec()}


def budget_services(app: Any) -> Any:
    """Register the procure pack's `reserve_budget` service on the app's kernel; return the
    kernel's services (what the pack is checked and deployed against)."""
    runtime = kernel_of(app).workflow
    runtime.register(budget_spec())
    return runtime.services
