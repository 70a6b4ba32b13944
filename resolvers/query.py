"""Shared query mechanics: keyset pages, per-parent pages (one LATERAL query for many
parents), batch loads aligned with their keys, id and area-code parsing."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, case, func, null, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import async_sessionmaker

from resolvers.errors import InvalidInput
from resolvers.paging import Page, PageArgs, make_page

Row = dict[str, Any]
K = TypeVar("K", bound=Hashable)

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


def under_area(col: ColumnElement[str], code: str, field: str = "areaCode") -> ColumnElement[bool]:
    """SQL predicate: ``col`` (an admin code) is the area ``code`` or lies below it (with the indexed
    ``county_code`` of the same table as a first cut where the table has one)."""
    prefix = area_code_prefix(code, field)
    cond = col.like(prefix + "%")
    table = getattr(col, "table", None)
    if table is not None and "county_code" in table.c and len(prefix) >= 6:
        cond = and_(table.c.county_code == prefix[:6], cond)
    return cond


MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2100, 12, 31)


def check_date(value: dt.date, field: str) -> dt.date:
    """A date the service stores and compares exactly: 1900-01-01..2100-12-31 (the driver maps
    9999-12-31 to PostgreSQL's infinity). Raises InvalidInput naming ``field``."""
    if not MIN_DATE <= value <= MAX_DATE:
        raise InvalidInput(f"{field}: {value} is outside {MIN_DATE}..{MAX_DATE}", field=field)
    return value


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
    """An ILIKE pattern for a substring search, with ``%``, ``_`` and ``\\`` escaped.

    Raises:
        InvalidInput: empty or longer than 200 characters.
    """
    if not text_ or len(text_) > 200:
        raise InvalidInput(f"{field}: expected 1 to 200 characters", field=field)
    check_text_arg(text_, field)
    return "%" + text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def geojson(col: Any, *, polygon: bool = False) -> ColumnElement[str]:
    """RFC 7946 GeoJSON text of a geometry column, 6 decimals, polygons counter-clockwise; NULL for an
    empty geometry (``POINT EMPTY`` would be ``{"type":"Point","coordinates":[]}``, which map clients
    cannot draw) as for a missing one."""
    if polygon:
        col = func.ST_ForcePolygonCCW(col)
    return case((func.ST_IsEmpty(col), null()), else_=func.ST_AsGeoJSON(col, 6))


async def fetch_page(
    sm: async_sessionmaker,
    base: Select[Any],
    key: ColumnElement[Any],
    args: PageArgs,  # type: ignore[type-arg]
    *,
    kind: str,
) -> Page[Row]:
    """One keyset page of ``base`` ordered by the unique ``key`` column.

    Returns:
        Page of row dicts; ``count()`` runs ``count(*)`` over ``base`` only when called.
    """
    q = base.order_by(key).limit(args.limit + 1)
    if args.after_key is not None:
        q = q.where(key > args.after_key)
    async with sm() as s:
        rows = [dict(r) for r in (await s.execute(q)).mappings()]

    async def count() -> int:
        async with sm() as s:
            return int(await s.scalar(select(func.count()).select_from(base.order_by(None).subquery())) or 0)

    name = key.key if hasattr(key, "key") else "id"
    return make_page(rows, args, kind=kind, key=lambda r: r[name], count=count)


async def rows_by_keys(
    sm: async_sessionmaker,
    base: Select[Any],
    key: ColumnElement[Any],  # type: ignore[type-arg]
    keys: Sequence[K],
    *,
    key_name: str,
) -> list[Row | None]:
    """Batch load: one ``key = ANY(:keys)`` query; results aligned with ``keys`` (None when missing)."""
    if not keys:
        return []
    async with sm() as s:
        rows = (await s.execute(base.where(key.in_(list(set(keys)))))).mappings()
        found = {r[key_name]: dict(r) for r in rows}
    return [found.get(k) for k in keys]


async def lists_by_keys(
    sm: async_sessionmaker,
    base: Select[Any],
    key: ColumnElement[Any],  # type: ignore[type-arg]
    keys: Sequence[K],
    *,
    key_name: str,
    order: Sequence[Any] = (),
) -> list[list[Row]]:
    """Batch load of one-to-many lists: one query; ``[]`` for keys without rows."""
    if not keys:
        return []
    async with sm() as s:
        rows = (await s.execute(base.where(key.in_(list(set(keys)))).order_by(*order))).mappings()
        out: dict[Any, list[Row]] = {}
        for r in rows:
            out.setdefault(r[key_name], []).append(dict(r))
    return [out.get(k, []) for k in keys]


async def pages_by_parents(
    sm: async_sessionmaker,
    base: Select[Any],
    parent: ColumnElement[Any],  # type: ignore[type-arg]
    key: ColumnElement[Any],
    keys: Sequence[tuple[Any, PageArgs]],
    *,
    kind: str,
    parent_type: Any,
    count_by_parents: Callable[[list[Any]], Any],
) -> list[Page[Row]]:
    """Pages of a child list for many parents: one LATERAL query per distinct (first, after).

    ``count_by_parents(parents)`` is an awaitable returning ``{parent: count}`` (one grouped
    query), evaluated only when a ``totalCount`` is asked for.
    """
    by_args: dict[PageArgs, list[Any]] = {}
    for p, a in keys:
        by_args.setdefault(a, []).append(p)
    results: dict[tuple[Any, PageArgs], list[Row]] = {}
    async with sm() as s:
        for a, parents in by_args.items():
            ids = bindparam("pids", list(set(parents)), type_=ARRAY(parent_type))
            pids = func.unnest(ids).table_valued("pid").render_derived(name="p")
            inner = base.where(parent == pids.c.pid).order_by(key).limit(a.limit + 1)
            if a.after_key is not None:
                inner = inner.where(key > a.after_key)
            lat = inner.lateral("c")
            q = select(pids.c.pid.label("_parent"), lat).select_from(pids.join(lat, true()))
            rows = (await s.execute(q)).mappings()
            for r in rows:
                d = dict(r)
                results.setdefault((d.pop("_parent"), a), []).append(d)
    all_parents = list({p for p, _ in keys})
    shared: dict[str, asyncio.Future[dict[Any, int]]] = {}

    def counter(p: Any) -> Callable[[], Any]:
        async def count() -> int:
            if "t" not in shared:  # one grouped count query for every parent, on first use
                shared["t"] = asyncio.ensure_future(count_by_parents(all_parents))
            return int((await shared["t"]).get(p, 0))

        return count

    name = key.key
    return [make_page(results.get((p, a), []), a, kind=kind, key=lambda r: r[name], count=counter(p)) for p, a in keys]
