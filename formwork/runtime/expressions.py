"""The one safe expression language of Formwork (DESIGN.md, decision 3).

Conditions, computed fields, validation rules, gateway conditions, DMN cells and script tasks all
go through this module. It is built on ``simpleeval`` and tightens it:

* the text is parsed and checked against a whitelist of syntax before anything runs, so ``check``
  reports refused constructs and unknown functions when a pack is checked, not at runtime;
* decimal literals become exact ``Decimal`` values built from their source text, and ``/`` never
  yields a float;
* attribute syntax only reads record fields (dict keys) and date parts - no methods, no objects;
* only the functions of ``FUNCTIONS`` can be called, and only by name;
* limits on length, size, depth, powers, loop iterations and total work stop expressions that
  would exhaust the server.
"""

from __future__ import annotations

import ast
import decimal
import inspect
import operator
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from difflib import get_close_matches
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from simpleeval import EvalWithCompoundTypes, InvalidExpression

from formwork.runtime import expression_functions as arithmetic
from formwork.runtime.expression_functions import (
    FUNCTIONS,
    MAX_INT_DIGITS,
    MAX_LENGTH,
    kind_of,
    library,
)

__all__ = ["FUNCTIONS", "ExpressionError", "check", "check_script", "evaluate", "run_script"]

MAX_EXPRESSION_LENGTH = 4_000
MAX_NODES = 500
MAX_DEPTH = 100
MAX_ITERATIONS = 100_000
MAX_WORK = 10_000_000
MAX_SCRIPT_LINES = 1_000
MAX_DATA_DEPTH = 32
_MAX_INT = 10**MAX_INT_DIGITS
_SHOWN = 200

CONSTANTS: Mapping[str, Any] = MappingProxyType({"true": True, "false": False, "null": None})
_DATE_PARTS = frozenset({"year", "month", "day"})
_DATETIME_PARTS = _DATE_PARTS | {"hour", "minute", "second"}
_SIZED = (str, list, tuple, dict, set, frozenset)  # also what a comprehension may loop over
_INDEXABLE = (dict, list, tuple, str)


class ExpressionError(ValueError):
    """An expression or script was refused or failed; the message says what and where."""

    def __init__(self, message: str, expression: str = "", line: int | None = None) -> None:
        super().__init__(message, expression, line)
        self.message = message
        self.expression = expression
        self.line = line

    def __str__(self) -> str:
        where = "" if self.line is None else f"line {self.line}: "
        if not self.expression:
            return f"{where}{self.message}"
        shown = self.expression
        if len(shown) > _SHOWN:
            shown = shown[:_SHOWN] + "..."
        return f"{where}{self.message} (in expression {shown!r})"


def _located(error: ExpressionError, expression: Any, line: int | None = None) -> ExpressionError:
    text = expression if isinstance(expression, str) else repr(expression)
    return ExpressionError(error.message, error.expression or text, error.line or line)


_OPERATORS: Mapping[type[ast.AST], Callable[..., Any]] = MappingProxyType(
    {
        ast.Add: arithmetic.add, ast.Sub: operator.sub, ast.Mult: arithmetic.multiply,
        ast.Div: arithmetic.divide, ast.FloorDiv: arithmetic.floor_divide,
        ast.Mod: arithmetic.modulo, ast.Pow: arithmetic.power,
        ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
        ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.In: lambda left, right: left in right,
        ast.NotIn: lambda left, right: left not in right,
        ast.Is: lambda left, right: left is right,
        ast.IsNot: lambda left, right: left is not right,
    }
)  # fmt: skip

# --- parsing and checking ---------------------------------------------------------------------

