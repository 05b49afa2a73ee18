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
    "reference_filter": (
        "所选{entity_zh}不符合条件：{condition_zh}",
        "The chosen {entity_en} does not fit: {condition_en}",
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
    "unique_unavailable": ("此值不可使用，请换一个", "This value cannot be used; choose another"),
    "read_only": ("只读字段不能修改", "This field is read-only"),
    "unique_together": (
        "已有记录使用了相同的 {fields} 组合",
        "Another record already has the same {fields}",
    ),
    "unique_together_unavailable": (
        "{fields} 的这一组合不可使用，请换一组",
        "This combination of {fields} cannot be used; choose another",
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
    # -- document lifecycle and approvals
    "locked_in_approval": (
        "单据正在审批中，不能修改或删除；如需修改，请提交人先撤回",
        "This record is in approval and cannot be {verb}; the submitter can withdraw it first",
    ),
    "locked_approved": (
        "单据已审批（{state_zh}），不能修改或删除；如需更改，请作废或变更",
        "This record is {state} and cannot be {verb}; cancel or amend it instead",
    ),
    "locked_cancelled": (
        "单据已作废，不能修改或删除",
        "This record is cancelled and cannot be {verb}",
    ),
    "already_in_approval": (
        "单据已在审批中，不能重复提交",
        "This record is already in approval",
    ),
    "not_resubmittable": (
        "单据已审批（{state_zh}），不能再次提交；如需更改，请使用变更",
        "This record is {state} and cannot be submitted again; amend it instead",
    ),
    "not_cancellable": (
        "只有已审批的单据可以作废或变更（当前：{state_zh}）",
        "Only an approved record can be cancelled or amended (it is {state})",
    ),
    "not_your_task": ("你不是此审批步骤的处理人", "You do not hold this approval step"),
    "own_request": (
        "提交人不能审批自己提交的单据",
        "The submitter may not approve their own request",
    ),
    "task_gone": ("此待办已处理或已取消", "This task has already been handled"),
    "not_in_form": (
        "此审批步骤的表单没有字段 '{name}'",
        "This step's form has no field '{name}'",
    ),
    "comment_required": ("请填写意见（驳回和退回必须说明原因）", "A comment is required"),
    "pick_user": ("请选择一位用户", "Choose a user"),
    "not_a_candidate": (
        "此用户不能处理这个审批步骤",
        "This user cannot hold this approval step",
    ),
    "set_by_process": (
        "此字段由审批流程填写，不能手工修改",
        "This field is set by the approval process",
    ),
    # -- spreadsheets for import (formwork/runtime/imports/sheets.py) --------------------------
    "sheet_kind": (
        "只能导入 .xlsx 和 .csv 文件（收到的是 {name}）。",
        "Only .xlsx and .csv files can be imported (got {name}).",
    ),
    "sheet_not_xlsx": (
        "{name} 不是有效的 Excel .xlsx 文件。",
        "{name} is not a real Excel .xlsx file.",
    ),
    "sheet_not_csv": ("{name} 不是文本 CSV 文件。", "{name} is not a text CSV file."),
    "sheet_too_large": ("文件超过 {n} MB。", "The file is larger than {n} MB."),
    "sheet_unreadable": (
        "无法读取 Excel 文件：{detail}",
        "The Excel file cannot be read: {detail}",
    ),
    "sheet_no_sheet": ("Excel 文件中没有工作表。", "The Excel file holds no worksheet."),
    "sheet_parts": (
        "该 Excel 文件包含的部件超过 {n} 个。",
        "The Excel file holds more than {n} parts.",
    ),
    "sheet_unpacked": (
        "该 Excel 文件解压后超过 {n} MB（仅部件 {part} 就有 {size} MB）。",
        "The Excel file unpacks to more than {n} MB (part {part} alone is {size} MB).",
    ),
    "sheet_doctype": (
        "该 Excel 文件被拒绝：其部件 {part} 声明了 DOCTYPE 或实体。",
        "The Excel file is refused: its part {part} declares a DOCTYPE or entities.",
    ),
    "sheet_formula": (
        "单元格 {cell} 含有公式。公式不会被导入：请复制工作表并“只粘贴数值”。",
        "Cell {cell} holds a formula. Formulas are not imported: "
        "copy the sheet and paste values only.",
    ),
    "sheet_too_wide": (
        "工作表有 {n} 列（{range}）；最多导入 {max} 列。",
        "The sheet is {n} columns wide ({range}); at most {max} are imported.",
    ),
    "sheet_too_long": (
        "文件超过 {n} 行；请拆分成较小的文件。",
        "The file has more than {n} rows; split it into smaller files.",
    ),
    "sheet_reaches": (
        "工作表延伸到第 {row} 行（单元格 {cell}）；最多导入 {n} 行。",
        "The sheet reaches row {row} (cell {cell}); at most {n} rows are imported.",
    ),
    "sheet_too_many_cells": (
        "工作表至少有 {cells} 个单元格（{rows} 行 × {columns} 列，至 {cell}）；最多导入 {max} 个。"
        "请拆分成较小的文件。",
        "The sheet holds at least {cells} cells ({rows} rows × {columns} columns, up to {cell}); "
        "at most {max} are imported. Split it into smaller files.",
    ),
    "sheet_cell_count": (
        "工作表 {part} 的单元格超过 {max} 个（数到第 {rows} 行时）；请拆分成较小的文件。",
        "The sheet {part} holds more than {max} cells (counted by row {rows}); "
        "split it into smaller files.",
    ),
    "sheet_strings": (
        "该 Excel 文件的文本表 {part} 超过 {max} 项；请拆分成较小的文件。",
        "The Excel file's string table {part} holds more than {max} entries; "
        "split it into smaller files.",
    ),
    "sheet_too_complex": (
        "工作表 {part} 包含超过 {n} 个 XML 元素。",
        "The sheet {part} holds more than {n} XML elements.",
    ),
    "sheet_row_too_wide": ("第 {row} 行超过 {n} 列。", "Row {row} has more than {n} columns."),
    "sheet_no_header": ("第一行必须是列名。", "The first row must hold the column names."),
    "sheet_csv_encoding": (
        "CSV 文件不是 UTF-8 或 GB18030 编码的文本。",
        "The CSV file is not UTF-8 or GB18030 text.",
    ),
    "sheet_csv_nul": (
        "CSV 文件第 {line} 行含有 NUL 字节：它不是文本文件。",
        "The CSV file holds a NUL byte at line {line}: it is not text.",
    ),
    "sheet_csv_line": (
        "无法读取 CSV 文件第 {line} 行：{detail}",
        "The CSV file cannot be read at line {line}: {detail}",
    ),
}

MESSAGES: Mapping[str, tuple[str, str]] = MappingProxyType(_MESSAGES)


STATE_LABELS_ZH: Mapping[str, str] = MappingProxyType(
    {
        "draft": "草稿",
        "in-approval": "审批中",
        "approved": "已通过",
        "rejected": "已驳回",
        "withdrawn": "已撤回",
        "cancelled": "已作废",
    }
)


def render(code: str, params: Mapping[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    """Return the message for `code` in `locale`, filled in with `params`."""
    zh, en = MESSAGES.get(code, ("{detail}", "{detail}"))
    template = en if locale.lower().startswith("en") else zh
    if "state" in params:
        params = {**params, "state_zh": STATE_LABELS_ZH.get(str(params["state"]), params["state"])}
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
