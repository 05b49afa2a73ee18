"""Messages for runtime errors in zh-CN and en, keyed by a stable code."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

DEFAULT_LOCALE = "zh-CN"
LOCALES = ("zh-CN", "en")

_MESSAGES: dict[str, tuple[str, str]] = {
    # code: (zh-CN, en)
    "required": ("必填项不能为空", "This field is required"),
    "unknown_field": ("未知字段 '{name}'", "Unknown field '{name}'"),
    "type": ("类型错误：应为{expected}", "Wrong type: expected {expected}"),
    "max_length": ("长度不能超过 {limit} 个字符", "Must be at most {limit} characters"),
    "min_length": ("长度不能少于 {limit} 个字符", "Must be at least {limit} characters"),
    "pattern": ("格式不符合要求（{pattern}）", "Does not match the required format ({pattern})"),
    "minimum": ("不能小于 {limit}", "Must be at least {limit}"),
    "maximum": ("不能大于 {limit}", "Must be at most {limit}"),
    "exclusive_minimum": ("必须大于 {limit}", "Must be greater than {limit}"),
    "exclusive_maximum": ("必须小于 {limit}", "Must be less than {limit}"),
    "decimal": ("不是有效的数字", "Not a valid number"),
    "decimal_digits": (
        "数字位数超出范围：最多 {integer_digits} 位整数、{scale} 位小数",
        "Too many digits: at most {integer_digits} before and {scale} after the point",
    ),
    "integer": ("不是有效的整数", "Not a valid integer"),
    "integer_range": ("整数超出范围", "Integer out of range"),
    "date": ("不是有效的日期（YYYY-MM-DD）", "Not a valid date (YYYY-MM-DD)"),
    "datetime": ("不是有效的日期时间（ISO 8601）", "Not a valid date-time (ISO 8601)"),
    "boolean": ("不是有效的布尔值", "Not a valid boolean"),
    "choice": ("'{value}' 不是可选值之一：{options}", "'{value}' is not one of: {options}"),
    "reference_missing": (
        "引用的 {entity} 记录 {value} 不存在",
        "Referenced {entity} record {value} does not exist",
    ),
    "user_missing": ("用户 {value} 不存在", "User {value} does not exist"),
    "file_missing": ("附件 {value} 不存在", "Attachment {value} does not exist"),
    "file_too_large": (
        "附件 {name} 超过大小限制 {limit} 字节",
        "Attachment {name} is larger than the limit of {limit} bytes",
    ),
    "file_type": (
        "附件 {name} 的类型 {content_type} 不允许（允许：{accept}）",
        "Attachment {name} has type {content_type}, which is not allowed ({accept})",
    ),
    "unique": (
        "值 '{value}' 已存在，必须唯一",
        "Value '{value}' already exists; it must be unique",
    ),
    "read_only": ("只读字段不能修改", "This field is read-only"),
    "unique_together": (
        "已有记录使用了相同的 {fields} 组合",
        "Another record already has the same {fields}",
    ),
    "file_not_yours": ("只能附加自己上传的文件", "Only files you uploaded can be attached"),
    "read_only_for_role": ("你的角色不能修改此字段", "Your role may not change this field"),
    "rule": ("{message_zh}", "{message_en}"),
    "expression": ("表达式错误：{detail}", "Expression error: {detail}"),
    "too_many_items": ("最多 {limit} 行", "At most {limit} rows"),
    "not_object": ("应为对象", "Expected an object"),
    "not_list": ("应为数组", "Expected an array"),
    "invalid": ("无效的值：{detail}", "Invalid value: {detail}"),
    "malformed_json": ("请求体不是有效的 JSON：{detail}", "The body is not valid JSON: {detail}"),
    "unknown_filter_field": ("未知的过滤字段 '{name}'", "Unknown filter field '{name}'"),
    "unknown_operator": (
        "未知的运算符 '{op}'，可用：{ops}",
        "Unknown operator '{op}'; use one of: {ops}",
    ),
    "operator_not_allowed": (
        "字段 '{name}' 不支持运算符 '{op}'",
        "Operator '{op}' is not supported on field '{name}'",
    ),
    "unknown_sort_field": ("未知的排序字段 '{name}'", "Unknown sort field '{name}'"),
    "bad_page": (
        "分页参数 {name} 必须是 1 到 {limit} 之间的整数",
        "{name} must be an integer from 1 to {limit}",
    ),
    "unknown_parameter": ("未知的查询参数 '{name}'", "Unknown query parameter '{name}'"),
    "too_many_terms": (
        "参数 {name} 最多 {limit} 项（收到 {given} 项）",
        "{name} takes at most {limit} items (got {given})",
    ),
    "too_long_parameter": (
        "参数 {name} 最长 {limit} 个字符",
        "{name} must be at most {limit} characters long",
    ),
    "bad_aggregate": ("聚合参数错误：{detail}", "Bad aggregate: {detail}"),
    "schema": ("{detail}", "{detail}"),
}

MESSAGES: Mapping[str, tuple[str, str]] = MappingProxyType(_MESSAGES)


def render(code: str, params: Mapping[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    """Return the message for `code` in `locale`, filled in with `params`."""
    zh, en = MESSAGES.get(code, ("{detail}", "{detail}"))
    template = en if locale.lower().startswith("en") else zh
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template


def pick_label(text: Mapping[str, str] | str | None, locale: str = DEFAULT_LOCALE) -> str:
    """Return the best label for `locale` from a {zh-CN, en} mapping."""
    if text is None:
        return ""
    if isinstance(text, str):
        return text
    lang = "en" if locale.lower().startswith("en") else "zh-CN"
    return text.get(lang) or text.get("zh-CN") or text.get("en") or ""