_EVALUATED = frozenset(
    {ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Dict, ast.Set, ast.ListComp}
    | {ast.GeneratorExp, ast.DictComp, ast.Compare, ast.Call, ast.Constant, ast.Attribute}
    | {ast.Subscript, ast.Name, ast.List, ast.Tuple, ast.Slice}
)
_PRODUCERS = frozenset(
    {ast.BinOp, ast.UnaryOp, ast.Call, ast.ListComp, ast.GeneratorExp, ast.DictComp}
    | {ast.List, ast.Tuple, ast.Dict, ast.Set, ast.Subscript}
)
_ALLOWED = _EVALUATED | {ast.comprehension, ast.keyword, ast.Load, ast.Store, ast.And, ast.Or}
_ALLOWED |= set(_OPERATORS)
_REFUSED = MappingProxyType(
    {
        ast.Lambda: "lambda", ast.NamedExpr: "the ':=' operator", ast.JoinedStr: "an f-string",
        ast.FormattedValue: "an f-string", ast.Starred: "'*' unpacking",
        ast.SetComp: "a set comprehension", ast.BitAnd: "the '&' operator",
        ast.BitOr: "the '|' operator", ast.BitXor: "the '^' operator",
        ast.Invert: "the '~' operator", ast.LShift: "the '<<' operator",
        ast.RShift: "the '>>' operator", ast.MatMult: "the '@' operator",
    }
)  # fmt: skip
_STATEMENTS = MappingProxyType(
    {
        ast.Import: "an import", ast.ImportFrom: "an import", ast.Delete: "'del'",
        ast.AugAssign: "an augmented assignment such as '+='",
        ast.AnnAssign: "an annotated assignment", ast.Expr: "a bare expression",
    }
)  # fmt: skip
_CONSTANT_TYPES = (int, float, str, bool, type(None), Decimal)


def _describe(node: ast.AST) -> str:
    return _REFUSED.get(type(node), f"{type(node).__name__} syntax")


def _syntax_error(error: Exception) -> ExpressionError:
    if isinstance(error, SyntaxError):
        where = f" at column {error.offset}" if error.offset else ""
        detail = "" if error.msg == "invalid syntax" else f": {error.msg}"
        return ExpressionError(f"invalid syntax{where}{detail}")
    if isinstance(error, RecursionError | MemoryError):
        return ExpressionError(f"the expression is nested too deeply (the limit is {MAX_DEPTH})")
    return ExpressionError(f"invalid syntax: {error}")


def _check_identifier(name: str, kind: str) -> None:
    if name.startswith("_"):
        raise ExpressionError(
            f"{kind} {name!r} is not allowed (names starting with '_' are refused)"
        )


def _identifiers(node: ast.AST) -> Iterator[tuple[str, str]]:
    if isinstance(node, ast.Name):
        yield node.id, "name"
    elif isinstance(node, ast.Attribute):
        yield node.attr, "attribute"
    elif isinstance(node, ast.keyword) and node.arg is not None:
        yield node.arg, "argument"


def _check_call(node: ast.Call) -> None:
    if isinstance(node.func, ast.Attribute):
        raise ExpressionError(f"method calls such as .{node.func.attr}() are not allowed")
    if not isinstance(node.func, ast.Name):
        raise ExpressionError("only library functions can be called, by their name")
    if node.func.id not in FUNCTIONS:
        hint = get_close_matches(node.func.id, list(FUNCTIONS), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ExpressionError(f"unknown function {node.func.id!r}{suggestion}")


def _check_node(node: ast.AST) -> None:
    if isinstance(node, ast.Call):
        _check_call(node)
    elif isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANT_TYPES):
        raise ExpressionError(f"the literal {node.value!r:.50} is not allowed")
    elif (isinstance(node, ast.keyword) and node.arg is None) or (
        isinstance(node, ast.Dict) and None in node.keys
    ):
        raise ExpressionError("'**' unpacking is not allowed")
    elif isinstance(node, ast.comprehension):
        if node.is_async:
            raise ExpressionError("async comprehensions are not allowed")
        targets = (ast.Name, ast.Tuple, ast.List, ast.Store)
        if not all(isinstance(part, targets) for part in ast.walk(node.target)):
            raise ExpressionError("a comprehension can only assign plain names")


def _depth(root: ast.AST) -> int:
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _check_tree(root: ast.expr, source: str) -> None:
    """Refuse what the language does not allow, then turn float literals into exact decimals."""
    nodes = list(ast.walk(root))
    size = sum(isinstance(n, ast.expr | ast.comprehension | ast.keyword) for n in nodes)
    if size > MAX_NODES:
        raise ExpressionError(
            f"the expression is too complex ({size} parts; the limit is {MAX_NODES})"
        )
    if _depth(root) > MAX_DEPTH:
        raise ExpressionError(f"the expression is nested too deeply (the limit is {MAX_DEPTH})")
    for node in nodes:  # identifiers first, so '__import__(...)' is refused by its name
        for name, kind in _identifiers(node):
            _check_identifier(name, kind)
    for node in nodes:  # then refused constructs, so '(lambda: 1)()' is refused as lambda
        if type(node) not in _ALLOWED:
            raise ExpressionError(f"{_describe(node)} is not allowed")
    for node in nodes:
        _check_node(node)
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            literal = ast.get_source_segment(source, node) or repr(node.value)
            node.value = Decimal(literal)  # type: ignore[assignment]


