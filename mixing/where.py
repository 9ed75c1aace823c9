"""A mixture source's `where`: a small SQL-like filter on shard columns, turned into a pyarrow compute
expression so the row groups are filtered by Arrow, not row by row in Python.

    language = 'en' AND quality_score >= 0.5
    topic IN ('science', 'health') OR NOT (cluster_size > 100)
    published_date IS NOT NULL

Comparisons `= == != <> < <= > >=`, `IN (...)`, `NOT IN (...)`, `IS [NOT] NULL`, `AND`, `OR`, `NOT`, parentheses;
strings in single quotes ('' is a quote), numbers, TRUE and FALSE. As in SQL, a comparison with a null value
is not true, so the row is left out. Every column is checked against the shard schema before anything is read:
a misspelt column or a string compared with a number column is the spec's error, not an empty mixture.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


class WhereError(ValueError):
    pass


_TOKEN = re.compile(r"\s*(?:(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op><=|>=|<>|!=|==|"
                    r"[=<>(),])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))")
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"}
_COMPARE = {"=": "equal", "==": "equal", "!=": "not_equal", "<>": "not_equal", "<": "less", "<=": "less_equal",
            ">": "greater", ">=": "greater_equal"}


def _tokens(text: str) -> list[tuple[str, Any]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise WhereError(f"cannot read {text[pos:].strip()[:30]!r} (at character {pos})")
        pos = m.end()
        if m["num"] is not None:
            out.append(("value", float(m["num"]) if any(c in m["num"] for c in ".eE") else int(m["num"])))
        elif m["str"] is not None:
            out.append(("value", m["str"][1:-1].replace("''", "'")))
        elif m["op"] is not None:
            out.append(("op", m["op"]))
        elif m["word"].upper() in ("TRUE", "FALSE"):
            out.append(("value", m["word"].upper() == "TRUE"))
        elif m["word"].upper() in _KEYWORDS:
            out.append(("kw", m["word"].upper()))
        else:
            out.append(("column", m["word"]))
    return out


def _kind(value: Any) -> str:
    return "boolean" if isinstance(value, bool) else "number" if isinstance(value, int | float) else "string"


def _column_kind(t: pa.DataType) -> str | None:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    return None  # lists (tokens): not comparable


class _Parser:
    def __init__(self, text: str, schema: pa.Schema) -> None:
        self.tokens, self.i, self.schema, self.columns = _tokens(text), 0, schema, set()

    def peek(self, kind: str, value: Any = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        k, v = self.tokens[self.i]
        return k == kind and (value is None or v == value)

    def take(self, kind: str, value: Any = None, what: str = "") -> Any:
        if not self.peek(kind, value):
            got = repr(self.tokens[self.i][1]) if self.i < len(self.tokens) else "the end"
            raise WhereError(f"expected {what or value or kind}, found {got}")
        self.i += 1
        return self.tokens[self.i - 1][1]

    def parse(self) -> pc.Expression:
        expr = self.disjunction()
        if self.i < len(self.tokens):
            raise WhereError(f"unexpected {self.tokens[self.i][1]!r} after a complete condition")
        return expr

    def disjunction(self) -> pc.Expression:
        expr = self.conjunction()
        while self.peek("kw", "OR"):
            self.i += 1
            expr = expr | self.conjunction()
        return expr

    def conjunction(self) -> pc.Expression:
        expr = self.negation()
        while self.peek("kw", "AND"):
            self.i += 1
            expr = expr & self.negation()
        return expr

    def negation(self) -> pc.Expression:
        if self.peek("kw", "NOT"):
            self.i += 1
            return ~self.negation()
        if self.peek("op", "("):
            self.i += 1
            expr = self.disjunction()
            self.take("op", ")")
            return expr
        return self.comparison()

    def value(self, column: str, kind: str) -> Any:
        v = self.take("value", what="a value ('text', a number, TRUE or FALSE)")
        if _kind(v) != kind:
            raise WhereError(f"column {column} holds {kind}s, compared with {v!r}")
        return v

    def comparison(self) -> pc.Expression:
        name = self.take("column", what="a column name")
        if name not in self.schema.names:
            known = ", ".join(n for n in self.schema.names if _column_kind(self.schema.field(n).type))
            raise WhereError(f"unknown column {name!r} (the shards have: {known})")
        kind = _column_kind(self.schema.field(name).type)
        if kind is None:
            raise WhereError(f"column {name} ({self.schema.field(name).type}) cannot be compared")
        self.columns.add(name)
        field = pc.field(name)
        if self.peek("kw", "IS"):
            self.i += 1
            negate = self.peek("kw", "NOT")
            self.i += negate
            self.take("kw", "NULL")
            return field.is_valid() if negate else field.is_null()
        negate = self.peek("kw", "NOT")
        self.i += negate
        if self.peek("kw", "IN"):
            self.i += 1
            self.take("op", "(")
            values = [self.value(name, kind)]
            while self.peek("op", ","):
                self.i += 1
                values.append(self.value(name, kind))
            self.take("op", ")")
            # is_in alone treats null as not in the set, so NOT IN would be true of a null; SQL leaves it out.
            expr = field.isin(values)
            return (~expr & field.is_valid()) if negate else expr
        if negate:
            raise WhereError(f"NOT after {name} must be followed by IN")
        op = self.take("op", what="a comparison (=, !=, <, <=, >, >=, IN, IS NULL)")
        if op not in _COMPARE:
            raise WhereError(f"expected a comparison after {name}, found {op!r}")
        return getattr(pc, _COMPARE[op])(field, pc.scalar(self.value(name, kind)))


def parse_where(text: str, schema: pa.Schema) -> tuple[pc.Expression, set[str]]:
    """(the expression, the columns it reads). Raises WhereError naming what is wrong."""
    if not text.strip():
        raise WhereError("empty condition")
    parser = _Parser(text, schema)
    return parser.parse(), parser.columns
