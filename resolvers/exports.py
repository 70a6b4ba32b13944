"""The export registry (issue #13): every list the API filters, declared once as an ``ExportKind``.

A kind names its columns (``ExportField``: Chinese and English, the header ``户编号 household_code``; the household roster
and the income-linkage list take their columns from the import templates, so an exported file imports back), the
filters it accepts (the GraphQL argument names, as URL query parameters) and its rows: a SQL statement built on the
resolvers' own row sources — ``filtered_households`` (households), ``zero_employment_select``,
``households_at_risk_select``, ``employment_select``, ``income_linkage_select``, the map layers' ``rows_select``
(sites, facilities) — or, for aggregates, the same grouped statement and small-cell suppression as GraphQL
(``coverage``). Statements run in the viewer's scoped session (``resolvers.access.scoped_sessionmaker``): row-level
security and masking are PostgreSQL's, exactly as for GraphQL. Partners get aggregates only: household-level kinds are
FORBIDDEN for them (``ExportKind.personal``).

Adding a kind (say, the monitoring ledger of #17) is one ``ExportKind`` in ``KINDS``: its fields, filters and a
``rows`` function returning a select whose columns are labelled with the field keys (and ``geom``, SRID 4326, when it
has a geometry). The writers (``anju/exports.py``) do the rest for every format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import JSON, ColumnElement, String, Text, case, cast, func, literal, null, select, type_coerce
from sqlalchemy.types import TypeDecorator

import models as m
from resolvers import coverage as cov
from resolvers import employment_import, household_import, linkage_import
from resolvers import suppression as sup
from resolvers.access import Role, Viewer, hidden, masked
from resolvers.errors import InvalidInput, NotFound, OutOfScope
from resolvers.geofilters import BBox, SpatialFilter, parse_bbox
from resolvers.households import (
    HouseholdFilter,
    active_on,
    employment_select,
    filtered_households,
    income_linkage_select,
)
from resolvers.layers import LAYERS, Layer, parse_date, parse_kinds, rows_select
from resolvers.layers import layer_args as _layer_args
from resolvers.query import AnySelect, SessionMaker, area_code_prefix, check_date, optional_id, under_area

H, M, E, L, A, ST = m.Household, m.Member, m.Employment, m.IncomeLinkage, m.AdminArea, m.HouseholdStatus

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "gpkg": "application/geopackage+sqlite3",
    "fgb": "application/octet-stream",
    "geojson": "application/geo+json",
}
"""Export formats → their media types. ``gpkg``, ``fgb`` and ``geojson`` need a kind with a geometry."""
FORMULA_START = household_import.FORMULA_START
"""Text starting with one of these is a formula to a spreadsheet: neutralised in exports (``spreadsheet_safe``)."""


@dataclass(frozen=True)
class ExportField:
    """One column of an export.

    Attributes:
        key: the English name (``household_code``); ``zh`` the Chinese one; the header is both (``户编号 household_code``).
        type: ``text`` (codes and ID numbers too: never a number in a spreadsheet), ``integer``, ``number`` or ``date``.
    """

    key: str
    zh: str
    type: str = "text"

    @property
    def header(self) -> str:
        """Chinese, a space, English: the import templates' form."""
        return f"{self.zh} {self.key}"


def _from_columns(columns: Sequence[household_import.Column], types: Mapping[str, str]) -> tuple[ExportField, ...]:
    """An import template's columns as export fields (the one definition of their headers)."""
    return tuple(ExportField(c.key, c.zh, types.get(c.key, "text")) for c in columns)


