"""Schema migrations: each operation forwards and backwards, losses, the autodetector, the executor.

Runs on SQLite (default, a file in tmp_path, foreign keys on) and on PostgreSQL when
FORMWORK_TEST_DATABASE_URL points at one (each test starts from an empty `public` schema).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from formwork.runtime.definitions import EntityDef, parse_entity
from formwork.runtime.errors import DestructiveChange
from formwork.runtime.migrations import (
    AddField,
    AddIndex,
    AlterField,
    CreateEntity,
    DropEntity,
    IrreversibleOperation,
    MigrationError,
    Operation,
    RemoveField,
    RemoveIndex,
    RenameEntity,
    RenameField,
    apply_operations,
    build_context,
    describe_plan,
    detect,
    plan_losses,
    revert_operations,
)
from formwork.runtime.models import Base
from formwork.runtime.storage import build_table, new_metadata

SAMPLE = Path(__file__).resolve().parents[1] / "entities" / "sample"
NOW = dt.datetime(2024, 1, 1, 8, 0, tzinfo=dt.UTC)
LABEL = {"zh-CN": "标签", "en": "Label"}


def _options(*values: str) -> list[dict[str, Any]]:
    return [{"value": v, "label": {"zh-CN": v, "en": v}} for v in values]


WIDGET: dict[str, Any] = {
    "type": "object",
    "x-formwork": {"name": "widget", "label": {"zh-CN": "部件", "en": "Widget"}},
    "properties": {
        "label": {"maxLength": 20, "x-formwork": {"type": "string", "label": LABEL}},
        "qty": {"x-formwork": {"type": "integer", "label": LABEL}},
        "price": {"x-formwork": {"type": "decimal", "precision": 10, "scale": 2, "label": LABEL}},
        "day": {"x-formwork": {"type": "date", "label": LABEL}},
        "kind": {"x-formwork": {"type": "select", "label": LABEL, "options": _options("a", "b")}},
        "tags": {
            "x-formwork": {"type": "multi_select", "label": LABEL, "options": _options("x", "y")}
        },
    },
}


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    url = os.environ.get("FORMWORK_TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'fw.db'}"
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    with engine.begin() as conn:
        Base.metadata.create_all(conn)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as connection:
        yield connection


# -- helpers ------------------------------------------------------------------------------------
def sample_docs() -> dict[str, dict[str, Any]]:
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLE.glob("*.json"))
    }


def parse_all(docs: dict[str, dict[str, Any]]) -> dict[str, EntityDef]:
    return {f"sample.{name}": parse_entity("sample", doc) for name, doc in docs.items()}


def widget(**changes: dict[str, Any]) -> EntityDef:
    doc = copy.deepcopy(WIDGET)
    doc["properties"].update(changes)
    return parse_entity("sample", doc)


def create(conn: sa.Connection, *entities: EntityDef) -> None:
    apply_operations(conn, detect({}, {e.key: e for e in entities}))


def insert(conn: sa.Connection, entity: EntityDef, **values: Any) -> int:
    table = build_table(entity, new_metadata())
    row = {"created_at": NOW, "updated_at": NOW, **values}
    return int(conn.execute(table.insert().values(row).returning(table.c.id)).scalar_one())


def column_values(conn: sa.Connection, entity: EntityDef, column: str) -> list[Any]:
    table = build_table(entity, new_metadata())
    return list(conn.execute(sa.select(table.c[column]).order_by(table.c.id)).scalars())


def columns(conn: sa.Connection, table: str) -> dict[str, Any]:
    return {c["name"]: c["type"] for c in sa.inspect(conn).get_columns(table)}


def indexes(conn: sa.Connection, table: str) -> set[tuple[str, bool]]:
    """Return (column, unique) for every single-column index or unique constraint."""
    inspector = sa.inspect(conn)
    found = {(u["column_names"][0], True) for u in inspector.get_unique_constraints(table)}
    for index in inspector.get_indexes(table):
        if len(index["column_names"]) == 1:
            found.add((index["column_names"][0], bool(index["unique"])))
    return found


def has_table(conn: sa.Connection, table: str) -> bool:
    return sa.inspect(conn).has_table(table)


def field_op(cls: type[Any], entity: EntityDef, *args: Any) -> Any:
    return cls(entity.pack, entity.name, entity.table_name, *args)


def schema_of(entity: EntityDef, name: str) -> dict[str, Any]:
    return dict(entity.field_map[name].schema)


# -- entity operations --------------------------------------------------------------------------
def test_create_entity_forwards_and_backwards(conn: sa.Connection) -> None:
    project = parse_all(sample_docs())["sample.project"]
    op = CreateEntity("sample", "project", project.table_name, dict(project.document))
    ctx = build_context(conn)
    assert not has_table(conn, "sample__project")
    op.forwards(ctx)
    assert {"id", "code", "contract_value", "manager", "version"} <= set(columns(conn, op.table))
    assert {("code", True), ("start_date", False), ("manager", False)} <= indexes(conn, op.table)
    assert [fk["referred_table"] for fk in sa.inspect(conn).get_foreign_keys(op.table)] == [
        "fw_users"
    ]
    op.backwards(ctx)
    assert not has_table(conn, "sample__project")
    assert op.describe() == "Create entity sample.project (table sample__project)"


def test_drop_entity_needs_confirmation_and_backwards_recreates_it_empty(
    conn: sa.Connection,
) -> None:
    project = parse_all(sample_docs())["sample.project"]
    create(conn, project)
    insert(conn, project, code="P-1", name="One")
    insert(conn, project, code="P-2", name="Two")
    op = DropEntity("sample", "project", project.table_name, dict(project.document))
    assert op.destructive
    with pytest.raises(DestructiveChange) as refused:
        apply_operations(conn, [op])
    assert refused.value.losses == ["drop entity sample.project: 2 rows would be lost"]
    assert column_values(conn, project, "code") == ["P-1", "P-2"]
    apply_operations(conn, [op], confirm=True)
    assert not has_table(conn, project.table_name)
    op.backwards(build_context(conn))
    assert has_table(conn, project.table_name)
    assert column_values(conn, project, "code") == []


def test_drop_entity_refused_while_another_table_references_it(conn: sa.Connection) -> None:
    entities = parse_all(sample_docs())
    create(conn, *entities.values())
    project = entities["sample.project"]
    op = DropEntity("sample", "project", project.table_name, dict(project.document))
    with pytest.raises(MigrationError, match="referenced by sample__day_sheet.project"):
        apply_operations(conn, [op], confirm=True)
    assert has_table(conn, project.table_name)


def test_rename_entity_keeps_rows_indexes_and_references(conn: sa.Connection) -> None:
    entities = parse_all(sample_docs())
    project, sheet = entities["sample.project"], entities["sample.day_sheet"]
    create(conn, *entities.values())
    project_id = insert(conn, project, code="P-1", name="One", start_date=dt.date(2024, 5, 1))
    insert(conn, sheet, project=project_id, work_date=dt.date(2024, 5, 2))
    op = RenameEntity("sample", "project", "site", "sample__project", "sample__site", {})
    ctx = build_context(conn)
    op.forwards(ctx)
    assert not has_table(conn, "sample__project")
    assert conn.execute(sa.text("SELECT code FROM sample__site")).scalars().all() == ["P-1"]
    names = {i["name"] for i in sa.inspect(conn).get_indexes("sample__site")}
    assert "ix_sample__site_start_date" in names
    fks = sa.inspect(conn).get_foreign_keys("sample__day_sheet")
    assert {fk["referred_table"] for fk in fks} == {"sample__site"}
    fresh = CreateEntity("sample", "project", "sample__project", dict(project.document))
    fresh.forwards(ctx)  # no index, key or sequence name of the renamed table is in the way
    fresh.backwards(ctx)
    op.backwards(ctx)
    assert column_values(conn, project, "code") == ["P-1"]
    assert column_values(conn, sheet, "project") == [project_id]
    conn.commit()  # deferred or not, every reference must still hold


# -- field operations ---------------------------------------------------------------------------
def test_add_field_forwards_and_backwards(conn: sa.Connection) -> None:
    project = parse_all(sample_docs())["sample.project"]
    create(conn, project)
    budget = {"x-formwork": {"type": "money", "label": LABEL, "indexed": True}}
    op = field_op(AddField, project, "budget", budget)
    assert op.describe() == "Add field sample.project.budget (money)"
    ctx = build_context(conn)
    op.forwards(ctx)
    assert "budget" in columns(conn, project.table_name)
    assert ("budget", False) in indexes(conn, project.table_name)
    op.backwards(ctx)
    assert "budget" not in columns(conn, project.table_name)


def test_add_reference_and_unique_fields_create_their_constraints(conn: sa.Connection) -> None:
    entities = parse_all(sample_docs())
    project, thing = entities["sample.project"], widget()
    create(conn, project, thing)
    client = {"x-formwork": {"type": "reference", "entity": "project", "label": LABEL}}
    serial = {"maxLength": 30, "x-formwork": {"type": "string", "label": LABEL, "unique": True}}
    ops = [field_op(AddField, thing, "client", client), field_op(AddField, thing, "serial", serial)]
    ctx = build_context(conn)
    for op in ops:
        op.forwards(ctx)
    fks = sa.inspect(conn).get_foreign_keys(thing.table_name)
    assert [(fk["constrained_columns"], fk["referred_table"]) for fk in fks] == [
        (["client"], "sample__project")
    ]
    assert {("client", False), ("serial", True)} <= indexes(conn, thing.table_name)
    for op in reversed(ops):
        op.backwards(ctx)
    assert not {"client", "serial"} & set(columns(conn, thing.table_name))
    assert sa.inspect(conn).get_foreign_keys(thing.table_name) == []


def test_remove_field_counts_values_and_backwards_readds_it_empty(conn: sa.Connection) -> None:
    project = parse_all(sample_docs())["sample.project"]
    create(conn, project)
    for code, value in (("A", Decimal("10.50")), ("B", None), ("C", Decimal("3.00"))):
        insert(conn, project, code=code, contract_value=value)
    op = field_op(RemoveField, project, "contract_value", schema_of(project, "contract_value"))
    expected = "remove field sample.project.contract_value: 2 non-empty values would be lost"
    assert op.losses(conn) == [expected]
    with pytest.raises(DestructiveChange) as refused:
        apply_operations(conn, [op])
    assert refused.value.losses == [expected]
    assert column_values(conn, project, "contract_value") == [
        Decimal("10.50"),
        None,
        Decimal("3.00"),
    ]
    apply_operations(conn, [op], confirm=True)
    assert "contract_value" not in columns(conn, project.table_name)
    assert column_values(conn, project, "code") == ["A", "B", "C"]
    op.backwards(build_context(conn))
    assert column_values(conn, project, "contract_value") == [None, None, None]


def test_rename_field_keeps_values_and_renames_its_index(conn: sa.Connection) -> None:
    project = parse_all(sample_docs())["sample.project"]
    create(conn, project)
    insert(conn, project, code="A", start_date=dt.date(2024, 2, 29))
    op = field_op(RenameField, project, "start_date", "begun_on", schema_of(project, "start_date"))
    ctx = build_context(conn)
    op.forwards(ctx)
    assert "start_date" not in columns(conn, project.table_name)
    rows = conn.execute(sa.text("SELECT begun_on FROM sample__project")).scalars().all()
    assert [str(v)[:10] for v in rows] == ["2024-02-29"]
    names = {i["name"] for i in sa.inspect(conn).get_indexes(project.table_name)}
    assert "ix_sample__project_begun_on" in names
    again = field_op(AddField, project, "start_date", schema_of(project, "start_date"))
    again.forwards(ctx)  # the old index name is free again
    again.backwards(ctx)
    op.backwards(ctx)
    assert column_values(conn, project, "start_date") == [dt.date(2024, 2, 29)]
    assert ("start_date", False) in indexes(conn, project.table_name)


WIDENINGS = [
    ("label", {"maxLength": 200}, "abc", "abc"),
    ("label", {"x-formwork": {"type": "text"}}, "abc", "abc"),
    (
        "qty",
        {"x-formwork": {"type": "decimal", "precision": 18, "scale": 4}},
        42,
        Decimal("42.0000"),
    ),
    (
        "price",
        {"x-formwork": {"type": "decimal", "precision": 14, "scale": 4}},
        Decimal("12345678.91"),
        Decimal("12345678.9100"),
    ),
    ("day", {"x-formwork": {"type": "datetime"}}, dt.date(2024, 3, 5), dt.datetime(2024, 3, 5)),
]


@pytest.mark.parametrize(("name", "change", "before", "after"), WIDENINGS)
def test_alter_field_widening_keeps_values(
    conn: sa.Connection, name: str, change: dict[str, Any], before: Any, after: Any
) -> None:
    old = widget()
    new_schema = copy.deepcopy(schema_of(old, name))
    new_schema.update({k: v for k, v in change.items() if k != "x-formwork"})
    new_schema["x-formwork"].update(change.get("x-formwork", {}))
    new = widget(**{name: new_schema})
    create(conn, old)
    insert(conn, old, **{name: before})
    insert(conn, old, **{name: None})
    [op] = detect({old.key: old}, {new.key: new})
    assert isinstance(op, AlterField)
    assert op.losses(conn) == []
    apply_operations(conn, [op])
    got = column_values(conn, new, name)
    if isinstance(after, dt.datetime):
        got = [v.replace(tzinfo=None) if v else v for v in got]  # SQLite hands back naive UTC
    assert got == [after, None]
    assert [str(v) for v in got[:1]] == [str(after)]  # exact digits, not only equal value
    op.backwards(build_context(conn))
    assert column_values(conn, old, name) == [before, None]


def test_alter_field_changes_the_column_type(conn: sa.Connection) -> None:
    old = widget()
    new = widget(label={"maxLength": 200, "x-formwork": {"type": "string", "label": LABEL}})
    create(conn, old)
    [op] = detect({old.key: old}, {new.key: new})
    assert (op.change, op.destructive) == ("widen", False)
    ctx = build_context(conn)
    op.forwards(ctx)
    assert columns(conn, old.table_name)["label"].length == 200
    op.backwards(ctx)
    assert columns(conn, old.table_name)["label"].length == 20


NARROWINGS = [
    (
        "label",
        {"maxLength": 5, "x-formwork": {"type": "string", "label": LABEL}},
        ["abcdefgh", "abc", "123456", None],
        ["abcde", "abc", "12345", None],
        "2 values longer than 5 characters would be truncated",
    ),
    (
        "price",
        {"x-formwork": {"type": "decimal", "precision": 6, "scale": 1, "label": LABEL}},
        [Decimal("12.34"), Decimal("123456.78"), Decimal("1.50"), Decimal("-0.25")],
        [Decimal("12.3"), None, Decimal("1.5"), Decimal("-0.3")],
        "3 values beyond NUMERIC(6, 1) would be rounded or cleared",
    ),
    (
        "label",
        {"x-formwork": {"type": "integer", "label": LABEL}},
        ["12", None, "x"],
        [None, None, None],
        "2 non-empty values would be cleared (the type changes from string to integer)",
    ),
    (
        "kind",
        {"x-formwork": {"type": "select", "label": LABEL, "options": _options("b")}},
        ["a", "b", None, "a"],
        [None, "b", None, None],
        "2 values with removed options (a) would be cleared",
    ),
    (
        "tags",
        {"x-formwork": {"type": "multi_select", "label": LABEL, "options": _options("y")}},
        [["x"], ["x", "y"], ["y"], None],
        [[], ["y"], ["y"], []],
        "2 values with removed options (x) would be cleared",
    ),
]


@pytest.mark.parametrize(("name", "schema", "before", "after", "phrase"), NARROWINGS)
def test_alter_field_narrowing_needs_confirmation_then_converts(
    conn: sa.Connection,
    name: str,
    schema: dict[str, Any],
    before: list[Any],
    after: list[Any],
    phrase: str,
) -> None:
    old, new = widget(), widget(**{name: schema})
    create(conn, old)
    stored = [old.field_map[name].kind.to_db(old.field_map[name], v) for v in before]
    for value in stored:
        insert(conn, old, **{name: value})
    [op] = detect({old.key: old}, {new.key: new})
    assert isinstance(op, AlterField) and op.destructive
    with pytest.raises(DestructiveChange) as refused:
        apply_operations(conn, [op])
    assert refused.value.losses == [f"alter field sample.widget.{name}: {phrase}"]
    assert column_values(conn, old, name) == stored
    apply_operations(conn, [op], confirm=True)
    field = new.field_map[name]
    assert [field.kind.from_db(field, v) for v in column_values(conn, new, name)] == after


def test_add_and_remove_plain_index(conn: sa.Connection) -> None:
    thing = widget()
    create(conn, thing)
    op = field_op(AddIndex, thing, "qty", False)
    ctx = build_context(conn)
    op.forwards(ctx)
    assert ("qty", False) in indexes(conn, thing.table_name)
    op.backwards(ctx)
    assert ("qty", False) not in indexes(conn, thing.table_name)
    assert isinstance(op.reverse(), RemoveIndex)


def test_unique_index_added_and_removed(conn: sa.Connection) -> None:
    thing = widget()
    create(conn, thing)
    insert(conn, thing, label="a")
    insert(conn, thing, label="b")
    op = field_op(AddIndex, thing, "label", True)
    assert op.describe() == "Add unique index on sample.widget.label"
    ctx = build_context(conn)
    op.forwards(ctx)
    assert ("label", True) in indexes(conn, thing.table_name)
    assert column_values(conn, thing, "label") == ["a", "b"]
    op.backwards(ctx)
    assert ("label", True) not in indexes(conn, thing.table_name)


def test_unique_index_refused_on_duplicates_naming_them(conn: sa.Connection) -> None:
    thing = widget()
    create(conn, thing)
    for label in ("dup", "one", "dup", None, None, "twice", "twice"):
        insert(conn, thing, label=label)
    op = field_op(AddIndex, thing, "label", True)
    with pytest.raises(MigrationError) as refused:
        apply_operations(conn, [op])
    message = str(refused.value)
    assert "duplicate values 'dup' (2 rows), 'twice' (2 rows)" in message
    assert "sample.widget.label" in message
    assert ("label", True) not in indexes(conn, thing.table_name)


# -- SQLite batch mode and foreign keys ---------------------------------------------------------
def test_recreating_a_referenced_table_keeps_rows_and_references(
    engine: sa.Engine, conn: sa.Connection
) -> None:
    entities = parse_all(sample_docs())
    project, sheet, line = (
        entities[f"sample.{n}"] for n in ("project", "day_sheet", "day_sheet_line")
    )
    create(conn, *entities.values())
    project_id = insert(conn, project, code="P-1", name="One", contract_value=Decimal("9.99"))
    sheet_id = insert(conn, sheet, project=project_id, work_date=dt.date(2024, 1, 2))
    insert(conn, line, parent_id=sheet_id, worker="Li", days=Decimal("0.5"))
    insert(conn, line, parent_id=sheet_id, worker="Wang", days=Decimal("1.0"))
    conn.commit()
    changed = copy.deepcopy(sample_docs())
    changed["project"]["properties"]["name"]["x-formwork"]["type"] = "text"  # table recreate
    changed["day_sheet"]["properties"]["location"]["maxLength"] = 20  # recreate, CASCADE child
    ops = detect(entities, parse_all(changed))
    assert [type(op).__name__ for op in ops] == ["AlterField", "AlterField"]
    apply_operations(conn, ops)
    conn.commit()
    assert column_values(conn, project, "name") == ["One"]
    assert column_values(conn, project, "contract_value") == [Decimal("9.99")]
    assert column_values(conn, sheet, "project") == [project_id]
    assert column_values(conn, line, "worker") == ["Li", "Wang"]
    assert column_values(conn, line, "days") == [Decimal("0.5"), Decimal("1.0")]
    if conn.dialect.name == "sqlite":
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with pytest.raises(sa.exc.IntegrityError):  # references are still enforced
        insert(conn, sheet, project=project_id + 100, work_date=dt.date(2024, 1, 3))
        conn.commit()
    conn.rollback()


# -- the autodetector ---------------------------------------------------------------------------
def test_detect_creates_referenced_tables_first_and_drops_them_last() -> None:
    entities = parse_all(sample_docs())
    created = detect({}, entities)
    assert [(type(op).__name__, op.entity) for op in created] == [
        ("CreateEntity", "project"),
        ("CreateEntity", "day_sheet"),
        ("CreateEntity", "day_sheet_line"),
    ]
    dropped = detect(entities, {})
    assert [op.entity for op in dropped] == ["day_sheet_line", "day_sheet", "project"]
    assert all(op.destructive for op in dropped)


def test_detect_field_and_entity_changes() -> None:
    docs = sample_docs()
    changed = copy.deepcopy(docs)
    props = changed["project"]["properties"]
    props["budget"] = {"x-formwork": {"type": "money", "label": LABEL}}
    props["title"] = props.pop("name")
    props["title"]["x-formwork"]["renamed_from"] = "name"
    props["title"]["maxLength"] = 150
    changed["project"]["x-formwork"]["search"] = ["code", "title"]
    props["code"]["maxLength"] = 40
    del props["tags"]
    changed["site"] = {
        "type": "object",
        "x-formwork": {"name": "site", "label": LABEL},
        "properties": {
            "project": {"x-formwork": {"type": "reference", "entity": "project", "label": LABEL}}
        },
    }
    ops = detect(parse_all(docs), parse_all(changed))
    assert describe_plan(ops) == [
        "Create entity sample.site (table sample__site)",
        "Rename field sample.project.name to title",
        "Alter field sample.project.code (string VARCHAR(20) → string VARCHAR(40))",
        "Alter field sample.project.title (string VARCHAR(100) → string VARCHAR(150))",
        "Remove field sample.project.tags (multi_select)  [destructive]",
        "Add field sample.project.budget (money)",
    ]
    assert ops[2].change == "widen"


def test_detect_entity_rename_and_index_flags() -> None:
    docs = sample_docs()
    changed = copy.deepcopy(docs)
    changed["site"] = changed.pop("project")
    changed["site"]["x-formwork"].update(name="site", renamed_from="project")
    props = changed["site"]["properties"]
    props["code"]["x-formwork"]["unique"] = False
    props["name"]["x-formwork"]["unique"] = True
    props["start_date"]["x-formwork"]["indexed"] = False
    changed["day_sheet"]["properties"]["project"]["x-formwork"]["entity"] = "site"
    ops = detect(parse_all(docs), parse_all(changed))
    assert describe_plan(ops) == [
        "Rename entity sample.project to sample.site",  # day_sheet.project follows it
        "Remove unique index on sample.site.code",
        "Remove index on sample.site.start_date",
        "Add unique index on sample.site.name",
    ]


def test_detect_ignores_changes_that_do_not_touch_storage() -> None:
    docs = sample_docs()
    changed = copy.deepcopy(docs)
    project = changed["project"]
    project["x-formwork"]["label"] = {"zh-CN": "工程", "en": "Job"}
    project["properties"]["status"]["x-formwork"]["options"] += _options("paused")
    project["properties"]["name"]["x-formwork"]["help"] = {"zh-CN": "帮助", "en": "Help"}
    changed["day_sheet_line"]["properties"]["amount"]["x-formwork"]["label"] = LABEL
    assert detect(parse_all(docs), parse_all(changed)) == []


def test_every_operation_round_trips_through_json() -> None:
    project = parse_all(sample_docs())["sample.project"]
    code = schema_of(project, "code")
    ops: list[Operation] = [
        CreateEntity("sample", "project", "sample__project", dict(project.document)),
        DropEntity("sample", "project", "sample__project", dict(project.document)),
        RenameEntity("sample", "project", "site", "sample__project", "sample__site", {}),
        field_op(AddField, project, "code", code),
        field_op(RemoveField, project, "code", code),
        field_op(RenameField, project, "code", "ref", code),
        field_op(AlterField, project, "code", code, {**code, "maxLength": 9}, "narrow"),
        field_op(AddIndex, project, "code", True),
        field_op(RemoveIndex, project, "code", False),
    ]
    for op in ops:
        data = json.loads(json.dumps(op.to_json()))
        assert data["op"] == type(op).__name__
        assert data["pack"] == "sample" and "sample__project" in json.dumps(data)
        assert Operation.from_json(data) == op
    with pytest.raises(MigrationError, match="unknown schema operation"):
        Operation.from_json({"op": "Nope"})


# -- the executor -------------------------------------------------------------------------------
def test_failing_migration_leaves_the_schema_untouched(conn: sa.Connection) -> None:
    thing = widget()
    create(conn, thing)
    insert(conn, thing, label="same")
    insert(conn, thing, label="same")
    conn.commit()
    note = {"x-formwork": {"type": "text", "label": LABEL}}
    ops = [field_op(AddField, thing, "note", note), field_op(AddIndex, thing, "label", True)]
    with pytest.raises(MigrationError, match="duplicate values 'same'"):
        apply_operations(conn, ops)
    assert "note" not in columns(conn, thing.table_name)  # rolled back, transaction usable
    conn.rollback()
    assert "note" not in columns(conn, thing.table_name)


def test_ddl_is_transactional_until_the_caller_commits(engine: sa.Engine) -> None:
    project = parse_all(sample_docs())["sample.project"]
    with engine.connect() as conn:
        create(conn, project)
        assert has_table(conn, project.table_name)
        conn.rollback()
    with engine.connect() as conn:
        assert not has_table(conn, project.table_name)


def test_losses_are_measured_after_the_steps_before_them(conn: sa.Connection) -> None:
    thing = widget()
    create(conn, thing)
    insert(conn, thing, label="a long label")
    short = {"maxLength": 3, "x-formwork": {"type": "string", "label": LABEL}}
    ops = [
        field_op(RenameField, thing, "label", "title", schema_of(thing, "label")),
        field_op(AlterField, thing, "title", schema_of(thing, "label"), short, "narrow"),
    ]
    expected = [
        "alter field sample.widget.title: 1 value longer than 3 characters would be truncated"
    ]
    assert plan_losses(conn, ops) == expected
    assert "label" in columns(conn, thing.table_name)  # the rehearsal was rolled back
    apply_operations(conn, ops, confirm=True)
    assert conn.execute(sa.text("SELECT title FROM sample__widget")).scalars().all() == ["a l"]


def test_revert_operations_undoes_a_plan(conn: sa.Connection) -> None:
    docs = sample_docs()
    old = parse_all({"project": docs["project"]})
    changed = copy.deepcopy(docs["project"])
    changed["properties"]["budget"] = {"x-formwork": {"type": "money", "label": LABEL}}
    changed["properties"]["name"]["maxLength"] = 300
    create(conn, *old.values())
    insert(conn, old["sample.project"], code="A", name="Alpha")
    ops = detect(old, parse_all({"project": changed}))
    apply_operations(conn, ops)
    assert {"budget"} <= set(columns(conn, "sample__project"))
    revert_operations(conn, ops)
    assert "budget" not in columns(conn, "sample__project")
    assert columns(conn, "sample__project")["name"].length == 100
    assert column_values(conn, old["sample.project"], "name") == ["Alpha"]


def test_alter_field_moving_a_reference_clears_it_and_moves_the_foreign_key(
    conn: sa.Connection,
) -> None:
    project = parse_all(sample_docs())["sample.project"]
    ref = {"x-formwork": {"type": "reference", "entity": "project", "label": LABEL}}
    old = widget(owner=ref)
    new = widget(owner={"x-formwork": {"type": "user", "label": LABEL}})
    create(conn, project, old)
    insert(conn, old, owner=insert(conn, project, code="A"))
    insert(conn, old, owner=None)
    [op] = detect({old.key: old}, {new.key: new})
    assert op.losses(conn) == [
        "alter field sample.widget.owner: 1 non-empty value would be cleared "
        "(the type changes from reference to user)"
    ]
    apply_operations(conn, [op], confirm=True)
    fks = sa.inspect(conn).get_foreign_keys(old.table_name)
    assert [(fk["constrained_columns"], fk["referred_table"]) for fk in fks] == [
        (["owner"], "fw_users")
    ]
    assert column_values(conn, new, "owner") == [None, None]
    assert ("owner", False) in indexes(conn, old.table_name)
    op.backwards(build_context(conn))
    fks = sa.inspect(conn).get_foreign_keys(old.table_name)
    assert [fk["referred_table"] for fk in fks] == ["sample__project"]


def test_recreating_a_self_referencing_table_keeps_its_links(conn: sa.Connection) -> None:
    parent = {"x-formwork": {"type": "reference", "entity": "widget", "label": LABEL}}
    old = widget(parent=parent)
    new = widget(parent=parent, label={"x-formwork": {"type": "text", "label": LABEL}})
    create(conn, old)
    root = insert(conn, old, label="root")
    insert(conn, old, label="leaf", parent=root)
    before = indexes(conn, old.table_name)
    apply_operations(conn, detect({old.key: old}, {new.key: new}))
    conn.commit()
    assert column_values(conn, new, "parent") == [None, root]
    assert column_values(conn, new, "label") == ["root", "leaf"]
    assert indexes(conn, old.table_name) == before
    assert insert(conn, new, label="next", parent=root) > root + 1  # ids still generated


def test_an_irreversible_step_stops_a_revert_before_anything_runs(conn: sa.Connection) -> None:
    class Opaque(Operation):
        def forwards(self, ctx: Any) -> None:
            raise AssertionError("must not run")

        def describe(self) -> str:
            return "Do something opaque"

    thing = widget()
    create(conn, thing)
    add = field_op(AddField, thing, "note", {"x-formwork": {"type": "text", "label": LABEL}})
    apply_operations(conn, [add])
    with pytest.raises(IrreversibleOperation, match="Do something opaque: cannot be reversed"):
        revert_operations(conn, [Opaque(), add])
    assert "note" in columns(conn, thing.table_name)


def test_works_with_sqlalchemys_pysqlite_transaction_recipe(tmp_path: Path) -> None:
    if os.environ.get("FORMWORK_TEST_DATABASE_URL"):
        pytest.skip("SQLite only")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'recipe.db'}")

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver stops managing transactions
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    project = parse_all(sample_docs())["sample.project"]
    with engine.connect() as conn:
        Base.metadata.create_all(conn)
        conn.commit()
        create(conn, project)
        conn.rollback()
        assert not has_table(conn, project.table_name)
    engine.dispose()
