"""listmonk's `query` parameter: an SQL expression over the subscribers table, such as
`subscribers.attribs->>'city' = 'Lyon' AND subscribers.status = 'enabled'`. listmonk puts it
into its SQL as it is; here it is parsed (sqlglot, PostgreSQL's dialect) and rebuilt as an
ORM filter from a fixed set of columns, operators and casts, so that no text of the caller's
ever reaches the database. Anything else is refused with a message that names it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlglot
from django.db.models import (
    BooleanField,
    DateField,
    DateTimeField,
    DecimalField,
    Expression,
    F,
    FloatField,
    IntegerField,
    Q,
    TextField,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Lower, Trim, Upper
from django.db.models.lookups import (
    Contains,
    EndsWith,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    IExact,
    In,
    IRegex,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
    Regex,
    StartsWith,
)
from sqlglot import exp

# The columns a query may name (with or without `subscribers.`), and the model's field.
COLUMNS = {
    "id": "id",
    "uuid": "uuid",
    "email": "email",
    "name": "name",
    "status": "status",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "attribs": "attributes",
}
CASTS: dict[str, Any] = {
    "INT": IntegerField,
    "BIGINT": IntegerField,
    "SMALLINT": IntegerField,
    "DECIMAL": lambda: DecimalField(max_digits=30, decimal_places=10),
    "FLOAT": FloatField,
    "DOUBLE": FloatField,
    "DATE": DateField,
    "TIMESTAMP": DateTimeField,
    "TIMESTAMPTZ": DateTimeField,
    "BOOLEAN": BooleanField,
    "TEXT": TextField,
    "VARCHAR": TextField,
}
FUNCTIONS: dict[type, Callable[[Any], Expression]] = {
    exp.Lower: Lower,
    exp.Upper: Upper,
    exp.Trim: Trim,
}
COMPARISONS: dict[type, type] = {
    exp.EQ: Exact,
    exp.GT: GreaterThan,
    exp.GTE: GreaterThanOrEqual,
    exp.LT: LessThan,
    exp.LTE: LessThanOrEqual,
}
SUPPORTED = (
    "columns email, name, status, created_at, updated_at, id, uuid and attribs->>'key' (any "
    "depth, attribs->'a'->>'b'); =, <>, !=, <, <=, >, >=, LIKE, ILIKE, IN, BETWEEN, IS [NOT] "
    "NULL, AND, OR, NOT and parentheses; ::INT, ::DECIMAL, ::FLOAT, ::DATE, ::TIMESTAMP, "
    "::BOOLEAN and ::TEXT casts; LOWER, UPPER and TRIM"
)
MAX_LENGTH = 4000


class QueryError(ValueError):
    """The query cannot be used; the message names what is not supported."""


def subscriber_filter(text: str) -> Q:
    """The ORM filter of a listmonk subscriber query."""
    if len(text) > MAX_LENGTH:
        raise QueryError(f"The query is longer than {MAX_LENGTH} characters.")
    try:
        tree = sqlglot.parse_one(text, read="postgres")
    except sqlglot.errors.ParseError as error:
        first = error.errors[0]["description"] if error.errors else str(error)
        raise QueryError(f"The query is not a valid SQL expression: {first}.") from error
    if not isinstance(tree, exp.Expression):
        raise QueryError("The query is not an SQL expression.")
    return _condition(tree)


def _unsupported(node: exp.Expression) -> QueryError:
    return QueryError(
        f"{node.sql(dialect='postgres')!r} is not supported in a query; use {SUPPORTED}."
    )


def _condition(node: exp.Expression) -> Q:
    if isinstance(node, exp.Paren):
        return _condition(node.this)
    if isinstance(node, exp.And):
        return _condition(node.this) & _condition(node.expression)
    if isinstance(node, exp.Or):
        return _condition(node.this) | _condition(node.expression)
    if isinstance(node, exp.Not):
        return ~_condition(node.this)
    if type(node) in COMPARISONS:
        lhs = _value_expression(node.this)
        return Q(COMPARISONS[type(node)](lhs, _literal(node.expression)))
    if isinstance(node, exp.NEQ):
        lhs = _value_expression(node.this)
        return ~Q(Exact(lhs, _literal(node.expression)))
    if isinstance(node, exp.Like | exp.ILike):
        return Q(_like(_value_expression(node.this), node.expression, isinstance(node, exp.ILike)))
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            raise _unsupported(node)
        values = [_literal(v) for v in node.expressions]
        return Q(In(_value_expression(node.this), values))
    if isinstance(node, exp.Between):
        lhs = _value_expression(node.this)
        low, high = _literal(node.args["low"]), _literal(node.args["high"])
        return Q(GreaterThanOrEqual(lhs, low)) & Q(LessThanOrEqual(lhs, high))
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return Q(IsNull(_value_expression(node.this), True))
    raise _unsupported(node)


def _value_expression(node: exp.Expression) -> Any:
    """A column, an attribute, or a cast or function of one."""
    if isinstance(node, exp.Paren):
        return _value_expression(node.this)
    if isinstance(node, exp.Column):
        table = node.table
        if table and table != "subscribers":
            raise QueryError(f"Only the subscribers table can be queried, not {table!r}.")
        field = COLUMNS.get(node.name.lower())
        if field is None or field == "attributes":
            raise _unsupported(node)
        return F(field)
    if isinstance(node, exp.JSONExtractScalar):
        return KT("__".join(["attributes", *_attribute_path(node)]))
    if isinstance(node, exp.Cast):
        kind = node.to.this.name if isinstance(node.to.this, exp.DataType.Type) else ""
        make = CASTS.get(kind.upper())
        if make is None:
            raise QueryError(f"The cast to {node.to.sql()!r} is not supported; use {SUPPORTED}.")
        return Cast(_value_expression(node.this), make())
    function = FUNCTIONS.get(type(node))
    if function is not None:
        return function(_value_expression(node.this))
    raise _unsupported(node)


def _attribute_path(node: exp.Expression) -> list[str]:
    """The keys of attribs->'a'->>'b' (only `subscribers.attribs` has attributes)."""
    keys: list[str] = []
    while isinstance(node, exp.JSONExtract | exp.JSONExtractScalar):
        path = node.expression
        parts = path.expressions if isinstance(path, exp.JSONPath) else []
        names = [p.this for p in parts if isinstance(p, exp.JSONPathKey)]
        if not names or len(names) != len(
            [p for p in parts if not isinstance(p, exp.JSONPathRoot)]
        ):
            raise _unsupported(node)
        for name in reversed(names):
            if not re.fullmatch(r"[\w .:-]{1,100}", str(name)):
                raise QueryError(f"The attribute name {name!r} is not supported in a query.")
            keys.insert(0, str(name))
        node = node.this
    if not (isinstance(node, exp.Column) and node.name.lower() == "attribs"):
        raise _unsupported(node)
    if node.table and node.table != "subscribers":
        raise QueryError(f"Only the subscribers table can be queried, not {node.table!r}.")
    return keys


def _literal(node: exp.Expression) -> Any:
    if isinstance(node, exp.Paren):
        return _literal(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        try:
            number = Decimal(node.this)
        except InvalidOperation as error:
            raise _unsupported(node) from error
        return int(number) if number == number.to_integral_value() else number
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return -_literal(node.this)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Cast):
        value = _literal(node.this)
        kind = node.to.this.name.upper() if isinstance(node.to.this, exp.DataType.Type) else ""
        if kind == "DATE":
            return date.fromisoformat(str(value))
        if kind in ("TIMESTAMP", "TIMESTAMPTZ"):
            return datetime.fromisoformat(str(value))
        return value
    raise QueryError(
        f"{node.sql(dialect='postgres')!r} is not supported where a value is expected: "
        "compare with a string, a number, true or false."
    )


def _like(lhs: Any, pattern_node: exp.Expression, insensitive: bool) -> Any:
    """LIKE and ILIKE as the ORM's lookups: a pattern with its % only at the ends becomes
    starts-with, ends-with or contains; any other becomes a regular expression."""
    pattern = _literal(pattern_node)
    if not isinstance(pattern, str):
        raise QueryError("LIKE and ILIKE take a string pattern.")
    inner = pattern.strip("%")
    if "%" not in inner and "_" not in inner and "\\" not in inner:
        starts, ends = pattern.startswith("%"), pattern.endswith("%")
        kinds = {
            (False, False): (Exact, IExact),
            (False, True): (StartsWith, IStartsWith),
            (True, False): (EndsWith, IEndsWith),
            (True, True): (Contains, IContains),
        }[(starts, ends)]
        return kinds[insensitive](lhs, inner)
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return (IRegex if insensitive else Regex)(lhs, f"^{regex}$")