@dataclass(frozen=True)
class ExportArgs:
    """An export's filters, validated (members combine with AND); names as in GraphQL.

    Attributes:
        as_of: the date figures are true on (``asOf``; today, Asia/Shanghai, when not given).
        as_of_given: ``asOf`` was given (facilities: then only those open on it).
        area_code: under this admin area (code prefix, 2–12 digits).
        site_id: of this relocation site.
        bbox: WGS84 [minLon, minLat, maxLon, maxLat]; rows whose geometry intersects it.
        kinds: facility kinds.
        zero_employment: households zero-employment on ``as_of`` (true) or not (false).
        year: the year of incomes and linkages.
        threshold: yuan per person per year (householdsAtRisk's ``perCapitaThreshold``).
        level: the admin level of coverage rows (default county).
    """

    as_of: dt.date
    as_of_given: bool = False
    area_code: str | None = None
    site_id: int | None = None
    bbox: BBox | None = None
    kinds: tuple[m.FacilityKind, ...] | None = None
    zero_employment: bool | None = None
    year: int | None = None
    threshold: Decimal | None = None
    level: m.AdminLevel = m.AdminLevel.COUNTY


@dataclass(frozen=True)
class ExportKind:
    """A list that can be exported, declared once.

    Attributes:
        name: the kind in URLs and on the command line (``households``).
        title: Chinese first, English beside (the XLSX sheet's name).
        fields: the columns, in order.
        filters: the query parameters it accepts (GraphQL argument names).
        rows: the SQL source: a select whose columns are labelled with the field keys, then ``geom`` (SRID 4326) when
            ``geometry_type`` is set. None for aggregates (``aggregate``).
        geometry_type: ``Point`` or ``MultiPolygon`` (GIS formats), or None (CSV and XLSX only).
        personal: records about households (partners: FORBIDDEN).
        aggregate: an aggregate's rows computed by the resolvers (field values, then the geometry's WKB and GeoJSON).
        note: what one row is (docs, the XLSX notes).
    """

    name: str
    title: str
    fields: tuple[ExportField, ...]
    filters: frozenset[str]
    rows: Callable[[ExportArgs, Viewer], AnySelect] | None
    geometry_type: str | None = None
    personal: bool = True
    aggregate: Callable[[SessionMaker, ExportArgs, Viewer, int | None], Any] | None = field(default=None)
    note: str = ""

    def check_viewer(self, viewer: Viewer) -> None:
        """Raises OutOfScope (FORBIDDEN) for partners and household-level kinds (partners: aggregates only)."""
        if self.personal and not viewer.reads_households:
            raise OutOfScope(
                f"kind: {self.name} are household records, not available to partner viewers (they may export coverage)",
                field="kind",
            )

    def check_args(self, a: ExportArgs, viewer: Viewer) -> None:
        """Raises OutOfScope (FORBIDDEN) for a partner asking aggregates below county level (GraphQL: paired counties only)."""
        if self.aggregate is not None and viewer.role is Role.PARTNER and a.level is not m.AdminLevel.COUNTY:
            raise OutOfScope("level: partner viewers get aggregates of their paired counties only", field="level")

    def check_format(self, fmt: str) -> None:
        """Raises InvalidInput naming ``format`` for an unknown format or a GIS format of a kind without geometry."""
        if fmt not in FORMATS:
            raise InvalidInput(f"format: {fmt[:20]!r} is not one of {', '.join(FORMATS)}", field="format")
        if fmt in ("gpkg", "fgb", "geojson") and self.geometry_type is None:
            raise InvalidInput(f"format: {self.name} have no geometry; export them as csv or xlsx", field="format")


# --------------------------------------------------------------------------- SQL helpers


class FixedWords(TypeDecorator[str]):
    """Text from a fixed vocabulary none of whose words starts a formula: ``spreadsheet_safe`` leaves it as it is.

    Only ``words``, ``yes_no`` and ``no_text`` give it, after checking every value they can produce. It changes no SQL
    (``type_coerce``): it tells the export's statement builder that the CASE which neutralises formulas would never fire,
    so the statement does not evaluate the vocabulary's CASE three times over per row (at the Sichuan scale that CASE
    work was half the export's time: ``bench/results/exports.md``).
    """

    impl = Text
    cache_ok = True


FIXED = FixedWords()


