"""The Alembic revision goes down to base and back up on its own database."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from anju import db

TABLES = {"admin_area", "relocation_site", "site_origin", "facility", "household", "member", "employment",
          "income_linkage", "household_income", "cooperation_partner", "partner_county", "cooperation_project"}


async def _state(settings, name):  # type: ignore[no-untyped-def]
    eng = create_async_engine(settings.sqlalchemy_url(name))
    try:
        async with eng.connect() as c:
            tables = set((await c.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).all())
            enums = set((await c.scalars(text("SELECT typname FROM pg_type WHERE typtype = 'e'"))).all())
            gist = set((await c.scalars(text(
                "SELECT t.relname || '.' || a.attname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_am am ON am.oid = i.relam "
                "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey) WHERE am.amname = 'gist'"))).all())
            geoms = set((await c.scalars(text(
                "SELECT f_table_name || '.' || f_geometry_column || ':' || srid FROM geometry_columns"))).all())
    finally:
        await eng.dispose()
    return tables, enums, gist, geoms


async def test_downgrade_then_upgrade(settings):  # type: ignore[no-untyped-def]
    name = "anju_test_migrations"
    await db.ensure_database(settings, name, drop_first=True)
    await db.migrate(settings, name)
    tables, enums, gist, geoms = await _state(settings, name)
    assert TABLES <= tables
    assert {"admin_level", "facility_kind", "employment_channel", "linkage_mechanism"} <= enums
    # Every geometry column is SRID 4326 and has a GiST index.
    assert geoms and all(g.endswith(":4326") for g in geoms)
    assert {g.split(":")[0] for g in geoms} <= gist
    await db.downgrade(settings, name, "base")
    tables, enums, gist, _ = await _state(settings, name)
    assert not (TABLES & tables) and not enums
    await db.migrate(settings, name)
    assert TABLES <= (await _state(settings, name))[0]
    admin = create_async_engine(settings.sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as c:
        await c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await admin.dispose()
