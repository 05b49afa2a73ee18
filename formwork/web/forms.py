"""Posted forms to record payloads and back: what each input holds, the JSON the runtime
validates, and the runtime's per-field errors placed next to their inputs.

Input names: a field is `name`; a line-item cell is `<grid>-<row key>-<field>` with the
row's id in `<grid>-<row key>-id`. Rows keep the order in which the browser sent them, so
reordering rows in the page reorders the line items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from formwork.runtime import reference_filters
from formwork.runtime.definitions import FieldDef
from formwork.runtime.errors import FieldError
from formwork.runtime.params import parse_id
from formwork.runtime.registry import EntityMeta
from formwork.runtime.save_context import SaveContext
from formwork.web.layouts import FormLayout
from formwork.web.widgets import WidgetError, widget


@dataclass
class FormState:
    """What the form shows: raw input values, line-item rows, and errors by input."""

    raw: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    form_errors: list[str] = field(default_factory=list)
    computed: dict[str, Any] = field(default_factory=dict)

    def add_errors(self, errors: Iterable[FieldError], locale: str) -> None:
        """Place each error next to its input (unknown places go to the form's top)."""
        for error in errors:
            key = pointer_key(error.pointer)
            head = key.split(".")[0]
            if key and (head in self.raw or head in self.rows):
                self.errors.setdefault(key, []).append(error.message(locale))
            else:
                label = f"{error.pointer}: " if error.pointer not in ("", "/") else ""
                self.form_errors.append(label + error.message(locale))


def pointer_key(pointer: str) -> str:
    """Return `lines.2.days` for the JSON pointer `/lines/2/days`."""
    return ".".join(p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/"))


def editable(fd: FieldDef) -> bool:
    """Return True when users type the field's value in a form."""
    return not fd.read_only and not fd.hidden


def state_from_record(meta: EntityMeta, layout: FormLayout, record: Mapping[str, Any]) -> FormState:
    """Return the form state showing a stored record (or defaults for a new one)."""
    state = FormState()
    for placed in layout.fields():
        fd = placed.field
        value = record.get(fd.name, fd.default)
        if fd.kind.holds_rows:
            child = _child(meta, fd.name)
            state.rows[fd.name] = [
                _row_state(child, row, str(i)) for i, row in enumerate(value or [])
            ]
        else:
            state.raw[fd.name] = widget(fd).form_value(fd, value)
            if fd.read_only:
                state.computed[fd.name] = value
    return state


def _row_state(child: EntityMeta, row: Mapping[str, Any], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {"_key": key, "id": row.get("id") or ""}
    for fd in child.entity.fields:
        out[fd.name] = widget(fd).form_value(fd, row.get(fd.name))
        # Kept for every field: a column the user's role may not set is shown as its value.
        out[f"_computed_{fd.name}"] = row.get(fd.name)
    return out


def _child(meta: EntityMeta, name: str) -> EntityMeta:
    return dict(meta.children)[name]


def parse_form(
    meta: EntityMeta, layout: FormLayout, form: MultiDict[str, str]
) -> tuple[dict[str, Any], FormState, list[FieldError]]:
    """Return the payload for the runtime, the state to redisplay, and unreadable inputs."""
    payload: dict[str, Any] = {}
    state = FormState()
    problems: list[FieldError] = []
    for placed in layout.fields():
        fd = placed.field
        if fd.kind.holds_rows:
            rows, row_states, row_problems = _parse_rows(_child(meta, fd.name), fd.name, form)
            payload[fd.name], state.rows[fd.name] = rows, row_states
            problems += row_problems
            continue
        state.raw[fd.name] = raw = widget(fd).read(form, fd.name)
        if not editable(fd) or widget(fd).macro == "attachment":
            continue
        try:
            payload[fd.name] = widget(fd).parse(fd, raw)
        except WidgetError as exc:
            problems.append(FieldError(f"/{fd.name}", exc.code, exc.params))
    return payload, state, problems


def row_keys(form: MultiDict[str, str], grid: str) -> list[str]:
    """Return the row keys of a grid in the order the browser sent them."""
    keys: list[str] = []
    prefix = f"{grid}-"
    for name in form:
        if name.startswith(prefix):
            key = name[len(prefix) :].split("-", 1)[0]
            if key not in keys:
                keys.append(key)
    return keys


def _parse_rows(
    child: EntityMeta, grid: str, form: MultiDict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[FieldError]]:
    rows, states, problems = [], [], []
    for position, key in enumerate(row_keys(form, grid)):
        base = f"{grid}-{key}-"
        raw_id = form.get(base + "id", "")
        line_id = parse_id(raw_id)
        row: dict[str, Any] = {"id": line_id} if line_id is not None else {}
        state: dict[str, Any] = {"_key": key, "id": raw_id}
        for fd in child.entity.fields:
            state[fd.name] = raw = widget(fd).read(form, base + fd.name)
            if not editable(fd):
                continue
            try:
                row[fd.name] = widget(fd).parse(fd, raw)
            except WidgetError as exc:
                problems.append(FieldError(f"/{grid}/{position}/{fd.name}", exc.code, exc.params))
        rows.append(row)
        states.append(state)
    return rows, states, problems


def without(payload: dict[str, Any], problems: list[FieldError]) -> dict[str, Any]:
    """Return the payload without the values whose inputs could not be read."""
    out = dict(payload)
    for problem in problems:
        parts = pointer_key(problem.pointer).split(".")
        if len(parts) == 1:
            out.pop(parts[0], None)
        elif len(parts) == 3 and parts[1].isdigit():
            rows = out.get(parts[0]) or []
            if int(parts[1]) < len(rows):
                rows[int(parts[1])].pop(parts[2], None)
    return out


def merge_errors(first: list[FieldError], then: list[FieldError]) -> list[FieldError]:
    """Return `first` plus those of `then` at pointers `first` does not already name."""
    taken = {e.pointer for e in first}
    return first + [e for e in then if e.pointer not in taken]


def lookup_values(
    meta: EntityMeta,
    owner: EntityMeta,
    fd: FieldDef,
    grid: str | None,
    row: str,
    args: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the values a reference field's filter reads — (this record's, the parent's) —
    from the inputs a look-up request sent (`<grid>-<row>-<name>` for a line's own field).
    An input that cannot be read is left out, so its term is not applied."""
    own: dict[str, Any] = {}
    parent: dict[str, Any] = {}
    for term in reference_filters.terms(fd):
        if term.scope == reference_filters.CONSTANT:
            continue
        line_field = term.scope == reference_filters.SELF and grid
        holder = owner if term.scope == reference_filters.SELF else meta
        name = f"{grid}-{row}-{term.source}" if line_field else term.source
        source = holder.entity.get_field(term.source)
        if source is None:
            continue
        try:
            value = widget(source).parse(source, args.get(name, ""))
        except WidgetError:
            continue
        (own if term.scope == reference_filters.SELF else parent)[term.source] = value
    return own, parent


def lookup_include(fd: FieldDef, grid: str | None = None, row: str = "") -> str:
    """Return the CSS selector of the inputs a reference's look-up sends along (its filter's
    sources), or "" when it has none."""
    names = []
    for term in reference_filters.terms(fd):
        if term.scope == reference_filters.CONSTANT:
            continue
        line_field = term.scope == reference_filters.SELF and grid
        names.append(f"{grid}-{row}-{term.source}" if line_field else term.source)
    return ", ".join(f"[name={name}]" for name in names)  # names are identifiers


def preview_computed(
    meta: EntityMeta, payload: Mapping[str, Any], ctx: SaveContext
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Return computed values of the record and of each line for the values typed so far.

    Each value is computed on its own, so one unreadable input blanks only what uses it."""
    values = _converted(meta, payload)
    lines: dict[str, list[dict[str, Any]]] = {}
    for name, child in meta.children:
        computed_rows = []
        for raw_row in payload.get(name) or []:
            row = _converted(child, raw_row)
            row.update(_computed(child, row, ctx))
            computed_rows.append(row)
        values[name] = lines[name] = computed_rows
    return _computed(meta, values, ctx), lines


def _converted(meta: EntityMeta, raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {f.name: None for f in meta.entity.stored_fields()}
    for fd in meta.entity.fields:
        if fd.kind.holds_rows or fd.read_only or raw.get(fd.name) in (None, ""):
            continue
        try:
            out[fd.name] = meta.converter.fields[fd.name].deserialize(raw[fd.name])
        except Exception:  # noqa: BLE001  (marshmallow raises several kinds)
            out[fd.name] = None
    return out


def _computed(meta: EntityMeta, record: dict[str, Any], ctx: SaveContext) -> dict[str, Any]:
    out = {}
    for fd in meta.entity.fields:
        if fd.kind.system_written and not fd.kind.assigned_on_insert:
            try:
                value = fd.kind.compute(fd, record, ctx, False)
                out[fd.name] = fd.kind.from_db(fd, fd.kind.to_db(fd, value))
            except Exception:  # noqa: BLE001  (half-typed input: show the value as unknown)
                out[fd.name] = None
            record[fd.name] = out[fd.name]
    return out