def _formula_free(values: Any) -> bool:
    return not any(str(v)[:1] in FORMULA_START for v in values)


def words(col: Any, parser: Any) -> ColumnElement[str]:
    """An enum column as the import template's Chinese word (``男``, ``户主``): what the import reads back.

    Members without a word (none today) as their stored value. The members are tested in their declaration order (the
    most frequent first: ``head``, ``registered``).
    """
    enum = type(next(iter(parser.words)))
    shown = {e: parser.words[e] for e in enum if e in parser.words}
    expr = case(*((col == e, literal(word)) for e, word in shown.items()), else_=cast(col, Text))
    fixed = _formula_free(shown.values()) and _formula_free(e.value for e in enum)
    return type_coerce(expr, FIXED) if fixed else expr


def yes_no(col: Any) -> ColumnElement[str]:
    """A boolean as 是/否 (the templates' words)."""
    return type_coerce(case((col.is_(True), literal("是")), (col.is_(False), literal("否")), else_=null()), FIXED)


def no_text() -> ColumnElement[str]:
    """A text column always empty (the roster's ``id_number``)."""
    return type_coerce(cast(null(), String), FIXED)


FORMULA_CODES = tuple(sorted(ord(c) for c in FORMULA_START))


def spreadsheet_safe(col: Any) -> ColumnElement[str]:
    """SQL: text a spreadsheet would take for a formula (starting with = + - @, tab or CR) prefixed with ``'``.

    OWASP's CSV-injection advice; the imports drop that one quote again (``household_import._cell_text``). The first
    character is tested as its code point (``ascii(col)``: one integer, where ``left(col, 1) IN (…)`` built a string
    and compared six). Columns of a ``FixedWords`` vocabulary are returned as they are (none of their words is a formula).
    """
    if isinstance(col.type, FixedWords):
        return col
    return case((func.ascii(col).in_(FORMULA_CODES), literal("'") + col), else_=col)


def _households(a: ExportArgs) -> list[ColumnElement[bool]]:
    """The conditions over ``household`` of the households the list shows: ``filtered_households``'s (GraphQL's).

    They are put on the export's own ``household`` rather than as ``id IN (<filtered_households>)``: the same rows (a
    select from ``household`` alone, each condition over its row), and without that second scan of the table PostgreSQL
    plans the roster as the plain join it is (one merge join, not parallel workers shipping 1.36 M rows through a Gather
    Merge: ``bench/results/exports.md``).
    """
    spatial = SpatialFilter(bbox=a.bbox) if a.bbox is not None else None
    f = HouseholdFilter(a.site_id, a.area_code, spatial, a.zero_employment, a.as_of)
    q = filtered_households(f)
    assert q.get_final_froms() == [H.__table__], "filtered_households must select from household alone"
    return [] if q.whereclause is None else [q.whereclause]


def _household_columns() -> list[ColumnElement[Any]]:
    """The roster's household columns, as the import template holds them."""
    return [
        H.code.label("household_code"),
        H.admin_code.label("admin_code"),
        words(H.poverty_status, household_import._poverty).label("poverty_status"),
        H.site_id.label("site_id"),
        H.relocated_on.label("relocated_on"),
        H.origin_admin_code.label("origin_admin_code"),
        func.ST_X(H.dwelling).label("dwelling_lon"),
        func.ST_Y(H.dwelling).label("dwelling_lat"),
    ]


ROSTER_TYPES = {
    "site_id": "integer",
    "relocated_on": "date",
    "dwelling_lon": "number",
    "dwelling_lat": "number",
    "birth_year": "integer",
    "joined_on": "date",
    "member_id": "integer",
}
HOUSEHOLD_FIELDS = tuple(
    f for f in _from_columns(household_import.COLUMNS, ROSTER_TYPES) if f.key in household_import.HOUSEHOLD_KEYS
)


