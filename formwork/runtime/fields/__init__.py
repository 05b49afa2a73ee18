"""The field-type registry: every type a property's `x-formwork.type` may name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from formwork.runtime.fields.base import FieldType
from formwork.runtime.fields.choice import MultiSelectType, SelectType
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

FIELD_TYPES: Mapping[str, FieldType] = MappingProxyType(
    {
        cls.name: cls()
        for cls in (
            StringType,
            TextType,
            IntegerType,
            DecimalType,
            MoneyType,
            PercentType,
            DateType,
            DateTimeType,
            BooleanType,
            SelectType,
            MultiSelectType,
            ReferenceType,
            ChildrenType,
            AttachmentType,
            ComputedType,
            AutoNumberType,
            UserType,
        )
    }
)


def get_field_type(name: str) -> FieldType:
    """Return the field type registered under `name` (KeyError when unknown)."""
    return FIELD_TYPES[name]


__all__ = ["FIELD_TYPES", "FieldType", "get_field_type"]
