"""Who sees what (issue #5): viewers, their row scope in SQL, personal data, small-cell suppression.

Scope is enforced by PostgreSQL, not by hiding fields. Every request's sessions carry the
``Viewer``; at the start of each transaction (``after_begin``) the viewer's scope goes into
``anju.*`` settings, and county officers and partners switch to the role ``anju_officer`` /
``anju_partner``, which the row-level-security policies of migration 0007 confine:

=================  ===========================  ===========================  ==================
role               households and below          sites, facilities            personal data
=================  ===========================  ===========================  ==================
admin              all                          all                          yes
planner            all                          all                          masked (张*)
county_officer     under its area codes         all (public infrastructure)  yes, in its areas
partner            none (records); its paired   in its paired counties       never
                   counties for aggregates only
grid_worker        in its bottom-level grids    all (read only)              yes, in its grids
=================  ===========================  ===========================  ==================

Admins and planners keep the login role (they may see every row; RLS would also keep PostgreSQL
from using spatial indexes for their filters, as PostGIS operators are not leakproof). Names and
phone numbers are masked in SQL (``anju_mask_name`` / ``anju_mask_phone``) unless ``anju.pii`` is
``on``, which only admin and county-officer transactions set: fail closed.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from sqlalchemy import (
    CursorResult,
    Float,
    Numeric,
    Text,
    case,
    event,
    func,
    insert,
    literal_column,
    null,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

import models as m
from resolvers.errors import InvalidInput, NotFound, OutOfScope
from resolvers.query import SessionMaker, area_code_prefix

Role = m.ViewerRole
KEEPERS = frozenset({Role.ADMIN, Role.COUNTY_OFFICER})
"""Who keeps the registry of sites and facilities, grids and findings: admins, and county officers in their areas."""
RECORD_KEEPERS = KEEPERS | {Role.GRID_WORKER}
"""Who writes household records and sees their personal data: the keepers, and grid workers in their grids."""
PLANNING = KEEPERS | {Role.PLANNER}
"""Who sets plan targets and reads inspections: the keepers and planners."""
DB_ROLES = {Role.COUNTY_OFFICER: "anju_officer", Role.PARTNER: "anju_partner", Role.GRID_WORKER: "anju_grid_worker"}
"""The PostgreSQL role each scoped viewer's transactions run as (migrations 0007, 0015)."""
RECORDS, AGGREGATES = "records", "aggregates"


@dataclass(frozen=True)
class Viewer:
    """The authenticated caller: ``app_user`` row plus the partner's paired counties (6-digit codes)."""

    user_id: int | None
    name: str
    role: m.ViewerRole
    area_codes: tuple[str, ...] = ()
    partner_id: int | None = None
    paired_counties: tuple[str, ...] = ()

    @property
    def reads_households(self) -> bool:
        """May read household, member, employment, linkage and income records (partners never)."""
        return self.role is not Role.PARTNER

    @property
    def sees_personal_data(self) -> bool:
        """Names, phone numbers and ID-number digits unmasked (``RECORD_KEEPERS``: officers and grid workers in scope)."""
        return self.role in RECORD_KEEPERS

    @property
    def writes_households(self) -> bool:
        """May write household records (admins everywhere; officers under their areas, grid workers in their grids).

        Officers' and grid workers' scope is enforced by row-level security.
        """
        return self.role in RECORD_KEEPERS

    @property
    def is_admin(self) -> bool:
        """The admin role: every row, every write, users and partners."""
        return self.role is Role.ADMIN

    @property
    def suppresses_small_cells(self) -> bool:
        """Aggregates shown to partners null out cells of fewer than k households."""
        return self.role is Role.PARTNER

    def settings(self, mode: str) -> dict[str, str]:
        """The ``anju.*`` settings (and ``role``) of this viewer's transactions in ``mode``.

        ``mode`` is ``records`` or ``aggregates`` (partners' aggregates run over their paired counties).
        """
        if self.role in (Role.ADMIN, Role.PLANNER):
            return {"anju.pii": "on" if self.role is Role.ADMIN else "off"}
        if self.role is Role.GRID_WORKER:  # the households of its grids (anju_viewer_grids(), migrations/sql/casework.sql)
            return {
                "anju.households": "grids",
                "anju.pii": "on",
                "anju.user_id": str(self.user_id or ""),
                "enable_seqscan": "off",
                "role": DB_ROLES[self.role],
            }
        if self.role is Role.COUNTY_OFFICER:
            codes, households, pii = self.area_codes, "areas", "on"
        else:  # partners: the paired counties bound places always, households only in aggregates
            codes, households, pii = self.paired_counties, ("areas" if mode == AGGREGATES else "none"), "off"
        counties = sorted({c[:6] for c in codes})
        patterns = sorted({area_code_prefix(c, "areaCodes") + "%" for c in codes})
        return {
            "anju.households": households,
            "anju.pii": pii,
            "anju.counties": "{" + ",".join(counties) + "}",
            "anju.patterns": "{" + ",".join(patterns) + "}",
            "anju.partner_id": str(self.partner_id or ""),
            # Every statement of a scoped viewer is bounded by its counties, but PostgreSQL sizes
            # ``county_code = ANY(<setting>)`` as 10 counties' worth of rows (an array it cannot
            # see) and then prefers scanning the whole table; steer it to the county indexes.
            "enable_seqscan": "off",
            "role": DB_ROLES[self.role],
        }