def roster_rows(a: ExportArgs, viewer: Viewer) -> AnySelect:
    """The household roster (花名册): one row per present member (left_on unset), the household's columns repeated.

    Columns exactly the import template's (``household_import.COLUMNS``), so the file imports back writing nothing.
    ``id_number`` is always blank: only a keyed hash and the last 4 digits are stored; ``member_id`` (成员编号) is the
    member's id, by which the import matches the row. Names and phones masked as in GraphQL (``member_select``).
    Households without a present member have no row. By household id, then member id.
    """
    imp = household_import
    return (
        select(
            *_household_columns(),
            masked(M.name, "anju_mask_name").label("name"),
            words(M.gender, imp._gender).label("gender"),
            M.birth_year.label("birth_year"),
            words(M.relation, imp._relation).label("relation"),
            yes_no(M.labor_force).label("labor_force"),
            no_text().label("id_number"),
            masked(M.phone, "anju_mask_phone").label("phone"),
            func.nullif(func.array_to_string(M.skills, "、"), "").label("skills"),
            M.joined_on.label("joined_on"),
            words(M.join_reason, imp._join_reason).label("join_reason"),
            M.id.label("member_id"),
            H.dwelling.label("geom"),
        )
        .join(M, M.household_id == H.id)
        .where(*_households(a), M.left_on.is_(None))
        .order_by(H.id, M.id)
    )


HOUSEHOLD_STATUS_FIELDS = (ExportField("members", "人数", "integer"), ExportField("labor_force", "劳动力人数", "integer"))


def _status_columns(a: ExportArgs) -> list[ColumnElement[Any]]:
    """Members and labor force present on ``asOf`` (household_status, the trigger-kept segment)."""
    seg = select(ST.members, ST.labor_force).where(ST.household_id == H.id, ST.valid_from <= a.as_of, ST.valid_to > a.as_of)
    return [
        func.coalesce(seg.with_only_columns(ST.members).scalar_subquery(), 0).label("members"),
        func.coalesce(seg.with_only_columns(ST.labor_force).scalar_subquery(), 0).label("labor_force"),
    ]


def zero_employment_rows(a: ExportArgs, viewer: Viewer) -> AnySelect:
    """零就业家庭 on ``asOf``: one row per household (``zero_employment_select``, GraphQL ``zeroEmploymentHouseholds``)."""
    ids = cov.zero_employment_select(a.as_of, a.area_code, a.site_id).with_only_columns(H.id)
    return select(*_household_columns(), *_status_columns(a), H.dwelling.label("geom")).where(H.id.in_(ids)).order_by(H.id)


RISK_FIELDS = (
    ExportField("year", "年份", "integer"),
    ExportField("per_capita_income", "人均纯收入", "number"),
    ExportField("previous_per_capita_income", "上年人均纯收入", "number"),
    ExportField("below_threshold", "低于监测线"),
    ExportField("income_declined", "收入下降"),
)


def at_risk_rows(a: ExportArgs, viewer: Viewer) -> AnySelect:
    """防返贫监测 (GraphQL ``householdsAtRisk``): one row per household at risk in ``year``; yuan rounded half-up to 0.01."""
    assert a.year is not None and a.threshold is not None  # parse_filters requires them
    r = cov.households_at_risk_select(a.year, a.threshold, a.area_code, a.site_id).subquery("r")
    return (
        select(
            *_household_columns(),
            *_status_columns(a),
            literal(a.year).label("year"),
            func.round(r.c.pc, 2).label("per_capita_income"),
            func.round(r.c.prev_pc, 2).label("previous_per_capita_income"),
            yes_no(r.c.below).label("below_threshold"),
            yes_no(r.c.declined).label("income_declined"),
            H.dwelling.label("geom"),
        )
        .join(r, r.c.id == H.id)
        .order_by(H.id)
    )


