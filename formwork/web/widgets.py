"""Form widgets and value renderers, one small class per field type.

The registry is keyed by the field type's CLASS (looked up along its MRO), so the runtime's
field types stay free of web concerns and a new field type without a widget still gets the
plain text one. Each widget knows: the Jinja macro that draws its input, how a posted form
value becomes the JSON value the runtime validates, how a JSON value shows in a list, a
detail page and an export, and its filter-bar kind. (How a spreadsheet cell becomes a value
is the kernel's: formwork/runtime/imports/cells.py.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from flask import url_for
from flask_babel import gettext as _
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from formwork.runtime.definitions import FieldDef
from formwork.runtime.fields import FieldType
from formwork.runtime.fields.choice import MultiSelectType, SelectType, option_label
from formwork.runtime.fields.relation import ChildrenType, ReferenceType, UserType
from formwork.runtime.fields.scalar import (
    BooleanType,
    DateTimeType,
    DateType,
    DecimalType,
    IntegerType,
    MoneyType,
    PercentType,
    StringType,
    TextType,
)
from formwork.runtime.fields.special import AttachmentType, AutoNumberType, ComputedType
from formwork.runtime.imports.cells import TRUE_WORDS, clean_number
from formwork.runtime.params import parse_id
from formwork.web import i18n


class WidgetError(ValueError):
    """A form value the widget cannot read; `code` is a runtime message code."""

    def __init__(self, code: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.params = dict(params or {})


@dataclass
class Lookups:
    """What rendering needs beyond the values: titles of references and names of users."""

    titles: dict[str, dict[int, str]] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)


class Widget:
    """Plain one-line text: the fallback for every field type."""

    macro: ClassVar[str] = "text"
    filter: ClassVar[str | None] = "text"

    def form_value(self, fd: FieldDef, value: Any) -> Any:
        """Return what the input shows for a JSON value."""
        return "" if value is None else str(value)

    def read(self, form: MultiDict[str, str], name: str) -> Any:
        """Return the raw posted value of the input(s) named `name`."""
        return form.get(name, "")

    def parse(self, fd: FieldDef, raw: Any) -> Any:
        """Return the JSON value for a raw posted value (raise WidgetError)."""
        return raw if raw != "" else None

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the value as shown in lists and detail pages (text or safe markup)."""
        return "" if value is None else str(value)

    def export(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the value for a spreadsheet cell."""
        shown = self.display(fd, value, lookups)
        return str(shown.striptags()) if isinstance(shown, Markup) else shown

    def attrs(self, fd: FieldDef) -> dict[str, Any]:
        """Return extra values the input's macro uses (limits, steps, currency)."""
        limit = fd.schema.get("maxLength")
        return {"maxlength": limit} if limit else {}


class TextAreaWidget(Widget):
    """Multi-line text; lists show the first 80 characters."""

    macro = "textarea"

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the text, cut to 80 characters."""
        text = "" if value is None else str(value)
        return text if len(text) <= 80 else text[:79] + "…"

    def export(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the whole text."""
        return "" if value is None else str(value)


class IntegerWidget(Widget):
    """A whole number; typed with or without thousands separators."""

    macro = "integer"
    filter = "number_range"

    def parse(self, fd: FieldDef, raw: Any) -> Any:
        """Return an int (separators removed)."""
        text = clean_number(raw)
        if text == "":
            return None
        try:
            return int(text)
        except ValueError:
            raise WidgetError("integer") from None

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the number with grouping."""
        return i18n.display_number(value, 0)

    def export(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the int itself."""
        return value


class DecimalWidget(Widget):
    """An exact decimal typed as text (inputmode=decimal); separators are allowed."""

    macro = "decimal"
    filter = "number_range"

    def scale(self, fd: FieldDef) -> int:
        """Return the number of places after the point."""
        kind = fd.kind.result(fd) if isinstance(fd.kind, ComputedType) else fd.kind
        return kind.scale(fd) if isinstance(kind, DecimalType) else 2

    def parse(self, fd: FieldDef, raw: Any) -> Any:
        """Return the decimal as text (the runtime converts it exactly)."""
        text = clean_number(raw)
        if text == "":
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise WidgetError("decimal") from None
        if not number.is_finite():
            raise WidgetError("decimal")
        return text

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the number with grouping at the field's scale."""
        return i18n.display_number(value, self.scale(fd))

    def export(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return a Decimal (exact in the spreadsheet's text, a number in Excel)."""
        return None if value is None else Decimal(str(value))

    def attrs(self, fd: FieldDef) -> dict[str, Any]:
        """Return the scale (the grid's running totals round to it)."""
        return {"scale": self.scale(fd)}


class MoneyWidget(DecimalWidget):
    """Money: thousands separators while typing and the field's currency beside the input."""

    macro = "money"

    def currency(self, fd: FieldDef) -> str:
        """Return the field's currency code."""
        kind = fd.kind.result(fd) if isinstance(fd.kind, ComputedType) else fd.kind
        return kind.currency(fd) if isinstance(kind, MoneyType) else "CNY"

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the amount with currency, as the locale writes it."""
        return i18n.display_money(value, self.currency(fd))

    def form_value(self, fd: FieldDef, value: Any) -> Any:
        """Return the amount with thousands separators."""
        return "" if value in (None, "") else i18n.display_number(value, self.scale(fd))

    def attrs(self, fd: FieldDef) -> dict[str, Any]:
        """Return the currency code and symbol."""
        code = self.currency(fd)
        return {**super().attrs(fd), "currency": code, "symbol": i18n.currency_symbol(code)}


class PercentWidget(DecimalWidget):
    """A percentage on a 0–100 scale."""

    macro = "percent"

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the number followed by %."""
        return "" if value is None else i18n.display_number(value, self.scale(fd)) + "%"


class DateWidget(Widget):
    """A date with the browser's date picker."""

    macro = "date"
    filter = "date_range"

    def parse(self, fd: FieldDef, raw: Any) -> Any:
        """Return the ISO date."""
        text = str(raw).strip()
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text.replace("/", "-")).isoformat()
        except ValueError:
            raise WidgetError("date") from None

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the date as the locale writes it."""
        return i18n.display_date(value)

    def export(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return a date object (a real date cell in Excel)."""
        return None if not value else dt.date.fromisoformat(value)


class DateTimeWidget(DateWidget):
    """A moment entered in the display time zone (datetime-local), stored in UTC."""

    macro = "datetime"

    def form_value(self, fd: FieldDef, value: Any) -> Any:
        """Return local `YYYY-MM-DDTHH:MM` for the input."""
        moment = _moment(value)
        if moment is None:
            return ""
        return moment.astimezone(i18n.display_zone()).strftime("%Y-%m-%dT%H:%M")

    def parse(self, fd: FieldDef, raw: Any) -> Any:
        """Return the ISO moment with the display zone's offset."""
        text = str(raw).strip()
        if not text:
            return None
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise WidgetError("datetime") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=i18n.display_zone())
        return moment.isoformat()

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the moment in the display zone."""
        return i18n.display_datetime(value)

    def export(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return a naive local datetime (Excel has no time zones)."""
        moment = _moment(value)
        return (
            None if moment is None else moment.astimezone(i18n.display_zone()).replace(tzinfo=None)
        )


class BooleanWidget(Widget):
    """A check box (or a yes/no select in the filter bar)."""

    macro = "boolean"
    filter = "boolean"

    def form_value(self, fd: FieldDef, value: Any) -> Any:
        """Return "1" when true."""
        return "1" if value else ""

    def read(self, form: MultiDict[str, str], name: str) -> Any:
        """Return "1" when the box was ticked (a hidden empty input precedes it)."""
        return "1" if any(v.lower() in TRUE_WORDS for v in form.getlist(name)) else ""

    def parse(self, fd: FieldDef, raw: Any) -> Any:
        """Return True when the box was ticked."""
        return str(raw).lower() in TRUE_WORDS

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return yes or no in the locale."""
        return "" if value is None else (_("Yes") if value else _("No"))


class SelectWidget(Widget):
    """One option from a drop-down list."""

    macro = "select"
    filter = "select"

    def options(self, fd: FieldDef, locale: str) -> list[tuple[str, str]]:
        """Return (value, label) pairs in the locale."""
        return [(str(o["value"]), option_label(fd, o["value"], locale)) for o in fd.opt("options")]

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the option's label."""
        return "" if value is None else option_label(fd, value, i18n.current_locale())


class MultiSelectWidget(SelectWidget):
    """Several options as a group of check boxes."""

    macro = "multi_select"

    def form_value(self, fd: FieldDef, value: Any) -> Any:
        """Return the list of chosen values."""
        return list(value or [])

    def read(self, form: MultiDict[str, str], name: str) -> Any:
        """Return every ticked value."""
        return form.getlist(name)

    def parse(self, fd: FieldDef, raw: Any) -> Any:
        """Return the list of values (empty list when none)."""
        return [v for v in (raw if isinstance(raw, list) else [raw]) if v]

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the labels joined by commas."""
        locale = i18n.current_locale()
        return ", ".join(option_label(fd, v, locale) for v in value or [])


class ReferenceWidget(Widget):
    """A record of another entity, picked by typing part of its title (htmx look-up)."""

    macro = "reference"
    filter = "reference"

    def parse(self, fd: FieldDef, raw: Any) -> Any:
        """Return the record id."""
        text = str(raw).strip()
        if not text:
            return None
        found = parse_id(text)
        if found is None:  # '²'.isdigit() is true, yet int('²') raises; 20 digits overflow
            raise WidgetError("integer")
        return found

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return a link to the referenced record, named by its title."""
        if value is None:
            return ""
        title = lookups.titles.get(fd.name, {}).get(value, f"#{value}")
        target = lookups.targets.get(fd.name)
        if target is None:
            return title
        pack, _dot, name = target.partition(".")
        href = url_for("web.detail", pack=pack, entity=name, record_id=value)
        return Markup('<a href="{}">{}</a>').format(href, title)


class UserWidget(ReferenceWidget):
    """A platform user, from a drop-down of active users."""

    macro = "user"
    filter = "user"

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the user's name."""
        return "" if value is None else lookups.users.get(value, f"#{value}")


class AttachmentWidget(Widget):
    """File upload with the field's size and type limits; shows links to the stored files."""

    macro = "attachment"
    filter = None

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return download links."""
        ids = value if isinstance(value, list) else ([value] if value else [])
        links = [
            Markup('<a href="{}">{} {}</a>').format(
                url_for("api.download_file", file_id=i), _("File"), n + 1
            )
            for n, i in enumerate(ids)
        ]
        return Markup(" ").join(links)

    def export(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the file ids."""
        return ",".join(value) if isinstance(value, list) else (value or "")

    def attrs(self, fd: FieldDef) -> dict[str, Any]:
        """Return the accept list and size limit."""
        return {
            "accept": ",".join(fd.opt("accept") or []),
            "max_size": fd.opt("max_size"),
            "multiple": bool(fd.opt("multiple", False)),
        }


class ReadOnlyWidget(Widget):
    """Values the platform writes (document numbers, computed values): shown, never posted."""

    macro = "read_only"

    def inner(self, fd: FieldDef) -> Widget:
        """Return the widget of the computed result type (itself for document numbers)."""
        if isinstance(fd.kind, ComputedType):
            return widget_for(fd.kind.result(fd))
        return TEXT

    @property
    def filter(self) -> str | None:  # type: ignore[override]
        """Return no filter kind of its own (see `filter_for`)."""
        return None

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the value as its result type shows it."""
        return self.inner(fd).display(fd, value, lookups)

    def export(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the value as its result type exports it."""
        return self.inner(fd).export(fd, value, lookups)


class ChildrenWidget(Widget):
    """Line items as a grid: add, remove and reorder rows, with running totals."""

    macro = "children"
    filter = None

    def display(self, fd: FieldDef, value: Any, lookups: Lookups) -> Any:
        """Return the number of rows."""
        return str(len(value or []))


TEXT = Widget()
WIDGETS: dict[type[FieldType], Widget] = {
    StringType: TEXT,
    TextType: TextAreaWidget(),
    IntegerType: IntegerWidget(),
    DecimalType: DecimalWidget(),
    MoneyType: MoneyWidget(),
    PercentType: PercentWidget(),
    DateType: DateWidget(),
    DateTimeType: DateTimeWidget(),
    BooleanType: BooleanWidget(),
    SelectType: SelectWidget(),
    MultiSelectType: MultiSelectWidget(),
    ReferenceType: ReferenceWidget(),
    UserType: UserWidget(),
    AttachmentType: AttachmentWidget(),
    ComputedType: ReadOnlyWidget(),
    AutoNumberType: ReadOnlyWidget(),
    ChildrenType: ChildrenWidget(),
}


def widget_for(kind: FieldType) -> Widget:
    """Return the widget of a field type (the nearest registered class on its MRO)."""
    for cls in type(kind).__mro__:
        if cls in WIDGETS:
            return WIDGETS[cls]
    return TEXT


def widget(fd: FieldDef) -> Widget:
    """Return the widget of a field."""
    return widget_for(fd.kind)


def filter_for(fd: FieldDef) -> str | None:
    """Return the filter-bar kind of a field (computed fields filter as their result)."""
    found = widget(fd)
    if isinstance(found, ReadOnlyWidget):
        return found.inner(fd).filter
    return found.filter


def _moment(value: Any) -> dt.datetime | None:
    if not value:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