@event.listens_for(Session, "after_begin")
def _apply_viewer(session: Session, transaction: Any, connection: Any) -> None:
    """Put the session's viewer scope into the transaction: one ``set_config`` statement."""
    scope = session.info.get("anju_scope")
    if scope is not None:
        connection.execute(*scope)


def _scope_statement(settings: dict[str, str]) -> tuple[Any]:
    """``SELECT set_config(name, value, true), …`` for ``settings`` (names and values bound).

    ``role`` last, after the anju.* ones.
    """
    names = sorted(settings, key=lambda n: n == "role")
    return (select(*(func.set_config(n, settings[n], true()) for n in names)),)


SESSION_RESET = "RESET ALL; RESET ROLE;"
"""What a session-level ``ScopeCheck`` first clears (``RESET ALL`` leaves ``role`` alone)."""


class Stale(Exception):
    """A ``ScopeCheck`` did not hold: the viewer's user row changed (role, areas, partner) or was disabled."""


@dataclass(frozen=True)
class ScopeCheck:
    """One statement that re-reads a viewer's user row and, if it still describes the viewer, applies its scope.

    ``SELECT set_config(name, value, is_local), … WHERE anju_viewer_holds(name, role, area codes, partner)`` (the SQL
    function of migrations/sql/viewer.sql, the one definition of a viewer that still holds), sent in
    PostgreSQL's simple query protocol (``execute`` without parameters): its status is ``SELECT 1`` when the user is
    unchanged and enabled and the scope now holds, ``SELECT 0`` when the viewer held is stale (nothing applied: look the
    user up again). Values are SQL literals, quoted here (``standard_conforming_strings`` on, PostgreSQL's default; user
    names are ``[A-Za-z0-9_.@-]`` by constraint).

    Two forms of the same check:
    - ``sql``: for a connection nothing else uses (``anju.db.ReadPool``), outside a transaction. It first clears what
      the connection's previous use set (``RESET ALL; RESET ROLE``: ``RESET ALL`` leaves ``role`` alone), then sets the
      scope for the session.
    - ``local_sql``: inside a transaction on a pooled connection; the scope ends with the transaction.

    A connection that already holds the scope only needs the check itself: ``gated`` wraps a statement so that it reads
    nothing unless ``anju_viewer_holds`` with ``holds_params`` is true (one message instead of two).
    """

    sql: str
    local_sql: str
    viewer: Viewer
    session_calls: str
    """The ``set_config(…, false)`` calls and the user match of ``sql`` (what ``applying`` prefixes settings to)."""
    holds_params: tuple[str, str, list[str], int | None]
    """``anju_viewer_holds``' arguments for this viewer: user name, role, area codes, partner id."""

    def applying(self, settings: Sequence[tuple[str, str]]) -> str:
        """``sql`` that also sets ``settings`` (a plan's planner settings) for the session, when the check holds."""
        if not settings:
            return self.sql
        extra = "".join(f"set_config({sql_literal(n)}, {sql_literal(v)}, false), " for n, v in settings)
        return f"{SESSION_RESET} SELECT {extra}{self.session_calls}"

    @staticmethod
    def holds(status: str) -> bool:
        """Whether the check's command status says it held (``SELECT 1``)."""
        return status == "SELECT 1"

    @staticmethod
    def gated(statement: str, n_params: int) -> str:
        """``statement`` (with parameters ``$1``…``$n_params``) reading no row unless the viewer still holds.

        The viewer's ``holds_params`` follow the statement's own parameters (``$n_params+1``…``$n_params+4``). The gate
        has no column of the statement's rows, so PostgreSQL evaluates it once, before reading anything.
        """
        n = n_params
        return (
            f"SELECT q.* FROM ({statement}) q WHERE anju_viewer_holds(${n + 1}::text, ${n + 2}::text, ${n + 3}::text[], "
            f"${n + 4}::bigint)"
        )


