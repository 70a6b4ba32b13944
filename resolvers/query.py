"""Shared query mechanics.

Keyset pages, per-parent pages (one LATERAL query for many parents), batch loads aligned with their keys, id and area-code
parsing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import ColumnElement, Row, Select, SQLColumnExpression, and_, bindparam, case, func, null, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

import models as m
from resolvers.errors import InvalidInput
from resolvers.paging import Page, PageArgs, make_page

SessionMaker: TypeAlias = async_sessionmaker[AsyncSession]
"""How resolvers reach the database: each opens its own short session (STYLE §3)."""
AnySelect: TypeAlias = Select[*tuple[Any, ...]]
"""A ``select()`` of any columns."""
AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any columns: attribute access by column name (labels starting with ``_`` only through ``row._mapping``, as
``Row`` keeps its own attributes there, e.g. ``_parent``)."""
K = TypeVar("K", bound=Hashable)
R = TypeVar("R")

_CODE = re.compile(r"^[0-9]{6}([0-9]{3}([0-9]{3})?)?$")
MAX_ID = 2**63 - 1


def parse_id(value: str | int) -> int | None:
    """A database id from a GraphQL ``ID``; None when it cannot name a row (not a positive int64)."""
    s = str(value)
    # ASCII digits only, canonical (no sign, spaces or leading zeros): one id names one row.
    if not (s.isascii() and s.isdigit()) or len(s) > 19 or s != str(int(s)) or not 0 < int(s) <= MAX_ID:
        return None
    return int(s)


def require_id(value: str | int, field: str) -> int:
    """Like ``parse_id`` for ids in filters/inputs. Raises InvalidInput naming ``field``."""
    parsed = parse_id(value)
    if parsed is None:
        raise InvalidInput(f"{field}: {str(value)[:40]!r} is not an id; expected a positive integer id", field=field)
    return parsed


def optional_id(value: str | int | None, field: str) -> int | None:
    """Like ``require_id`` for an optional id: None stays None.

    Raises:
        InvalidInput: a given value that names no row, naming ``field``.
    """
    return require_id(value, field) if value is not None else None


def area_code_prefix(code: str, field: str = "areaCode") -> str:
    """The leading digits every code below the area shares (GB/T 2260 + NBS statistical codes).

    ``510000`` (province) → ``51``; ``513400`` (prefecture) → ``5134``; ``513432`` (county) →
    ``513432``; 9-digit township and 12-digit village codes are their own prefix.

    Raises:
        InvalidInput: not 6, 9 or 12 digits (names ``field``).
    """
    if not _CODE.fullmatch(code or ""):
        raise InvalidInput(
            f"{field}: {code[:40]!r} is not an admin area code; expected 6, 9 or 12 digits (GB/T 2260 / NBS statistical code)",
            field=field,
        )
    if len(code) == 6:
        if code.endswith("0000"):
            return code[:2]
        if code.endswith("00"):
            return code[:4]
    return code


def under_area(col: SQLColumnExpression[str], code: str, field: str = "areaCode") -> ColumnElement[bool]:
    """SQL predicate.

    ``col`` (an admin code) is the area ``code`` or lies below it (with the indexed ``county_code`` of the same table as a first
    cut where the table has one).
    """
    prefix = area_code_prefix(code, field)
    cond: ColumnElement[bool] = col.like(prefix + "%")
    table = getattr(col, "table", None)
    if table is not None and "county_code" in table.c and len(prefix) >= 6:
        cond = and_(table.c.county_code == prefix[:6], cond)
    return cond


MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2100, 12, 31)


def check_date(value: dt.date, field: str) -> dt.date:
    """A date the service stores and compares exactly.

    1900-01-01..2100-12-31 (the driver maps 9999-12-31 to PostgreSQL's infinity). Raises InvalidInput naming ``field``.
    """
    if not MIN_DATE <= value <= MAX_DATE:
        raise InvalidInput(f"{field}: {value} is outside {MIN_DATE}..{MAX_DATE}", field=field)
    return value


def check_period(
    start: dt.date | None,
    end: dt.date | None,
    start_field: str = "startOn",
    end_field: str = "endOn",
    *,
    blame_start: bool = False,
) -> None:
    """A period's end not before its start (either None: nothing to check); the one rule of every start/end pair.

    Raises:
        InvalidInput: ``end < start``, naming ``end_field`` ("endOn: 2024-01-01 is before startOn 2024-02-01"), or with
        ``blame_start`` (the start is what the caller sets) naming ``start_field`` ("openedOn: … is after closedOn …").
    """
    if start is None or end is None or end >= start:
        return
    if blame_start:
        raise InvalidInput(f"{start_field}: {start} is after {end_field} {end}", field=start_field)
    raise InvalidInput(f"{end_field}: {end} is before {start_field} {start}", field=end_field)


def check_year(year: int, field: str = "year") -> int:
    """A calendar year of income/linkage records: 2000..2100. Raises InvalidInput naming ``field``."""
    if not 2000 <= year <= 2100:
        raise InvalidInput(f"{field}: {year} is outside 2000..2100", field=field)
    return year


