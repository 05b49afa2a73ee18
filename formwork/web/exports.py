"""Export the records of the current filter to Excel (.xlsx) or CSV.

Cells are written as values, never as formulas: text starting with = + - @ is prefixed with
an apostrophe, so a hostile value cannot run in the spreadsheet (CSV/formula injection)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Response, stream_with_context
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from formwork.context import clock, get_session, registry
from formwork.runtime.query import Query
from formwork.runtime.registry import EntityMeta
from formwork.runtime.writing import dump_record, from_row
from formwork.web.context import lookups_for, principal
from formwork.web.i18n import current_locale
from formwork.web.layouts import ListLayout
from formwork.web.widgets import widget

BATCH = 1000
EXPORT_LIMIT = 100_000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_rows(
    meta: EntityMeta,
    layout: ListLayout,
    params: Mapping[str, Sequence[str]],
    extra: Sequence[Any],
) -> Iterator[list[Any]]:
    """Yield the header, then one list of cell values per record (at most EXPORT_LIMIT)."""
    locale = current_locale()
    who = principal()
    shut = who.hidden_fields(meta.entity.key)
    fields = [
        f for f in meta.entity.fields if f.kind.stored and not f.hidden and f.name not in shut
    ]
    query = Query(registry(), meta, who)
    where = query.conditions(params) + list(extra) + query.restrict("export")
    order = query.order_by((params.get("sort") or [""])[0])
    query.raise_errors()
    statement = (
        sa.select(meta.table)
        .select_from(query.from_clause())
        .where(*where)
        .order_by(*order)
        .limit(EXPORT_LIMIT)
    )
    yield ["id", *(f.label(locale) for f in fields)]
    result = get_session().execute(statement.execution_options(yield_per=BATCH)).mappings()
    for batch in result.partitions(BATCH):
        items = [dump_record(meta, from_row(meta, dict(row)), {}) for row in batch]
        lookups = lookups_for(meta, items)
        for item in items:
            yield [item["id"], *(widget(f).export(f, item.get(f.name), lookups) for f in fields)]


def safe_text(value: Any) -> Any:
    """Return text that a spreadsheet will not take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def export_response(
    meta: EntityMeta,
    layout: ListLayout,
    params: Mapping[str, Sequence[str]],
    extra: Sequence[Any],
    fmt: str,
) -> Response:
    """Return the download of the filtered records in `fmt` (xlsx or csv)."""
    rows = export_rows(meta, layout, params, extra)
    header = next(rows)  # runs the query now, so a bad filter fails before streaming
    stamp = clock().today().strftime("%Y%m%d")
    name = f"{meta.entity.name}-{stamp}.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        body = stream_with_context(_csv_lines(header, rows))
        return Response(body, mimetype="text/csv; charset=utf-8", headers=disposition)
    data = _xlsx(meta.entity.label(current_locale()), header, rows)
    mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(data, mimetype=mimetype, headers=disposition)


def _csv_lines(header: list[Any], rows: Iterator[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # Excel opens UTF-8 CSV correctly only with a BOM
    writer.writerow([safe_text(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else safe_text(_csv_value(v)) for v in row])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    return value


def _xlsx(title: str, header: list[Any], rows: Iterator[list[Any]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=_sheet_title(title))
    sheet.append([_cell(sheet, h) for h in header])
    for row in rows:
        sheet.append([_cell(sheet, v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(sheet: Any, value: Any) -> Any:
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        # Assigning text starting with "=" makes openpyxl write a formula; force plain text.
        cell.data_type = "s"
    elif isinstance(value, dt.datetime):
        cell.number_format = "yyyy-mm-dd hh:mm"
    elif isinstance(value, dt.date):
        cell.number_format = "yyyy-mm-dd"
    elif isinstance(value, Decimal):
        cell.number_format = "#,##0.00"
    return cell


def _sheet_title(title: str) -> str:
    cleaned = "".join(c for c in title if c not in "[]:*?/\\")
    return (cleaned or "Sheet")[:31]