def sql_literal(value: str) -> str:
    """``value`` as a PostgreSQL string literal with ``standard_conforming_strings`` on. Raises ValueError on NUL."""
    if "\x00" in value:
        raise ValueError("a NUL character cannot be sent to PostgreSQL")
    return "'" + value.replace("'", "''") + "'"


def scope_check(viewer: Viewer, mode: str = RECORDS) -> ScopeCheck:
    """The ``ScopeCheck`` of ``viewer`` (built once per viewer by the caller)."""
    settings = viewer.settings(mode)
    names = sorted(settings, key=lambda n: n == "role")  # role last, as _scope_statement
    areas = ", ".join(sql_literal(c) for c in viewer.area_codes)
    partner = "NULL" if viewer.partner_id is None else str(int(viewer.partner_id))
    match = (
        f" WHERE anju_viewer_holds({sql_literal(viewer.name)}, {sql_literal(viewer.role.value)}, ARRAY[{areas}]::text[],"
        f" {partner}::bigint)"
    )

    def calls(local: bool) -> str:
        flag = "true" if local else "false"
        return ", ".join(f"set_config({sql_literal(n)}, {sql_literal(settings[n])}, {flag})" for n in names)

    session = f"{calls(False)}{match}"
    return ScopeCheck(
        f"{SESSION_RESET} SELECT {session}",
        f"SELECT {calls(True)}{match}",
        viewer,
        session,
        (viewer.name, viewer.role.value, list(viewer.area_codes), viewer.partner_id),
    )


def scoped_sessionmaker(sm: SessionMaker, viewer: Viewer, mode: str = RECORDS) -> SessionMaker:
    """A sessionmaker like ``sm`` whose every transaction runs with ``viewer``'s scope (the statement is built here.

    Once, not per transaction).
    """
    scope = _scope_statement(viewer.settings(mode))
    return async_sessionmaker(**{**sm.kw, "info": {"anju_scope": scope, "anju_viewer": viewer}})


def viewer_of(session: AsyncSession) -> Viewer | None:
    """The viewer a session was opened for (None for internal sessions: seed, CLI, tests)."""
    viewer = session.info.get("anju_viewer")
    return viewer if isinstance(viewer, Viewer) else None


# --------------------------------------------------------------------------- users

U = m.AppUser


async def viewer_by_name(sm: SessionMaker, name: str) -> Viewer | None:
    """The enabled user ``name`` as a Viewer (with the partner's paired counties), or None."""
    paired = (
        select(m.PartnerCounty.county_code)
        .where(m.PartnerCounty.partner_id == U.partner_id)
        .order_by(m.PartnerCounty.county_code)
        .correlate(U)
    )
    q = select(U.id, U.name, U.role, U.area_codes, U.partner_id, func.array(paired.scalar_subquery()).label("paired")).where(
        U.name == name, U.disabled.is_(False)
    )
    async with sm() as s:
        r = (await s.execute(q)).first()
    if r is None:
        return None
    return Viewer(int(r.id), r.name, r.role, tuple(r.area_codes or ()), r.partner_id, tuple(r.paired or ()))