def _employment_fields() -> tuple[ExportField, ...]:
    by = {c.key: c for c in employment_import.EMPLOYMENT_COLUMNS}
    types = {"start_on": "date", "end_on": "date", "facility_id": "integer", "monthly_wage": "number"}
    keys = ("channel", "start_on", "end_on", "stable", "facility_id", "employer_name", "outbound_region", "monthly_wage")
    return (
        ExportField("employment_id", "就业编号", "integer"),
        ExportField("household_code", household_import.BY_KEY["household_code"].zh),
        ExportField("member_id", "成员编号", "integer"),
        ExportField("name", household_import.BY_KEY["name"].zh),
        ExportField("id_number_last4", "身份证号后4位"),
        *(ExportField(k, by[k].zh, types.get(k, "text")) for k in keys),
    )


def employment_rows(a: ExportArgs, viewer: Viewer) -> AnySelect:
    """Employments (就业): ``employment_select`` with the member and household; active on ``asOf`` when it is given.

    Geometry: the workplace (null when not recorded). By employment id.
    """
    e = employment_select().subquery("e")
    q = (
        select(
            e.c.id.label("employment_id"),
            H.code.label("household_code"),
            M.id.label("member_id"),
            masked(M.name, "anju_mask_name").label("name"),
            hidden(M.id_number_last4).label("id_number_last4"),
            words(E.channel, employment_import._channel).label("channel"),
            E.start_on.label("start_on"),
            E.end_on.label("end_on"),
            yes_no(E.stable).label("stable"),
            E.facility_id.label("facility_id"),
            E.employer_name.label("employer_name"),
            E.outbound_region.label("outbound_region"),
            E.monthly_wage.label("monthly_wage"),
            E.workplace.label("geom"),
        )
        .select_from(e)
        .join(E, E.id == e.c.id)
        .join(M, M.id == E.member_id)
        .join(H, H.id == E.household_id)
        .order_by(E.id)
    )
    if a.as_of_given:
        q = q.where(active_on(a.as_of))
    return q.where(*_place(a))


def _place(a: ExportArgs) -> list[ColumnElement[bool]]:
    """The conditions of ``areaCode`` and ``siteId`` over the household (``H``) of a row."""
    out: list[ColumnElement[bool]] = []
    if a.area_code is not None:
        out.append(under_area(H.admin_code, a.area_code, "areaCode"))
    if a.site_id is not None:
        out.append(H.site_id == a.site_id)
    return out


LINKAGE_FIELDS = _from_columns(linkage_import.LINKAGE_COLUMNS, {"year": "integer", "amount": "number", "facility_id": "integer"})


def linkage_rows(a: ExportArgs, viewer: Viewer) -> AnySelect:
    """Income linkages (利益联结), the income-linkage import template's columns (so the file imports back); by id."""
    li = income_linkage_select().subquery("l")
    q = (
        select(
            H.code.label("household_code"),
            li.c.year.label("year"),
            words(li.c.mechanism, linkage_import._mechanism).label("mechanism"),
            li.c.amount.label("amount"),
            li.c.facility_id.label("facility_id"),
        )
        .select_from(li)
        .join(H, H.id == li.c.household_id)
        .where(*_place(a))
        .order_by(li.c.id)
    )
    return q if a.year is None else q.where(li.c.year == a.year)


_PROPERTY_TYPES = {"integer": "integer", "number": "number", "boolean": "text", "string": "text"}


def _layer_fields(layer: Layer) -> tuple[ExportField, ...]:
    props = tuple(ExportField(p.name, p.zh or p.name, _PROPERTY_TYPES[p.type]) for p in layer.properties)
    return (
        ExportField("id", "编号", "integer"),
        *props,
        ExportField("lon", "经度", "number"),
        ExportField("lat", "纬度", "number"),
    )


