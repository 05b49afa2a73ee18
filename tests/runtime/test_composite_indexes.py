"""Composite indexes declared in `x-formwork.indexes`: definition check, tables, operations, plans.

Runs on SQLite and, with FORMWORK_TEST_DATABASE_URL, on PostgreSQL (fixtures and helpers of
test_migrations: each test starts from an empty database).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.definitions import EntityDef, IndexDef, parse_entity
from formwork.runtime.errors import DefinitionInvalid
from formwork.runtime.migrations import (
    AddCompositeIndex,
    AddField,
    AlterField,
    MigrationError,
    Operation,
    RemoveCompositeIndex,
    RemoveField,
    RenameEntity,
    apply_operations,
    build_context,
    describe_plan,
    detect,
    revert_operations,
)
from formwork.runtime.models import Migration
from formwork.runtime.registry import load_registry
from formwork.runtime.schema import apply_definitions
from formwork.runtime.storage import (
    MAX_NAME,
    build_table,
    composite_index_name,
    composite_indexes,
    new_metadata,
)
from tests.conftest import sample_documents as sample_documents_by_path
from tests.runtime import test_migrations
from tests.runtime.test_migrations import (
    LABEL,
    WIDGET,
    column_values,
    create,
    insert,
    parse_all,
    sample_docs,
)

# The fixtures of test_migrations: a SQLite file, or an emptied PostgreSQL database.
engine, conn = test_migrations.engine, test_migrations.conn

TABLE = "sample__widget"
NOW = dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC)


def widget_doc(*indexes: dict[str, Any], **props: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(WIDGET)
    doc["properties"].update(props)
    if indexes:
        doc["x-formwork"]["indexes"] = list(indexes)
    return doc


def widget(*indexes: dict[str, Any], **props: dict[str, Any]) -> EntityDef:
    return parse_entity("sample", widget_doc(*indexes, **props))


def composite(conn: sa.Connection, table: str = TABLE) -> set[tuple[str, tuple[str, ...], bool]]:
    """Return (name, columns, unique) of every index over several columns."""
    return {
        (str(i["name"]), tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
        for i in sa.inspect(conn).get_indexes(table)
        if len(i["column_names"]) > 1
    }


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionInvalid) as refused:
        parse_entity("sample", doc)
    return [(e.pointer, e.params.get("detail", "")) for e in refused.value.errors]


def plan(before: EntityDef, after: EntityDef) -> list[str]:
    return describe_plan(detect({before.key: before}, {after.key: after}))


# -- the definition ------------------------------------------------------------------------------
def test_indexes_are_read_from_the_definition() -> None:
    thing = widget(
        {"fields": ["kind", "day"]},
        {"fields": ["label", "created_by"], "unique": True, "name": "label_author"},
    )
    assert thing.indexes == (
        IndexDef(("kind", "day")),
        IndexDef(("label", "created_by"), True, "label_author"),
    )
    assert widget().indexes == ()


def test_unknown_unstored_and_repeated_fields_are_refused_with_pointers() -> None:
    lines = {"x-formwork": {"type": "children", "entity": "widget_line", "label": LABEL}}
    doc = widget_doc(
        {"fields": ["kind", "colour"]},
        {"fields": ["qty", "lines"]},
        {"fields": ["day", "qty", "day"]},
        {"fields": ["kind", "parent_id"]},  # a line-item column, and this is no line item
        lines=lines,
    )
    assert problems(doc) == [
        ("/x-formwork/indexes/0/fields/1", "unknown field 'colour'"),
        ("/x-formwork/indexes/1/fields/1", "field 'lines' (children) has no column to index"),
        ("/x-formwork/indexes/2/fields/2", "field 'day' appears twice in the index"),
        ("/x-formwork/indexes/3/fields/1", "unknown field 'parent_id'"),
    ]


def test_repeated_indexes_and_name_clashes_are_refused() -> None:
    kind_qty = {"maxLength": 10, "x-formwork": {"type": "string", "label": LABEL}}
    doc = widget_doc(
        {"fields": ["kind", "day"]},
        {"fields": ["kind", "day"], "unique": True},
        {"fields": ["qty", "day"], "name": "kind_day"},
        {"fields": ["kind", "qty"]},  # would be named like kind_qty's own index
        {"fields": ["day", "kind"], "name": "label"},
        kind_qty=kind_qty,
    )
    found = problems(doc)
    assert found[:2] == [
        ("/x-formwork/indexes/1", "same fields as /x-formwork/indexes/0"),
        ("/x-formwork/indexes/2", "same name as /x-formwork/indexes/0"),
    ]
    assert found[2][0] == "/x-formwork/indexes/3"
    assert "kind_qty" in found[2][1] and "give the index a `name`" in found[2][1]
    assert found[3][0] == "/x-formwork/indexes/4/name"
    assert len(found) == 4


@pytest.mark.parametrize(
    ("index", "pointer"),
    [
        ({"fields": ["kind"]}, "/x-formwork/indexes/0/fields"),
        (
            {"fields": ["kind", "qty", "day", "label", "price", "id"]},
            "/x-formwork/indexes/0/fields",
        ),
        ({"fields": ["kind", "qty"], "name": "Bad Name"}, "/x-formwork/indexes/0/name"),
        ({"fields": ["kind", "qty"], "where": "x"}, "/x-formwork/indexes/0"),
    ],
)
def test_the_meta_schema_limits_indexes(index: dict[str, Any], pointer: str) -> None:
    assert [p for p, _ in problems(widget_doc(index))] == [pointer]


def test_system_and_line_item_columns_may_be_indexed() -> None:
    docs = sample_docs()
    docs["day_sheet_line"]["x-formwork"]["indexes"] = [{"fields": ["parent_id", "worker"]}]
    docs["day_sheet"]["x-formwork"]["indexes"] = [{"fields": ["project", "created_at", "total"]}]
    entities = parse_all(docs)
    line = entities["sample.day_sheet_line"]
    assert [i.columns for i in composite_indexes(line)] == [("parent_id", "worker")]
    sheet = entities["sample.day_sheet"]
    assert [i.columns for i in composite_indexes(sheet)] == [("project", "created_at", "total")]


# -- names and tables ----------------------------------------------------------------------------
def test_index_names_are_deterministic_and_fit_postgresql() -> None:
    assert composite_index_name(TABLE, IndexDef(("kind", "day"))) == "ix_sample__widget_kind_day"
    unique = IndexDef(("kind", "day"), True, "per_day")
    assert composite_index_name(TABLE, unique) == "uq_sample__widget_per_day"
    fields = ("a_rather_long_field_name", "another_long_field_name", "third_field", "day")
    long_one = composite_index_name("construction__labour_line", IndexDef(fields))
    assert len(long_one) == MAX_NAME
    assert long_one.startswith("ix_construction__labour_line_a_rather_long")
    assert long_one == composite_index_name("construction__labour_line", IndexDef(fields))
    other = composite_index_name("construction__labour_line", IndexDef((*fields[:3], "days")))
    assert other != long_one and other[:-9] == long_one[:-9]  # only the hash tells them apart


def test_the_table_carries_its_composite_indexes() -> None:
    thing = widget({"fields": ["kind", "day"]}, {"fields": ["qty", "label"], "unique": True})
    table = build_table(thing, new_metadata())
    found = {(i.name, tuple(c.name for c in i.columns), i.unique) for i in table.indexes}
    assert ("ix_sample__widget_kind_day", ("kind", "day"), False) in found
    assert ("uq_sample__widget_qty_label", ("qty", "label"), True) in found


def test_create_entity_creates_them_and_drop_entity_backwards_recreates_them(
    conn: sa.Connection,
) -> None:
    thing = widget({"fields": ["kind", "day"]}, {"fields": ["qty", "label"], "unique": True})
    ops = detect({}, {thing.key: thing})
    apply_operations(conn, ops)
    expected = {
        ("ix_sample__widget_kind_day", ("kind", "day"), False),
        ("uq_sample__widget_qty_label", ("qty", "label"), True),
    }
    assert composite(conn) == expected
    revert_operations(conn, ops)
    assert not sa.inspect(conn).has_table(TABLE)
    apply_operations(conn, ops)
    assert composite(conn) == expected


# -- the operations ------------------------------------------------------------------------------
def _op(cls: type[Any], name: str, columns: list[str], unique: bool = False) -> Any:
    return cls("sample", "widget", TABLE, name, columns, unique)


@pytest.mark.parametrize("unique", [False, True])
def test_add_composite_index_forwards_and_backwards(conn: sa.Connection, unique: bool) -> None:
    create(conn, widget())
    insert(conn, widget(), kind="a", day=dt.date(2024, 1, 2), qty=1)
    name = f"{'uq' if unique else 'ix'}_sample__widget_kind_day"
    op = _op(AddCompositeIndex, name, ["kind", "day"], unique)
    assert composite(conn) == set()
    ctx = build_context(conn)
    op.forwards(ctx)
    assert composite(conn) == {(name, ("kind", "day"), unique)}
    op.backwards(ctx)
    assert composite(conn) == set()
    kind = "unique composite index" if unique else "composite index"
    assert op.describe() == f"Add {kind} {name} on sample.widget (kind, day)"
    assert isinstance(op.reverse(), RemoveCompositeIndex)


def test_remove_composite_index_forwards_and_backwards(conn: sa.Connection) -> None:
    thing = widget({"fields": ["kind", "day"]})
    create(conn, thing)
    present = {("ix_sample__widget_kind_day", ("kind", "day"), False)}
    assert composite(conn) == present
    op = _op(RemoveCompositeIndex, "ix_sample__widget_kind_day", ["kind", "day"])
    ctx = build_context(conn)
    op.forwards(ctx)
    assert composite(conn) == set()
    with pytest.raises(MigrationError, match="there is none"):
        op.forwards(ctx)
    op.backwards(ctx)
    assert composite(conn) == present
    assert op.describe().startswith("Remove composite index ix_sample__widget_kind_day")


def test_remove_finds_an_index_named_otherwise_by_its_columns(conn: sa.Connection) -> None:
    create(conn, widget())
    apply_operations(conn, [_op(AddCompositeIndex, "ix_made_by_hand", ["kind", "day"])])
    apply_operations(conn, [_op(AddCompositeIndex, "uq_made_by_hand", ["kind", "day"], True)])
    removed = _op(RemoveCompositeIndex, "ix_sample__widget_kind_day", ["kind", "day"])
    apply_operations(conn, [removed])
    assert composite(conn) == {("uq_made_by_hand", ("kind", "day"), True)}


def test_unique_composite_index_refused_on_duplicates_naming_them(conn: sa.Connection) -> None:
    thing = widget()
    create(conn, thing)
    rows = [("a", 1), ("a", 1), ("a", 2), ("b", 1), (None, 1), (None, 1), ("b", 3), ("b", 3)]
    for kind, qty in rows:
        insert(conn, thing, kind=kind, qty=qty)
    conn.commit()
    op = _op(AddCompositeIndex, "uq_sample__widget_kind_qty", ["kind", "qty"], True)
    with pytest.raises(MigrationError) as refused:
        apply_operations(conn, [op])
    message = str(refused.value)
    assert "cannot make (kind, qty) of sample.widget unique" in message
    assert "duplicate values ('a', 1) (2 rows), ('b', 3) (2 rows); fix or remove" in message
    assert composite(conn) == set()  # empty kinds are no duplicates, as in the index itself
    conn.execute(sa.delete(sa.table(TABLE)).where(sa.column("qty").in_([1, 3])))
    apply_operations(conn, [op])
    assert composite(conn) == {("uq_sample__widget_kind_qty", ("kind", "qty"), True)}


def test_add_composite_index_refuses_missing_columns(conn: sa.Connection) -> None:
    create(conn, widget())
    op = _op(AddCompositeIndex, "ix_sample__widget_kind_colour", ["kind", "colour"])
    with pytest.raises(MigrationError, match="no column colour"):
        apply_operations(conn, [op])


def test_composite_index_operations_round_trip_through_json() -> None:
    for cls in (AddCompositeIndex, RemoveCompositeIndex):
        op = _op(cls, "uq_sample__widget_kind_day", ["kind", "day"], True)
        data = json.loads(json.dumps(op.to_json()))
        assert data == {
            "op": cls.__name__,
            "pack": "sample",
            "entity": "widget",
            "table": TABLE,
            "name": "uq_sample__widget_kind_day",
            "columns": ["kind", "day"],
            "unique": True,
        }
        assert Operation.from_json(data) == op


# -- the autodetector ----------------------------------------------------------------------------
def test_detect_adds_removes_and_changes_indexes() -> None:
    plain = widget()
    indexed = widget({"fields": ["kind", "day"]})
    assert plan(plain, indexed) == [
        "Add composite index ix_sample__widget_kind_day on sample.widget (kind, day)"
    ]
    assert plan(indexed, plain) == [
        "Remove composite index ix_sample__widget_kind_day on sample.widget (kind, day)"
    ]
    assert plan(indexed, widget({"fields": ["kind", "day"]})) == []
    assert plan(indexed, widget({"fields": ["kind", "day"], "unique": True})) == [
        "Remove composite index ix_sample__widget_kind_day on sample.widget (kind, day)",
        "Add unique composite index uq_sample__widget_kind_day on sample.widget (kind, day)",
    ]
    named = widget({"fields": ["kind", "day"], "name": "by_day"})
    assert plan(named, widget({"fields": ["kind", "qty", "day"], "name": "by_day"})) == [
        "Remove composite index ix_sample__widget_by_day on sample.widget (kind, day)",
        "Add composite index ix_sample__widget_by_day on sample.widget (kind, qty, day)",
    ]


def test_detect_drops_the_index_before_a_field_rename_and_recreates_it_after() -> None:
    before = widget({"fields": ["kind", "day"]})
    renamed = copy.deepcopy(WIDGET["properties"]["day"])
    renamed["x-formwork"]["renamed_from"] = "day"
    doc = widget_doc({"fields": ["kind", "work_day"]}, work_day=renamed)
    del doc["properties"]["day"]
    assert plan(before, parse_entity("sample", doc)) == [
        "Remove composite index ix_sample__widget_kind_day on sample.widget (kind, day)",
        "Rename field sample.widget.day to work_day",
        "Add composite index ix_sample__widget_kind_work_day on sample.widget (kind, work_day)",
    ]


def test_detect_drops_the_index_before_removing_or_altering_a_covered_field() -> None:
    before = widget({"fields": ["kind", "day"]}, {"fields": ["label", "qty"]})
    doc = widget_doc({"fields": ["label", "qty"]}, label={**WIDGET["properties"]["label"]})
    doc["properties"]["label"]["maxLength"] = 10
    del doc["properties"]["day"]
    assert plan(before, parse_entity("sample", doc)) == [
        "Remove composite index ix_sample__widget_kind_day on sample.widget (kind, day)",
        "Remove composite index ix_sample__widget_label_qty on sample.widget (label, qty)",
        "Alter field sample.widget.label (string VARCHAR(20) → string VARCHAR(10); "
        "values that do not fit are converted)  [destructive]",
        "Remove field sample.widget.day (date)  [destructive]",
        "Add composite index ix_sample__widget_label_qty on sample.widget (label, qty)",
    ]


def test_detected_plans_apply_and_revert(conn: sa.Connection) -> None:
    before = widget({"fields": ["kind", "day"]}, {"fields": ["label", "qty"], "unique": True})
    create(conn, before)
    insert(conn, before, kind="a", day=dt.date(2024, 1, 2), label="x", qty=1)
    renamed = copy.deepcopy(WIDGET["properties"]["qty"])
    renamed["x-formwork"]["renamed_from"] = "qty"
    doc = widget_doc(
        {"fields": ["label", "count"], "unique": True}, {"fields": ["kind", "id"]}, count=renamed
    )
    del doc["properties"]["qty"], doc["properties"]["day"]
    after = parse_entity("sample", doc)
    ops = detect({before.key: before}, {after.key: after})
    apply_operations(conn, ops, confirm=True)
    assert composite(conn) == {
        ("uq_sample__widget_label_count", ("label", "count"), True),
        ("ix_sample__widget_kind_id", ("kind", "id"), False),
    }
    assert column_values(conn, after, "count") == [1]
    revert_operations(conn, ops, confirm=True)
    assert composite(conn) == {
        ("ix_sample__widget_kind_day", ("kind", "day"), False),
        ("uq_sample__widget_label_qty", ("label", "qty"), True),
    }
    assert column_values(conn, before, "qty") == [1]


def test_an_entity_rename_carries_long_index_names(conn: sa.Connection) -> None:
    long_field = {"x-formwork": {"type": "integer", "label": LABEL}}
    fields = ["kind", "a_rather_long_field_name", "day"]
    old_doc = widget_doc({"fields": fields}, a_rather_long_field_name=long_field)
    old = parse_entity("sample", old_doc)
    new_doc = copy.deepcopy(old_doc)
    new_doc["x-formwork"].update(name="gadget_with_a_long_name", renamed_from="widget")
    new = parse_entity("sample", new_doc)
    create(conn, old)
    ops = detect({old.key: old}, {new.key: new})
    assert [type(op) for op in ops] == [RenameEntity]
    apply_operations(conn, ops)
    (name,) = {i.name for i in composite_indexes(new)}
    assert len(name) == MAX_NAME
    assert composite(conn, new.table_name) == {(name, tuple(fields), False)}
    removed = RemoveCompositeIndex("sample", new.name, new.table_name, name, tuple(fields))
    apply_operations(conn, [removed])
    assert composite(conn, new.table_name) == set()


# -- SQLite rebuilds -----------------------------------------------------------------------------
def test_a_table_rebuild_keeps_composite_indexes(conn: sa.Connection) -> None:
    """An AlterField (and an AddField with a foreign key) recreates the table on SQLite."""
    thing = widget({"fields": ["kind", "day"]}, {"fields": ["qty", "kind"], "unique": True})
    projects = parse_all(sample_docs())["sample.project"]
    create(conn, projects, thing)
    insert(conn, thing, kind="a", qty=1, label="long label", day=dt.date(2024, 1, 2))
    expected = composite(conn)
    assert len(expected) == 2
    wider = {**WIDGET["properties"]["label"], "maxLength": 200}
    client = {"x-formwork": {"type": "reference", "entity": "project", "label": LABEL}}
    ops = [
        AlterField(
            "sample", "widget", TABLE, "label", WIDGET["properties"]["label"], wider, "widen"
        ),
        AddField("sample", "widget", TABLE, "client", client),
        RemoveField("sample", "widget", TABLE, "price", WIDGET["properties"]["price"]),
    ]
    for op in ops:
        apply_operations(conn, [op], confirm=True)
        assert composite(conn) == expected, op.describe()
    assert column_values(conn, thing, "label") == ["long label"]
    conn.commit()
    with pytest.raises(sa.exc.IntegrityError):  # the unique one still holds
        insert(conn, thing, kind="a", qty=1)
    conn.rollback()


def test_removing_a_covered_field_drops_its_composite_index(conn: sa.Connection) -> None:
    thing = widget({"fields": ["kind", "day"]})
    create(conn, thing)
    op = RemoveField("sample", "widget", TABLE, "day", WIDGET["properties"]["day"])
    apply_operations(conn, [op], confirm=True)
    assert composite(conn) == set()
    assert "day" not in {c["name"] for c in sa.inspect(conn).get_columns(TABLE)}


# -- the index is used ---------------------------------------------------------------------------
def test_a_filtered_sorted_list_uses_the_composite_index(conn: sa.Connection) -> None:
    thing = widget({"fields": ["qty", "kind", "day"]})
    create(conn, thing)
    table = build_table(thing, new_metadata())
    start = dt.date(2024, 1, 1)
    rows = [
        {
            "created_at": NOW,
            "updated_at": NOW,
            "qty": n % 200,
            "kind": "ab"[n % 2],
            "day": start + dt.timedelta(days=n % 365),
            "label": f"w{n}",
        }
        for n in range(5000)
    ]
    conn.execute(table.insert(), rows)
    conn.exec_driver_sql("ANALYZE")
    query = (
        sa.select(table.c.id, table.c.day)
        .where(table.c.qty == 7, table.c.kind == "b")
        .order_by(table.c.day)
    )
    sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
    explained = "\n".join(str(row[-1]) for row in conn.exec_driver_sql(prefix + sql))
    assert "ix_sample__widget_qty_kind_day" in explained, explained
    assert len(conn.execute(query).all()) == 25


# -- through the definitions ---------------------------------------------------------------------
def test_applying_definitions_records_and_serves_the_index(sample: Any, session: Any) -> None:
    documents = copy.deepcopy(sample_documents_by_path())
    project = next(d for p, d in documents.items() if p.endswith("project.json"))
    project["x-formwork"]["indexes"] = [{"fields": ["status", "start_date"]}]
    done = apply_definitions(session, "sample", documents)
    session.commit()
    name = "ix_sample__project_status_start_date"
    assert done == [f"Add composite index {name} on sample.project (status, start_date)"]
    latest = session.scalars(sa.select(Migration).order_by(Migration.id.desc())).first()
    added = AddCompositeIndex(
        "sample", "project", "sample__project", name, ("status", "start_date")
    )
    assert [Operation.from_json(op) for op in latest.operations] == [added]
    table = load_registry(session).tables["sample.project"]
    assert {i.name for i in table.indexes if len(i.columns) > 1} == {name}
    del project["x-formwork"]["indexes"]
    assert apply_definitions(session, "sample", documents) == [f"Remove {added.describe()[4:]}"]
    session.commit()
    assert composite(session.connection(), "sample__project") == set()


def test_a_duplicate_in_a_unique_composite_index_is_refused_with_the_fields(
    sample: Any, session: Any
) -> None:
    from formwork.runtime.errors import ValidationFailed
    from formwork.runtime.records import RecordService
    from formwork.runtime.security import system_principal

    documents = copy.deepcopy(sample_documents_by_path())
    project = next(d for p, d in documents.items() if p.endswith("project.json"))
    project["x-formwork"]["indexes"] = [{"fields": ["name", "status"], "unique": True}]
    apply_definitions(session, "sample", documents)
    session.commit()
    records = RecordService(session, load_registry(session), system_principal())
    first = records.create("sample.project", {"code": "A", "name": "一号楼", "status": "active"})
    records.create("sample.project", {"code": "B", "name": "一号楼", "status": "planned"})
    with pytest.raises(ValidationFailed) as refused:
        records.create("sample.project", {"code": "C", "name": "一号楼", "status": "active"})
    [error] = refused.value.errors
    assert (error.pointer, error.code) == ("/name", "unique_together")
    assert "name, status" in error.message("en")
    same = records.update("sample.project", first["id"], {"code": "A2"}, first["version"])
    assert same["code"] == "A2"  # the record itself is not a duplicate of itself