def _parse(expression: str) -> ast.expr:
    if not isinstance(expression, str):
        raise ExpressionError(f"an expression must be text, not {kind_of(expression)}")
    return _parsed(expression)


@lru_cache(maxsize=4096)
def _parsed(expression: str) -> ast.expr:
    # Parsed and checked once per text: a computed field or rule runs on every save and
    # its tree is only read afterwards. (Refusals raise, so they are not cached.)
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"the expression is too long ({len(expression):,} characters; "
            f"the limit is {MAX_EXPRESSION_LENGTH:,})"
        )
    text = expression.strip()
    if not text:
        raise ExpressionError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise _syntax_error(error) from None
    _check_tree(tree.body, text)
    return tree.body


class _Statement(NamedTuple):
    line: int
    name: str
    value: ast.expr
    text: str


def _parse_assignment(text: str, line: int) -> _Statement:
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"the line is too long (the limit is {MAX_EXPRESSION_LENGTH:,})")
    try:
        body = ast.parse(text, mode="exec").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise _syntax_error(error) from None
    if len(body) != 1:
        raise ExpressionError("write exactly one 'name = expression' per line")
    statement = body[0]
    if not isinstance(statement, ast.Assign):
        found = _STATEMENTS.get(type(statement), f"a {type(statement).__name__} statement")
        raise ExpressionError(f"only 'name = expression' lines are allowed, not {found}")
    if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
        raise ExpressionError("the left side of '=' must be one plain name")
    name = statement.targets[0].id
    _check_identifier(name, "name")
    if name in CONSTANTS:
        raise ExpressionError(f"{name!r} is a constant and cannot be assigned")
    _check_tree(statement.value, text)
    return _Statement(line, name, statement.value, text)


def _parse_script(script: str) -> list[_Statement]:
    if not isinstance(script, str):
        raise ExpressionError(f"a script must be text, not {kind_of(script)}")
    lines = script.splitlines()
    if len(lines) > MAX_SCRIPT_LINES:
        raise ExpressionError(f"the script is too long (the limit is {MAX_SCRIPT_LINES:,} lines)")
    statements = []
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if text and not text.startswith("#"):
            try:
                statements.append(_parse_assignment(text, number))
            except ExpressionError as error:
                raise _located(error, text, number) from None
    return statements


# --- evaluation -------------------------------------------------------------------------------