async def add_user(
    sm: SessionMaker,
    name: str,
    role: m.ViewerRole,
    area_codes: Sequence[str] = (),
    partner_id: int | None = None,
) -> int:
    """Create a user.

    County officers need area codes at county level or below (each must exist); partners need an existing partner id; other roles
    take neither.

    Raises:
        InvalidInput (the argument named; a name already taken), NotFound (area code, partner).
    """
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", name):
        raise InvalidInput("name: 1 to 64 characters of A-Z a-z 0-9 _ . @ -", field="name")
    codes = list(dict.fromkeys(area_codes))
    if role is Role.COUNTY_OFFICER:
        if not codes:
            raise InvalidInput("area: a county officer needs at least one area code", field="area")
        for c in codes:
            prefix = area_code_prefix(c, "area")
            if len(prefix) < 6:
                raise InvalidInput(
                    f"area: {c} is above county level; county officers hold counties, townships or villages", field="area"
                )
    elif codes:
        raise InvalidInput(f"area: only county officers hold area codes, not {role.name}", field="area")
    if (role is Role.PARTNER) != (partner_id is not None):
        raise InvalidInput("partner: required for role PARTNER and only for it", field="partner")
    async with sm() as s, s.begin():
        if codes:
            known = set((await s.scalars(select(m.AdminArea.code).where(m.AdminArea.code.in_(codes)))).all())
            missing = [c for c in codes if c not in known]
            if missing:
                raise NotFound(f"area: no admin area {missing[0]}", field="area")
        if partner_id is not None and await s.get(m.CooperationPartner, partner_id) is None:
            raise NotFound(f"partner: no cooperation partner {partner_id}", field="partner")
        if await s.scalar(select(U.id).where(U.name == name)) is not None:
            raise InvalidInput(f"name: a user {name!r} exists already", field="name")
        user = U(name=name, role=role, area_codes=codes, partner_id=partner_id)
        s.add(user)
        await s.flush()
        return int(user.id)


async def set_disabled(sm: SessionMaker, name: str, disabled: bool) -> bool:
    """Disable (every token of the user stops working at once) or enable a user; False when unknown."""
    async with sm() as s, s.begin():
        done = cast(CursorResult[Any], await s.execute(update(U).where(U.name == name).values(disabled=disabled)))  # UPDATE
        return bool(done.rowcount)


async def list_users(sm: SessionMaker) -> list[dict[str, Any]]:
    """Every user: name, role, area codes, partner id, disabled."""
    async with sm() as s:
        rows = await s.execute(select(U.name, U.role, U.area_codes, U.partner_id, U.disabled).order_by(U.name))
        return [dict(r) for r in rows.mappings()]


# --------------------------------------------------------------------------- personal data


def id_number_hash(key: bytes, id_number: str) -> str:
    """HMAC-SHA256 (RFC 2104) of the upper-cased ID number under ``key``, hex: the only form stored."""
    return hmac.digest(key, id_number.strip().upper().encode("ascii"), "sha256").hex()  # one-shot: ≈ 8× hmac.new's speed


def _pii_on() -> Any:
    """SQL: the transaction may show personal data (``anju.pii`` is ``on``; read once per statement)."""
    return select(func.coalesce(func.current_setting("anju.pii", True), "")).scalar_subquery() == "on"


def masked(column: Any, mask: str) -> Any:
    """SQL: ``column`` when the transaction may show personal data, else ``mask(column)``."""
    return case((_pii_on(), column), else_=getattr(func, mask)(column))


def hidden(column: Any) -> Any:
    """SQL: ``column`` when the transaction may show personal data, else NULL (ID-number digits)."""
    return case((_pii_on(), column), else_=null())


async def check_write_scope(s: AsyncSession, kind: str, key: int, field: str) -> NoReturn:
    """After a scoped lookup found nothing.

    FORBIDDEN when the row exists outside the viewer's scope, NOT_FOUND when it does not exist at all.
    """
    exists = await s.scalar(text("SELECT anju_exists(:k, :id)"), {"k": kind, "id": key})
    if exists:
        raise OutOfScope(f"{field}: {kind.replace('_', ' ')} {key} is outside your areas; nothing was written", field=field)
    raise NotFound(f"{field}: {kind.replace('_', ' ')} {key} does not exist", field=field)


# --------------------------------------------------------------------------- audit


