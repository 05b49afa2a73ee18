"""The records service without HTTP: events, exact sums, gap-free numbers under concurrency."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from formwork.runtime.errors import ValidationFailed
from formwork.runtime.events import EventBus
from formwork.runtime.records import RecordService
from formwork.runtime.registry import load_registry
from formwork.runtime.security import system_principal


def service(session, events=None):
    return RecordService(session, load_registry(session), system_principal(), events)


def test_lifecycle_events_run_in_the_transaction(sample, session):
    seen = []
    events = EventBus()
    for name in ("before_save", "after_insert", "on_update", "on_delete"):
        events.subscribe(name, lambda e: seen.append((e.name, e.record_id)), "sample.project")
    records = service(session, events)
    created = records.create("sample.project", {"code": "P1", "name": "x"})
    records.update("sample.project", created["id"], {"name": "y"}, 1)
    records.delete("sample.project", created["id"])
    assert seen == [
        ("before_save", None),
        ("after_insert", created["id"]),
        ("before_save", created["id"]),
        ("on_update", created["id"]),
        ("on_delete", created["id"]),
    ]
    with pytest.raises(ValueError, match="unknown event"):
        events.subscribe("after_everything", print)


def test_before_save_handler_can_refuse(sample, session):
    from formwork.runtime.errors import FieldError

    def refuse(event):
        raise ValidationFailed([FieldError("/name", "invalid", {"detail": "no"})])

    events = EventBus()
    events.subscribe("before_save", refuse)
    with pytest.raises(ValidationFailed):
        service(session, events).create("sample.project", {"code": "P1", "name": "x"})
    session.rollback()
    assert (
        service(session)
        .session.execute(load_registry(session).meta("sample.project").table.select())
        .first()
        is None
    )


def test_money_sums_are_exact_over_many_rows(sample, session):
    records = service(session)
    project = records.create("sample.project", {"code": "P1", "name": "x"})
    lines = [{"worker": f"w{i}", "days": "0.5", "day_rate": "0.10"} for i in range(30)]
    sheet = records.create(
        "sample.day_sheet", {"project": project["id"], "work_date": "2026-11-20", "lines": lines}
    )
    assert sheet["total"] == "1.50"
    from formwork.runtime.aggregate import aggregate

    registry = load_registry(session)
    rows = aggregate(
        session,
        registry,
        registry.meta("sample.day_sheet"),
        {"sum": ["total"]},
        principal=system_principal(),
    )
    assert Decimal(rows[0]["sum_total"]) == Decimal("1.50")


def test_autonumbers_are_gap_free_under_concurrent_inserts(sample, session):
    project = service(session).create("sample.project", {"code": "P1", "name": "x"})
    session.commit()
    factory = sample.extensions["formwork"].write_sessions  # as an API write request gets
    numbers, failures = [], []

    def insert(n):
        with factory() as own:
            try:
                for _ in range(n):
                    sheet = service(own).create(
                        "sample.day_sheet", {"project": project["id"], "work_date": "2026-11-20"}
                    )
                    own.commit()
                    numbers.append(sheet["number"])
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)

    threads = [threading.Thread(target=insert, args=(5,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(numbers) == [f"DW-20261120-{i:03}" for i in range(1, 21)]


def test_rolled_back_insert_gives_its_number_back(sample, session):
    records = service(session)
    project = records.create("sample.project", {"code": "P1", "name": "x"})
    session.commit()
    records.create("sample.day_sheet", {"project": project["id"], "work_date": "2026-11-20"})
    session.rollback()
    sheet = records.create(
        "sample.day_sheet", {"project": project["id"], "work_date": "2026-11-20"}
    )
    assert sheet["number"] == "DW-20261120-001"


def test_an_update_that_changes_nothing_keeps_the_version(sample, session):
    records = service(session)
    created = records.create("sample.project", {"code": "P1", "name": "x"})
    same = records.update("sample.project", created["id"], {"name": "x"}, 1)
    assert same["version"] == 1
    changed = records.update("sample.project", created["id"], {"name": "y"}, 1)
    assert changed["version"] == 2
    from formwork.runtime.audit import history

    assert [h["action"] for h in history(session, "sample.project", created["id"])] == [
        "create",
        "update",
    ]
