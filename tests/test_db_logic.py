"""The current-state SQL files (migrations/sql/) are what a database at head holds, and the database's
enum types are the models' enums.

A database migrated from scratch is compared with itself after every file is applied once more (in
a transaction that is rolled back): functions, triggers, policies, row-level security and grants
must not change: a migration that changes the logic without its file fails here. Each file's
checksum must be the one recorded by the last migration applying it: a file edited without a
migration (which databases already at head would never see) fails here. The names the files
define must also be every trigger, policy and project function the database has, so nothing lives
only in migration history.
"""

from __future__ import annotations

import enum
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import models
from anju import db
from anju.settings import Settings
from migrations import sql

NAME = "anju_test_db_logic"

SNAPSHOT = {
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), coalesce(p.proacl::text, '')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.deptype = 'e')
        ORDER BY 1""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t WHERE NOT t.tgisinternal ORDER BY 1, 2""",
    "policies": """
        SELECT tablename, policyname, permissive, roles::text, cmd, coalesce(qual, ''), coalesce(with_check, '')
        FROM pg_policies ORDER BY 1, 2""",
    "tables": """
        SELECT c.relname, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity, coalesce(c.relacl::text, '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v') ORDER BY 1""",
}


async def _snapshot(conn: AsyncConnection) -> dict[str, list[tuple[Any, ...]]]:
    return {key: [tuple(r) for r in (await conn.execute(text(q))).all()] for key, q in SNAPSHOT.items()}


@pytest.fixture(scope="module")
async def head(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A database of its own, migrated from empty to head (no seed)."""
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = create_async_engine(settings.sqlalchemy_url(NAME))
    yield eng
    await eng.dispose()
    admin = create_async_engine(settings.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as c:
        await c.execute(text(f'DROP DATABASE "{NAME}" WITH (FORCE)'))
    await admin.dispose()


async def test_applying_the_files_again_changes_nothing(head: AsyncEngine) -> None:
    async with head.connect() as conn:
        before = await _snapshot(conn)
        await conn.rollback()
        async with conn.begin() as tx:
            for st in sql.statements():
                await conn.execute(text(st))
            after = await _snapshot(conn)
            await tx.rollback()
    assert before["functions"] and before["triggers"] and before["policies"]
    for key in SNAPSHOT:
        assert after[key] == before[key], key


def _declared(pattern: str) -> set[tuple[str, ...]]:
    found = {m.groups() for st in sql.statements() for m in re.finditer(pattern, st, flags=re.DOTALL)}
    assert found, pattern
    return found


async def test_the_files_define_every_function_trigger_and_policy(head: AsyncEngine) -> None:
    async with head.connect() as conn:
        have = await _snapshot(conn)
    functions = {row[0].split("(")[0] for row in have["functions"]}
    triggers = {(row[0], row[1]) for row in have["triggers"]}
    policies = {(row[0], row[1]) for row in have["policies"]}
    assert functions == {name for (name,) in _declared(r"CREATE OR REPLACE FUNCTION (\w+)\(")}
    assert triggers == {(table, name) for name, table in _declared(r"CREATE TRIGGER (\w+)\s.*?\sON (\w+)\s")}
    assert policies == {(table, name) for name, table in _declared(r"CREATE POLICY (\w+) ON (\w+)\s")}
    # today: 42 functions (3 of coords.sql, migration 0012; 3 of registry_rules.sql, 0013; 6 of live_events.sql, 0016;
    # anju_status_deferred, 0020), 45 triggers (18 of them live events: insert, update and delete of 6 tables), 21 scope
    # policies, 6 officer write policies on places (insert and update of sites and facilities, insert and delete of site
    # origins), 2 read policies on site origins, the audit insert and the read scope of live events; casework.sql
    # (migration 0015): 9 functions, 4 triggers (stage order, three never-deleted), 22 policies (11 of the grid worker on
    # the registry's tables and the audit log, 2 on grids, 6 on the casework tables, 3 on inspections); planning.sql
    # (0018): 7 policies (plan targets: officer read, officer write, partner read; training records and follow-ups:
    # officer and partner scope); live_events.sql again (0021): anju_live_cases, 10 triggers of monitoring cases
    # (insert and update of cases and steps; insert, update and delete of measures and visits), the grid workers'
    # read scope of live events; located_code.sql (0022): anju_locate_each and anju_located_given; viewer.sql
    # (0024): anju_viewer_holds; household_counts.sql (0025): anju_counts_given; import_stats.sql (0027):
    # anju_analyze_registry
    assert (len(functions), len(triggers), len(policies)) == (52, 55, 61)


def test_the_last_migration_applying_each_file_has_its_checksum(settings: Settings) -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(db.alembic_config(settings.sqlalchemy_url(NAME)))
    recorded: dict[str, tuple[str, str]] = {}
    for script in scripts.walk_revisions():  # head first
        for name, digest in getattr(script.module, "SQL_FILES", {}).items():
            recorded.setdefault(name, (script.revision, digest))
    assert set(recorded) == set(sql.FILES)
    for name, (revision, digest) in recorded.items():
        assert digest == sql.checksum(name), f"{name}.sql changed since revision {revision} applied it: add a migration"


def _model_enums() -> dict[str, type[enum.Enum]]:
    found: dict[str, type[enum.Enum]] = {}
    for table in models.Base.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, sa.Enum) and column.type.enum_class is not None:
                found[str(column.type.name)] = column.type.enum_class
    return found


