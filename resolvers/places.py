"""Keeping the registry of places: relocation sites (安置区/安置点) and facilities (产业/服务设施).

Create, update and close. Every write runs in one transaction (``resolvers.mutations.in_transaction``)
and is audited (entity ``relocation_site`` / ``facility``). Updates and closes first claim the row's
``version`` (optimistic locking, ``claim_place``): a stale version raises ``StaleVersion`` (CONFLICT)
and writes nothing.

Rules (each violation names its field, BAD_USER_INPUT unless said; nothing is written):

- ``name`` 1..200 characters; ``location`` a GeoJSON Point, ``boundary`` / ``footprint`` a Polygon
  or MultiPolygon (stored as MultiPolygon), all through the API's geometry checks (WGS84).
- ``adminCode`` an existing admin area (else NOT_FOUND, like ``siteId``); a site's at county level
  or below (a site sits in a county). The location may lie at most ``tolerance_meters`` (geodesic)
  outside the polygon of that area, or of its nearest ancestor that has one; no polygon up the
  chain: not checked.
- planned numbers and ``areaMu`` >= 0; ``siteId`` and ``originAreaCodes`` must exist (NOT_FOUND).
- ``openedOn`` may lie in the future (a planned place: it is not open before that date);
  ``closedOn`` not in the future (closing is recorded when it happened), not before ``openedOn``,
  and a place closes once (``closedOn`` of a closed place: BAD_USER_INPUT).

Updates distinguish an omitted field (unchanged: absent from ``values``) from null (cleared; refused
for required fields). Scope is PostgreSQL's: county officers insert and update only the places under
their area codes (row-level security, migrations/sql/access_policies.sql), which surfaces as
``OutOfScope`` (FORBIDDEN).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import models as m
from resolvers import idempotency
from resolvers.access import audit, row_json
from resolvers.admin_areas import check_area, check_near_area
from resolvers.errors import InvalidInput, NotFound
from resolvers.geometry import parse_geometry
from resolvers.mutations import check_text, claim_version, claimed_image, in_transaction
from resolvers.query import SessionMaker, area_code_prefix, check_date, check_period

S, F, A = m.RelocationSite, m.Facility, m.AdminArea
Place = type[m.RelocationSite] | type[m.Facility]
TABLES: dict[Any, str] = {S: "relocation_site", F: "facility"}
"""The allow-list of place tables (also the audit entities)."""
SITE_LEVELS = frozenset({m.AdminLevel.COUNTY, m.AdminLevel.TOWNSHIP, m.AdminLevel.VILLAGE})
REQUIRED = frozenset({"name", "kind", "admin_code", "location"})
FIELD = {
    "name": "name",
    "kind": "kind",
    "admin_code": "adminCode",
    "location": "location",
    "boundary": "boundary",
    "footprint": "footprint",
    "planned_households": "plannedHouseholds",
    "planned_population": "plannedPopulation",
    "planned_jobs": "plannedJobs",
    "opened_on": "openedOn",
    "origin_area_codes": "originAreaCodes",
    "site_id": "siteId",
    "area_mu": "areaMu",
    "operator": "operator",
}
"""Each input key (column) → the GraphQL field name errors name."""
SITE_KEYS = frozenset(
    {"name", "kind", "admin_code", "location", "boundary", "planned_households", "planned_population", "opened_on"}
)
FACILITY_KEYS = frozenset(
    {"name", "kind", "admin_code", "location", "footprint", "site_id", "area_mu", "planned_jobs", "operator", "opened_on"}
)
MAX_AREA_MU = 1e9
MAX_ORIGINS = 200


@idempotency.result_type
@dataclass(frozen=True, slots=True)
class WrittenPlace:
    """What a place mutation wrote: the place's id and its new version."""

    id: int
    version: int


@dataclass(frozen=True, slots=True)
class PlaceLimits:
    """What a place write checks against: today (Asia/Shanghai), the vertex cap, the location tolerance in metres."""

    today: dt.date
    max_vertices: int = 10_000
    tolerance_meters: float = 2000.0