def _freeze(value: Any, depth: int = 0) -> Any:
    """Copy caller data into plain values: records to dicts, floats to exact decimals."""
    if depth > MAX_DATA_DEPTH:
        raise ExpressionError(f"the data is nested more than {MAX_DATA_DEPTH} levels deep")
    if isinstance(value, float):
        return arithmetic.to_decimal(value)
    if isinstance(value, Mapping):
        return {key: _freeze(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [_freeze(item, depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _freeze_names(names: Mapping[str, Any] | None) -> dict[str, Any]:
    if names is None:
        return {}
    if not isinstance(names, Mapping):
        raise ExpressionError(f"names must be a mapping, not {kind_of(names)}")
    return {str(key): _freeze(value) for key, value in names.items()}


def _check_result(result: Any) -> None:
    if isinstance(result, _SIZED) and len(result) > MAX_LENGTH:
        raise ExpressionError(
            f"the value is too long ({len(result):,}; the limit is {MAX_LENGTH:,})"
        )
    if isinstance(result, int) and abs(result) >= _MAX_INT:
        raise ExpressionError(f"the number has more than {MAX_INT_DIGITS:,} digits")


def _read_attribute(value: Any, attribute: str) -> Any:
    if isinstance(value, dict):
        if attribute not in value:
            raise ExpressionError(f"the record has no field {attribute!r}")
        return value[attribute]
    parts = _DATETIME_PARTS if isinstance(value, datetime) else _DATE_PARTS
    if isinstance(value, date) and attribute in parts:
        return getattr(value, attribute)
    raise ExpressionError(
        f"attribute {attribute!r} is not allowed on a {kind_of(value)} value "
        "(attributes only read record fields and date parts; methods cannot be called)"
    )


def _iterable(value: Any) -> Any:
    if not isinstance(value, _SIZED):
        raise ExpressionError(f"cannot loop over a {kind_of(value)} value")
    return value


def _bind(target: ast.expr, value: Any, scope: dict[str, Any]) -> None:
    if isinstance(target, ast.Name):
        scope[target.id] = value
        return
    assert isinstance(target, ast.Tuple | ast.List)  # guaranteed by _check_node
    items = list(_iterable(value))
    if len(items) != len(target.elts):
        raise ExpressionError(f"cannot unpack {len(items)} values into {len(target.elts)} names")
    for element, item in zip(target.elts, items, strict=True):
        _bind(element, item, scope)


def _call_error(
    name: str, func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], error: Exception
) -> str:
    if isinstance(error, TypeError):
        try:
            inspect.signature(func).bind(*args, **kwargs)
        except TypeError as wrong:
            return f"{name}(): wrong arguments ({wrong})"
    return f"{name}(): {_error_text(error)}"


def _error_text(error: BaseException) -> str:
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    if isinstance(error, decimal.Overflow | OverflowError):
        return "the number is too large"
    if isinstance(error, decimal.InvalidOperation):
        return "invalid decimal operation"
    if isinstance(error, RecursionError):
        return "the expression is nested too deeply"
    if isinstance(error, KeyError):
        return f"no key {error.args[0]!r}" if error.args else "missing key"
    return str(error) or type(error).__name__


_RUNTIME_ERRORS = (
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    RecursionError,
)


class _Evaluator(EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval's evaluator with Formwork's names, calls, attributes and limits."""

    nodes: dict[type[ast.AST], Callable[[Any], Any]]

    def __init__(
        self, names: Mapping[str, Any], functions: Mapping[str, Callable[..., Any]]
    ) -> None:
        super().__init__(operators={}, functions={}, names={})
        self.names = names
        self.functions = functions
        self.operators = {kind: self._metered(func) for kind, func in _OPERATORS.items()}
        self.nodes = {kind: handler for kind, handler in self.nodes.items() if kind in _EVALUATED}
        self._scopes: list[dict[str, Any]] = []
        self._iterations = 0  # both counters span every line of a script: one evaluator runs it
        self._work = 0

    def _iterate(self) -> None:
        self._iterations += 1
        if self._iterations > MAX_ITERATIONS:
            raise ExpressionError(f"loops ran more than {MAX_ITERATIONS:,} times")

    def _charge(self, values: Iterable[Any]) -> None:
        """Count the items and characters an operation handles against the work limit."""
        self._work += sum(len(v) if isinstance(v, _SIZED) else 1 for v in values)
        if self._work > MAX_WORK:
            raise ExpressionError(f"the expression does too much work (limit {MAX_WORK:,} steps)")

    def _metered(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def metered(*operands: Any) -> Any:
            self._charge(operands)
            result = func(*operands)
            self._charge((result,))
            return result

        return metered

    def _eval(self, node: ast.AST) -> Any:
        handler = self.nodes.get(type(node))
        if handler is None:
            raise ExpressionError(f"{_describe(node)} is not allowed")
        result = handler(node)
        if type(node) in _PRODUCERS:  # data the caller passed in is not ours to limit
            _check_result(result)
        return result

    def _eval_name(self, node: ast.Name) -> Any:
        name = node.id
        _check_identifier(name, "name")
        for scope in reversed(self._scopes):
            if name in scope:
                return scope[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        try:
            return self.names[name]
        except KeyError:
            pass
        if name in self.functions:
            raise ExpressionError(f"{name!r} is a function; call it, as in {name}(...)")
        raise ExpressionError(f"unknown name {name!r}")

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        _check_identifier(node.attr, "attribute")
        return _read_attribute(self._eval(node.value), node.attr)

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        key = self._eval(node.slice)
        if not isinstance(container, _INDEXABLE):
            raise ExpressionError(f"cannot index a {kind_of(container)} value")
        try:
            result = container[key]
        except KeyError:
            raise ExpressionError(f"no key {key!r}") from None
        except IndexError:
            raise ExpressionError(f"index {key!r} is out of range") from None
        if isinstance(key, slice):
            self._charge((result,))
        return result

    def _eval_call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name):
            raise ExpressionError("only library functions can be called, by their name")
        name = node.func.id
        func = self.functions.get(name)
        if func is None:
            raise ExpressionError(f"unknown function {name!r}")
        args = [self._eval(arg) for arg in node.args]
        kwargs = {str(kw.arg): self._eval(kw.value) for kw in node.keywords}
        self._charge([*args, *kwargs.values()])
        try:
            result = func(*args, **kwargs)
        except ExpressionError:
            raise
        except _RUNTIME_ERRORS as error:
            raise ExpressionError(_call_error(name, func, args, kwargs, error)) from None
        self._charge((result,))
        return result

    def _eval_comprehension(self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp) -> Any:
        result: list[Any] | dict[Any, Any] = {} if isinstance(node, ast.DictComp) else []
        self._scopes.append({})
        try:
            self._generate(node, 0, result)
        finally:
            self._scopes.pop()
        return result

    def _generate(self, node: Any, index: int, result: list[Any] | dict[Any, Any]) -> None:
        generator = node.generators[index]
        for item in _iterable(self._eval(generator.iter)):
            self._iterate()
            _bind(generator.target, item, self._scopes[-1])
            if not all(self._eval(condition) for condition in generator.ifs):
                continue
            if index + 1 < len(node.generators):
                self._generate(node, index + 1, result)
            elif isinstance(result, dict):
                result[self._eval(node.key)] = self._eval(node.value)
            else:
                result.append(self._eval(node.elt))


def _decimal_context() -> decimal.Context:
    traps = [decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
    return decimal.Context(prec=28, Emin=-999_999, Emax=999_999, traps=traps)


def _run(evaluator: _Evaluator, node: ast.expr, source: str) -> Any:
    with decimal.localcontext(_decimal_context()):
        try:
            return evaluator.eval(source, previously_parsed=node)
        except ExpressionError:
            raise
        except InvalidExpression as error:
            raise ExpressionError(str(error)) from None
        except _RUNTIME_ERRORS as error:
            raise ExpressionError(_error_text(error)) from None


# --- public API -------------------------------------------------------------------------------


def check(expression: str) -> None:
    """Check an expression's syntax, constructs and function names without evaluating it."""
    try:
        _parse(expression)
    except ExpressionError as error:
        raise _located(error, expression) from None


def evaluate(
    expression: str,
    names: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
    lookups: Mapping[str, Callable[..., Any]] | None = None,
) -> Any:
    """Evaluate one expression with the given names; `now` fixes what now() and today() return.

    `lookups` answers the library's database functions (sum_of, count_of) during a save;
    it may only replace functions the library already declares.
    """
    try:
        node = _parse(expression)
        functions = library(now)
        if lookups:
            unknown = set(lookups) - set(FUNCTIONS)
            if unknown:
                raise ValueError(f"not library functions: {sorted(unknown)}")
            functions = {**functions, **lookups}
        evaluator = _Evaluator(_freeze_names(names), functions)
        return _run(evaluator, node, expression)
    except ExpressionError as error:
        raise _located(error, expression) from None


def check_script(script: str) -> None:
    """Check every line of a script without running it; errors name the line."""
    _parse_script(script)


def run_script(
    script: str, names: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """Run `name = expression` lines in order and return the names the script assigned."""
    statements = _parse_script(script)
    assigned: dict[str, Any] = {}
    scope: ChainMap[str, Any] = ChainMap(assigned, _freeze_names(names))
    evaluator = _Evaluator(scope, library(now))
    for statement in statements:
        try:
            value = _run(evaluator, statement.value, statement.text)
        except ExpressionError as error:
            raise _located(error, statement.text, statement.line) from None
        assigned[statement.name] = value
    return dict(assigned)


# --- what an expression reads and a script writes -----------------------------------------


@lru_cache(maxsize=1024)
def expression_names(expression: str) -> frozenset[str]:
    """Return the names an expression reads (call targets and comprehension variables aside);
    cached, as the engine asks once per row."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return frozenset()  # the evaluator reports the error itself
    called = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    bound = {
        n.id
        for c in ast.walk(tree)
        if isinstance(c, ast.comprehension)
        for n in ast.walk(c.target)
        if isinstance(n, ast.Name)
    }
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return frozenset(names - called - bound - {"true", "false", "null", "None", "True", "False"})


def assigned_names(script: str) -> frozenset[str]:
    """Return the names a `name = expression` script assigns (empty when it does not parse)."""
    try:
        return frozenset(statement.name for statement in _parse_script(script))
    except ExpressionError:
        return frozenset()