async def test_enum_types_are_the_models_enums(head: AsyncEngine) -> None:
    """Every PostgreSQL enum type holds exactly its Python enum's values, in declaration order."""
    async with head.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_type t "
                    "JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname"
                )
            )
        ).all()
    in_db = {name: list(labels) for name, labels in rows}
    expected = {name: [member.value for member in cls] for name, cls in _model_enums().items()}
    assert "employment_channel" in expected and "viewer_role" in expected
    assert in_db == expected


async def test_every_channel_has_its_column_and_its_count(head: AsyncEngine) -> None:
    """household_status has one column per EmploymentChannel value, and the refresh
    function (spelled out from the employment_channel type) counts each of them."""
    channels = [c.value for c in models.EmploymentChannel]
    async with head.connect() as conn:
        columns = set(
            (
                await conn.scalars(
                    text("SELECT column_name FROM information_schema.columns WHERE table_name = 'household_status'")
                )
            ).all()
        )
        body = await conn.scalar(text("SELECT pg_get_functiondef('anju_refresh_household_status(bigint[])'::regprocedure)"))
    assert set(channels) <= columns
    assert columns - set(channels) == {
        "household_id",
        "valid_from",
        "valid_to",
        "site_id",
        "admin_code",
        "county_code",
        "members",
        "labor_force",
        "employed",
        "stably_employed",
    }
    for c in channels:
        assert f"count(DISTINCT e.member_id) FILTER (WHERE e.channel = '{c}')" in body


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"], id="plain"),
        pytest.param("SELECT ';'; -- a ; comment\nSELECT /* ; */ 2 -- end", ["SELECT ';'", "SELECT  2"], id="quote-comment"),
        pytest.param("SELECT $$ -- kept; $$, '/* kept */'", ["SELECT $$ -- kept; $$, '/* kept */'"], id="comment-in-quotes"),
        pytest.param(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$; SELECT 2",
            ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$", "SELECT 2"],
            id="dollar",
        ),
        pytest.param(
            "DO $do$ BEGIN EXECUTE $fn$ ... $$ ; $$ $fn$; END $do$; /* ; */ -- only a comment;\n",
            ["DO $do$ BEGIN EXECUTE $fn$ ... $$ ; $$ $fn$; END $do$"],
            id="nested-tags",
        ),
        pytest.param("SELECT 1 AS \"a;b\"; SELECT 'it'';s'", ['SELECT 1 AS "a;b"', "SELECT 'it'';s'"], id="escaped"),
    ],
)
def test_split_keeps_quoted_semicolons(script: str, expected: list[str]) -> None:
    assert sql.split(script) == expected


def test_split_refuses_an_unterminated_dollar_quote() -> None:
    with pytest.raises(ValueError, match="unterminated dollar quote"):
        sql.split("SELECT $$ 1;")


def test_only_listed_files_are_read() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        sql.read("../anju/seed_check")