def _multipolygon(value: Any, field: str, max_vertices: int) -> Any:
    g = parse_geometry(value, field, allowed=("Polygon", "MultiPolygon"), max_vertices=max_vertices)
    return from_shape(g if isinstance(g, MultiPolygon) else MultiPolygon([g]), srid=m.SRID)


def _count(value: int | None, field: str) -> int | None:
    if value is not None and value < 0:
        raise InvalidInput(f"{field}: {value} must be >= 0", field=field)
    return value


def place_fields(keys: frozenset[str], values: Mapping[str, Any], *, max_vertices: int = 10_000) -> dict[str, Any]:
    """The column values of a place write, validated without the database.

    Args:
        keys: the columns this kind of place takes (``SITE_KEYS`` or ``FACILITY_KEYS``).
        values: input key → value; a key absent is left unchanged, None clears it (``origin_area_codes`` is
            handled apart).
        max_vertices: the vertex cap of input geometries.

    Returns:
        Column → value to write (geometries as WKB elements, SRID 4326).

    Raises:
        InvalidInput / InvalidGeometry: naming the field (null for a required field, a negative number, a
        malformed code or date, a bad geometry).
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in keys:
            continue
        field = FIELD[key]
        if value is None and key in REQUIRED:
            raise InvalidInput(f"{field}: required; it cannot be null", field=field)
        if key == "name":
            out[key] = check_text(value, field, required=True)
        elif key == "admin_code":
            area_code_prefix(value, field)
            out[key] = value
        elif key == "location":
            point = parse_geometry(value, field, allowed=("Point",), max_vertices=max_vertices)
            out[key] = from_shape(point, srid=m.SRID)
        elif key in ("boundary", "footprint"):
            out[key] = None if value is None else _multipolygon(value, field, max_vertices)
        elif key in ("planned_households", "planned_population", "planned_jobs"):
            out[key] = _count(value, field)
        elif key == "area_mu":
            if value is not None and (not math.isfinite(value) or not 0 <= value <= MAX_AREA_MU):
                raise InvalidInput(f"{field}: {value} must be a finite area >= 0 and <= {MAX_AREA_MU:.0f} mu", field=field)
            out[key] = value
        elif key == "operator":
            out[key] = check_text(value, field)
        elif key == "opened_on":
            out[key] = None if value is None else check_date(value, field)
        else:  # kind, site_id: typed by the schema
            out[key] = value
    return out


def origin_codes(values: Mapping[str, Any]) -> list[str] | None:
    """The site's origin area codes to record (deduplicated, in order); None when not given (unchanged).

    An explicit null records none. Raises InvalidInput (originAreaCodes) for a malformed code or more than 200.
    """
    if "origin_area_codes" not in values:
        return None
    codes = list(dict.fromkeys(values["origin_area_codes"] or []))
    if len(codes) > MAX_ORIGINS:
        raise InvalidInput(f"originAreaCodes: at most {MAX_ORIGINS} codes", field="originAreaCodes")
    for c in codes:
        area_code_prefix(c, "originAreaCodes")
    return codes


async def claim_place(s: AsyncSession, model: Place, place_id: int, expected_version: int, field: str = "id") -> int:
    """``claim_version`` of a site or facility (NotFound, OutOfScope or StaleVersion as it says)."""
    return await claim_version(s, model, place_id, expected_version, field)


async def _check_area(s: AsyncSession, model: Place, code: str) -> None:
    """A site sits in a county, township or village; a facility under any known area (``check_area``)."""
    await check_area(s, code, "adminCode", SITE_LEVELS if model is S else tuple(m.AdminLevel))


async def _check_references(s: AsyncSession, fields: Mapping[str, Any], origins: list[str] | None) -> None:
    site_id = fields.get("site_id")
    if site_id is not None and await s.scalar(select(S.id).where(S.id == site_id)) is None:
        raise NotFound(f"siteId: relocation site {site_id} does not exist", field="siteId")
    if origins:
        known = set((await s.scalars(select(A.code).where(A.code.in_(origins)))).all())
        missing = [c for c in origins if c not in known]
        if missing:
            raise NotFound(f"originAreaCodes: admin area {missing[0]} does not exist", field="originAreaCodes")


async def _check_location(s: AsyncSession, model: Place, place_id: int, tolerance_meters: float) -> None:
    """The place's location (as written, in ``s``) lies within the tolerance of its area's polygon (or nearest ancestor's)."""
    row = (
        await s.execute(
            select(func.ST_X(model.location), func.ST_Y(model.location), model.admin_code).where(model.id == place_id)
        )
    ).one()
    await check_near_area(s, (float(row[0]), float(row[1])), str(row[2]), tolerance_meters, "location")


async def _check_residents(
    s: AsyncSession, site_id: int, *, opened_on: dt.date | None = None, closed_on: dt.date | None = None
) -> None:
    """A site's dates agree with who lived there (household_residence, household_status).

    No household lived at the site before ``opened_on``; none lives there on or after ``closed_on`` (move them first).

    Raises:
        InvalidInput naming ``openedOn`` or ``closedOn``.
    """
    if opened_on is not None:
        R = m.HouseholdResidence
        first = await s.scalar(select(func.min(R.valid_from)).where(R.site_id == site_id))
        if first is not None and first < opened_on:
            since = "since before its records begin" if first == dt.date.min else f"since {first}"
            raise InvalidInput(
                f"openedOn: households live at relocation site {site_id} {since}, before {opened_on}", field="openedOn"
            )
    if closed_on is not None:
        ST = m.HouseholdStatus
        staying = await s.scalar(
            select(func.count(func.distinct(ST.household_id))).where(ST.site_id == site_id, ST.valid_to > closed_on)
        )
        if staying:
            raise InvalidInput(
                f"closedOn: {staying} households live at relocation site {site_id} on or after {closed_on}; "
                "record their moves (moveHousehold) first",
                field="closedOn",
            )


def _check_dates(opened_on: dt.date | None, closed_on: dt.date | None, field: str) -> None:
    check_period(opened_on, closed_on, "openedOn", "closedOn", blame_start=field == "openedOn")


async def _row(s: AsyncSession, model: Place, place_id: int, claimed: int | None = None) -> dict[str, Any] | None:
    """The place as the audit log keeps it: ``row_json`` (geometries left out), a site with its origin area codes.

    ``claimed``: the version ``claim_place`` claimed it at (the before image of a change: ``claimed_image``'s, not the
    version the claim bumped it to).
    """
    row = await (
        row_json(s, TABLES[model], {"id": place_id}) if claimed is None else claimed_image(s, TABLES[model], place_id, claimed)
    )
    if model is S and row is not None:
        code = m.SiteOrigin.origin_admin_code
        row["origin_area_codes"] = list(await s.scalars(select(code).where(m.SiteOrigin.site_id == place_id).order_by(code)))
    return row


async def _audit(s: AsyncSession, action: str, model: Place, place_id: int, before: dict[str, Any] | None) -> None:
    await audit(s, action, TABLES[model], place_id, before, await _row(s, model, place_id))


async def _set_origins(s: AsyncSession, site_id: int, codes: list[str]) -> None:
    await s.execute(delete(m.SiteOrigin).where(m.SiteOrigin.site_id == site_id))
    if codes:
        await s.execute(insert(m.SiteOrigin), [{"site_id": site_id, "origin_admin_code": c} for c in codes])


async def create_place(sm: SessionMaker, model: Place, values: Mapping[str, Any], limits: PlaceLimits) -> WrittenPlace:
    """Create a relocation site (``model`` = ``RelocationSite``) or a facility (``Facility``), version 1.

    Args:
        sm: the viewer's sessionmaker (row-level security applies).
        model: which place.
        values: column → value (name, kind, admin_code, location GeoJSON Point WGS84, and the optional
            columns of the kind; a site's origin_area_codes).
        limits: today, vertex cap, location tolerance (metres).

    Raises:
        InvalidInput / InvalidGeometry (BAD_USER_INPUT, the field named), NotFound (adminCode, siteId,
        originAreaCodes), OutOfScope (a county officer outside its areas).
    """
    fields = place_fields(SITE_KEYS if model is S else FACILITY_KEYS, values, max_vertices=limits.max_vertices)
    missing = sorted(FIELD[k] for k in REQUIRED - fields.keys())
    if missing:
        raise InvalidInput(f"{missing[0]}: required", field=missing[0])
    origins = origin_codes(values) if model is S else None
    action = "createRelocationSite" if model is S else "createFacility"

    async def work(s: AsyncSession) -> WrittenPlace:
        await _check_area(s, model, fields["admin_code"])
        await _check_references(s, fields, origins)
        place = model(**fields)
        s.add(place)
        await s.flush()
        pid = int(place.id)
        if origins:
            await _set_origins(s, pid, origins)
        await _check_location(s, model, pid, limits.tolerance_meters)
        await _audit(s, action, model, pid, None)
        return WrittenPlace(pid, 1)

    return await in_transaction(sm, work)


async def update_place(
    sm: SessionMaker, model: Place, place_id: int, version: int, values: Mapping[str, Any], limits: PlaceLimits
) -> WrittenPlace:
    """Change a place's given fields (absent keys stay; None clears a nullable field), at ``version``.

    Raises:
        InvalidInput / InvalidGeometry (the field named; nothing to change), NotFound (id, adminCode, siteId,
        originAreaCodes), OutOfScope (id: a county officer's place outside its areas, or moved out of them),
        StaleVersion.
    """
    fields = place_fields(SITE_KEYS if model is S else FACILITY_KEYS, values, max_vertices=limits.max_vertices)
    origins = origin_codes(values) if model is S else None
    if not fields and origins is None:
        raise InvalidInput("input: nothing to change", field="input")
    action = "updateRelocationSite" if model is S else "updateFacility"

    async def work(s: AsyncSession) -> WrittenPlace:
        new_version = await claim_place(s, model, place_id, version)
        if "admin_code" in fields:
            await _check_area(s, model, fields["admin_code"])
        await _check_references(s, fields, origins)
        current = (await s.execute(select(model.opened_on, model.closed_on).where(model.id == place_id))).one()
        _check_dates(fields.get("opened_on", current.opened_on), current.closed_on, "openedOn")
        if model is S and fields.get("opened_on") is not None:
            await _check_residents(s, place_id, opened_on=fields["opened_on"])
        before = await _row(s, model, place_id, version)
        if fields:
            await s.execute(
                update(model).where(model.id == place_id).values(**fields).execution_options(synchronize_session=False)
            )
        if origins is not None:
            await _set_origins(s, place_id, origins)
        if "location" in fields or "admin_code" in fields:
            await _check_location(s, model, place_id, limits.tolerance_meters)
        await _audit(s, action, model, place_id, before)
        return WrittenPlace(place_id, new_version)

    return await in_transaction(sm, work)


async def close_place(
    sm: SessionMaker, model: Place, place_id: int, version: int, closed_on: dt.date, limits: PlaceLimits
) -> WrittenPlace:
    """Close a place from ``closed_on`` on (its first closed day), at ``version``; it stays in history.

    A closed facility drops out of the proximity queries from ``closed_on`` (``resolvers.facilities.open_on``).

    Raises:
        InvalidInput (closedOn: in the future, before openedOn, or the place is closed already), NotFound,
        OutOfScope, StaleVersion.
    """
    check_date(closed_on, "closedOn")
    if closed_on > limits.today:
        raise InvalidInput(
            f"closedOn: {closed_on} is in the future (today is {limits.today}); record a closing once it happened",
            field="closedOn",
        )
    action = "closeRelocationSite" if model is S else "closeFacility"

    async def work(s: AsyncSession) -> WrittenPlace:
        new_version = await claim_place(s, model, place_id, version)
        current = (await s.execute(select(model.opened_on, model.closed_on).where(model.id == place_id))).one()
        if current.closed_on is not None:
            raise InvalidInput(
                f"closedOn: {TABLES[model].replace('_', ' ')} {place_id} closed on {current.closed_on} already", field="closedOn"
            )
        _check_dates(current.opened_on, closed_on, "closedOn")
        if model is S:
            await _check_residents(s, place_id, closed_on=closed_on)
        before = await _row(s, model, place_id, version)
        await s.execute(
            update(model).where(model.id == place_id).values(closed_on=closed_on).execution_options(synchronize_session=False)
        )
        await _audit(s, action, model, place_id, before)
        return WrittenPlace(place_id, new_version)

    return await in_transaction(sm, work)