def layer_rows(name: str) -> Callable[[ExportArgs, Viewer], AnySelect]:
    """The rows of map layer ``name`` (``rows_select``: the same features as its tiles, OGC items and featureCollection)."""
    layer = LAYERS[name]

    def rows(a: ExportArgs, viewer: Viewer) -> AnySelect:
        la = _layer_args(
            layer,
            today=a.as_of,
            as_of=a.as_of if a.as_of_given else None,
            area_code=a.area_code,
            site_id=a.site_id,
            bbox=a.bbox,
            kinds=a.kinds,
        )
        src = rows_select(layer, la, viewer).order_by(layer.id).subquery("f")
        props = [src.c[p.name] for p in layer.properties]
        return select(
            src.c.id, *props, func.ST_X(src.c.geom).label("lon"), func.ST_Y(src.c.geom).label("lat"), src.c.geom
        ).order_by(src.c.id)

    return rows


COVERAGE_FIELDS = (
    ExportField("code", "区划代码"),
    ExportField("name", "名称"),
    ExportField("level", "级别"),
    ExportField("as_of", "日期", "date"),
    ExportField("households", "户数", "integer"),
    ExportField("households_with_labor_force", "有劳动力户数", "integer"),
    ExportField("households_covered", "稳定就业覆盖户数", "integer"),
    ExportField("coverage_rate", "就业覆盖率", "number"),
    ExportField("zero_employment_households", "零就业户数", "integer"),
    ExportField("employed_persons", "就业人数", "integer"),
    ExportField("stably_employed_persons", "稳定就业人数", "integer"),
    ExportField("suppressed", "已抑制"),
)


async def coverage_rows(sm: SessionMaker, a: ExportArgs, viewer: Viewer, k: int | None) -> list[tuple[Any, ...]]:
    """Employment coverage (就业覆盖) on ``asOf`` of every area of ``level`` under ``areaCode``, by code.

    The figures are GraphQL ``AdminArea.employmentCoverage``'s: ``coverage.employment_coverage_by_area_codes`` (one
    grouped statement per code length) in the viewer's aggregate scope ``sm``, then ``suppression.coverage`` with ``k``
    (partners). Partners: their paired counties only (FORBIDDEN for any other level). Each row: the fields' values, then
    the boundary as WKB and as GeoJSON text (None without one).

    Partners' rows are checked by ``ExportKind.check_args`` first.
    """
    q = select(A.code, A.name, A.level, func.ST_AsBinary(A.geom), func.ST_AsGeoJSON(A.geom, 6)).where(A.level == a.level)
    if a.area_code is not None:
        q = q.where(A.code.like(area_code_prefix(a.area_code, "areaCode") + "%"))
    if viewer.role is Role.PARTNER:
        q = q.where(A.code.in_(list(viewer.paired_counties)))
    async with sm() as s:
        areas = (await s.execute(q.order_by(A.code))).all()
    figures = await cov.employment_coverage_by_area_codes(sm, [(r[0], a.as_of) for r in areas])
    out = []
    for (code, name, level, wkb, gj), c in zip(areas, figures, strict=True):
        x = sup.coverage(c, k)
        out.append(
            (code, name, level.name, a.as_of, x.households, x.households_with_labor_force, x.households_covered,
             x.coverage_rate, x.zero_employment_households, x.employed_persons, x.stably_employed_persons,
             "是" if x.suppressed else "否", None if wkb is None else bytes(wkb), gj)
        )  # fmt: skip
    return out


