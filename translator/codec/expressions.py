"""Expressions of computed telemetry: checked and parsed once at load, evaluated per record. Pure.

Evaluation is `simpleeval`'s (a whitelist interpreter over Python's `ast`: no `eval`, no attribute or
subscript access, bounded powers and string lengths). On top of it the load-time check here narrows the
language to arithmetic: numbers, the names the caller allows, `+ - * / // % **`, comparisons, `and or not`,
`a if c else b`, and calls of `FUNCTIONS` — anything else (a string, an attribute, a subscript, a lambda,
keyword arguments) is refused with the column, before any record arrives. Why simpleeval, against asteval,
cel-python and py_expression_eval: docs/codec.md, "Computed telemetry".
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from simpleeval import SimpleEval  # type: ignore[import-untyped]

Number = int | float | bool

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,  # log(x) natural, log(x, base)
    "log10": math.log10,
    "floor": math.floor,
    "ceil": math.ceil,
}

_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)


class ExpressionError(ValueError):
    """An expression refused at load: `reason` says why (with the column when it is a syntax error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotComputable(ValueError):
    """This evaluation has no value: a missing input, a math domain error, a result that is no number."""


@dataclass(eq=False)
class Expression:
    """A checked, parsed expression; `names` are the inputs it reads, in order of first use."""

    text: str
    names: tuple[str, ...]
    _node: ast.expr = field(repr=False)
    _evaluator: Any = field(repr=False)

    def evaluate(self, values: Mapping[str, Any]) -> Number:
        """The value for `values` (every name in `names`), or NotComputable saying why not."""
        missing = [n for n in self.names if values.get(n) is None]
        if missing:
            raise NotComputable(f"no value of {', '.join(missing)}")
        self._evaluator.names = values
        try:
            result = self._evaluator.eval(self.text, previously_parsed=self._node)
        except (ArithmeticError, ValueError, TypeError) as error:  # domain, zero division, overflow
            raise NotComputable(f"{type(error).__name__}: {error}") from None
        except Exception as error:  # simpleeval's own limits (NumberTooHigh, …) are its InvalidExpression
            raise NotComputable(f"{type(error).__name__}: {error}") from None
        if not isinstance(result, int | float) or (isinstance(result, float) and not math.isfinite(result)):
            raise NotComputable(f"the result {result!r} is not a finite number")
        return result


def compile_expression(text: str, allowed: Collection[str] | None = None) -> Expression:
    """Parse and check `text` once. `allowed`: the names it may read (None: any name, checked at
    evaluation). Raises ExpressionError: a syntax error, an unknown name or function, a construct outside
    arithmetic."""
    source = text.strip()
    if not source:
        raise ExpressionError("empty expression")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as error:
        column = f" at column {error.offset}" if error.offset else ""
        raise ExpressionError(f"syntax error{column}: {error.msg}") from None
    names: list[str] = []
    callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"{_what(node)} is not allowed (numbers, names, operators, functions)")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise ExpressionError(f"{node.value!r} is not a number")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ExpressionError(f"calling a {_what(node.func)} is not allowed (only the functions)")
            if node.func.id not in FUNCTIONS:
                known = ", ".join(sorted(FUNCTIONS))
                raise ExpressionError(f"unknown function {node.func.id!r} (known: {known})")
            if node.keywords:
                raise ExpressionError(f"{node.func.id}(): keyword arguments are not allowed")
        elif isinstance(node, ast.Name) and id(node) not in callees:
            if allowed is not None and node.id not in allowed:
                known = ", ".join(sorted(allowed)) or "none"
                raise ExpressionError(f"unknown name {node.id!r} (known here: {known})")
            if node.id not in names:
                names.append(node.id)
    evaluator = SimpleEval(functions=dict(FUNCTIONS), names={})
    return Expression(source, tuple(names), tree.body, evaluator)


def _what(node: ast.AST) -> str:
    labels = {
        ast.Attribute: "attribute access",
        ast.Subscript: "subscript",
        ast.Lambda: "lambda",
        ast.NamedExpr: "assignment",
    }
    return labels.get(type(node), type(node).__name__)
