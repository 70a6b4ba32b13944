"""CQL2 basic text filters (OGC API Features Part 3) on a map layer's properties, as parameterised SQL.

``pygeofilter`` parses the text (its CQL2 text grammar); this module accepts only the basic subset
(comparisons ``= <> < <= > >=``, ``LIKE``, ``IN``, ``BETWEEN``, ``IS [NOT] NULL``, ``AND``/``OR``/``NOT``,
literals: strings, numbers, booleans, ``DATE('…')``) and turns it into SQLAlchemy conditions over the
layer registry's property expressions (``resolvers.layers.Property.sql``). Every literal becomes a bound
parameter; a property name is looked up in the layer's allow-list, never written into SQL. A property the
viewer may not see cannot be filtered on (``FORBIDDEN``), and the conditions run inside the viewer's
row-level security like every other filter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pygeofilter import ast
from pygeofilter.parsers.cql2_text import parse
from sqlalchemy import ColumnElement, and_, not_, or_

from resolvers.access import Viewer
from resolvers.errors import InvalidInput, OutOfScope
from resolvers.layers import Layer, Property

MAX_FILTER_CHARS = 4000
"""Longest filter text accepted."""
BASIC = "comparisons (= <> < <= > >=), LIKE, IN, BETWEEN, IS NULL, AND, OR, NOT"
COMPARISONS: dict[type, str] = {
    ast.Equal: "__eq__",
    ast.NotEqual: "__ne__",
    ast.LessThan: "__lt__",
    ast.LessEqual: "__le__",
    ast.GreaterThan: "__gt__",
    ast.GreaterEqual: "__ge__",
}


class _Compiler:
    def __init__(self, layer: Layer, viewer: Viewer, as_of: dt.date, field: str) -> None:
        self.layer, self.viewer, self.as_of, self.field = layer, viewer, as_of, field

    def fail(self, message: str) -> InvalidInput:
        return InvalidInput(f"{self.field}: {message}", field=self.field)

    def prop(self, node: Any) -> Property:
        if not isinstance(node, ast.Attribute):
            raise self.fail(f"expected a property name on the left, got {str(node)[:40]!r}")
        p = self.layer.prop(node.name)
        if p is None:
            known = ", ".join(q.name for q in self.layer.visible_properties(self.viewer))
            raise self.fail(f"{node.name[:40]!r} is not a queryable of {self.layer.name} (queryables: {known})")
        if not p.visible_to(self.viewer):
            raise OutOfScope(f"{self.field}: {p.name} is not available to your role; it cannot be filtered on", field=self.field)
        return p

    def value(self, p: Property, v: Any) -> Any:
        ok: bool
        if p.format == "date":
            if isinstance(v, str):
                try:
                    v = dt.date.fromisoformat(v)
                except ValueError:
                    raise self.fail(f"{p.name} is a date; {v[:40]!r} is not YYYY-MM-DD") from None
            ok = isinstance(v, dt.date) and not isinstance(v, dt.datetime)
        elif p.type == "string":
            ok = isinstance(v, str)
            if ok and p.values and v not in p.values:
                raise self.fail(f"{p.name}: {v[:40]!r} is not one of {', '.join(p.values)}")
        elif p.type == "boolean":
            ok = isinstance(v, bool)
        elif p.type == "integer":
            ok = isinstance(v, int | float) and not isinstance(v, bool)
        else:
            ok = isinstance(v, int | float) and not isinstance(v, bool)
        if not ok:
            raise self.fail(f"{p.name} is {p.format or p.type}; {str(v)[:40]!r} is not")
        return v

    def column(self, p: Property) -> Any:
        return p.sql(self.as_of)

    def node(self, n: Any) -> ColumnElement[bool]:
        if isinstance(n, ast.And):
            return and_(self.node(n.lhs), self.node(n.rhs))
        if isinstance(n, ast.Or):
            return or_(self.node(n.lhs), self.node(n.rhs))
        if isinstance(n, ast.Not):
            return not_(self.node(n.sub_node))
        op = COMPARISONS.get(type(n))
        if op is not None:
            p = self.prop(n.lhs)
            if isinstance(n.rhs, ast.Attribute):
                raise self.fail("compare a property with a literal value (property = value)")
            return getattr(self.column(p), op)(self.value(p, n.rhs))  # type: ignore[no-any-return]
        if isinstance(n, ast.Like):
            p = self.prop(n.lhs)
            if p.type != "string" or p.format:
                raise self.fail(f"LIKE applies to text properties; {p.name} is {p.format or p.type}")
            cond = self.column(p).like(str(n.pattern), escape="\\")
            return not_(cond) if n.not_ else cond  # type: ignore[no-any-return]
        if isinstance(n, ast.In):
            p = self.prop(n.lhs)
            cond = self.column(p).in_([self.value(p, v) for v in n.sub_nodes])
            return not_(cond) if n.not_ else cond  # type: ignore[no-any-return]
        if isinstance(n, ast.Between):
            p = self.prop(n.lhs)
            cond = self.column(p).between(self.value(p, n.low), self.value(p, n.high))
            return not_(cond) if n.not_ else cond  # type: ignore[no-any-return]
        if isinstance(n, ast.IsNull):
            p = self.prop(n.lhs)
            return self.column(p).is_not(None) if n.not_ else self.column(p).is_(None)  # type: ignore[no-any-return]
        raise self.fail(f"only basic CQL2 is supported: {BASIC}; not {type(n).__name__}")


def compile_filter(layer: Layer, filter_text: str, viewer: Viewer, as_of: dt.date, field: str = "filter") -> ColumnElement[bool]:
    """A CQL2 text filter on ``layer``'s properties as one SQL condition (literals bound as parameters).

    Args:
        layer: the layer whose properties the filter names.
        filter_text: CQL2 text, basic subset (e.g. ``kind IN ('SCHOOL','CLINIC') AND siteId = 1``).
        viewer: who asks: properties it may not see cannot be filtered on.
        as_of: the layer's date (properties such as ``zeroEmployment`` depend on it).
        field: the parameter's name in messages.

    Returns:
        A SQL condition over the layer's table, to AND into its query.

    Raises:
        InvalidInput: not CQL2 text, not the basic subset, an unknown property, a literal of the wrong type.
        OutOfScope: a property the viewer may not see.
    """
    if not filter_text.strip() or len(filter_text) > MAX_FILTER_CHARS:
        raise InvalidInput(f"{field}: give a CQL2 text expression of 1 to {MAX_FILTER_CHARS} characters", field=field)
    try:
        tree = parse(filter_text)
    except Exception as exc:  # lark's errors: unexpected characters or tokens, with a position
        where = f" at column {getattr(exc, 'column', '?')}" if hasattr(exc, "column") else ""
        raise InvalidInput(f"{field}: not a CQL2 text expression{where}; supported: {BASIC}", field=field) from None
    return _Compiler(layer, viewer, as_of, field).node(tree)


def compile_equality(layer: Layer, name: str, raw: str, viewer: Viewer, as_of: dt.date) -> ColumnElement[bool]:
    """A queryable given as a query parameter (``?kind=SCHOOL``): ``name = raw`` with ``raw`` read by the property's type.

    Raises:
        InvalidInput: ``raw`` is not of the property's type (names the parameter).
        OutOfScope: a property the viewer may not see.
    """
    c = _Compiler(layer, viewer, as_of, name)
    p = c.prop(ast.Attribute(name))
    value: Any = raw
    try:
        if p.type == "integer" and not p.format:
            value = int(raw)
        elif p.type == "number":
            value = float(raw)
        elif p.type == "boolean":
            if raw.lower() not in ("true", "false"):
                raise ValueError(raw)
            value = raw.lower() == "true"
    except ValueError:
        raise c.fail(f"{raw[:40]!r} is not {p.type}") from None
    return c.node(ast.Equal(ast.Attribute(name), value))
