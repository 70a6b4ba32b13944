"""Responses built by PostgreSQL: the SQL pieces the read planner (``schema.planner``) composes.

A planned read is one ``SELECT`` whose columns are the JSON texts of the operation's root fields.
Objects are ``json_build_object`` over a row source (the same ``*_select()`` the resolvers read),
lists are ``json_agg`` over a correlated subquery, connections are one keyset page aggregated with
its ``pageInfo``. Values are serialized in SQL exactly as the GraphQL scalars serialize them in
Python (``ID`` and ``Decimal`` as strings, enums by member name, dates ``YYYY-MM-DD``, GeoJSON as the
object PostGIS wrote), so a planned field and the resolvers answer the same JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, Text, case, cast, func, literal, literal_column, null, select, true
from sqlalchemy.dialects.postgresql import JSON, aggregate_order_by, array
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, FromClause

from resolvers.access import sql_literal
from resolvers.paging import PageArgs
from resolvers.query import AnySelect

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
EMPTY_LIST = literal_column("'[]'::json", JSON)
MAX_PAIRS = 50
"""``json_build_object`` takes at most 100 arguments (50 key/value pairs)."""


class Unplannable(Exception):
    """This selection cannot be built in SQL; the resolvers answer it instead (not an error)."""


def json_object(pairs: Sequence[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    """``json_build_object(k1, v1, …)``: a JSON object with the keys in the order given.

    Args:
        pairs: (response key, SQL value) — keys are GraphQL names (checked), values any SQL expression.

    Raises:
        Unplannable: more than ``MAX_PAIRS`` keys.
    """
    if len(pairs) > MAX_PAIRS:
        raise Unplannable(f"{len(pairs)} fields in one object")
    args: list[Any] = []
    for key, value in pairs:
        if not _NAME.match(key):  # GraphQL names only: they are written into the SQL text
            raise Unplannable(f"key {key!r}")
        args += [literal_column(f"'{key}'"), value]
    return func.json_build_object(*args, type_=JSON)


def constant(value: str) -> ColumnElement[Any]:
    """A string the code chose (an enum's name or value, a type name, a cursor kind) written into the SQL as a literal.

    Never for client input: those are bound parameters.
    """
    return literal_column(sql_literal(value), Text)


def refuse_if(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[Any]:
    """``value``, or a division by zero when ``condition`` holds.

    A value GraphQL cannot serialize (a non-finite Float, a null in a list of non-null items) thus fails the planned
    statement, and the resolvers answer instead (with their error).
    """
    # the zero depends on the row: PostgreSQL folds a constant 1/0 while planning, even in a branch never taken
    zero = func.length(cast(value, Text)) * literal_column("0")
    failing = cast(cast(literal_column("1") / zero, Text), type_=value.type)  # via text: valid for any type (arrays too)
    return case((condition, failing), else_=value)


def json_text(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON text column (GeoJSON from ``ST_AsGeoJSON``) embedded as JSON, not as a string."""
    return cast(value, JSON)


def id_value(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A GraphQL ``ID``: the key as a string."""
    return cast(column, Text)


def decimal_value(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A ``Decimal`` scalar: numeric as its text (``"2100.00"``), as Python's ``str(Decimal)`` writes it."""
    return cast(column, Text)


def float_value(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A ``Float``: double precision (shortest round-trip text, as Python's ``repr``)."""
    return cast(column, Float)


def enum_value(column: ColumnElement[Any], members: Iterable[tuple[str, Any]]) -> ColumnElement[Any]:
    """A GraphQL enum: the stored value (``labor_export``) mapped to the member name (``LABOR_EXPORT``).

    Args:
        column: the enum column.
        members: (GraphQL name, the value stored for it), from the schema's enum definition.
    """
    whens = [(cast(column, Text) == constant(str(stored)), constant(name)) for name, stored in members]
    return case(*whens, else_=null())


def when_positive(count: ColumnElement[Any], value: ColumnElement[Any]) -> ColumnElement[Any]:
    """``value`` as JSON text when ``count`` > 0, else NULL (an item ``json_array_of_present`` leaves out)."""
    return case((count > 0, cast(value, Text)), else_=null())


def json_array_of_present(items: Sequence[ColumnElement[Any]]) -> ColumnElement[Any]:
    """A JSON array of the JSON texts ``items`` that are not NULL, in order (``array_to_string`` skips NULLs).

    For lists of a fixed length whose items are aggregates of the enclosing query (no subquery needed).
    """
    joined = func.array_to_string(array[Any](items, type_=Text), literal_column("','"))
    return cast(literal_column("'['").op("||")(joined).op("||")(literal_column("']'")), JSON)


def _row(source: AnySelect, outer: FromClause | None) -> Any:
    """``source`` as a derived table; its conditions on ``outer`` (the enclosing row) stay references, not a join."""
    return (source if outer is None else source.correlate(outer)).subquery()


def one_object(source: AnySelect, build: Any, outer: FromClause | None = None) -> ColumnElement[Any]:
    """The JSON object of the single row ``source`` selects, or JSON null when there is none.

    Args:
        source: a select of at most one row (the ``*_select()`` of a type with its key condition).
        build: ``build(row)`` → the object's JSON expression over the row's columns (``row.c``).
        outer: the enclosing row source ``source``'s conditions refer to, if any.
    """
    row = _row(source, outer)
    return select(build(row)).select_from(row).scalar_subquery()


def object_list(source: AnySelect, order: Sequence[str], build: Any, outer: FromClause | None = None) -> ColumnElement[Any]:
    """A JSON array of ``build(row)`` for each row of ``source``, ordered by the named columns; ``[]`` when none.

    ``outer``: the enclosing row source ``source``'s conditions refer to, if any.
    """
    row = _row(source, outer)
    agg = func.json_agg(aggregate_order_by(build(row), *(row.c[c] for c in order)), type_=JSON)
    return select(func.coalesce(agg, EMPTY_LIST)).select_from(row).scalar_subquery()


def yuan(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQL of ``resolvers.coverage.round_yuan``: numeric rounded half away from zero to 0.01 (half-up for amounts ≥ 0)."""
    return func.round(value, literal(2, Integer))


def cursor(kind: str, key: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQL of ``resolvers.paging.encode_cursor(kind, key)``: URL-safe base64 of ``kind:key``, padding stripped."""
    raw = func.encode(func.convert_to(constant(kind + ":") + cast(key, Text), constant("UTF8")), constant("base64"))
    return func.rtrim(func.translate(raw, constant("+/"), constant("-_")), constant("="))


@dataclass(frozen=True)
class ConnectionMember:
    """One response key of a connection's selection, in the query's order.

    ``what`` is ``nodes`` (``build(row)`` makes a node's JSON over the page row's columns), ``totalCount``,
    ``pageInfo`` (``page_info``: [(key, hasNextPage | endCursor | __typename)]) or ``__typename`` (``type_name``).
    """

    key: str
    what: str
    build: Any = None
    page_info: tuple[tuple[str, str], ...] = ()
    type_name: str = ""


def connection(
    base: AnySelect,
    key: str,
    args: PageArgs,
    kind: str,
    members: Sequence[ConnectionMember],
    outer: FromClause | None = None,
    page_info_type: str = "PageInfo",
) -> ColumnElement[Any]:
    """One keyset page of ``base`` as the JSON of a connection, as ``resolvers.query.fetch_page`` reads it.

    Args:
        base: the filtered ``*_select()``; ``key`` names its unique order column.
        key: the order/cursor column's name in ``base``.
        args: validated ``first``/``after``.
        kind: the list's cursor kind.
        members: the response keys asked for, in order (each alias of ``nodes`` with its own selection).
        outer: the enclosing row ``base``'s conditions refer to (a connection field of an object), if any.
        page_info_type: the GraphQL name of ``pageInfo``'s type (its ``__typename``).
    """
    if outer is not None:
        base = base.correlate(outer)
    keycol = base.selected_columns[key]
    q = base.order_by(keycol).limit(args.limit + 1)
    if args.after_key is not None:
        q = q.where(keycol > args.after_key)
    paged = q.add_columns(func.row_number().over(order_by=keycol).label("_rn"))
    numbered = (paged if outer is None else paged.correlate(outer)).subquery()
    in_page = numbered.c._rn <= args.limit
    last = func.max(numbered.c[key]).filter(in_page)
    pairs: list[tuple[str, ColumnElement[Any]]] = []
    count = None
    for mem in members:
        if mem.what == "nodes":
            agg = func.json_agg(aggregate_order_by(mem.build(numbered), numbered.c[key]), type_=JSON).filter(in_page)
            pairs.append((mem.key, func.coalesce(agg, EMPTY_LIST)))
        elif mem.what == "totalCount":
            if count is None:
                count = select(func.count()).select_from(base.order_by(None).subquery()).scalar_subquery()
                if outer is not None:
                    count = count.correlate(outer)
            pairs.append((mem.key, count))
        elif mem.what == "pageInfo":
            info: list[tuple[str, ColumnElement[Any]]] = []
            for k, member in mem.page_info:
                if member == "hasNextPage":
                    info.append((k, func.count() > args.limit))
                elif member == "endCursor":
                    info.append((k, cursor(kind, last)))
                else:
                    info.append((k, constant(page_info_type)))
            pairs.append((mem.key, json_object(info)))
        else:
            pairs.append((mem.key, constant(mem.type_name)))
    # HAVING makes it an aggregate query: exactly one row, also for an empty page
    return select(json_object(pairs)).select_from(numbered).having(true()).scalar_subquery()


@dataclass(frozen=True)
class CompiledPlan:
    """A planned statement compiled once for asyncpg: SQL text with ``$n`` parameters and their values."""

    sql: str
    params: tuple[Any, ...]
    settings: tuple[tuple[str, str], ...] = ()
    """Planner settings (name, value) the statement runs with (e.g. ``resolvers.coverage.WIDE_AREA_HINTS``)."""


def compile_plan(columns: Sequence[ColumnElement[Any]], dialect: Dialect, settings: dict[str, str] | None = None) -> CompiledPlan:
    """``SELECT col1::text, col2::text, …`` compiled for ``dialect`` with the bound values processed as the driver needs.

    ``settings``: planner settings to apply before the statement runs (``CompiledPlan.settings``).

    Raises:
        Unplannable: a bound value the dialect cannot render.
    """
    plan = compile_statement(select(*(cast(c, Text) for c in columns)), dialect)
    return dataclasses.replace(plan, settings=tuple(sorted((settings or {}).items())))


def compile_statement(stmt: Any, dialect: Dialect) -> CompiledPlan:
    """Any statement compiled for ``dialect`` (asyncpg ``$n``) with its bound values processed as the driver needs.

    Raises:
        Unplannable: a bound value the dialect cannot render.
    """
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    processors: dict[str, Any] = dict(compiled._bind_processors)
    names = compiled.positiontup or []
    params = []
    for name in names:
        v = values[name]
        proc = processors.get(name)
        if proc is not None and v is not None:
            v = proc(v)
        elif isinstance(v, enum.Enum):  # an expanded IN list's items (render_postcompile) skip the Enum type's processor
            v = v.value  # models' enums store their values (models._enum, values_callable)
        params.append(v)
    return CompiledPlan(compiled.string, tuple(params))


async def run_plan(session: AsyncSession, plan: CompiledPlan) -> Sequence[str | None]:
    """Run a compiled plan in ``session``'s transaction (its viewer scope applied) → the root fields' JSON texts."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    for name, value in plan.settings:  # for this transaction only
        await driver.execute("SELECT set_config($1, $2, true)", name, value)
    row = await driver.fetchrow(plan.sql, *plan.params)
    return tuple(row)