async def audit(
    s: AsyncSession, action: str, entity: str, entity_id: Any, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    """Write the audit row of a mutation in its transaction (``s``).

    Who (the session's viewer), when (transaction time), what, before/after. Personal fields arrive masked (see ``row_json``).
    """
    await s.execute(
        insert(m.AuditLog).values(
            **audit_who(s), action=action, entity=entity, entity_id=str(entity_id), before=before, after=after
        )
    )


def audit_who(s: AsyncSession) -> dict[str, Any]:
    """The audit log's who-columns of a session's writes: user_id, user_name, role (``system`` for internal sessions)."""
    v = viewer_of(s)
    return {
        "user_id": v.user_id if v else None,
        "user_name": v.name if v else "system",
        "role": v.role.value if v else "system",
    }


# member rows go into the log with their personal fields masked, in the same statement
AUDITED = frozenset(
    {
        "household",
        "member",
        "employment",
        "income_linkage",
        "household_income",
        "cooperation_partner",
        "partner_county",
        "cooperation_project",
        "relocation_site",
        "facility",
        "plan_target",
        "training_record",
        "training_follow_up",
        # casework (resolvers/casework.py)
        "grid",
        "monitoring_case",
        "assistance_measure",
        "follow_up_visit",
        "guarantee_check",
        "hardship_report",
        "inspection",
        "finding",
    }
)
"""Tables whose rows ``row_json`` copies into the audit log (the allow-list of its ``table``)."""
LEFT_OUT = ["id_number_hash", "id_number_last4", "dwelling", "workplace", "location", "boundary", "footprint", "area"]


def row_json_sql(t: Any, table: str) -> Any:
    """SQL: the row of ``t`` (an alias of ``table``) as the audit log holds it.

    A JSON object of the row's columns without ID hashes and geometries (``LEFT_OUT``), a member's name and phone masked,
    exact decimals (money in yuan, targets, shares: every ``numeric`` column) as text ("12345.67"), not JSON numbers —
    the same object as ``to_jsonb`` of the row minus those keys, built from the kept columns alone (``jsonb_build_object``):
    ``to_jsonb`` of a whole household row turned its dwelling into GeoJSON only to drop it (35 µs a row, 13 s of a
    Sichuan-scale import's audit rows). The one definition of an audited row: ``row_json`` reads one row with it, the
    imports a whole set in one statement.

    Raises:
        ValueError: ``table`` is not in ``AUDITED`` (a programming error, never client input).
    """
    if table not in AUDITED:
        raise ValueError(f"row_json: {table!r} is not an audited table")
    masked = {"name": func.anju_mask_name, "phone": func.anju_mask_phone} if table == "member" else {}

    def value(c: Any) -> Any:
        if c.name in masked:
            return masked[c.name](c)
        if isinstance(c.type, Numeric) and not isinstance(c.type, Float):
            return sa_cast(c, Text)
        return c

    pairs: list[Any] = []
    for c in t.c:
        if c.name not in LEFT_OUT:
            pairs += [literal_column(f"'{c.name}'"), value(c)]
    # jsonb_build_object takes at most 100 arguments: 50 columns a call, joined by ||
    parts = [func.jsonb_build_object(*pairs[i : i + 100]) for i in range(0, len(pairs), 100)]
    j: Any = parts[0]
    for part in parts[1:]:
        j = j.op("||")(part)
    return type_coerce(j, JSONB)


async def row_json(s: AsyncSession, table: str, key_cols: dict[str, Any]) -> dict[str, Any] | None:
    """A row as JSON for the audit log, read in ``s``.

    Names/phones masked, hashes and ID digits left out (no personal datum is copied into the log). None when the row does not
    exist.

    Raises:
        ValueError: ``table`` is not in ``AUDITED`` or a key is not one of its columns (a programming
        error, never client input).
    """
    t = m.Base.metadata.tables[table].alias("t")
    unknown = set(key_cols) - set(t.c.keys())
    if unknown:
        raise ValueError(f"row_json: {sorted(unknown)} are not columns of {table}")
    q = select(row_json_sql(t, table)).where(*(t.c[k] == v for k, v in key_cols.items()))
    row = await s.scalar(q)
    return None if row is None else dict(row)


async def audit_row(s: AsyncSession, action: str, table: str, key: int, before: dict[str, Any] | None) -> dict[str, Any] | None:
    """Audit the write of ``table`` row ``key`` (its id) in ``s``'s transaction; answers the row as written.

    ``before``: ``row_json`` read before the write (None for a new row); after: ``row_json`` now (None once deleted).
    """
    after = await row_json(s, table, {"id": key})
    await audit(s, action, table, key, before, after)
    return after