HOUSEHOLD_FILTERS = frozenset({"areaCode", "siteId", "asOf"})
KINDS: dict[str, ExportKind] = {
    k.name: k
    for k in (
        ExportKind(
            "households",
            "花名册 roster",
            _from_columns(household_import.COLUMNS, ROSTER_TYPES),
            HOUSEHOLD_FILTERS | {"bbox", "zeroEmployment"},
            roster_rows,
            "Point",
            note=household_import.ROSTER_LAYOUT
            + " 身份证号不导出（只存哈希）。ID numbers are not exported (only a hash is stored).",
        ),
        ExportKind(
            "zero_employment_households",
            "零就业家庭 zero-employment",
            HOUSEHOLD_FIELDS + HOUSEHOLD_STATUS_FIELDS,
            HOUSEHOLD_FILTERS,
            zero_employment_rows,
            "Point",
            note="每行一户：有劳动力、无成员就业（asOf 当日）。One row per household with labor force and no member employed.",
        ),
        ExportKind(
            "households_at_risk",
            "防返贫监测 at risk",
            HOUSEHOLD_FIELDS + HOUSEHOLD_STATUS_FIELDS + RISK_FIELDS,
            HOUSEHOLD_FILTERS | {"year", "perCapitaThreshold"},
            at_risk_rows,
            "Point",
            note="每行一户：当年人均纯收入低于监测线或较上年下降。One row per household at risk in the year.",
        ),
        ExportKind(
            "employments",
            "就业 employments",
            _employment_fields(),
            HOUSEHOLD_FILTERS,
            employment_rows,
            "Point",
            note="每行一段就业；给 asOf 时只含当日在岗的。One row per job spell; with asOf, those active that day.",
        ),
        ExportKind(
            "income_linkages",
            "利益联结 income linkages",
            LINKAGE_FIELDS,
            frozenset({"areaCode", "siteId", "year"}),
            linkage_rows,
            note="每行一户一年一种联结方式。One row per household, year and mechanism.",
        ),
        ExportKind(
            "facilities",
            "设施 facilities",
            _layer_fields(LAYERS["facilities"]),
            frozenset({"areaCode", "siteId", "bbox", "kinds", "asOf"}),
            layer_rows("facilities"),
            "Point",
            personal=False,
            note="每行一个设施；给 asOf 时只含当日开放的。One row per facility; with asOf, those open that day.",
        ),
        ExportKind(
            "sites",
            "安置点 relocation sites",
            _layer_fields(LAYERS["relocation_sites"]),
            frozenset({"areaCode", "siteId", "bbox"}),
            layer_rows("relocation_sites"),
            "Point",
            personal=False,
            note="每行一个安置点。One row per relocation site.",
        ),
        ExportKind(
            "coverage",
            "就业覆盖 coverage",
            COVERAGE_FIELDS,
            frozenset({"areaCode", "asOf", "level"}),
            None,
            "MultiPolygon",
            personal=False,
            aggregate=coverage_rows,
            note="每行一个区划（level 级，默认县）在 asOf 当日的就业覆盖。One row per admin area of the level (default county).",
        ),
    )
}
"""Every export kind by name. A monitoring ledger (#17) is one more entry."""


def kind_named(name: str) -> ExportKind:
    """The kind ``name``.

    Raises:
        NotFound: no such kind (names ``kind``).
    """
    found = KINDS.get(name) if isinstance(name, str) and len(name) <= 64 else None
    if found is None:
        raise NotFound(f"kind: {str(name)[:40]!r} cannot be exported; expected one of {', '.join(KINDS)}", field="kind")
    return found


def _bool(value: str, name: str) -> bool:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidInput(f"{name}: {value[:20]!r} is not true or false", field=name)


def _year(value: str) -> int:
    if not value.isdigit() or not 1900 <= int(value) <= 2100:
        raise InvalidInput(f"year: {value[:20]!r} is not a year in 1900..2100", field="year")
    return int(value)