def check_text_arg(value: str, field: str) -> str:
    """A text argument PostgreSQL can store: no NUL character, no lone surrogate.

    Raises:
        InvalidInput: naming ``field``.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{field}: not valid Unicode text (lone surrogate)", field=field) from None
    if "\x00" in value:
        raise InvalidInput(f"{field}: contains a NUL character", field=field)
    return value


def contains_pattern(text_: str, field: str) -> str:
    r"""An ILIKE pattern for a substring search, with ``%``, ``_`` and ``\`` escaped.

    Raises:
        InvalidInput: empty or longer than 200 characters.
    """
    if not text_ or len(text_) > 200:
        raise InvalidInput(f"{field}: expected 1 to 200 characters", field=field)
    check_text_arg(text_, field)
    return "%" + text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def geojson(col: Any, *, polygon: bool = False) -> ColumnElement[str]:
    """RFC 7946 GeoJSON text of a geometry column, 6 decimals, polygons counter-clockwise.

    NULL for an empty geometry (``POINT EMPTY`` would be ``{"type":"Point","coordinates":[]}``, which map clients cannot draw) as
    for a missing one.
    """
    if polygon:
        col = func.ST_ForcePolygonCCW(col)
    return case((func.ST_IsEmpty(col), null()), else_=func.ST_AsGeoJSON(col, 6))


def place_columns(model: type[m.RelocationSite] | type[m.Facility], outline: str) -> list[Any]:
    """The columns every place (relocation site, facility) row starts with.

    Args:
        model: the place's table.
        outline: the name of its polygon column (``boundary``, ``footprint``).

    Returns:
        id, name, kind, admin_code, location (GeoJSON Point text, SRID 4326) and ``outline`` (GeoJSON MultiPolygon text or
        None).
    """
    return [
        model.id,
        model.name,
        model.kind,
        model.admin_code,
        geojson(model.location).label("location"),
        geojson(getattr(model, outline), polygon=True).label(outline),
    ]


async def fetch_page(
    sm: SessionMaker,
    base: AnySelect,
    key: InstrumentedAttribute[Any],
    args: PageArgs,
    *,
    kind: str,
    build: Callable[[AnyRow], R],
) -> Page[R]:
    """One keyset page of ``base`` ordered by the unique ``key`` column.

    Returns:
        Page of ``build(row)``; ``count()`` runs ``count(*)`` over ``base`` only when called.
    """
    q = base.order_by(key).limit(args.limit + 1)
    if args.after_key is not None:
        q = q.where(key > args.after_key)
    async with sm() as s:
        rows = (await s.execute(q)).all()

    async def count() -> int:
        async with sm() as s:
            return int(await s.scalar(select(func.count()).select_from(base.order_by(None).subquery())) or 0)

    return make_page(rows, args, kind=kind, key=lambda r: r._mapping[key.key], count=count).map(build)


async def rows_by_keys(
    sm: SessionMaker,
    base: AnySelect,
    key: InstrumentedAttribute[K],
    keys: Sequence[K],
    *,
    build: Callable[[AnyRow], R],
) -> list[R | None]:
    """Batch load: one ``key = ANY(:keys)`` query; ``build(row)`` aligned with ``keys`` (None when missing)."""
    if not keys:
        return []
    async with sm() as s:
        rows = await s.execute(base.where(key.in_(list(set(keys)))))
        found = {r._mapping[key.key]: build(r) for r in rows}
    return [found.get(k) for k in keys]


async def lists_by_keys(
    sm: SessionMaker,
    base: AnySelect,
    key: InstrumentedAttribute[Any],
    keys: Sequence[K],
    *,
    build: Callable[[AnyRow], R],
    order: Sequence[Any] = (),
) -> list[list[R]]:
    """Batch load of one-to-many lists: one query; ``[]`` for keys without rows."""
    if not keys:
        return []
    async with sm() as s:
        rows = await s.execute(base.where(key.in_(list(set(keys)))).order_by(*order))
        out: dict[Any, list[R]] = {}
        for r in rows:
            out.setdefault(r._mapping[key.key], []).append(build(r))
    return [out.get(k, []) for k in keys]


async def pages_by_parents(
    sm: SessionMaker,
    base: AnySelect,
    parent: InstrumentedAttribute[Any],
    key: InstrumentedAttribute[Any],
    keys: Sequence[tuple[K, PageArgs]],
    *,
    kind: str,
    parent_type: Any,
    count_by_parents: Callable[[list[K]], Awaitable[dict[K, int]]],
    build: Callable[[AnyRow], R],
) -> list[Page[R]]:
    """Pages of a child list for many parents: one LATERAL query per distinct (first, after).

    ``count_by_parents(parents)`` is an awaitable returning ``{parent: count}`` (one grouped
    query), evaluated only when a ``totalCount`` is asked for.
    """
    by_args: dict[PageArgs, list[K]] = {}
    for p, a in keys:
        by_args.setdefault(a, []).append(p)
    results: dict[tuple[Any, PageArgs], list[AnyRow]] = {}
    async with sm() as s:
        for a, parents in by_args.items():
            ids = bindparam("pids", list(set(parents)), type_=ARRAY(parent_type))
            pids = func.unnest(ids).table_valued("pid").render_derived(name="p")
            inner = base.where(parent == pids.c.pid).order_by(key).limit(a.limit + 1)
            if a.after_key is not None:
                inner = inner.where(key > a.after_key)
            lat = inner.lateral("c")
            q = select(pids.c.pid.label("_parent"), lat).select_from(pids.join(lat, true()))
            for r in await s.execute(q):
                results.setdefault((r._mapping["_parent"], a), []).append(r)
    all_parents = list({p for p, _ in keys})
    shared: dict[str, asyncio.Future[dict[K, int]]] = {}

    def counter(p: K) -> Callable[[], Awaitable[int]]:
        async def count() -> int:
            if "t" not in shared:  # one grouped count query for every parent, on first use
                shared["t"] = asyncio.ensure_future(count_by_parents(all_parents))
            return int((await shared["t"]).get(p, 0))

        return count

    return [
        make_page(results.get((p, a), []), a, kind=kind, key=lambda r: r._mapping[key.key], count=counter(p)).map(build)
        for p, a in keys
    ]