def _threshold(value: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise InvalidInput(f"perCapitaThreshold: {value[:20]!r} is not a number of yuan", field="perCapitaThreshold") from None
    if not d.is_finite() or d < 0:
        raise InvalidInput(f"perCapitaThreshold: {value[:20]!r} must be a yuan amount >= 0", field="perCapitaThreshold")
    return d


def _level(value: str) -> m.AdminLevel:
    try:
        return m.AdminLevel[value.upper()]
    except KeyError:
        raise InvalidInput(
            f"level: {value[:20]!r} is not one of {', '.join(x.name for x in m.AdminLevel)}", field="level"
        ) from None


def _bbox(value: str) -> BBox:
    try:
        nums = [float(v) for v in value.split(",")]
    except ValueError:
        raise InvalidInput(
            f"bbox: {value[:60]!r} is not 4 comma-separated numbers minLon,minLat,maxLon,maxLat", field="bbox"
        ) from None
    box = parse_bbox(nums, "bbox")
    assert box is not None
    return box


def parse_filters(kind: ExportKind, params: Mapping[str, str], *, today: dt.date, threshold: Decimal) -> ExportArgs:
    """A kind's filters from query parameters named as GraphQL names them (``areaCode=513432&asOf=2024-06-30``).

    Args:
        kind: the export kind.
        params: parameter → value (URL query or command-line options).
        today: the default ``asOf`` (today in Asia/Shanghai).
        threshold: the default ``perCapitaThreshold`` (setting monitoring.per_capita_threshold, yuan).

    Raises:
        InvalidInput: a parameter the kind does not accept, or a malformed value (the message names the parameter);
            ``year`` missing for households_at_risk.
    """
    for name in params:
        if name not in kind.filters:
            accepted = ", ".join(sorted(kind.filters))
            raise InvalidInput(f"{name[:40]}: not a filter of {kind.name} exports (it accepts {accepted})", field=name[:40])
    get = params.get
    as_of = get("asOf")
    area = get("areaCode")
    if area is not None:
        area_code_prefix(area, "areaCode")  # validates the code's shape
    a = ExportArgs(
        as_of=check_date(parse_date(as_of, "asOf"), "asOf") if as_of is not None else today,
        as_of_given=as_of is not None,
        area_code=area,
        site_id=optional_id(get("siteId"), "siteId"),
        bbox=_bbox(get("bbox", "")) if get("bbox") is not None else None,
        kinds=parse_kinds(get("kinds", "")) if get("kinds") is not None else None,
        zero_employment=_bool(get("zeroEmployment", ""), "zeroEmployment") if get("zeroEmployment") is not None else None,
        year=_year(get("year", "")) if get("year") is not None else None,
        threshold=_threshold(get("perCapitaThreshold", "")) if get("perCapitaThreshold") is not None else threshold,
        level=_level(get("level", "")) if get("level") is not None else m.AdminLevel.COUNTY,
    )
    if kind.name == "households_at_risk" and a.year is None:
        raise InvalidInput("year: required for households_at_risk (the income year)", field="year")
    return a


def source_select(kind: ExportKind, a: ExportArgs, viewer: Viewer, *, geometry: str | None, safe: bool) -> AnySelect:
    """The statement an export streams, in the kind's order: the fields (text neutralised when ``safe``), then the geometry.

    Args:
        kind: a kind with ``rows``.
        a: its filters.
        viewer: who asks (the session applies its scope; layer properties it may not see are null).
        geometry: ``wkb`` (ST_AsBinary), ``geojson`` (ST_AsGeoJSON, 6 decimals), ``feature`` (one RFC 7946 Feature as
            json text built by PostgreSQL, properties under the Chinese-and-English headers, instead of the fields) or
            None (no geometry column).
        safe: text columns through ``spreadsheet_safe`` (CSV).
    """
    assert kind.rows is not None
    q = kind.rows(a, viewer)
    c = {col.key: col for col in q.selected_columns}
    if geometry == "feature":
        props = func.json_build_object(*(x for f in kind.fields for x in (literal(f.header), c[f.key])))
        feature = func.json_build_object(
            "type", "Feature", "geometry", cast(func.ST_AsGeoJSON(c["geom"], 6), JSON), "properties", props
        )
        return q.with_only_columns(cast(feature, Text), maintain_column_froms=True)
    cols: list[Any] = [spreadsheet_safe(c[f.key]) if safe and f.type == "text" else c[f.key] for f in kind.fields]
    if geometry == "wkb":
        cols.append(func.ST_AsBinary(c["geom"]))
    elif geometry == "geojson":
        cols.append(func.ST_AsGeoJSON(c["geom"], 6))
    return q.with_only_columns(*(x.label(f"c{i}") for i, x in enumerate(cols)), maintain_column_froms=True)
